//! A seeded mutation fuzzer for ISO identification (`hvseed::isoread::identify`, what both
//! `hvseed iso` and `hvseed pxe` run first on `--source`). Small ISOs in both supported
//! layouts are built once with xorriso, then mutated where identification looks: the
//! volume descriptors, path tables and directory records, the identity files' bytes, the
//! file's length. Each mutant must be identified or refused with an error that names the
//! file, never a panic; and an ISO that is accepted must really be what was asked for,
//! checked independently from its bytes.
//!
//! `HVSEED_FUZZ_ISO_ITERS` (default 120) and `HVSEED_FUZZ_SEED` set the run; the suite
//! runs the default, `scripts/fuzz-iso.sh` a long one.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use hvseed::inventory::Os;

use crate::util::require_tool;

/// xorshift64*: a small deterministic generator, so a failing seed replays exactly.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Four tiny install media: (os, ISO, the identity text an accepted mutant must still
/// carry), `make-fixtures.sh`'s `tiny` layout.
fn seeds() -> &'static [(Os, PathBuf, &'static str)] {
    static SEEDS: OnceLock<Vec<(Os, PathBuf, &'static str)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = crate::util::iso_fixtures("tiny");
        vec![
            (Os::Centos6, dir.join("centos6.iso"), "6.3"),
            (Os::Ubuntu1204, dir.join("ubuntu1204.iso"), "12.04"),
            (Os::Debian12, dir.join("debian12.iso"), "12.11.0"),
            (Os::El9, dir.join("el9.iso"), "9.5"),
        ]
    })
}

/// One mutation of `img`, chosen by `rng`; returns what it did (for the failure message).
pub(crate) fn mutate(rng: &mut Rng, img: &mut Vec<u8>, hot: &[usize]) -> String {
    const SECTOR: usize = 2048;
    let len = img.len();
    if len == 0 {
        img.resize(rng.below(64 * SECTOR), 0);
        return format!("empty file padded to {}", img.len());
    }
    // The metadata mutations need the first 40 sectors; a cut-short image gets the others.
    let op = if len < 40 * SECTOR {
        [3, 5, 7][rng.below(3)]
    } else {
        rng.below(8)
    };
    match op {
        // A few random bytes in the descriptors, path tables and directory records.
        0 | 1 => {
            let mut did = Vec::new();
            for _ in 0..1 + rng.below(8) {
                let at = 16 * SECTOR + rng.below(24 * SECTOR);
                img[at] = rng.next() as u8;
                did.push(at);
            }
            format!("bytes at {did:?}")
        }
        // A little-endian number of the primary volume descriptor set to an edge value.
        2 => {
            let fields = [80usize, 120, 128, 132, 140, 148, 156 + 2, 156 + 10];
            let at = 16 * SECTOR + fields[rng.below(fields.len())];
            let v: u32 = [0, 1, u32::MAX, 0x7fff_ffff, rng.next() as u32][rng.below(5)];
            img[at..at + 4].copy_from_slice(&v.to_le_bytes());
            format!("u32 {v:#x} at {at}")
        }
        // Bytes of an identity file (.discinfo, .treeinfo, .disk/info).
        3 | 4 if !hot.is_empty() => {
            let at = hot[rng.below(hot.len())] + rng.below(48);
            let at = at.min(len - 1);
            let b = [b'\n', b' ', b'=', b'[', 0, 0x1b, b'7', rng.next() as u8][rng.below(8)];
            img[at] = b;
            format!("identity byte {b:#x} at {at}")
        }
        // Cut short or padded.
        5 => {
            let to = rng.below(len + 4 * SECTOR);
            img.resize(to, 0);
            format!("length {to}")
        }
        // A whole metadata sector zeroed or copied over another.
        6 => {
            let a = 16 + rng.below(24);
            let b = rng.below(len / SECTOR - 1);
            let (a, b) = (a * SECTOR, b * SECTOR);
            if rng.below(2) == 0 {
                img[a..a + SECTOR].fill(0);
                format!("sector {} zeroed", a / SECTOR)
            } else {
                let src = img[b..b + SECTOR].to_vec();
                img[a..a + SECTOR].copy_from_slice(&src);
                format!("sector {} copied over {}", b / SECTOR, a / SECTOR)
            }
        }
        _ => {
            let at = rng.below(len);
            img[at] ^= 1 << rng.below(8);
            format!("bit at {at}")
        }
    }
}

/// Offsets of the identity files' text in the image (where mutations matter most).
fn hot_spots(img: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    for needle in [
        &b"1341569670"[..],
        b"[general]",
        b"Ubuntu-Server 12.04.5",
        b"Debian GNU/Linux 12",
    ] {
        if let Some(at) = img.windows(needle.len()).position(|w| w == needle) {
            v.push(at);
        }
    }
    v
}

