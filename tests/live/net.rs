//! A private network namespace per test, and a userspace 802.1Q tagger joining a QEMU
//! `-netdev stream` trunk to tap devices inside it. These machines' kernel has neither
//! 802.1Q nor VLAN-filtering bridges (docs/testing.md), so a guest's tagged VLAN
//! reaches the namespace only through this tagger: a frame tagged with VID n from the
//! guest comes out untagged on the tap `vlan<n>`, a frame sent on that tap reaches the
//! guest tagged n, and untagged frames use the tap `untagged`. Nothing is routed out of
//! the namespace.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::output_within_secs;

/// The tap that carries untagged frames.
pub const UNTAGGED: &str = "untagged";

/// A network namespace of its own (`ip netns add`, a name unique to this process and
/// test), with `lo` up. Deleted when dropped, a panic included, after any process still
/// in it is killed: everything that runs there was started by the test.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if NEXT.load(Ordering::Relaxed) == 0 {
            remove_orphans();
        }
        let name = format!(
            "hvseed-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ip(&all);
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `f` on a thread that has entered the namespace (`setns`), and returns its
    /// result: sockets it opens live in the namespace.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let path = self.path();
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
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

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stderr(Stdio::null())
            .output()
        {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: a plain kill(2) of a process in this test's namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Namespaces of test processes that are gone (killed before their guards ran): their
/// names carry the process id.
fn remove_orphans() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("hvseed-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            drop(Netns { name });
        }
    }
}

fn run_ip(args: &[&str]) {
    let o = output_within_secs(Command::new("ip").args(args), 30);
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &Path) {
    let ns = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: setns on a namespace file this function holds open.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Frames counted per tap: (from the guest, to the guest), and frames dropped because
/// no tap carries their VLAN.
#[derive(Default)]
struct Counters {
    per_tap: Mutex<HashMap<String, (u64, u64)>>,
    dropped: AtomicU64,
}

/// The tagger: listens on a unix socket for QEMU's `-netdev stream` (the guest's trunk)
/// and moves frames between it and its taps in the namespace until dropped. When QEMU
/// closes the connection (the guest powered off) the taps stay, with their addresses,
/// and the next QEMU started on the same socket (the guest booted again) is accepted.
pub struct Trunk {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Trunk {
    /// Taps `vlan<VID>` for each of `vlans` and `untagged`, created in `ns` and up;
    /// the socket QEMU connects to is made in `dir`.
    pub fn new(ns: &Netns, dir: &Path, vlans: &[u16]) -> Trunk {
        for &v in vlans {
            assert!((1..4095).contains(&v), "VLAN id {v} is out of 1..4094");
        }
        let mut names: Vec<(Option<u16>, String)> = vlans
            .iter()
            .map(|&v| (Some(v), format!("vlan{v}")))
            .collect();
        names.push((None, UNTAGGED.into()));
        let path = ns.path();
        let taps: Vec<(Option<u16>, String, File)> = {
            let names = names.clone();
            std::thread::spawn(move || {
                enter(&path);
                names
                    .into_iter()
                    .map(|(vid, name)| {
                        let f = open_tap(&name);
                        (vid, name, f)
                    })
                    .collect()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        };
        for (_, name) in &names {
            ns.ip(&["link", "set", name, "up"]);
        }
        let socket = dir.join("trunk.sock");
        let listener = UnixListener::bind(&socket)
            .unwrap_or_else(|e| panic!("binding {}: {e}", socket.display()));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let thread = {
            let (stop, counters) = (stop.clone(), counters.clone());
            std::thread::spawn(move || forward(listener, taps, &stop, &counters))
        };
        Trunk {
            socket,
            stop,
            counters,
            thread: Some(thread),
        }
    }

    /// The unix socket for `-netdev stream,addr.type=unix,addr.path=…` (QEMU connects).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Frames that came from the guest and went out on `tap` so far.
    pub fn frames_from_guest(&self, tap: &str) -> u64 {
        let per = self.counters.per_tap.lock().unwrap();
        per.get(tap).map_or(0, |c| c.0)
    }

    /// Frames moved so far, per tap, for failure messages.
    pub fn stats(&self) -> String {
        let per = self.counters.per_tap.lock().unwrap();
        let mut s: Vec<String> = per
            .iter()
            .map(|(k, (from, to))| format!("{k}: {from} from the guest, {to} to it"))
            .collect();
        s.sort();
        s.push(format!(
            "dropped (no tap for their VLAN): {}",
            self.counters.dropped.load(Ordering::Relaxed)
        ));
        s.join("; ")
    }
}

impl Drop for Trunk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// A tap device `name` in the calling thread's network namespace (`/dev/net/tun`,
/// `TUNSETIFF`, no packet information header: one read or write is one frame). It
/// exists as long as the returned file is open.
fn open_tap(name: &str) -> File {
    assert!(name.len() < libc::IFNAMSIZ, "tap name {name} is too long");
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap_or_else(|e| panic!("/dev/net/tun: {e}"));
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which IfReq lays out.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut req) };
    assert_eq!(
        rc,
        0,
        "TUNSETIFF {name}: {}",
        std::io::Error::last_os_error()
    );
    tun
}

/// Polls `fds` for input for up to `ms` milliseconds; which of them are readable (or
/// closed).
fn poll_in(fds: &[i32], ms: i32) -> Vec<bool> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: poll on an array of pollfd of the given length.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if rc < 0 {
        return vec![false; fds.len()];
    }
    p.iter().map(|x| x.revents != 0).collect()
}

/// The tagger's loop: accepts QEMU's connection and moves frames both ways, then waits
/// for the next one, until stopped.
fn forward(
    listener: UnixListener,
    taps: Vec<(Option<u16>, String, File)>,
    stop: &AtomicBool,
    counters: &Counters,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        forward_one(&listener, &taps, stop, counters)?;
    }
    Ok(())
}

