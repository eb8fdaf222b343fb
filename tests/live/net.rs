//! The live tests' network: `hvseed vm`'s own namespace and 802.1Q tagger
//! (`hvseed::vm::tagger`, the code `hvseed vm` carries a host's VLANs with), wrapped
//! for tests (a failure panics) with what the tests check from inside the namespace:
//! ping and TCP connects. These machines' kernel has neither 802.1Q nor VLAN-filtering
//! bridges (docs/testing.md), so a guest's tagged VLAN reaches the namespace only
//! through the tagger: a frame tagged with VID n comes out untagged on the tap
//! `vlan<n>`, and untagged frames use the tap `untagged`. Nothing is routed out of
//! the namespace.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hvseed::vm::tagger;
pub use hvseed::vm::tagger::{tag, untag, Trunk, UNTAGGED};

use crate::support::output_within_secs;

/// A network namespace of its own with `lo` up ([`tagger::Netns`]): deleted when
/// dropped, a panic included, after any process still in it is killed; one left by a
/// test process killed before its guards ran is deleted by the next.
pub struct Netns(tagger::Netns);

impl Netns {
    pub fn new() -> Netns {
        Netns(tagger::Netns::new().unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        self.0.ip(args).unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.0.command(program)
    }

    /// Runs `f` on a thread that has entered the namespace and returns its result.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        self.0.run(f).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Persistent taps of these names, up (`ip tuntap add … mode tap`): a tagger
    /// attaches to them (`hvseed vm --netns`), and they keep their addresses while no
    /// guest runs.
    pub fn persistent_taps(&self, names: &[&str]) {
        for name in names {
            self.ip(&["tuntap", "add", "dev", name, "mode", "tap"]);
            self.ip(&["link", "set", name, "up"]);
        }
    }

    /// Frames the guest sent out on the tap `tap` so far (what the tap received, as
    /// the namespace's kernel counts it).
    pub fn frames_from_guest(&self, tap: &str) -> u64 {
        self.tap_counter(tap, "rx_packets")
    }

    fn tap_counter(&self, tap: &str, counter: &str) -> u64 {
        let o = output_within_secs(
            self.command("cat")
                .arg(format!("/sys/class/net/{tap}/statistics/{counter}")),
            10,
        );
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Frames moved so far per tap of the namespace, for messages.
    pub fn tap_stats(&self) -> String {
        let o = output_within_secs(self.command("ls").arg("/sys/class/net"), 10);
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter(|t| *t != "lo")
            .map(|t| {
                format!(
                    "{t}: {} from the guest, {} to it",
                    self.tap_counter(t, "rx_packets"),
                    self.tap_counter(t, "tx_packets")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The namespace's name (`ip netns`).
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// A trunk with the taps `vlan<VID>` for each of `vlans` and `untagged`; its socket
    /// in `dir`.
    pub fn trunk(&self, dir: &Path, vlans: &[u16]) -> Trunk {
        Trunk::new(&self.0, dir, vlans, true).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// True if `ping -c 1` from the namespace gets an answer from `ip` within 2 s.
    pub fn ping(&self, ip: &str) -> bool {
        output_within_secs(
            self.command("ping").args(["-n", "-c", "1", "-W", "2", ip]),
            10,
        )
        .status
        .success()
    }

    /// Waits until `ip` answers ping, at most `limit`; the time it took, or an error.
    pub fn wait_ping(&self, ip: &str, limit: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if self.ping(ip) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                return Err(format!("{ip} did not answer ping within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until a TCP connection to `addr` from the namespace succeeds, at most
    /// `limit`; returns the first bytes the server sends within 5 s (empty if none) and
    /// the time it took.
    pub fn wait_tcp(
        &self,
        addr: SocketAddr,
        limit: Duration,
    ) -> Result<(Vec<u8>, Duration), String> {
        self.run(move || {
            let start = Instant::now();
            loop {
                match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                    Ok(mut s) => {
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut buf = vec![0u8; 256];
                        let n = s.read(&mut buf).unwrap_or(0);
                        buf.truncate(n);
                        return Ok((buf, start.elapsed()));
                    }
                    Err(e) if start.elapsed() > limit => {
                        return Err(format!("no TCP connection to {addr} within {limit:?}: {e}"))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(500)),
                }
            }
        })
    }
}
