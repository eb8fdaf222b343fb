//! hvseed, the builder: inventory → kickstarts/preseeds and plans → install ISOs and
//! PXE trees for CloudStack KVM hosts. The binary (`src/main.rs`) only parses
//! arguments and calls into these modules.

pub mod agent;
pub mod cli;
pub mod commands;
pub mod escape;
pub mod inventory;
pub mod iso;
pub mod overlap;
pub mod pxe;
pub mod render;
pub mod serve;
pub mod tool;
