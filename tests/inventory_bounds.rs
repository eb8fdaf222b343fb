//! Bounds of `inventory::load`, measured by a counting allocator (this binary's global
//! allocator, so it is a test binary of its own):
//! - its cost is linear in the file's size, not in hosts × the length of a default
//!   value (a merged host view shares the defaults' values; it never copies them);
//! - fuzzed inventories (the examples mutated byte-wise and structurally by a seeded
//!   generator) never make it panic or take memory out of proportion to the file, and
//!   every finding it reports has a line and column.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use hvseed::inventory;

/// Shared with the resolver's unit tests: the generated fleets' hosts.
mod fleet_hosts;

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
        t.push_str(&fleet_hosts::host_item(i, "10.0"));
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

// ------------------------------------------------------------------------ fuzzing

/// xorshift64*: a small deterministic generator, so a failing case is reproduced by
/// its seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Text that is likely to matter somewhere in an inventory.
const TOKENS: &[&str] = &[
    "\n",
    "  ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "<<: *a\n",
    "---\n",
    "!!binary ",
    "!!str ",
    "? ",
    "|\n",
    ">\n",
    "~",
    "null",
    "0x1F",
    "1e999",
    "-1",
    "4094",
    "99999999999999999999999999999999999999999",
    "\t",
    "\u{1b}[2J",
    "\r",
    "\u{9b}",
    "\u{202e}",
    "é",
    "defaults:",
    "hosts:",
    "install:",
    "network:",
    "os: ",
    "fqdn: ",
    "mac: ",
    "ip: ",
    "kernel_args: ",
    "\"rd.foo=a&b#c\"",
    "\"--help\"",
    "-rf",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseed x",
    "$6$",
    "http://x.example.org/",
];

/// Values to put after a `key: `.
fn value(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => "x".repeat(1 + rng.below(20_000)),
        1 => format!("\"{}\"", "\\e]0;t\\a".repeat(1 + rng.below(50))),
        2 => format!("[{}]", vec!["a.example.org"; rng.below(400)].join(", ")),
        3 => "{ a: 1, b: [2, 3], c: { d: e } }".into(),
        4 => rng.below(100_000).to_string(),
        5 => "-rf".into(),
        6 => "\"rd.foo=a&b#c\"".into(),
        7 => "".into(),
        8 => "*a".into(),
        9 => "&a [1, 2]".into(),
        10 => "yes".into(),
        _ => rng.pick(TOKENS).to_string(),
    }
}

