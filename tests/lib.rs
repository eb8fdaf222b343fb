//! hvseed's integration tests, compiled into one test binary. Each module checks one
//! verb against an independent consumer (pykickstart, debconf, xorriso, QEMU, ...).

mod util;
mod inventory;
mod render;
mod iso;
mod pxe;
mod serve;
