//! The rules that need every host: fqdn, MAC and address unique across the cluster,
//! and each host's address usable in the management subnet its gateway and prefix
//! define. They run after every host was read on its own.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use super::diagnostics::Loc;
use super::reader::Checker;

/// Positions of one host's values that cross-host rules need.
#[derive(Default)]
pub(super) struct HostLocs {
    pub(super) fqdn: Option<(String, Loc)>,
    pub(super) mac: Option<(String, Loc)>,
    pub(super) ip: Option<(Ipv4Addr, Loc)>,
    /// The gateway node in force for this host, with the prefix.
    pub(super) subnet: Option<Subnet>,
}

/// A management gateway, the prefix length and where the gateway was set.
#[derive(Clone)]
pub(super) struct Subnet {
    pub(super) gateway: Ipv4Addr,
    pub(super) prefix: u8,
    pub(super) at: Loc,
}

/// The hosts of one management subnet: those whose gateway was set at the same place
/// with the same prefix (ordered by the gateway's position first).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SubnetKey<'l> {
    line: usize,
    column: usize,
    key: &'l str,
    prefix: u8,
    gateway: Ipv4Addr,
}

pub(super) fn cross_host_rules(c: &mut Checker, locs: &[HostLocs]) {
    // Uniqueness of fqdn, MAC and IP (the first holder's key path by value).
    let mut fqdns: HashMap<&str, &str> = HashMap::with_capacity(locs.len());
    let mut macs: HashMap<&str, &str> = HashMap::with_capacity(locs.len());
    let mut ips: HashMap<Ipv4Addr, &str> = HashMap::with_capacity(locs.len());
    for l in locs {
        if let Some((v, at)) = &l.fqdn {
            if let Some(first) = fqdns.insert(v, &at.key) {
                fqdns.insert(v, first);
                c.error_at(
                    at,
                    format!("duplicate of {first} (`{v}`); every host needs its own name"),
                );
            }
        }
        if let Some((v, at)) = &l.mac {
            if let Some(first) = macs.insert(v, &at.key) {
                macs.insert(v, first);
                c.error_at(at, format!("duplicate of {first} (`{v}`); every host needs the MAC of its own trunk NIC"));
            }
        }
        if let Some((v, at)) = &l.ip {
            if let Some(first) = ips.insert(*v, &at.key) {
                ips.insert(*v, first);
                c.error_at(
                    at,
                    format!(
                        "duplicate of {first} (`{v}`); every host needs its own management address"
                    ),
                );
            }
        }
    }

    // Hosts grouped by the gateway/prefix they use (a host may override them).
    let mut groups: BTreeMap<SubnetKey, Vec<(Ipv4Addr, &Loc)>> = BTreeMap::new();
    for l in locs {
        if let (Some(subnet), Some((ip, iloc))) = (&l.subnet, &l.ip) {
            let key = SubnetKey {
                line: subnet.at.line,
                column: subnet.at.column,
                key: subnet.at.key.as_str(),
                prefix: subnet.prefix,
                gateway: subnet.gateway,
            };
            groups.entry(key).or_default().push((*ip, iloc));
        }
    }
    for (subnet, members) in groups {
        let (prefix, gw) = (subnet.prefix, subnet.gateway);
        let gloc = Loc {
            line: subnet.line,
            column: subnet.column,
            key: subnet.key.to_string(),
        };
        let mask = u32::from(hvseed_plan::names::netmask(prefix));
        let network = Ipv4Addr::from(u32::from(gw) & mask);
        let broadcast = Ipv4Addr::from(u32::from(gw) | !mask);
        let subnet = format!("{network}/{prefix}");
        if gw == network || gw == broadcast {
            let what = if gw == network {
                "network"
            } else {
                "broadcast"
            };
            c.error_at(&gloc, format!("{gw} is the {what} address of {subnet}; the gateway must be a usable address of the management subnet"));
            continue;
        }
        let inside = |ip: Ipv4Addr| u32::from(ip) & mask == u32::from(network);
        if !members.iter().any(|(ip, _)| inside(*ip)) {
            c.error_at(
                &gloc,
                format!(
                    "no host ip lies in the management subnet {subnet} that gateway {gw} with prefix {prefix} defines (is the gateway or the prefix wrong?)"
                ),
            );
            continue;
        }
        for (ip, at) in members {
            if !inside(ip) {
                c.error_at(at, format!("{ip} is outside the management subnet {subnet} (gateway {gw}, prefix {prefix})"));
            } else if ip == network {
                c.error_at(
                    at,
                    format!("{ip} is the network address of {subnet}; pick a host address"),
                );
            } else if ip == broadcast {
                c.error_at(
                    at,
                    format!("{ip} is the broadcast address of {subnet}; pick a host address"),
                );
            } else if ip == gw {
                c.error_at(
                    at,
                    format!("{ip} is the management gateway; pick another address for the host"),
                );
            }
        }
    }
}
