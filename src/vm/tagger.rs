//! The host's VLANs for a guest: a private network namespace and a userspace 802.1Q
//! tagger joining QEMU's `-netdev stream` (the guest's trunk) to tap devices inside it.
//! A frame tagged with VID n from the guest comes out untagged on the tap `vlan<n>`, a
//! frame sent on that tap reaches the guest tagged n; untagged frames use the tap
//! `untagged` when there is one and are dropped otherwise. QEMU's user network drops
//! 802.1Q frames, and kernels without 802.1Q or VLAN-filtering bridges cannot do this
//! themselves, so this is how a host whose management is on a VLAN reaches a gateway
//! under `hvseed vm` (and under hvseed's own live-host tests, which use the same code).
//! Nothing is routed out of the namespace: it has no link to the machine's networks.
//!
//! Needs root (`ip netns add`, `/dev/net/tun`). The namespace is on the interrupt list
//! while it exists and is deleted when dropped; a namespace left by a run that no
//! longer exists (killed with SIGKILL) is deleted by the next one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The tap that carries untagged frames (when asked for).
pub const UNTAGGED: &str = "untagged";

/// The start of the namespaces' names; the [`crate::interrupt::owner`] tag follows.
const NETNS_BASE: &str = "hvseed-vm-";

/// Why this machine cannot carry a guest's VLANs, or `None` when it can: root, `ip`
/// with network namespaces, `/dev/net/tun`.
pub fn unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("carrying its VLANs takes root (a network namespace and tap devices)".into());
    }
    if super::plan::which("ip").is_none() {
        return Some(
            "carrying its VLANs takes `ip` (Debian/Ubuntu: apt-get install iproute2)".into(),
        );
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("carrying its VLANs takes /dev/net/tun (modprobe tun)".into());
    }
    None
}

/// A network namespace of its own (`ip netns add`), with `lo` up. Deleted when
/// dropped, after any process still in it is killed: everything that runs there was
/// started by its owner. Or a caller's namespace ([`Netns::existing`]), only used.
pub struct Netns {
    name: String,
    /// `None` for a caller's namespace: neither listed nor deleted.
    _listed: Option<crate::interrupt::Guard>,
}