/// What an accepted image must show in its own bytes: the primary volume descriptor,
/// a volume that fits in the file, and the identity text of the release asked for.
fn genuinely(img: &[u8], must: &str) -> Result<(), String> {
    let pvd = img.get(32768..32768 + 2048).ok_or("no sector 16")?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return Err("no primary volume descriptor".into());
    }
    let blocks = u32::from_le_bytes(pvd[80..84].try_into().unwrap()) as u64;
    let size = u16::from_le_bytes(pvd[128..130].try_into().unwrap()) as u64;
    if blocks * size > img.len() as u64 || size == 0 {
        return Err(format!("volume of {blocks}x{size} bytes in {}", img.len()));
    }
    if !img.windows(must.len()).any(|w| w == must.as_bytes()) {
        return Err(format!("no {must:?} anywhere in the image"));
    }
    Ok(())
}

#[test]
fn mutated_isos_are_identified_or_refused_with_a_message_never_a_panic() {
    if !require_tool("xorriso", "xorriso") {
        return;
    }
    let iters = env_u64("HVSEED_FUZZ_ISO_ITERS", 120);
    let seed = env_u64("HVSEED_FUZZ_SEED", 0x1505_0000);
    let mut rng = Rng::new(seed);
    // Not a self-removing directory: a failing mutant stays for replay
    // (target/tmp/fuzz-iso-work/mutant-N.iso).
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-iso-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let tmp = &work;
    let (mut accepted, mut refused) = (0u64, 0u64);
    for i in 0..iters {
        let (os, iso, must) = &seeds()[(i % seeds().len() as u64) as usize];
        let mut img = std::fs::read(iso).unwrap();
        let hot = hot_spots(&img);
        let mut did = Vec::new();
        for _ in 0..1 + rng.below(3) {
            did.push(mutate(&mut rng, &mut img, &hot));
        }
        let path = tmp.join(format!("mutant-{i}.iso"));
        std::fs::write(&path, &img).unwrap();
        let scratch = tmp.join(format!("scratch-{i}"));
        std::fs::create_dir(&scratch).unwrap();
        let what = format!("seed {seed:#x} iteration {i} ({os}): {}", did.join("; "));
        // A damaged directory tree can make xorriso read on without end: hvseed stops
        // it after a deadline (120 s by default; 10 s here).
        let result = std::panic::catch_unwind(|| {
            hvseed::isoread::identify_within(&path, *os, &scratch, Duration::from_secs(10))
        });
        match result {
            Err(_) => panic!("identify panicked on {what}"),
            Ok(Ok(found)) => {
                accepted += 1;
                assert_eq!(found.flavour.os(), *os, "{what}");
                if let Err(why) = genuinely(&img, must) {
                    panic!("accepted an ISO that is not genuine ({why}): {what}");
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                let msg = format!("{e:#}");
                assert!(
                    msg.contains(&path.display().to_string()),
                    "the refusal does not name the file: {msg}\n{what}"
                );
            }
        }
        // Nothing outside the scratch directory was written by the extraction.
        let stray: Vec<_> = std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("mutant-") && !n.starts_with("scratch-"))
            .collect();
        assert!(stray.is_empty(), "{stray:?} appeared: {what}");
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir_all(&scratch).unwrap();
    }
    eprintln!("fuzz_iso: {iters} mutants: {accepted} identified, {refused} refused");
    // A run that only ever refused (or only accepted) mutated nothing that matters.
    if iters >= 50 {
        assert!(accepted > 0 && refused > 0, "{accepted} / {refused}");
    }
}

/// The loop the fuzzer found: a subdirectory whose directory record points back at the
/// root. xorriso reads such a tree without end; identification stops it at the deadline
/// and refuses the ISO, naming it.
#[test]
fn an_iso_whose_directory_contains_itself_is_refused_in_bounded_time() {
    if !require_tool("xorriso", "xorriso") {
        return;
    }
    let (os, iso, _) = &seeds()[0];
    let mut img = std::fs::read(iso).unwrap();
    let pvd = 16 * 2048;
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let root_lba = le32(&img, pvd + 156 + 2);
    let root_len = le32(&img, pvd + 156 + 10) as usize;
    let start = root_lba as usize * 2048;
    let mut at = start;
    let mut looped = false;
    while at < start + root_len {
        let len = img[at] as usize;
        if len == 0 {
            at = (at / 2048 + 1) * 2048;
            continue;
        }
        let flags = img[at + 25];
        let name_len = img[at + 32] as usize;
        let name = &img[at + 33..at + 33 + name_len];
        if flags & 2 != 0 && name != [0] && name != [1] {
            img[at + 2..at + 6].copy_from_slice(&root_lba.to_le_bytes());
            img[at + 6..at + 10].copy_from_slice(&root_lba.to_be_bytes());
            looped = true;
        }
        at += len;
    }
    assert!(looped, "the seed ISO has no subdirectory to loop");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("loop.iso");
    std::fs::write(&path, &img).unwrap();
    let started = std::time::Instant::now();
    let Err(e) = hvseed::isoread::identify_within(&path, *os, tmp.path(), Duration::from_secs(5))
    else {
        panic!("an ISO whose tree loops was accepted");
    };
    let msg = format!("{e:#}");
    assert!(msg.contains("did not finish within 5 s"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(60), "{msg}");
}
