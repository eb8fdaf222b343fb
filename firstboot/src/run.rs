//! `hvseed-firstboot run`: the one-shot job on the first boot of the live system. It
//! re-applies the plan (a no-op after the offline step), does what only a running
//! system can (setenforce, apparmor_parser -R, restart networking, load the firewall,
//! restart libvirtd), verifies, reports, and disables its job only when the host is
//! ready. If the management gateway is unreachable after the network restart, the
//! network files go back to what the installer wrote, the network is restarted again
//! and hvseed's firewall is not loaded: a host is never left off the network by hvseed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::apply;
use crate::exec::Outcome;
use crate::fsroot::{self, Owner, Root};
use crate::plan::Plan;
use crate::report::{CheckResult, Report, ReportStatus, REPORT_SCHEMA};
use crate::target;
use crate::time::utc;
use crate::verify::{self, Env};

pub const REPORT_PATH: &str = "/var/lib/hvseed/report.json";
pub const LOG_PATH: &str = "/var/log/hvseed-firstboot.log";
/// Where network files hvseed created are moved when it rolls back.
pub const FAILED_DIR: &str = "/var/lib/hvseed/failed";

/// Lines go to stderr, the log file and the console (best effort: a missing console
/// or log directory must not stop the run).
pub struct Log {
    file: Option<fs::File>,
    console: Option<fs::File>,
}

impl Log {
    pub fn open(root: &Path) -> Log {
        let log = root.join(LOG_PATH.trim_start_matches('/'));
        if let Some(d) = log.parent() {
            let _ = fs::create_dir_all(d);
        }
        // O_NONBLOCK: a FIFO without a reader (or a console that is not there) must
        // not hang the open; the log must be a regular file.
        let nonblock = libc::O_NONBLOCK | libc::O_NOCTTY;
        Log {
            file: fs::OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(nonblock)
                .open(log)
                .ok()
                .filter(|f| f.metadata().is_ok_and(|m| m.is_file())),
            console: fs::OpenOptions::new()
                .write(true)
                .custom_flags(nonblock)
                .open(root.join("dev/console"))
                .ok()
                .map(blocking),
        }
    }

    pub fn line(&mut self, msg: &str) {
        let line = format!("hvseed-firstboot: {msg}\n");
        crate::out::stderr(&line);
        if let Some(f) = &mut self.console {
            let _ = f.write_all(line.as_bytes());
        }
        if let Some(f) = &mut self.file {
            let _ = f.write_all(format!("{} {line}", utc(now())).as_bytes());
        }
    }
}

