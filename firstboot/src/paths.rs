//! Where the agent and its plan live on an installed host, and the name of its
//! first-boot job (every init system's job file is named after it).

pub const AGENT_PATH: &str = "/usr/sbin/hvseed-firstboot";
pub const PLAN_PATH: &str = "/etc/hvseed/plan.json";
pub const JOB_NAME: &str = "hvseed-firstboot";
