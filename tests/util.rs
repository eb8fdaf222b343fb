//! Shared test helpers: paths, running hvseed, the lab inventory, the agent, and (from
//! `tests/support.rs`, shared with the agent's tests) missing tools and deadlines.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The checkout's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `hvseed` binary under test.
pub fn hvseed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvseed"))
}

/// The lab of the CloudStack guide, `profiles/examples/lab-centos6.yaml`: the one
/// source of the lab host for every test (render, serve and, through the plan snapshot
/// of its first host, the agent's tests).
pub fn lab_inventory() -> hvseed::inventory::Inventory {
    hvseed::inventory::load(&root().join("profiles/examples/lab-centos6.yaml"))
        .expect("the centos6 example loads")
        .inventory
}

pub use crate::support::{missing, output_within_secs, require_tool, run_ok, KillOnDrop};

/// The static first-boot agent that media carry: `$HVSEED_FIRSTBOOT`, else this
/// checkout's musl release build; `None` after [`missing`] when it is not built.
pub fn agent() -> Option<PathBuf> {
    let p = std::env::var_os("HVSEED_FIRSTBOOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            root().join("target/x86_64-unknown-linux-musl/release/hvseed-firstboot")
        });
    if p.is_file() {
        return Some(p);
    }
    missing(
        &format!("the static agent {} is not built", p.display()),
        "cargo build --release -p hvseed-firstboot --target x86_64-unknown-linux-musl",
    );
    None
}

/// The directory holding the fixture ISOs of `layout` (`boot`, `pxe` or `tiny`), made by
/// the one generator, `tests/fixtures/iso/make-fixtures.sh` (its header says what each
/// layout holds), once per version of the script into `target/tmp/iso-fixtures/LAYOUT/`.
/// The caller checks first that the tools the layout needs are there.
pub fn iso_fixtures(layout: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let script = root().join("tests/fixtures/iso/make-fixtures.sh");
    let digest = Sha256::digest(std::fs::read(&script).unwrap());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("iso-fixtures")
        .join(layout);
    let dir = base.join(&hash);
    if !dir.exists() {
        std::fs::create_dir_all(&base).unwrap();
        let tmp = tempfile::tempdir_in(&base).unwrap();
        let o = output_within_secs(Command::new(&script).arg(tmp.path()).arg(layout), 600);
        assert!(
            o.status.success(),
            "make-fixtures.sh {layout} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(tmp.keep(), &dir).unwrap();
        // Older script versions' fixtures are of no further use.
        for e in std::fs::read_dir(&base).unwrap().flatten() {
            if e.path() != dir && e.file_name().len() == hash.len() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    dir
}

/// The lock every QEMU guest of the tests holds for its life: one guest at a time
/// across all test processes and threads (two TCG guests on two cores starve each
/// other, and boot tests have deadlines).
pub const QEMU_LOCK: &str = "/tmp/hvseed-tests-qemu.lock";

/// A temporary directory for what one test process keeps across its tests (in
/// statics, which are never dropped): made inside a directory of the process's own that
/// is removed when the test process exits (`atexit`: the harness ends with `exit`, a
/// failed test included), so a run leaves nothing behind in the temporary directory.
pub fn process_tempdir() -> tempfile::TempDir {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    extern "C" fn remove() {
        if let Some(d) = DIR.get() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let dir = DIR.get_or_init(|| {
        let d = tempfile::Builder::new()
            .prefix("hvseed-tests-")
            .tempdir()
            .unwrap()
            .keep();
        // SAFETY: registers a plain function with the C library, once.
        assert_eq!(unsafe { libc::atexit(remove) }, 0, "atexit");
        d
    });
    tempfile::tempdir_in(dir).unwrap()
}

/// Waits for, then holds (until the file is dropped) the one-QEMU-at-a-time lock.
pub fn one_qemu() -> std::fs::File {
    lock_file(Path::new(QEMU_LOCK))
}

/// `path` opened (created if needed) and locked exclusively with `flock`, waiting for
/// it; the lock goes with the returned file. Threads of one process take it through
/// separate open files, so it orders them too.
pub fn lock_file(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    loop {
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return file;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::Interrupted,
            "flock {}: {err}",
            path.display()
        );
    }
}

/// pykickstart's ksvalidator: `$HVSEED_KSVALIDATOR`, else `.venv/bin/ksvalidator`.
pub fn ksvalidator() -> Option<PathBuf> {
    pykickstart_tool("HVSEED_KSVALIDATOR", ".venv/bin/ksvalidator")
}

/// The Python that has pykickstart: `$HVSEED_PYTHON`, else `.venv/bin/python`.
pub fn kickstart_python() -> Option<PathBuf> {
    pykickstart_tool("HVSEED_PYTHON", ".venv/bin/python")
}

/// `$var`, else `in_checkout` under the checkout; `None` after [`missing`].
fn pykickstart_tool(var: &str, in_checkout: &str) -> Option<PathBuf> {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(in_checkout));
    require_tool(p.to_str().unwrap(), "pykickstart (pip, in .venv)").then_some(p)
}

/// All `child` wrote to its piped stderr, read to its end.
pub fn stderr_text(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// A running `hvseed serve DIR --listen 127.0.0.1:0` on the port it picked (read from
/// its `listening on http://ADDR/` line); killed and reaped when dropped, whatever the
/// test did. Its stderr is kept for assertions ([`ServeGuard::log_text`]).
pub struct ServeGuard {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeGuard {
    pub fn start(dir: &Path) -> ServeGuard {
        ServeGuard::start_on(dir, "127.0.0.1:0")
    }

    /// Like [`ServeGuard::start`] on a given `ADDR:PORT` (e.g. a port chosen before
    /// the tree's `--http-base` was written).
    pub fn start_on(dir: &Path, listen: &str) -> ServeGuard {
        let mut child = hvseed()
            .arg("serve")
            .arg(dir)
            .args(["--listen", listen])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting hvseed serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split('/').next().unwrap_or_default().to_owned();
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut server = ServeGuard {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => server.addr = a.parse().expect("the logged address parses"),
            Err(_) => panic!(
                "hvseed serve did not report its address; its stderr:\n{}",
                server.log_text()
            ),
        }
        server
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The log once it holds `what` (lines reach it through a pipe and a reading
    /// thread, after the response they are about): waits up to 10 s for it.
    pub fn log_with(&self, what: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let log = self.log_text();
            if log.contains(what) || start.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.raw(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Resp {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }

    pub fn status_json(&self) -> serde_json::Value {
        let r = self.get("/status.json");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        serde_json::from_slice(&r.body).expect("status.json is JSON")
    }

    pub fn raw(&self, request: &[u8]) -> Resp {
        exchange(self.addr, request)
    }
}

impl Drop for ServeGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` on a fresh connection and reads the response until the server
/// closes it (every request here says `Connection: close`).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (and close) before taking a whole oversized body.
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            // A socket with a timeout is not restarted after a signal handler (this
            // process has one for SIGCHLD, through duct): try again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading the response ({} bytes so far): {e}", raw.len()),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).expect("response head is text");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
