//! One reader per inventory section, each from a host's mapping merged over the
//! defaults to the section's typed value (or `None` after recording the findings).

mod cloudstack;
mod cpu;
mod dns;
mod install;
mod network;
mod security;

pub(super) use cloudstack::resolve_cloudstack;
pub(super) use cpu::resolve_cpu;
pub(super) use dns::resolve_dns;
pub(super) use install::resolve_install;
pub(super) use network::resolve_network;
pub(super) use security::resolve_security;
