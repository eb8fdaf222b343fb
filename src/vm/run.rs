//! The run loop: start the guest, watch its console (and a PXE tree's reports), print
//! each milestone with its time, stop the guest on every path, summarise.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::console::{self, Event, Milestone, Watcher};
use super::plan::{self, Media, QEMU};
use super::Options;

/// A QEMU process: its own process group, killed with hvseed (even by SIGKILL), on the
/// interrupt list while it runs, and stopped with its group when dropped.
pub struct Guest {
    child: Child,
    stderr: PathBuf,
    _stderr_dir: tempfile::TempDir,
    _listed: crate::interrupt::Guard,
    _dir_listed: crate::interrupt::Guard,
}

impl Guest {
    pub fn start(program: &str, args: &[OsString]) -> Result<Guest> {
        let (dir, dir_listed) =
            crate::interrupt::temp_dir_in(&std::env::temp_dir(), "hvseed-vm-qemu.")
                .context("creating a temporary directory for QEMU's messages")?;
        let stderr = dir.path().join("stderr");
        let err = std::fs::File::create(&stderr).context("creating QEMU's message file")?;
        tracing::debug!(
            "running: {}",
            std::iter::once(program.to_string())
                .chain(
                    args.iter()
                        .map(|a| crate::tool::shell_words_quote(&a.to_string_lossy()))
                )
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        crate::tool::own_group_dying_with_hvseed(&mut cmd);
        let (child, listed) = crate::interrupt::track(
            || cmd.spawn(),
            |c| vec![crate::interrupt::Item::Child(c.id())],
        )
        .with_context(|| format!("starting {program}"))?;
        Ok(Guest {
            child,
            stderr,
            _stderr_dir: dir,
            _listed: listed,
            _dir_listed: dir_listed,
        })
    }

    /// Its exit status once it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The end of what QEMU said on stderr.
    pub fn stderr_tail(&self) -> String {
        let t = std::fs::read(&self.stderr).unwrap_or_default();
        let t = String::from_utf8_lossy(&t[t.len().saturating_sub(2000)..]).into_owned();
        crate::escape::escape_lines(t.trim()).into_owned()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the run ended.
enum Outcome {
    /// Under KVM, the guest showed nothing for [`KVM_STALL`] before its kernel
    /// started: a nested KVM that passed the probe and hangs later.
    KvmStalled,
    Reached,
    /// A stranger's boot ended with nothing to boot and no kernel started.
    Refused(String),
    Failed(String),
}

/// Under KVM, silence on both the serial console and the firmware's log for this long
/// before a kernel runs is a hang (the same boot under KVM shows its boot loader or
/// kernel within seconds).
const KVM_STALL: Duration = Duration::from_secs(45);

/// Runs the guest. Without `--log`, the serial log goes to a new directory under the
/// temporary directory, removed again when the run succeeds or is interrupted (a
/// failed run keeps it and names it).
pub fn run(o: Options) -> Result<ExitCode> {
    // Scratch and QEMU message directories of runs killed before they could remove
    // them (a kept serial log is the user's to read, and stays).
    let tmp = std::env::temp_dir();
    for base in ["hvseed-vm.", "hvseed-vm-qemu."] {
        crate::interrupt::remove_stale(&tmp, base, "");
    }
    if o.log.is_some() {
        return run_logged(o, false, None);
    }
    // On the interrupt list: an interrupted run leaves nothing behind.
    let (dir, _listed) = crate::interrupt::temp_dir_in(&std::env::temp_dir(), "hvseed-vm-")
        .context("creating a directory for the serial log")?;
    let log = dir.path().join("serial.log");
    let code = run_logged(
        Options {
            log: Some(log),
            ..o
        },
        true,
        None,
    );
    match code {
        Ok(c) if c == ExitCode::SUCCESS => Ok(c),
        other => {
            // Kept for the user to read: the failure message names it.
            let _ = dir.keep();
            other
        }
    }
}

/// A guest [`start`]ed and left running for its caller to watch (as hvseed's live-host
/// tests do: ssh, ping and a second boot after the first-boot agent's report). Dropping
/// it stops the guest, then removes the run's namespace and trunk and its scratch.
pub struct Running {
    l: Launched,
    log: PathBuf,
    _scratch: tempfile::TempDir,
    _scratch_listed: crate::interrupt::Guard,
}

impl Running {
    /// The QEMU process.
    pub fn guest(&mut self) -> &mut Guest {
        &mut self.l.guest
    }

    /// The serial console's log.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `kvm` or `tcg`.
    pub fn accel(&self) -> &'static str {
        self.l.accel
    }

    /// The end of what QEMU said on stderr.
    pub fn stderr_tail(&self) -> String {
        self.l.guest.stderr_tail()
    }
}

/// Starts the guest as `hvseed vm` does (the same checks, disk, networks and QEMU
/// command line) and returns without watching it; `o.until` and `o.timeout` bound
/// only the KVM probe. The serial log goes to `o.log`, else into the run's scratch.
pub fn start(o: &Options) -> Result<Running> {
    let (scratch, listed) = crate::interrupt::temp_dir_in(&std::env::temp_dir(), "hvseed-vm.")
        .context("creating a temporary directory")?;
    let log = o
        .log
        .clone()
        .unwrap_or_else(|| scratch.path().join("serial.log"));
    let o = Options {
        log: Some(log.clone()),
        ..o.clone()
    };
    let l = launch(&o, scratch.path(), Instant::now() + o.timeout)?;
    Ok(Running {
        l,
        log,
        _scratch: scratch,
        _scratch_listed: listed,
    })
}

/// A guest started, with what it needs while it runs: the checked plan, the run's
/// namespace and trunk (or the caller's), the embedded server of a PXE tree. Dropped
/// in that order after the guest.
struct Launched {
    guest: Guest,
    carrier: Option<super::tagger::Carrier>,
    server: Option<crate::serve::Embedded>,
    p: plan::Prepared,
    accel: &'static str,
    warning: Option<String>,
    firmware_log: PathBuf,
}

/// Everything before the watch: the checks, the disk, the firmware's vars, the
/// accelerator, the networks, then QEMU (its serial console to `o.log`).
fn launch(o: &Options, scratch: &Path, until: Instant) -> Result<Launched> {
    let mut p = plan::prepare(o, scratch)?;

    // Said before booting: what this run cannot reach, and why.
    let mut said = Vec::new();
    for (_, why) in &p.unreachable {
        if !said.contains(why) {
            let ms: Vec<&str> = p
                .unreachable
                .iter()
                .filter(|(_, w)| w == why)
                .map(|(m, _)| m.as_str())
                .collect();
            crate::say!("hvseed vm: cannot reach {}: {why}", ms.join(", "));
            said.push(why.clone());
        }
    }
    let log_path = o.log.clone().context("no serial log path")?;
    std::fs::File::create(&log_path)
        .with_context(|| format!("creating the serial log {}", log_path.display()))?;

    if let Some((image, format)) = &p.disk.backing {
        plan::create_overlay(&p.disk.path, image, format)?;
    }
    if let Some(gib) = p.disk.create_gib {
        if p.disk.path.as_os_str().is_empty() {
            p.disk.path = scratch.join("disk.img");
        }
        plan::create_disk(&p.disk.path, gib)?;
    }
    let vars = match &p.uefi {
        Some(u) => {
            let v = scratch.join("vars.fd");
            std::fs::copy(&u.vars_template, &v).with_context(|| {
                format!("copying {} to {}", u.vars_template.display(), v.display())
            })?;
            Some(v)
        }
        None => None,
    };
    let (accel, warning) = super::accel::resolve(o.accel, scratch, until)?;
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }

    // PXE: the tree's HTTP side, on a loopback port the guest reaches as the http-base.
    let server = match &p.media {
        Media::Pxe { dir, .. } => Some(crate::serve::start_embedded(&crate::serve::Options {
            dir: dir.clone(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        })?),
        _ => None,
    };
    let relay = match &server {
        Some(s) => {
            let exe = std::env::current_exe().context("finding hvseed's own path")?;
            Some(format!(
                "{} vm-relay {}",
                crate::tool::shell_words_quote(&exe.to_string_lossy()),
                s.addr
            ))
        }
        None => None,
    };
    // The management VLAN: a namespace of this run answering as its gateway (and, for
    // a PXE tree, as its http-base for the installed host's report).
    let carrier = match (&p.netns, p.vlan.clone()) {
        (Some(name), _) => {
            let c = super::tagger::Carrier::in_callers(name, &[p.management_vlan], scratch)?;
            crate::say!(
                "hvseed vm: the host's networks are carried into network namespace {name}: VLAN {} \
                 on the tap vlan{}, untagged frames on the tap untagged (what answers there is \
                 that namespace's)",
                p.management_vlan,
                p.management_vlan
            );
            Some(c)
        }
        (None, Some(m)) => {
            let http = match (&p.media, &server) {
                (Media::Pxe { net, .. }, Some(s)) => {
                    Some((std::net::SocketAddrV4::new(net.addr, net.port), s.addr))
                }
                _ => None,
            };
            match super::tagger::Carrier::start(&m, scratch, http) {
                Ok(c) => {
                    crate::say!(
                        "hvseed vm: VLAN {} carried into network namespace {}, which answers \
                         as the gateway {}{}",
                        m.vlan,
                        c.netns().name(),
                        m.gateway,
                        match http {
                            Some((at, _)) => format!(" and as the http-base {at}"),
                            None => String::new(),
                        }
                    );
                    Some(c)
                }
                // Root without the right to make namespaces or taps (a container
                // without CAP_NET_ADMIN): the milestones before `ready` are still worth
                // the run.
                Err(e) => {
                    let why = format!(
                        "{}'s management network is VLAN {}, which QEMU's user network \
                         drops, and carrying it failed ({e:#}): the installed host cannot \
                         reach its gateway {}, so its first-boot agent rolls back instead of \
                         reporting ready",
                        p.fqdn, m.vlan, m.gateway
                    );
                    crate::say!("hvseed vm: cannot reach ready: {why}");
                    p.unreachable.push((Milestone::Ready, why));
                    None
                }
            }
        }
        (None, None) => None,
    };
    let firmware_log = scratch.join("firmware.log");
    let args = plan::Command {
        p: &p,
        accel,
        memory_mib: o.memory_mib,
        cpus: o.cpus,
        log: &log_path,
        vars: vars.as_deref(),
        firmware_log: Some(&firmware_log),
        relay,
        no_reboot: o.until < Milestone::Installed,
        trunk: carrier.as_ref().map(|c| {
            c.trunk()
                .netdev(if p.netns.is_some() { "n0" } else { "t0" })
        }),
        trunk_only: p.netns.is_some(),
    }
    .args();
    crate::say!(
        "hvseed vm: booting {} ({}, {}, {}, MAC {}) until {}; serial log {}",
        p.fqdn,
        match &p.media {
            Media::Iso(i) => format!("ISO {}", i.display()),
            Media::Pxe { dir, .. } => format!("PXE tree {}", dir.display()),
            Media::None => format!("disk {}", p.disk.path.display()),
        },
        if p.uefi.is_some() { "UEFI" } else { "BIOS" },
        accel,
        p.mac,
        o.until,
        log_path.display()
    );
    let guest = Guest::start(QEMU, &args)?;
    Ok(Launched {
        guest,
        carrier,
        server,
        p,
        accel,
        warning,
        firmware_log,
    })
}

/// `fallback`: the warning of a run under KVM that stalled and handed over to this
/// one under TCG (said again in the summary).
fn run_logged(o: Options, own_log: bool, fallback: Option<String>) -> Result<ExitCode> {
    let start = Instant::now();
    let until = start + o.timeout;
    let start_epoch = crate::serve::now_secs();
    let (scratch, _scratch_listed) =
        crate::interrupt::temp_dir_in(&std::env::temp_dir(), "hvseed-vm.")
            .context("creating a temporary directory")?;
    let Launched {
        mut guest,
        carrier,
        server,
        p,
        accel,
        warning,
        firmware_log,
    } = launch(&o, scratch.path(), until)?;
    let warning = warning.or(fallback);
    let log_path = o.log.clone().context("no serial log path")?;
    let mut watcher = Watcher::new(p.expect.clone());
    let mut times: Vec<(Milestone, f64)> = Vec::new();
    let mut shown = 0usize;
    let mut progress = (0usize, 0usize, Instant::now());
    let report = match &p.media {
        Media::Pxe { dir, .. } => Some(dir.join("reports").join(format!("{}.json", p.fqdn))),
        _ => None,
    };
    let outcome = loop {
        let log = std::fs::read(&log_path).unwrap_or_default();
        if o.console && log.len() > shown {
            let mut err = std::io::stderr().lock();
            for line in String::from_utf8_lossy(&log[shown..]).split_inclusive(['\n', '\r']) {
                let l = console::printable(line);
                if !l.trim().is_empty() {
                    let _ = writeln!(err, "{l}");
                }
            }
            shown = log.len();
        }
        let mut events = watcher.feed(&log);
        if events.is_empty() {
            let fw = std::fs::read(&firmware_log).unwrap_or_default();
            events.extend(watcher.firmware(&fw));
        }
        if let Some(r) = &report {
            if !watcher.reached().contains(&Milestone::Ready) && reported_ready(r, start_epoch) {
                events.push(Event::Reached(Milestone::Ready));
            }
        }
        let exited = guest.exited();
        if let Some(st) = exited {
            if st.success() {
                events.extend(watcher.guest_stopped());
            }
        }
        let mut done = None;
        for e in events {
            match e {
                Event::Reached(m) => {
                    let secs = start.elapsed().as_secs_f64();
                    if !times.iter().any(|(x, _)| *x == m) {
                        crate::say!("hvseed vm: {} reached {m} after {secs:.1} s", p.fqdn);
                        times.push((m, secs));
                    }
                    if m >= o.until {
                        done.get_or_insert(Outcome::Reached);
                    }
                }
                Event::Refused { pattern, line } => {
                    done.get_or_insert(Outcome::Refused(format!(
                        "no kernel started and the firmware found nothing more to boot ({pattern:?}: {})",
                        crate::escape::escape_lines(&line)
                    )));
                }
                Event::Failed { pattern, line } => {
                    done.get_or_insert(Outcome::Failed(match line.strip_prefix("(firmware) ") {
                        Some(_) => format!("the firmware says {pattern:?}"),
                        None => format!(
                            "the console shows {pattern:?}: {}",
                            crate::escape::escape_lines(&line)
                        ),
                    }));
                }
            }
        }
        if let Some(d) = done {
            break d;
        }
        if let Some(st) = exited {
            break Outcome::Failed(format!(
                "QEMU exited ({st}) before {}{}",
                o.until,
                match guest.stderr_tail() {
                    t if t.is_empty() => String::new(),
                    t => format!(": {t}"),
                }
            ));
        }
        if accel == "kvm" && !String::from_utf8_lossy(&log).contains("Linux version") {
            let fw_len = std::fs::metadata(&firmware_log).map_or(0, |m| m.len() as usize);
            if (log.len(), fw_len) != (progress.0, progress.1) {
                progress = (log.len(), fw_len, Instant::now());
            } else if progress.2.elapsed() >= KVM_STALL {
                break Outcome::KvmStalled;
            }
        }
        if Instant::now() >= until {
            break Outcome::Failed(format!(
                "{} not reached within --timeout {} s",
                o.until,
                o.timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    drop(guest);
    if let Outcome::KvmStalled = outcome {
        let why = format!(
            "the guest showed nothing for {} s under KVM before a kernel started (a nested KVM \
             that hangs)",
            KVM_STALL.as_secs()
        );
        drop(carrier);
        drop(server);
        if o.accel == super::Accel::Kvm {
            anyhow::bail!("--accel kvm: {why}; use --accel tcg (or auto, which falls back to TCG)");
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!("{why}; no time left of --timeout {} s", o.timeout.as_secs());
        }
        let warning = format!("{why}; booted again under TCG (much slower)");
        tracing::warn!("{warning}");
        // Nothing was written to a disk yet (no kernel ran); a --disk this run created
        // (an overlay of --disk-from too) carries its marker and is taken again.
        return run_logged(
            Options {
                accel: super::Accel::Tcg,
                timeout: left,
                log: Some(log_path),
                disk_from: None,
                ..o
            },
            own_log,
            Some(warning),
        );
    }
    drop(carrier);
    drop(server);
    let elapsed = start.elapsed().as_secs_f64();
    let log = std::fs::read(&log_path).unwrap_or_default();
    let refused = matches!(outcome, Outcome::Refused(_));
    let (ok, failure) = match outcome {
        Outcome::KvmStalled => unreachable!("handled above"),
        Outcome::Refused(how) => {
            crate::say!(
                "hvseed vm: MAC {} (not in {}) was refused by the media: {how}; the guest was stopped",
                p.mac,
                o.inventory.display()
            );
            (true, None)
        }
        Outcome::Reached => {
            crate::say!(
                "hvseed vm: {}: {} reached in {elapsed:.1} s; the guest was stopped",
                p.fqdn,
                o.until
            );
            (true, None)
        }
        Outcome::Failed(why) => {
            let last = console::last_lines(&log, 15);
            crate::say!(
                "hvseed vm: {}: {} NOT reached: {why}\nlast console lines:\n  {}\nserial log: {}",
                p.fqdn,
                o.until,
                crate::escape::escape_lines(&last.join("\n  ")),
                log_path.display()
            );
            (false, Some(why))
        }
    };
    if o.json {
        let summary = serde_json::json!({
            "host": p.fqdn,
            "cluster": p.cluster,
            "mac": p.mac,
            "media": match &p.media {
                Media::Iso(_) => "iso",
                Media::Pxe { .. } => "pxe",
                Media::None => "disk",
            },
            "firmware": if p.uefi.is_some() { "uefi" } else { "bios" },
            "accel": accel,
            "accel_warning": warning,
            "until": o.until.as_str(),
            "ok": ok,
            "refused": refused,
            "failure": failure,
            "milestones": times.iter().map(|(m, s)| serde_json::json!({
                "milestone": m.as_str(),
                "seconds": (s * 10.0).round() / 10.0,
            })).collect::<Vec<_>>(),
            "unreachable": p.unreachable.iter().map(|(m, why)| serde_json::json!({
                "milestone": m.as_str(),
                "why": why,
            })).collect::<Vec<_>>(),
            "seconds": (elapsed * 10.0).round() / 10.0,
            // A log of hvseed's own choosing is removed after a run that succeeded.
            "serial_log": if ok && own_log { None } else { Some(&log_path) },
            "last_console_lines": if ok { Vec::new() } else { console::last_lines(&log, 15) },
        });
        let _ = writeln!(std::io::stdout().lock(), "{summary:#}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The agent's report for this host, stored by the embedded server during this run,
/// says ready.
fn reported_ready(path: &Path, since: u64) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    serde_json::from_str::<hvseed_plan::report::Report>(&text).is_ok_and(|r| {
        r.status == hvseed_plan::report::ReportStatus::Ready && r.finished_at >= since
    })
}
