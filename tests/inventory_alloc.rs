//! The cost of `inventory::load` is linear in the file's size, not in hosts × the
//! length of a default value: a counting allocator (this binary's global allocator,
//! so it is a test binary of its own) measures the bytes allocated and the peak held
//! while loading generated inventories, and the tests compare them with the file's
//! size. A merged host view shares the defaults' values; it never copies them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use hvseed::inventory;

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    ALLOCATED.fetch_add(n, Relaxed);
    let now = CURRENT.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; the counters
// only observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        grew(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests of this binary measure one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Bytes allocated in total and the most held at once (above what was held before)
/// while loading `path`; whether it loaded.
fn measure(path: &Path) -> (usize, usize, bool) {
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let before = ALLOCATED.load(Relaxed);
    let result = inventory::load(path);
    let total = ALLOCATED.load(Relaxed) - before;
    let peak = PEAK.load(Relaxed) - base;
    let ok = result.is_ok();
    if let Err(inventory::InventoryError::Invalid { diagnostics, .. }) = &result {
        // Every finding is located.
        for d in diagnostics {
            assert!(
                d.line > 0 || d.message.contains("more problem(s) not shown"),
                "{d}"
            );
        }
    }
    drop(result);
    (total, peak, ok)
}

const HASH: &str = "$6$hvseedlab$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0";

/// An inventory of `hosts` hosts whose defaults hold `extra` (lines under `defaults:`,
/// e.g. long ssh keys); every other host overrides `install` and `cloudstack` so its
/// sections are merged over the defaults' one by one (the others reuse the defaults').
fn fleet(hosts: usize, extra: &str, management_server: &str) -> String {
    let mut t = format!(
        "version: 1\ncluster: big\ndefaults:\n  os: centos6\n  install:\n    root_password_hash: \"{HASH}\"\n    disk: sda\n{extra}  dns: {{ servers: [10.0.0.1] }}\n  cloudstack:\n    version: \"4.2\"\n    repository: http://cloudstack.apt-get.eu/rhel/4.2/\n    management_server: {management_server}\n  network:\n    trunk_nic: eth0\n    management: {{ vlan: 100, prefix: 16, gateway: 10.0.0.1 }}\n    public: {{ vlan: 200 }}\n    private: {{ vlan: 300 }}\nhosts:\n"
    );
    for i in 0..hosts {
        t.push_str(&format!(
            "  - fqdn: kvm{i}.example.org\n    mac: \"02:00:00:00:{:02x}:{:02x}\"\n    ip: 10.0.{}.{}\n",
            i / 256,
            i % 256,
            1 + i / 200,
            10 + i % 200
        ));
        if i % 2 == 1 {
            t.push_str("    install: { disk: sdb }\n    cloudstack: { version: \"4.3\" }\n");
        }
    }
    t
}

/// `keys` ssh keys, each with a comment of `comment` bytes.
fn ssh_keys(keys: usize, comment: usize) -> String {
    let mut t = String::from("    ssh_authorized_keys:\n");
    for k in 0..keys {
        t.push_str(&format!(
            "      - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseed{k:08} {}\"\n",
            "c".repeat(comment)
        ));
    }
    t
}

struct Run {
    len: usize,
    total: usize,
    peak: usize,
    ok: bool,
}

fn run(dir: &Path, name: &str, text: &str) -> Run {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    let (total, peak, ok) = measure(&p);
    let r = Run {
        len: text.len(),
        total,
        peak,
        ok,
    };
    eprintln!(
        "{name}: {} bytes in, {} allocated, {} peak, ok {}",
        r.len, r.total, r.peak, r.ok
    );
    r
}

/// What loading may cost per byte that a default value grows by, in bytes allocated in
/// total and held at the peak: a small multiple (the text is read, parsed into a tree
/// and held by the inventory); copying the value per host would cost about the number
/// of hosts per byte.
const PER_BYTE_TOTAL: usize = 16;
const PER_BYTE_PEAK: usize = 8;

/// Asserts that `long` costs at most the per-byte allowance more than `short` for the
/// bytes it has more.
fn assert_linear(what: &str, short: &Run, long: &Run) {
    let grown = long.len - short.len;
    let total = long.total.saturating_sub(short.total);
    let peak = long.peak.saturating_sub(short.peak);
    assert!(
        total <= PER_BYTE_TOTAL * grown && peak <= PER_BYTE_PEAK * grown,
        "{what}: {grown} more bytes in the file cost {total} more bytes allocated and {peak} more at the peak"
    );
}

#[test]
fn memory_is_linear_in_the_file_size_not_in_hosts_times_defaults() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // Valid: 32 ssh keys in the defaults, shared by 1,000 hosts (half of which merge
    // their own `install` over the defaults'), with comments of 10, then 4,000 bytes.
    let keys = |comment| fleet(1000, &ssh_keys(32, comment), "10.0.0.5");
    let short = run(dir.path(), "short.yaml", &keys(10));
    let long = run(dir.path(), "long.yaml", &keys(4000));
    assert!(short.ok && long.ok);
    assert_linear("longer ssh keys in the defaults", &short, &long);
    // Twice the hosts: the second thousand costs what the first did, not more for
    // the longer keys.
    let twice = run(
        dir.path(),
        "twice.yaml",
        &fleet(2000, &ssh_keys(32, 4000), "10.0.0.5"),
    );
    let twice_short = run(
        dir.path(),
        "twice-short.yaml",
        &fleet(2000, &ssh_keys(32, 10), "10.0.0.5"),
    );
    assert!(twice.ok && twice_short.ok);
    assert_linear("longer ssh keys, twice the hosts", &twice_short, &twice);
}

/// Makes (lines under `defaults.install`, the management server) of a given size.
type Maker = Box<dyn Fn(usize) -> (String, String)>;

#[test]
fn invalid_long_defaults_cost_no_more_than_short_ones() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // In the defaults of 2,000 hosts (half of which merge their own `cloudstack` and
    // `install` over the defaults'): an invalid management server of 1 MiB, an
    // unknown key of 1,000 bytes, an ssh key just over the longest allowed, and too
    // many ssh keys, each against its short (equally invalid) form.
    let junk = |n: usize| "x".repeat(n);
    let cases: [(&str, Maker, usize); 4] = [
        (
            "server",
            Box::new(move |n| (String::new(), format!("\"{}\"", junk(n)))),
            1 << 20,
        ),
        (
            "key",
            Box::new(move |n| (format!("    {}: 1\n", junk(n)), "10.0.0.5".into())),
            1000,
        ),
        (
            "comment",
            Box::new(|n| (ssh_keys(1, n), "10.0.0.5".into())),
            60_000,
        ),
        (
            "list",
            Box::new(|n| (ssh_keys(n, 10), "10.0.0.5".into())),
            3000,
        ),
    ];
    for (name, make, n) in cases {
        let (short_extra, short_server) = make(if name == "comment" {
            9000
        } else if name == "list" {
            300
        } else {
            2
        });
        let (long_extra, long_server) = make(n);
        let short = run(
            dir.path(),
            "short.yaml",
            &fleet(2000, &short_extra, &short_server),
        );
        let long = run(
            dir.path(),
            "long.yaml",
            &fleet(2000, &long_extra, &long_server),
        );
        assert!(!short.ok && !long.ok, "{name}");
        assert_linear(name, &short, &long);
    }
}
