//! The guest's user network for `--pxe`: QEMU's own DHCP and TFTP, and the tree's
//! `--http-base` address made to reach the embedded server through `guestfwd`.
//!
//! QEMU's rules (slirp): the guestfwd address must lie inside `net=` and must not be
//! the network's host (gateway) or DNS address, nor one its DHCP hands out. So the
//! network is the http-base address's /24, and host, DNS and DHCP range are chosen
//! around it.

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::http_base::HttpBase;

/// The user network that makes `base` reachable from the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNet {
    /// The /24 holding the http-base address.
    pub net: Ipv4Addr,
    pub host: Ipv4Addr,
    pub dns: Ipv4Addr,
    pub dhcp_start: Ipv4Addr,
    /// The http-base address and port the guest connects to.
    pub addr: Ipv4Addr,
    pub port: u16,
}

/// Why an http-base cannot be served to a QEMU guest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unmappable {
    #[error(
        "the tree's http-base {0} names a host, not an IPv4 address: QEMU's user network can \
         make only an address reach hvseed's server; write the tree with `hvseed pxe \
         --http-base http://ADDRESS:PORT` to test it with `hvseed vm`"
    )]
    HostName(String),
    #[error(
        "the tree's http-base {0} is https: hvseed's server speaks plain HTTP; write the tree \
         with an http:// --http-base to test it with `hvseed vm`"
    )]
    Https(String),
    #[error(
        "the tree's http-base {0} has a path: hvseed's server serves DIR/http at /; write the \
         tree with --http-base http://ADDRESS:PORT to test it with `hvseed vm`"
    )]
    Path(String),
    #[error(
        "the tree's http-base {0} is the network or broadcast address of its /24, which a \
         guest cannot connect to; use another address"
    )]
    Edge(String),
    #[error("the tree's http-base {0} is not of the form http://ADDRESS[:PORT]")]
    Malformed(String),
}

impl GuestNet {
    /// The user network for the tree's http-base.
    pub fn for_base(base: &HttpBase) -> Result<GuestNet, Unmappable> {
        let s = base.as_str();
        if s.starts_with("https://") {
            return Err(Unmappable::Https(s.into()));
        }
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| Unmappable::Malformed(s.into()))?;
        if rest.contains('/') {
            return Err(Unmappable::Path(s.into()));
        }
        if rest.contains('@') || rest.starts_with('[') {
            return Err(Unmappable::Malformed(s.into()));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| Unmappable::Malformed(s.into()))?,
            ),
            None => (rest, 80),
        };
        let addr: Ipv4Addr = host.parse().map_err(|_| Unmappable::HostName(s.into()))?;
        let o = addr.octets();
        if o[3] == 0 || o[3] == 255 {
            return Err(Unmappable::Edge(s.into()));
        }
        let at = |last: u8| Ipv4Addr::new(o[0], o[1], o[2], last);
        // QEMU's defaults where they are free: host .2, DNS .3, DHCP from .15 (16 leases).
        let host = [2u8, 1, 4]
            .into_iter()
            .find(|&x| x != o[3])
            .map(at)
            .unwrap_or(at(2));
        let dns = [3u8, 5, 6]
            .into_iter()
            .map(at)
            .find(|&a| a != addr && a != host)
            .unwrap_or(at(3));
        let start = if (15..31).contains(&o[3]) { 100 } else { 15 };
        Ok(GuestNet {
            net: at(0),
            host,
            dns,
            dhcp_start: at(start),
            addr,
            port,
        })
    }

    /// The `-netdev user,…` value: DHCP and TFTP from QEMU, `bootfile` for the firmware,
    /// and each guest connection to the http-base relayed by `relay` (a command QEMU runs
    /// per connection with the connection on its stdin and stdout).
    pub fn netdev(&self, id: &str, tftp: &str, bootfile: &str, relay: &str) -> String {
        format!(
            "user,id={id},net={}/24,host={},dns={},dhcpstart={},tftp={},bootfile={},guestfwd=tcp:{}:{}-cmd:{}",
            self.net,
            self.host,
            self.dns,
            self.dhcp_start,
            qemu_opt(tftp),
            qemu_opt(bootfile),
            self.addr,
            self.port,
            qemu_opt(relay)
        )
    }
}

/// A value inside QEMU's `key=value,…` option syntax: a comma is written twice.
pub fn qemu_opt(v: &str) -> String {
    v.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::discriminant;

    fn net(base: &str) -> Result<GuestNet, Unmappable> {
        GuestNet::for_base(&base.parse().unwrap())
    }

    #[test]
    fn the_http_base_address_is_inside_the_net_and_apart_from_host_dns_and_dhcp() {
        for (base, addr, port) in [
            ("http://10.0.0.2:8080", [10, 0, 0, 2], 8080),
            ("http://10.0.2.2:45678", [10, 0, 2, 2], 45678),
            ("http://192.168.42.5", [192, 168, 42, 5], 80),
            ("http://172.16.9.3:81/", [172, 16, 9, 3], 81),
            ("http://10.1.1.20:8080", [10, 1, 1, 20], 8080),
            ("http://10.1.1.1:8080", [10, 1, 1, 1], 8080),
        ] {
            let n = net(base).unwrap();
            let a = Ipv4Addr::from(addr);
            assert_eq!(n.addr, a, "{base}");
            assert_eq!(n.port, port, "{base}");
            let o = a.octets();
            assert_eq!(n.net, Ipv4Addr::new(o[0], o[1], o[2], 0), "{base}");
            for other in [n.host, n.dns] {
                assert_ne!(other, a, "{base}");
                assert_eq!(other.octets()[..3], o[..3], "{base}");
            }
            assert_ne!(n.host, n.dns, "{base}");
            let s = n.dhcp_start.octets()[3];
            assert!(!(s..s + 16).contains(&o[3]), "{base}: DHCP range holds it");
            assert!(![n.host, n.dns]
                .iter()
                .any(|h| (s..s + 16).contains(&h.octets()[3])));
        }
        assert_eq!(
            net("http://10.0.0.2:8080").unwrap().netdev("n0", "/t/tftp", "pxelinux.0", "/bin/hvseed vm-relay 127.0.0.1:5"),
            "user,id=n0,net=10.0.0.0/24,host=10.0.0.1,dns=10.0.0.3,dhcpstart=10.0.0.15,tftp=/t/tftp,bootfile=pxelinux.0,guestfwd=tcp:10.0.0.2:8080-cmd:/bin/hvseed vm-relay 127.0.0.1:5"
        );
        assert_eq!(qemu_opt("/a,b/c"), "/a,,b/c");
    }

    #[test]
    fn host_names_https_paths_and_edges_are_refused_with_the_fix() {
        let e = net("http://pxe.lab.example.org:8080").unwrap_err();
        assert!(matches!(e, Unmappable::HostName(_)));
        assert!(
            e.to_string().contains("--http-base http://ADDRESS:PORT"),
            "{e}"
        );
        let none = String::new;
        for (url, want) in [
            ("https://10.0.0.2", Unmappable::Https(none())),
            ("http://10.0.0.2/hvseed", Unmappable::Path(none())),
            ("http://10.0.0.0:80", Unmappable::Edge(none())),
            ("http://10.0.0.255:80", Unmappable::Edge(none())),
            ("http://10.0.0.2:0", Unmappable::Malformed(none())),
            ("http://u@10.0.0.2:1", Unmappable::Malformed(none())),
        ] {
            let got = net(url).unwrap_err();
            assert_eq!(discriminant(&got), discriminant(&want), "{url}: {got:?}");
        }
    }
}
