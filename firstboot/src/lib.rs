//! hvseed's first-boot agent, as a library: the steps the agent carries out. The plan,
//! the report and the name syntax it shares with the builder (`hvseed`) live in the
//! `hvseed-plan` crate and are re-exported here under their old paths.

// Output goes through `out`, which never panics on a full or closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod apply;
pub mod diff;
pub mod edit;
pub mod exec;
pub mod files;
pub mod fsroot;
pub mod http;
pub mod out;
pub mod paths;
pub mod run;
pub mod settings;
pub mod target;
pub mod topology;
pub mod verify;

pub use hvseed_plan::{bounded, names, plan, report, time};
pub use hvseed_plan::{Plan, PlanError, PLAN_SCHEMA};
