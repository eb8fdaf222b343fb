//! hvseed's integration tests, compiled into one test binary. Each module checks one
//! verb against an independent consumer (pykickstart, debconf, xorriso, QEMU, ...).

mod util;
