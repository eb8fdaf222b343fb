//! hvseed's integration tests, compiled into one test binary. Each module checks one
//! verb against an independent consumer (pykickstart, debconf, xorriso, QEMU, ...).

mod autoinstall;
mod fuzz_iso;
mod inputs;
mod inventory;
mod iso;
mod live;
mod process;
mod pxe;
mod render;
mod serve;
mod support;
mod util;
mod vm;
