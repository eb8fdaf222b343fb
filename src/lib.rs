//! hvseed, the builder: inventory → kickstarts/preseeds and plans → install ISOs and
//! PXE trees for CloudStack KVM hosts. The binary (`src/main.rs`) only parses
//! arguments and calls into these modules.
//!
//! Nothing here prints with `println!`/`eprintln!`: those panic when the output is a
//! closed pipe or a full disk. Messages go through [`say!`] or `tracing`, both of which
//! drop what cannot be written (see docs/media.md, "On failure and interrupt").

#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

/// Prints one line to stderr like `eprintln!`, but a failed write (closed pipe, full
/// disk, closed descriptor) is ignored instead of panicking: a message that cannot be
/// shown must never cost the work it reports on.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod agent;
pub mod bootmenu;
pub mod cli;
pub mod escape;
pub mod http_base;
pub mod interrupt;
pub mod inventory;
pub mod iso;
pub mod isoread;
pub mod overlap;
pub mod par;
pub mod pxe;
pub mod render;
pub mod serve;
pub mod sums;
pub mod target;
pub mod tool;
pub mod vm;