/// The console back in blocking mode once it is open: a slow serial console whose
/// buffer is full must slow the run down, not lose its lines (a non-blocking write
/// gets EAGAIN and `write_all` gives up).
fn blocking(f: fs::File) -> fs::File {
    use std::os::unix::io::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    f
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A duration as the log writes it: seconds with one decimal (`6.8 s`). The log's
/// stamps are whole seconds; each step's own time says where a slow run went.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Runs one runtime step with the command deadline; logs it, and a failure as a
/// warning. True if it succeeded.
pub fn step(env: &Env, log: &mut Log, program: &str, args: &[&str], stdin: Option<&Path>) -> bool {
    step_for(env.timeout, log, program, args, stdin)
}

/// A step that takes the network down or up: bringing bridges and VLANs down and up
/// takes longer than a status query.
pub fn network_step(env: &Env, log: &mut Log, program: &str, args: &[&str]) -> bool {
    step_for(env.timeout * 4, log, program, args, None)
}

fn step_for(
    timeout: Duration,
    log: &mut Log,
    program: &str,
    args: &[&str],
    stdin: Option<&Path>,
) -> bool {
    let cmdline = format!("{program} {}", args.join(" "));
    let start = Instant::now();
    let o = crate::exec::run(program, args, timeout.max(Duration::from_secs(1)), stdin);
    let took = secs(start.elapsed());
    if o.success() {
        log.line(&format!("ran {cmdline} ({took})"));
        true
    } else {
        log.line(&format!("warning: {} ({took})", o.describe(&cmdline)));
        false
    }
}

/// Up to `tries` rounds of `ping -c 3 -W 2` to the management gateway (the
/// `gateway_tries` setting, [`crate::settings`]): a switch port without portfast spends
/// ~30 s in STP listening/learning after the link flapped, and that must not cause a
/// rollback.
fn gateway_reachable(plan: &Plan, env: &Env, tries: u32) -> Outcome {
    let gw = plan.network.management.gateway.to_string();
    let mut last = Outcome::Missing;
    for _ in 0..tries {
        last = crate::exec::run(
            "ping",
            &["-c", "3", "-W", "2", &gw],
            env.timeout.max(Duration::from_secs(1)),
            None,
        );
        if last.success() || last == Outcome::Missing {
            break;
        }
    }
    last
}

/// Puts the network files back as the installer wrote them: originals are restored
/// from their backups, files hvseed created are moved to /var/lib/hvseed/failed/.
pub fn roll_back_network(plan: &Plan, root: &Root, log: &mut Log) -> std::io::Result<()> {
    for path in target::family(plan.os).network_paths(plan) {
        let host = root.resolve(&path)?;
        let backup = root.resolve(&apply::backup_path(&path))?;
        match crate::bounded::read(&backup, crate::bounded::EDIT_LIMIT, true) {
            Ok(orig) => {
                let owner =
                    fs::symlink_metadata(&backup).map_or(Owner::root(0o644), |m| Owner::of(&m));
                fsroot::write_atomic(&host, &orig, owner)?;
                log.line(&format!(
                    "restored {path} from {}",
                    apply::backup_path(&path)
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if host.exists() {
                    let name = path.trim_start_matches('/').replace('/', "_");
                    let dest = root.resolve(&format!("{FAILED_DIR}/{name}"))?;
                    fs::create_dir_all(dest.parent().unwrap())?;
                    fs::rename(&host, &dest)?;
                    log.line(&format!(
                        "moved {path} (written by hvseed) to {FAILED_DIR}/{name}"
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    target::family(plan.os).rolled_back(plan, root, log)
}

/// The bridges of the plan that did not come up (`/sys/class/net/<br>/bridge`, or
/// `ovs-vsctl br-exists`): a package missing (bridge-utils, vlan, openvswitch-switch)
/// or a stanza ifupdown could not apply shows here.
fn missing_bridges(plan: &Plan, env: &Env) -> Vec<String> {
    crate::topology::bridges(plan)
        .into_iter()
        .filter(|br| match plan.network.kind {
            crate::plan::NetworkType::LinuxBridge => !env
                .sys_root
                .join("class/net")
                .join(br)
                .join("bridge")
                .is_dir(),
            crate::plan::NetworkType::Openvswitch => !crate::exec::run(
                "ovs-vsctl",
                &["br-exists", br],
                env.timeout.max(Duration::from_secs(1)),
                None,
            )
            .success(),
        })
        .collect()
}

/// What only the running system can do, then the network restart with its gateway
/// and bridge check: the firewall loaded if they pass, the installer's network back
/// (and no firewall of hvseed's) if not; then the libvirtd restart (`changed`: what
/// this run's `apply` changed).
fn live_steps(
    plan: &Plan,
    env: &Env,
    root: &Root,
    log: &mut Log,
    checks: &mut Vec<CheckResult>,
    tries: u32,
    changed: &[String],
) {
    let family = target::family(plan.os);
    family.prepare(env, log);

    family.network_restart(plan, env, root, log, changed);
    let gw = plan.network.management.gateway;
    let waited = Instant::now();
    let ping = gateway_reachable(plan, env, tries);
    let waited = secs(waited.elapsed());
    let missing = if ping.success() {
        missing_bridges(plan, env)
    } else {
        Vec::new()
    };
    if ping.success() && missing.is_empty() {
        log.line(&format!("management gateway {gw} answers ({waited})"));
        checks.push(CheckResult {
            name: "network-gateway".into(),
            ok: true,
            detail: format!("management gateway {gw} answers ping"),
        });
        family.load_firewall(env, log);
    } else {
        let (what, fix) = if ping.success() {
            (
                format!(
                    "bridges {} missing after the network restart",
                    missing.join(", ")
                ),
                "check that bridge-utils, vlan (or openvswitch-switch) are installed and the \
                 network log",
            )
        } else {
            let why = ping.describe(&format!("ping -c 3 -W 2 {gw}"));
            (
                format!("management gateway {gw} unreachable after the network restart ({why})"),
                "check the switch port's VLANs and the plan",
            )
        };
        log.line(&format!(
            "{what} ({waited}); restoring the installer's network files"
        ));
        family.network_down(env, log);
        let rb = roll_back_network(plan, root, log);
        family.network_up(env, log);
        let again = gateway_reachable(plan, env, tries).success();
        let detail = match rb {
            Ok(()) => format!(
                "{what} with hvseed's network configuration; \
                     the installer's network files were restored (gateway reachable now: {again}); \
                     {fix}, then reboot to retry"
            ),
            Err(e) => format!("{what}, and restoring the network files failed: {e}"),
        };
        // hvseed's rules accept only the management network's sources: loaded now,
        // they would cut the host off on the installer's network.
        log.line("hvseed's firewall is not loaded while the installer's network is in use");
        log.line(&detail);
        checks.push(CheckResult {
            name: "network-gateway".into(),
            ok: false,
            detail,
        });
    }

    family.restart_libvirtd(env, log, changed);
}

/// The whole first-boot run; returns the report it wrote.
pub fn run(plan: &Plan, env: &Env) -> anyhow::Result<Report> {
    let root = Root::open(&env.root)
        .map_err(|e| anyhow::anyhow!("{}: cannot open the root: {e}", env.root.display()))?;
    let mut log = Log::open(&env.root);
    let started = Instant::now();
    log.line(&format!("starting for {} ({})", plan.fqdn, plan.os));

    // The offline step again: normally "0 changed"; after a rollback it puts the
    // planned network back for another try.
    let mut checks: Vec<CheckResult> = Vec::new();
    let applied = apply::apply(
        plan,
        &env.root,
        apply::Options {
            job: false,
            ..Default::default()
        },
    );
    // A bad settings file is reported (the host is not ready until it is fixed), and
    // the run goes on with the defaults.
    let settings = crate::settings::load(&root).unwrap_or_else(|e| {
        log.line(&format!("warning: {e}"));
        checks.push(CheckResult {
            name: "settings".into(),
            ok: false,
            detail: e,
        });
        crate::settings::Settings::default()
    });
    match applied {
        Ok(out) => {
            for l in out.text.lines() {
                log.line(l);
            }
            live_steps(
                plan,
                env,
                &root,
                &mut log,
                &mut checks,
                settings.gateway_tries,
                &out.changed,
            );
        }
        // A failed apply leaves ROOT as it was (it computes and stages everything
        // first and puts back what it replaced; the error says so, or names what it
        // could not put back), so the live system is left alone: no firewall load, no
        // network restart. The report says why and the next boot tries again.
        Err(e) => {
            log.line(&format!("apply failed: {e}"));
            checks.push(CheckResult {
                name: "apply".into(),
                ok: false,
                detail: e.to_string(),
            });
        }
    }

    let checking = Instant::now();
    let verified = verify::verify(plan, env);
    log.line(&format!(
        "{} checks ran ({})",
        verified.checks.len(),
        secs(checking.elapsed())
    ));
    checks.extend(verified.checks);
    for c in &checks {
        log.line(&c.to_string());
    }
    let status = if checks.iter().all(|c| c.ok) {
        ReportStatus::Ready
    } else {
        ReportStatus::Failed
    };
    let report = Report {
        schema: REPORT_SCHEMA,
        cluster: plan.cluster.clone(),
        fqdn: plan.fqdn.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        status,
        finished_at: now(),
        checks,
        cpu: verified.cpu,
    };
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    fsroot::write_atomic(
        &root.resolve(REPORT_PATH)?,
        json.as_bytes(),
        Owner::root(0o644),
    )?;
    log.line(&format!(
        "report written to {REPORT_PATH}: {status:?} ({} after the start)",
        secs(started.elapsed())
    ));

    if let Some(url) = &plan.report_url {
        let sending = Instant::now();
        match crate::http::post_json(url, json.as_bytes(), Duration::from_secs(10)) {
            Ok(code) => log.line(&format!(
                "report sent to {url} ({code}, {})",
                secs(sending.elapsed())
            )),
            Err(e) => log.line(&format!(
                "warning: report not sent: {e} ({})",
                secs(sending.elapsed())
            )),
        }
    }

    if status == ReportStatus::Ready {
        target::family(plan.os).disable_job(env, &root, &mut log)?;
        log.line("host is ready; the first-boot job is disabled");
    } else {
        log.line(
            "host is NOT ready; the first-boot job stays enabled and runs again on the next boot",
        );
    }
    Ok(report)
}
