//! `hvseed-firstboot`: the static agent placed on every installed host.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hvseed_firstboot::{apply, Plan};

const USAGE: &str = "usage:
  hvseed-firstboot apply --plan PLAN --root ROOT [--dry-run] [--diff]
  hvseed-firstboot run --plan PLAN
  hvseed-firstboot verify --plan PLAN [--json]
  hvseed-firstboot --version";

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
    if argv.iter().any(|a| a == "--version") {
        println!("hvseed-firstboot {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
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
            let out = apply::apply(
                &plan,
                &root,
                apply::Options {
                    dry_run: a.dry_run,
                    diff: a.diff,
                    job: true,
                },
            )?;
            print!("{}", out.text);
            Ok(ExitCode::SUCCESS)
        }
        "" => bail!("no command given\n{USAGE}"),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hvseed-firstboot: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
