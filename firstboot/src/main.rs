//! `hvseed-firstboot`: the static agent placed on every installed host.

// Output goes through `out`, which never panics on a full or closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hvseed_firstboot::report::ReportStatus;
use hvseed_firstboot::verify::{self, Env};
use hvseed_firstboot::{apply, out, run, Plan};

const USAGE: &str = "usage:
  hvseed-firstboot apply --plan PLAN --root ROOT [--dry-run] [--diff]
  hvseed-firstboot run --plan PLAN
  hvseed-firstboot verify --plan PLAN [--json]
  hvseed-firstboot --version

run and verify also take --root ROOT (default /) for the installed system's files.
Tests point them at fake kernel files and shorter deadlines with the environment:
HVSEED_PROC (default /proc), HVSEED_SYS (default /sys) and HVSEED_CMD_TIMEOUT (seconds
per command, default 30). run reads ROOT/etc/hvseed/firstboot.conf if it exists:
`gateway_tries = N` (1-60, default 10) rounds of pings before a network rollback.";

#[derive(Default)]
struct Args {
    verb: String,
    plan: Option<PathBuf>,
    root: Option<PathBuf>,
    dry_run: bool,
    diff: bool,
    json: bool,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args> {
    let mut a = Args::default();
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| {
            argv.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--plan" => a.plan = Some(value("--plan")?.into()),
            "--root" => a.root = Some(value("--root")?.into()),
            "--dry-run" => a.dry_run = true,
            "--diff" => a.diff = true,
            "--json" => a.json = true,
            v if a.verb.is_empty() && !v.starts_with('-') => a.verb = v.to_string(),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(a)
}

fn load_plan(a: &Args) -> Result<Plan> {
    let path = a
        .plan
        .as_ref()
        .with_context(|| format!("--plan PLAN is required\n{USAGE}"))?;
    Ok(Plan::load(path)?)
}

fn real_main() -> Result<ExitCode> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Their text is what they do: one that cannot be written is an error.
    if argv.iter().any(|a| a == "--version") {
        out::product(&format!("hvseed-firstboot {}\n", env!("CARGO_PKG_VERSION")))
            .context("cannot write the version to stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        out::product(&format!("{USAGE}\n")).context("cannot write the help to stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    let a = parse(argv.into_iter())?;
    match a.verb.as_str() {
        "apply" => {
            let plan = load_plan(&a)?;
            let root = a
                .root
                .clone()
                .with_context(|| format!("--root ROOT is required\n{USAGE}"))?;
            let outcome = apply::apply(
                &plan,
                &root,
                apply::Options {
                    dry_run: a.dry_run,
                    diff: a.diff,
                    job: true,
                },
            )?;
            out::stdout(&outcome.text);
            Ok(ExitCode::SUCCESS)
        }
        "verify" => {
            let plan = load_plan(&a)?;
            let env = Env::from_env(a.root.as_deref().unwrap_or(Path::new("/")));
            let verify::Verified { checks, cpu } = verify::verify(&plan, &env);
            let ok = checks.iter().all(|c| c.ok);
            if a.json {
                let v = serde_json::json!({
                    "fqdn": plan.fqdn,
                    "ok": ok,
                    "checks": checks,
                    "cpu": cpu,
                });
                out::stdout(&format!("{}\n", serde_json::to_string_pretty(&v)?));
            } else {
                let mut text = String::new();
                for c in &checks {
                    text.push_str(&format!("{c}\n"));
                }
                let failed = checks.iter().filter(|c| !c.ok).count();
                text.push_str(&format!("{} checks, {failed} failed\n", checks.len()));
                out::stdout(&text);
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        "run" => {
            let plan = load_plan(&a)?;
            let env = Env::from_env(a.root.as_deref().unwrap_or(Path::new("/")));
            let report = run::run(&plan, &env)?;
            Ok(if report.status == ReportStatus::Ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        "" => bail!("no command given\n{USAGE}"),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// The error and its causes, each cause only when the message does not already say
/// it (the agent's errors quote their cause: "FILE: cannot read it: CAUSE; …").
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn main() -> ExitCode {
    out::init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            out::stderr(&format!("hvseed-firstboot: error: {}\n", message(&e)));
            ExitCode::from(1)
        }
    }
}