/// One mutation of `t`: byte-wise (flip, insert, delete, duplicate a range) or by
/// lines (delete, duplicate, swap, re-indent, replace a value, repeat the hosts).
/// Growth stops at `max_bytes`: repeating the hosts of an input that is already large
/// (e.g. the previous one), several times per input, would otherwise build inputs of
/// hundreds of MiB before they are cut, and a long run would measure the mutator.
fn mutate(rng: &mut Rng, t: &mut Vec<u8>, seeds: &[Vec<u8>], max_bytes: usize) {
    let len = t.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            t[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(len + 1);
            let b = rng.next() as u8;
            t.insert(i, b);
        }
        2 if len > 0 => {
            let i = rng.below(len);
            let n = rng.below(64).min(len - i);
            t.drain(i..i + n);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = rng.below(256).min(len - i);
            let piece = t[i..i + n].to_vec();
            let at = rng.below(t.len() + 1);
            t.splice(at..at, piece);
        }
        4 => {
            let i = rng.below(len + 1);
            let tok = rng.pick(TOKENS).as_bytes().to_vec();
            t.splice(i..i, tok);
        }
        _ => {
            let text = String::from_utf8_lossy(t).into_owned();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.is_empty() {
                lines.push(String::new());
            }
            let n = lines.len();
            let i = rng.below(n);
            match rng.below(7) {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    lines.insert(rng.below(n), l);
                }
                2 => lines.swap(i, rng.below(n)),
                3 => {
                    if rng.below(2) == 0 {
                        lines[i].insert_str(0, "  ");
                    } else if let Some(rest) = lines[i].strip_prefix("  ") {
                        lines[i] = rest.to_string();
                    }
                }
                4 => {
                    if let Some(p) = lines[i].find(": ") {
                        let v = value(rng);
                        lines[i].truncate(p + 2);
                        lines[i].push_str(&v);
                    }
                }
                5 => {
                    // Repeat the hosts (with their addresses) up to ~40 times, while
                    // the text stays within `max_bytes`.
                    if let Some(h) = lines.iter().position(|l| l.starts_with("hosts:")) {
                        let hosts: Vec<String> = lines[h + 1..].to_vec();
                        let block: usize = hosts.iter().map(|l| l.len() + 1).sum();
                        let mut size: usize = lines.iter().map(|l| l.len() + 1).sum();
                        for _ in 0..rng.below(40) {
                            if block == 0 || size >= max_bytes {
                                break;
                            }
                            lines.extend(hosts.iter().cloned());
                            size += block;
                        }
                    }
                }
                _ => {
                    // A line of another example.
                    let other = String::from_utf8_lossy(rng.pick(seeds).as_slice()).into_owned();
                    let ol: Vec<&str> = other.lines().collect();
                    if !ol.is_empty() {
                        let l = ol[rng.below(ol.len())].to_string();
                        lines.insert(i, l);
                    }
                }
            }
            *t = (lines.join("\n") + "\n").into_bytes();
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The examples, mutated: `HVSEED_FUZZ_ITERS` inputs (default 400, a few seconds)
/// of at most `HVSEED_FUZZ_MAX_BYTES` (default 64 KiB) from `HVSEED_FUZZ_SEED`
/// (default fixed). Each input gets 1-8 mutations of an
/// example or of the previous input. A failure names the seed and iteration and
/// leaves the input in `target/fuzz-inventory-failure.yaml`.
#[test]
fn fuzzed_inventories_never_panic_stay_bounded_and_are_located() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join("profiles/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3);
    let seed = env_or("HVSEED_FUZZ_SEED", 0x6876_7365_6564);
    let iters = env_or("HVSEED_FUZZ_ITERS", 400);
    let max_bytes = env_or("HVSEED_FUZZ_MAX_BYTES", 64 << 10) as usize;
    // Every seed its own stream (`seed | 1` made seeds 2 and 3 the same run); the
    // generator only needs a state that is not 0.
    let mut rng = Rng(seed.max(1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.yaml");
    let mut prev = seeds[0].clone();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let (mut mutator_peak, mut load_peak) = (0usize, 0usize);
    // The hook would print every caught panic; the test reports the first itself.
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..iters {
        let mut t = if rng.below(3) == 0 {
            prev.clone()
        } else {
            rng.pick(&seeds).clone()
        };
        // What the mutator holds is measured too: a long run is about the loader's
        // memory, so the harness's own must stay small beside it.
        let base = CURRENT.load(Relaxed);
        PEAK.store(base, Relaxed);
        for _ in 0..1 + rng.below(8) {
            mutate(&mut rng, &mut t, &seeds, max_bytes);
            // Repeating hosts grows the input, up to `HVSEED_FUZZ_MAX_BYTES`.
            t.truncate(max_bytes);
        }
        mutator_peak = mutator_peak.max(PEAK.load(Relaxed) - base);
        std::fs::write(&path, &t).unwrap();
        let base = CURRENT.load(Relaxed);
        PEAK.store(base, Relaxed);
        let result = std::panic::catch_unwind(|| inventory::load(&path));
        let peak = PEAK.load(Relaxed) - base;
        load_peak = load_peak.max(peak);
        let fail = |why: String| -> ! {
            let keep = root.join("target/fuzz-inventory-failure.yaml");
            let _ = std::fs::write(&keep, &t);
            let _ = std::panic::take_hook();
            panic!(
                "seed {seed:#x}, iteration {i}: {why} (input kept in {})",
                keep.display()
            )
        };
        // What the parser, the tree and the inventory may hold at once.
        let bound = 64 * t.len() + (8 << 20);
        if peak > bound {
            fail(format!("{peak} bytes held for a {}-byte input", t.len()));
        }
        match result {
            Err(_) => fail("inventory::load panicked".into()),
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(inventory::InventoryError::Invalid { diagnostics, .. })) => {
                refused += 1;
                if diagnostics.is_empty() {
                    fail("refused without a finding".into());
                }
                for d in &diagnostics {
                    let located = d.line > 0 && d.column > 0;
                    let summary = d.message.contains("more problem(s) not shown");
                    if !located && !summary {
                        fail(format!("a finding without a position: {d}"));
                    }
                    let shown = d.to_string();
                    if shown.chars().any(|c| c.is_control()) {
                        fail(format!("a finding prints a control character: {shown:?}"));
                    }
                }
            }
        }
        prev = t;
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "fuzzed {iters} inventories from seed {seed:#x}: {accepted} accepted, {refused} refused; \
         most held by one load {load_peak} bytes, by the mutator {mutator_peak} bytes"
    );
    assert!(refused > 0);
    // The mutator works on one input of at most `max_bytes` (as text and as lines)
    // plus a piece it inserts; more would be its own growth, not hvseed's.
    let harness_bound = 16 * max_bytes + (1 << 20);
    assert!(
        mutator_peak <= harness_bound,
        "the mutator held {mutator_peak} bytes (bound {harness_bound}): a long run would measure it, not inventory::load"
    );
}
