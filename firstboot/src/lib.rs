//! hvseed's first-boot agent, as a library: the plan types shared with the builder
//! (`hvseed`), the name checks both sides use, and the steps the agent carries out.

// Output goes through `out`, which never panics on a full or closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod apply;
pub mod bounded;
pub mod diff;
pub mod edit;
pub mod exec;
pub mod files;
pub mod fsroot;
pub mod http;
pub mod names;
pub mod out;
pub mod plan;
pub mod report;
pub mod run;
pub mod verify;

pub use plan::{Plan, PlanError, PLAN_SCHEMA};