/// One QEMU connection: returns when QEMU closes it or when stopped.
fn forward_one(
    listener: &UnixListener,
    taps: &[(Option<u16>, String, File)],
    stop: &AtomicBool,
    counters: &Counters,
) -> Result<(), String> {
    let mut stream: UnixStream = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                poll_in(&[listener.as_raw_fd()], 200);
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let by_vid: HashMap<Option<u16>, usize> = taps
        .iter()
        .enumerate()
        .map(|(i, (v, _, _))| (*v, i))
        .collect();
    let mut fds = vec![stream.as_raw_fd()];
    fds.extend(taps.iter().map(|(_, _, f)| f.as_raw_fd()));
    let mut inbuf: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut frame = vec![0u8; 65536];
    let count = |tap: &str, from_guest: bool| {
        let mut per = counters.per_tap.lock().unwrap();
        let e = per.entry(tap.to_owned()).or_default();
        if from_guest {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let ready = poll_in(&fds, 200);
        if ready[0] {
            let n = match stream.read(&mut frame) {
                Ok(0) => return Ok(()), // QEMU is gone
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(format!("reading the trunk: {e}")),
            };
            inbuf.extend_from_slice(&frame[..n]);
            // Whole frames: a 4-byte big-endian length, then the Ethernet frame.
            while inbuf.len() >= 4 {
                let len = u32::from_be_bytes(inbuf[..4].try_into().unwrap()) as usize;
                if inbuf.len() < 4 + len {
                    break;
                }
                let eth: Vec<u8> = inbuf[4..4 + len].to_vec();
                inbuf.drain(..4 + len);
                let (vid, payload) = untag(&eth);
                match by_vid.get(&vid) {
                    Some(&i) => {
                        let (_, name, mut tap) = (&taps[i].0, &taps[i].1, &taps[i].2);
                        let _ = tap.write(&payload);
                        count(name, true);
                    }
                    None => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        for (i, (vid, name, tap)) in taps.iter().enumerate() {
            if !ready[i + 1] {
                continue;
            }
            let mut tap = tap;
            let n = match tap.read(&mut frame) {
                Ok(n) => n,
                Err(_) => continue,
            };
            let out = tag(&frame[..n], *vid);
            let mut msg = Vec::with_capacity(out.len() + 4);
            msg.extend_from_slice(&(out.len() as u32).to_be_bytes());
            msg.extend_from_slice(&out);
            match writer.write_all(&msg) {
                Ok(()) => {}
                // QEMU is gone.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(format!("writing the trunk: {e}")),
            }
            count(name, false);
        }
    }
    Ok(())
}

/// The VLAN of an Ethernet frame (None: untagged, or priority-tagged with VID 0) and
/// the frame without its 802.1Q header.
pub fn untag(eth: &[u8]) -> (Option<u16>, Vec<u8>) {
    if eth.len() >= 18 && eth[12] == 0x81 && eth[13] == 0x00 {
        let vid = u16::from_be_bytes([eth[14], eth[15]]) & 0x0fff;
        let mut out = Vec::with_capacity(eth.len() - 4);
        out.extend_from_slice(&eth[..12]);
        out.extend_from_slice(&eth[16..]);
        return ((vid != 0).then_some(vid), out);
    }
    (None, eth.to_vec())
}

/// `eth` with an 802.1Q header for `vid` after the addresses (unchanged for None).
pub fn tag(eth: &[u8], vid: Option<u16>) -> Vec<u8> {
    let Some(vid) = vid else {
        return eth.to_vec();
    };
    if eth.len() < 12 {
        return eth.to_vec();
    }
    let mut out = Vec::with_capacity(eth.len() + 4);
    out.extend_from_slice(&eth[..12]);
    out.extend_from_slice(&[0x81, 0x00]);
    out.extend_from_slice(&vid.to_be_bytes());
    out.extend_from_slice(&eth[12..]);
    out
}
