//! The contract between hvseed (the builder) and hvseed-firstboot (the agent): the
//! versioned plan the builder writes and the agent reads, the report the agent sends
//! back to `hvseed serve`, and the syntax of the names and addresses both sides check;
//! and the one atomic file write ([`atomic`]) both use. Both binaries link this crate;
//! the builder links nothing else of the agent.
//!
//! It is linked into the static musl agent, so it must keep building for
//! `x86_64-unknown-linux-musl` and use no system call newer than Linux 2.6.32.

// Neither binary's output goes through here: nothing in the contract prints.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod atomic;
pub mod bounded;
pub mod names;
pub mod plan;
pub mod report;
pub mod time;

pub use plan::{Plan, PlanError, PLAN_SCHEMA};
