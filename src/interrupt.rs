//! What happens when hvseed is interrupted (SIGINT, SIGTERM, SIGHUP), for every verb
//! that writes: one registry of the temporary paths that exist right now and of the
//! child processes that run right now. A signal kills those children (each runs in its
//! own process group, so its own children go too), waits until they are dead, removes
//! those paths and exits with 128 + the signal's number (130 for Ctrl-C).
//!
//! Temporary names carry their creator's [`owner`] tag (pid and start time), so a
//! later run can tell a temporary left by a run that no longer exists (killed with
//! SIGKILL, a power cut) from a user's file or a temporary of a run still going:
//! [`remove_stale`] removes only the former.
//!
//! See docs/media.md, "On failure and interrupt".

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// Something to undo on an interrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A temporary file or directory (removed, directories with all they hold).
    Path(PathBuf),
    /// A child process that leads its own process group (the group is killed).
    Child(u32),
    /// A network namespace of `hvseed vm` (what runs in it is killed, then it is
    /// deleted).
    Netns(String),
}

#[derive(Default)]
struct Registry {
    next: u64,
    items: Vec<(u64, Item)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    items: Vec::new(),
});
/// Held (shared) by steps that must not be cut in half, such as moving an old tree
/// aside and the new one in; the handler takes it exclusively before it cleans up.
static CRITICAL: RwLock<()> = RwLock::new(());
/// The signal being handled, 0 while none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps its items on the interrupt list while alive; dropping it only takes them off
/// the list (the owner removes or keeps the files itself).
#[must_use = "the items leave the interrupt list when this is dropped"]
#[derive(Debug)]
pub struct Guard(u64);

impl Drop for Guard {
    fn drop(&mut self) {
        registry().items.retain(|(id, _)| *id != self.0);
    }
}

/// Runs `make` (which creates a temporary or starts a child) and puts what
/// `items` names on the interrupt list, both under the list's lock: an interrupt
/// either comes before `make` ran (and `make` never runs) or finds the items listed.
pub fn track<T, E>(
    make: impl FnOnce() -> Result<T, E>,
    items: impl FnOnce(&T) -> Vec<Item>,
) -> Result<(T, Guard), E> {
    let mut reg = registry();
    let made = make()?;
    reg.next += 1;
    let id = reg.next;
    for item in items(&made) {
        reg.items.push((id, item));
    }
    Ok((made, Guard(id)))
}

/// A temporary directory `DIR/BASE` + [`owner`] + `-` + random, on the interrupt list
/// while the guard lives (a later run can tell it was left by a run that is gone).
pub fn temp_dir_in(dir: &Path, base: &str) -> std::io::Result<(tempfile::TempDir, Guard)> {
    track(
        || {
            tempfile::Builder::new()
                .prefix(&temp_prefix(base))
                .tempdir_in(dir)
        },
        |t| vec![Item::Path(t.path().to_path_buf())],
    )
}

/// A temporary file `DIR/BASE` + [`owner`] + `-` + random + `SUFFIX`, on the interrupt
/// list while the guard lives.
pub fn temp_file_in(
    dir: &Path,
    base: &str,
    suffix: &str,
) -> std::io::Result<(tempfile::NamedTempFile, Guard)> {
    track(
        || {
            tempfile::Builder::new()
                .prefix(&temp_prefix(base))
                .suffix(suffix)
                .tempfile_in(dir)
        },
        |t| vec![Item::Path(t.path().to_path_buf())],
    )
}

/// Shorthand for a temporary path already created (e.g. by another library); prefer
/// [`track`], which closes the window between creating and listing.
pub fn track_path(path: &Path) -> Guard {
    track(|| Ok::<_, ()>(()), |_| vec![Item::Path(path.to_path_buf())])
        .expect("infallible")
        .1
}

/// A step an interrupt waits for instead of cutting it in half (keep it short: a few
/// renames). Never take it twice on one thread: a second `critical()` while the
/// handler waits for the first would wait for ever.
pub fn critical() -> RwLockReadGuard<'static, ()> {
    CRITICAL.read().unwrap_or_else(|p| p.into_inner())
}

/// `std::fs::create_dir_all` for a directory inside a listed temporary, as one step
/// the handler waits for: once the handler has removed the temporary, no thread
/// creates it again (a `create_dir_all` by path after the removal would).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let _step = critical();
    std::fs::create_dir_all(dir)
}

