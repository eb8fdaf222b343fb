//! `--accel auto|kvm|tcg`. KVM is used only after a tiny probe guest (QEMU's SeaBIOS,
//! nothing else) has shown it runs: a nested KVM can accept the guest and then hang in
//! its first instruction, which would hang the user's CI. The probe has a deadline;
//! past it, `auto` falls back to TCG with a warning and `kvm` fails.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::plan::QEMU;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

impl FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            _ => Err("one of auto, kvm, tcg".into()),
        }
    }
}

/// How long the probe guest gets to print its firmware's banner under KVM (it takes
/// milliseconds when KVM works, and under TCG well under a second).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// What the probe guest's firmware prints first (on its debug port) once its first
/// instructions ran.
const BANNER: &str = "SeaBIOS (version";

/// The accelerator to use, and a warning when `auto` fell back to TCG. Bounded by
/// `until` (the run's own deadline) as well as by the probe's.
pub fn resolve(
    accel: Accel,
    scratch: &Path,
    until: Instant,
) -> Result<(&'static str, Option<String>)> {
    match accel {
        Accel::Tcg => Ok(("tcg", None)),
        Accel::Kvm | Accel::Auto => {
            let usable = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .map_err(|e| format!("/dev/kvm cannot be opened ({e})"));
            let verdict = usable.and_then(|_| probe(scratch, until));
            match (verdict, accel) {
                (Ok(()), _) => Ok(("kvm", None)),
                (Err(why), Accel::Kvm) => {
                    bail!("--accel kvm: {why}; use --accel tcg (or auto, which falls back to TCG)")
                }
                (Err(why), _) => Ok((
                    "tcg",
                    Some(format!("KVM is not usable: {why}; using TCG (much slower)")),
                )),
            }
        }
    }
}

/// Starts QEMU under KVM with no disk, no network and its firmware's debug port to a
/// file, and waits for the firmware's banner.
fn probe(scratch: &Path, until: Instant) -> std::result::Result<(), String> {
    let log = scratch.join("kvm-probe.log");
    let args: Vec<std::ffi::OsString> = [
        "-machine",
        "pc",
        "-accel",
        "kvm",
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-chardev",
    ]
    .iter()
    .map(|s| (*s).into())
    .chain([
        format!(
            "file,id=dbg,path={}",
            super::net::qemu_opt(&log.to_string_lossy())
        )
        .into(),
        "-device".into(),
        "isa-debugcon,iobase=0x402,chardev=dbg".into(),
    ])
    .collect();
    let started = Instant::now();
    let deadline = (started + PROBE_DEADLINE).min(until);
    let mut guest = super::run::Guest::start(QEMU, &args)
        .map_err(|e| format!("the KVM probe did not start: {e:#}"))?;
    loop {
        let text = std::fs::read(&log).unwrap_or_default();
        if String::from_utf8_lossy(&text).contains(BANNER) {
            return Ok(());
        }
        if let Some(st) = guest.exited() {
            return Err(format!(
                "the KVM probe guest exited ({st}) before its firmware ran: {}",
                guest.stderr_tail()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "a probe guest under KVM showed no sign of life within {:.0} s (a nested KVM \
                 that hangs); it was stopped",
                deadline.saturating_duration_since(started).as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