impl Netns {
    pub fn new() -> Result<Netns> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if NEXT.load(Ordering::Relaxed) == 0 {
            remove_stale();
        }
        let name = format!(
            "{}{}",
            crate::interrupt::temp_prefix(NETNS_BASE),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // Listed before it exists (`ip` runs as a listed child of its own, which
        // takes the list's lock): an interrupt in between deletes nothing.
        let ((), listed) = crate::interrupt::track(
            || Ok::<_, std::convert::Infallible>(()),
            |()| vec![crate::interrupt::Item::Netns(name.clone())],
        )
        .unwrap_or_else(|e| match e {});
        let ns = Netns {
            name,
            _listed: Some(listed),
        };
        ip(&["netns", "add", &ns.name])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The caller's namespace `name` (`/run/netns/<name>`, as `ip netns add` makes
    /// it): used as it is, never deleted, nothing in it killed.
    pub fn existing(name: &str) -> Result<Netns> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            bail!("--netns {name:?}: not a network namespace name (as `ip netns list` shows them)");
        }
        let path = Path::new("/run/netns").join(name);
        if !path.exists() {
            bail!(
                "--netns {name}: there is no network namespace {name} ({} does not exist); \
                 make it first with `ip netns add {name}`",
                path.display()
            );
        }
        Ok(Netns {
            name: name.to_string(),
            _listed: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `f` on a thread that has entered the namespace (`setns`), and returns its
    /// result: sockets and taps it opens live in the namespace, whichever thread uses
    /// them later.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
        let path = self.path();
        std::thread::spawn(move || enter(&path).map(|()| f()))
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self._listed.is_some() {
            remove_netns(&self.name);
        }
    }
}

/// Kills what runs in namespace `name` (never this process) and deletes it.
pub fn remove_netns(name: &str) {
    if let Ok(o) = Command::new("ip")
        .args(["netns", "pids", name])
        .stderr(Stdio::null())
        .output()
    {
        let me = std::process::id();
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Some(p) = pid
                .parse::<i32>()
                .ok()
                .filter(|p| *p as u32 != me)
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// Namespaces of runs that are gone (killed before they could delete theirs).
fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        if crate::interrupt::is_stale(&e.file_name(), NETNS_BASE, "") {
            let name = e.file_name().to_string_lossy().into_owned();
            tracing::info!("deleting network namespace {name}, left by an interrupted run");
            remove_netns(&name);
        }
    }
}

/// `ip ARGS`, which must succeed within 30 s.
fn ip(args: &[&str]) -> Result<()> {
    crate::tool::Tool::new("ip")
        .args(args)
        .deadline(Duration::from_secs(30))
        .run()
        .map(drop)
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &Path) -> Result<()> {
    let ns = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: setns on a namespace file this function holds open.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!(
            "entering {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
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
    /// Taps `vlan<VID>` for each of `vlans` (and `untagged` if asked), created in `ns`
    /// and up; the socket QEMU connects to is made in `dir`.
    pub fn new(ns: &Netns, dir: &Path, vlans: &[u16], untagged: bool) -> Result<Trunk> {
        if let Some(v) = vlans.iter().find(|v| !(1..4095).contains(*v)) {
            bail!("VLAN id {v} is out of 1..4094");
        }
        let mut names: Vec<(Option<u16>, String)> = vlans
            .iter()
            .map(|&v| (Some(v), format!("vlan{v}")))
            .collect();
        if untagged {
            names.push((None, UNTAGGED.into()));
        }
        let taps: Vec<(Option<u16>, String, File)> = {
            let names = names.clone();
            ns.run(move || {
                names
                    .into_iter()
                    .map(|(vid, name)| open_tap(&name).map(|f| (vid, name, f)))
                    .collect::<Result<Vec<_>>>()
            })??
        };
        for (_, name) in &names {
            ns.ip(&["link", "set", name, "up"])?;
        }
        let socket = dir.join("trunk.sock");
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        listener
            .set_nonblocking(true)
            .context("setting the trunk's socket non-blocking")?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let thread = {
            let (stop, counters) = (stop.clone(), counters.clone());
            std::thread::Builder::new()
                .name("tagger".into())
                .spawn(move || forward(listener, taps, &stop, &counters))
                .context("starting the tagger's thread")?
        };
        Ok(Trunk {
            socket,
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// The unix socket QEMU connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The `-netdev` value that joins a guest's NIC to this trunk.
    pub fn netdev(&self, id: &str) -> String {
        format!(
            "stream,id={id},server=off,addr.type=unix,addr.path={}",
            super::net::qemu_opt(&self.socket.to_string_lossy())
        )
    }

    /// Frames that came from the guest and went out on `tap` so far.
    pub fn frames_from_guest(&self, tap: &str) -> u64 {
        let per = self
            .counters
            .per_tap
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        per.get(tap).map_or(0, |c| c.0)
    }

    /// Frames moved so far, per tap, for messages.
    pub fn stats(&self) -> String {
        let per = self
            .counters
            .per_tap
            .lock()
            .unwrap_or_else(|p| p.into_inner());
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
            if let Ok(Err(e)) = t.join() {
                tracing::warn!("the VLAN tagger stopped early: {e}");
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// A tap device `name` in the calling thread's network namespace (`/dev/net/tun`,
/// `TUNSETIFF`, no packet information header: one read or write is one frame). It
/// exists as long as the returned file is open.
fn open_tap(name: &str) -> Result<File> {
    if name.len() >= libc::IFNAMSIZ {
        bail!("tap name {name} is too long");
    }
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("opening /dev/net/tun")?;
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
    if rc != 0 {
        bail!(
            "creating the tap {name} (TUNSETIFF): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(tun)
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
    stream
        .set_nonblocking(false)
        .map_err(|e| format!("the trunk's connection: {e}"))?;
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("the trunk's connection: {e}"))?;
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
        let mut per = counters.per_tap.lock().unwrap_or_else(|p| p.into_inner());
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
                let len = u32::from_be_bytes([inbuf[0], inbuf[1], inbuf[2], inbuf[3]]) as usize;
                if inbuf.len() < 4 + len {
                    break;
                }
                let (vid, payload) = untag(&inbuf[4..4 + len]);
                match by_vid.get(&vid) {
                    Some(&i) => {
                        let (name, mut tap) = (&taps[i].1, &taps[i].2);
                        let _ = tap.write(&payload);
                        count(name, true);
                    }
                    None => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                inbuf.drain(..4 + len);
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

/// The host's management network as `hvseed vm` provides it inside the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    pub vlan: u16,
    /// Answered by the namespace on the tap `vlan<vlan>` (its address, with `prefix`).
    pub gateway: std::net::Ipv4Addr,
    pub prefix: u8,
}

/// What `hvseed vm` runs for a tagged management network: the namespace, the trunk
/// with the tap `vlan<n>` holding the gateway's address, and for a PXE tree a listener
/// at the http-base address in the namespace that relays to the embedded server (the
/// installed host reaches the http-base through its gateway, no longer through QEMU's
/// user network). Dropped in that order: relay and trunk, then the namespace.
///
/// In a caller's namespace ([`Carrier::in_callers`]) the trunk has the tap `untagged`
/// too and nothing else is added: what answers there is the caller's.
pub struct Carrier {
    relay: Option<Relay>,
    trunk: Trunk,
    ns: Netns,
}

impl Carrier {
    /// `http`: the http-base address the guest connects to, and the embedded server's.
    pub fn start(
        m: &Management,
        dir: &Path,
        http: Option<(std::net::SocketAddrV4, std::net::SocketAddr)>,
    ) -> Result<Carrier> {
        let ns = Netns::new().context("making a network namespace for the host's VLANs")?;
        let trunk = Trunk::new(&ns, dir, &[m.vlan], false)?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/{}", m.gateway, m.prefix),
            "dev",
            &format!("vlan{}", m.vlan),
        ])?;
        let relay = match http {
            None => None,
            Some((at, server)) => {
                ns.ip(&["addr", "add", &format!("{}/32", at.ip()), "dev", "lo"])?;
                let listener = ns
                    .run(move || std::net::TcpListener::bind(at))?
                    .with_context(|| format!("listening on {at} in the namespace"))?;
                Some(Relay::start(listener, server)?)
            }
        };
        Ok(Carrier { relay, trunk, ns })
    }

    /// The trunk in the caller's namespace `name`: the taps `vlan<VID>` for each of
    /// `vlans` and `untagged` (the caller's persistent taps where they exist there, so
    /// their addresses and the servers bound to them are in place before the guest
    /// starts and stay after it; else made for the run and gone with it). No address
    /// is added and the namespace is left as it was.
    pub fn in_callers(name: &str, vlans: &[u16], dir: &Path) -> Result<Carrier> {
        let ns = Netns::existing(name)?;
        let trunk = Trunk::new(&ns, dir, vlans, true)
            .with_context(|| format!("carrying the host's networks into namespace {name}"))?;
        Ok(Carrier {
            relay: None,
            trunk,
            ns,
        })
    }

    pub fn trunk(&self) -> &Trunk {
        &self.trunk
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Connections relayed to the embedded server so far.
    pub fn relayed(&self) -> u64 {
        self.relay
            .as_ref()
            .map_or(0, |r| r.count.load(Ordering::Relaxed))
    }
}

/// Accepts connections on a listener (in the namespace) and copies each to and from a
/// new connection to `server`, until dropped.
struct Relay {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(listener: std::net::TcpListener, server: std::net::SocketAddr) -> Result<Relay> {
        listener
            .set_nonblocking(true)
            .context("setting the relay's socket non-blocking")?;
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::Builder::new()
                .name("vlan-relay".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((conn, _)) => {
                                count.fetch_add(1, Ordering::Relaxed);
                                let _ = std::thread::Builder::new()
                                    .name("vlan-relay-conn".into())
                                    .spawn(move || relay_one(conn, server));
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                poll_in(&[listener.as_raw_fd()], 200);
                            }
                            Err(e) => {
                                tracing::debug!("relay accept: {e}");
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                    }
                })
                .context("starting the relay's thread")?
        };
        Ok(Relay {
            stop,
            count,
            thread: Some(thread),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay_one(conn: std::net::TcpStream, server: std::net::SocketAddr) {
    let _ = conn.set_nonblocking(false);
    let Ok(up) = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(5)) else {
        return;
    };
    let (Ok(conn2), Ok(up2)) = (conn.try_clone(), up.try_clone()) else {
        return;
    };
    let t = std::thread::spawn(move || {
        super::pump(&conn2, &up2);
        let _ = up2.shutdown(std::net::Shutdown::Write);
    });
    super::pump(&up, &conn);
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let _ = t.join();
}