/// `std::fs::write` into a listed temporary directory, as one step the handler waits
/// for (see [`create_dir_all`]).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _step = critical();
    std::fs::write(path, bytes)
}

/// The signal being handled, if hvseed was interrupted. The verb's own error path
/// then stays quiet: the handler reports and sets the exit status.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (once; later calls do
/// nothing). If that fails, a warning says so and hvseed goes on.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "cannot catch interrupts ({e}); an interrupted run may leave temporary files"
                );
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("interrupt".into())
            .spawn(move || {
                let mut signals = signals;
                if let Some(sig) = signals.forever().next() {
                    handle(sig);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot catch interrupts ({e})");
        }
    });
}

/// Ends the run after `sig`: children first (they may be writing into the temporary
/// paths), then the paths, then exit 128 + `sig`. Never returns; the lists stay locked,
/// so nothing new is created or started meanwhile.
fn handle(sig: i32) -> ! {
    SIGNAL.store(sig, Ordering::SeqCst);
    let _critical = CRITICAL.write().unwrap_or_else(|p| p.into_inner());
    let reg = registry();
    let children: Vec<u32> = reg
        .items
        .iter()
        .filter_map(|(_, i)| match i {
            Item::Child(pid) => Some(*pid),
            Item::Path(_) | Item::Netns(_) => None,
        })
        .collect();
    for &pid in &children {
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for &pid in &children {
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut removed = 0;
    for (_, item) in &reg.items {
        match item {
            Item::Path(p) => {
                if remove_retrying(p) {
                    removed += 1;
                }
            }
            Item::Netns(name) => crate::vm::tagger::remove_netns(name),
            Item::Child(_) => {}
        }
    }
    let name = match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    crate::say!(
        "hvseed: interrupted ({name}): stopped {} program(s), removed {removed} temporary \
         file(s); no output was left half-written",
        children.len()
    );
    std::process::exit(128 + sig);
}

/// True while `pid` runs (a zombie has ended: its parent reaps it, or init does once
/// hvseed has exited).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(stat_field(&s, 3), Some("Z" | "X" | "x")),
        Err(_) => false,
    }
}

/// Field `n` (1-based, as in proc(5)) of a `/proc/PID/stat` line; the command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(n.checked_sub(3)?)
}

/// Removes a file or directory tree; a tree still being written by a thread of
/// hvseed's that has not noticed the interrupt yet is tried again. True if something
/// was removed.
fn remove_retrying(p: &Path) -> bool {
    for _ in 0..100 {
        let r = match std::fs::symlink_metadata(p) {
            Err(_) => return false,
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
        };
        if r.is_ok() || std::fs::symlink_metadata(p).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// This process's tag in temporary names: `PID-STARTTIME-NODE`. The start time (clock
/// ticks since boot, from /proc/self/stat) keeps a reused pid from being taken for the
/// same run; NODE (8 hex digits) names where that pid means something: this machine
/// (host name, /etc/machine-id) and this pid namespace. A pid of another machine
/// sharing the directory (NFS) or of a container (another pid namespace) is not
/// looked up here: it could be a live run this machine cannot see.
pub fn owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        let start = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| stat_field(&s, 22).map(str::to_string))
            .unwrap_or_else(|| "0".into());
        format!("{pid}-{start}-{}", node())
    })
}

/// See [`owner`]: a hash (FNV-1a, stable across builds) of the host name, the machine
/// id and the pid namespace. It does not change across reboots of the same machine, so
/// a run cut by a power failure is still cleaned up after. "0" if the pid namespace
/// cannot be told (no /proc): no temporary is then ever taken for stale.
fn node() -> String {
    let Ok(pidns) = std::fs::read_link("/proc/self/ns/pid") else {
        return "0".into();
    };
    // The host name of this UTS namespace (a container's own).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        host.trim().as_bytes(),
        machine.trim().as_bytes(),
        pidns.as_os_str().as_encoded_bytes(),
    ] {
        for &b in part.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{:08x}", (h >> 32) ^ (h & 0xffff_ffff))
}

/// The prefix for a temporary name: `BASE` + [`owner`] + `-`; tempfile's random part
/// follows.
pub fn temp_prefix(base: &str) -> String {
    format!("{base}{}-", owner())
}

/// True if `name` is `BASE PID-START-NODE-RANDOM SUFFIX` (see [`temp_prefix`]), NODE is
/// this machine and pid namespace, and no process with that pid and start time runs
/// here. A temporary of another machine or namespace is never stale: its run may be
/// going on where this one cannot see it.
pub fn is_stale(name: &OsStr, base: &str, suffix: &str) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let Some(mid) = name.strip_prefix(base).and_then(|r| r.strip_suffix(suffix)) else {
        return false;
    };
    let mut parts = mid.splitn(4, '-');
    let (Some(pid), Some(start), Some(node), Some(random)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if random.is_empty() || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    // Our own tag must be whole (a /proc we can read) and name the same place.
    let mut mine = owner().splitn(3, '-').skip(1);
    let (Some(my_start), Some(my_node)) = (mine.next(), mine.next()) else {
        return false;
    };
    if my_start == "0" || my_node == "0" || node != my_node {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_field(&stat, 22).and_then(|s| s.parse::<u64>().ok()) != Some(start),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Removes the entries of `dir` named `BASE…SUFFIX` that [`is_stale`] says were left
/// by an hvseed run that no longer exists and belong to this user; returns them.
/// Symlinks are removed, never followed. A `dir` that cannot be read yields nothing.
pub fn remove_stale(dir: &Path, base: &str, suffix: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    let me = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        if !is_stale(&e.file_name(), base, suffix) {
            continue;
        }
        // Another user's (a shared /tmp): not ours to remove, nor to warn about.
        if e.metadata().map(|m| m.uid() != me).unwrap_or(true) {
            continue;
        }
        let p = e.path();
        let r = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
        match r {
            Ok(()) => {
                tracing::info!(
                    "removed {}, left by an interrupted run of hvseed",
                    p.display()
                );
                removed.push(p);
            }
            Err(err) => tracing::warn!(
                "cannot remove {}, left by an interrupted run of hvseed: {err}",
                p.display()
            ),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names_need_the_shape_and_a_dead_owner() {
        let me = owner();
        let base = ".lab.iso.hvseed-";
        // This process runs: not stale.
        assert!(!is_stale(
            OsStr::new(&format!("{base}{me}-AbC123.partial")),
            base,
            ".partial"
        ));
        // The same pid with another start time is another (dead) process.
        let pid = std::process::id();
        let node = node();
        assert!(is_stale(
            OsStr::new(&format!("{base}{pid}-1-{node}-AbC123.partial")),
            base,
            ".partial"
        ));
        // A user's names of the same look are never stale.
        for n in [
            ".lab.iso.hvseed-notes.partial",
            ".lab.iso.hvseed-1-2.partial",
            ".lab.iso.hvseed-1-2-.partial",
            ".lab.iso.hvseed-1-2-a b.partial",
            ".lab.iso.hvseed-x-2-abc.partial",
            ".lab.iso.x.partial",
            ".lab.iso.hvseed-4194999-2-abc.partial.bak",
            ".lab.iso.hvseed-4194999-2-abc.partial",
        ] {
            assert!(!is_stale(OsStr::new(n), base, ".partial"), "{n}");
        }
    }

    /// A run on another machine sharing the directory (NFS) or in another pid
    /// namespace (a container): its pid means nothing here, so its temporary is never
    /// stale, though no such process runs here (on ac1ff56..4834b13, tags had no
    /// NODE and such a live run's temporary was removed).
    #[test]
    fn a_temporary_of_another_machine_or_pid_namespace_is_never_stale() {
        let base = ".out.hvseed-tmp-";
        // A pid no process has here (above the kernel's pid_max limit).
        let dead = 4_194_999;
        assert!(is_stale(
            OsStr::new(&format!("{base}{dead}-5-{}-AbC123", node())),
            base,
            ""
        ));
        let other = if node() == "0badf00d" {
            "0badf00e"
        } else {
            "0badf00d"
        };
        assert!(!is_stale(
            OsStr::new(&format!("{base}{dead}-5-{other}-AbC123")),
            base,
            ""
        ));
        // pid 1 of a container: here pid 1 is init, started at another time.
        assert!(!is_stale(
            OsStr::new(&format!("{base}1-999999999-{other}-AbC123")),
            base,
            ""
        ));
        assert_eq!(owner().split('-').count(), 3, "{}", owner());
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a) b (c) d) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0";
        assert_eq!(stat_field(line, 3), Some("S"));
        assert_eq!(stat_field(line, 22), Some("777"));
    }
}
