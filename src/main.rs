//! `hvseed`: parse arguments, set up logging, dispatch. Nothing else lives here.

// They panic on a closed pipe or a full disk; `hvseed::say!` does not.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use hvseed::cli::{Cli, Cmd};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print their text to stdout: as it is what was asked
            // for, failing to print it is an error. Usage errors go to stderr, exit 2.
            let printed = e.print();
            let code = match (e.use_stderr(), printed) {
                (false, Err(_)) => 1,
                _ => e.exit_code(),
            };
            return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    // serve's log lines are queued: a stderr nobody reads must not hold up requests.
    let serving = matches!(cli.cmd, Cmd::Serve(_) | Cmd::VmRelay(_));
    hvseed::cli::init_logging(cli.verbose, cli.quiet, serving);
    // One interrupt handling for the verbs that write (serve stops on its own terms).
    if !serving {
        hvseed::interrupt::install();
    }
    let result = match cli.cmd {
        Cmd::Check(c) => Ok(hvseed::inventory::check(&c.inventory)),
        Cmd::Render(c) => hvseed::render::run(c.into()),
        Cmd::Iso(c) => hvseed::iso::run(c.into()),
        Cmd::Pxe(c) => hvseed::pxe::run(c.into()),
        Cmd::Serve(c) => hvseed::serve::run(c.into()),
        Cmd::Vm(c) => c.try_into().and_then(hvseed::vm::run),
        Cmd::VmRelay(c) => hvseed::vm::relay(c.addr),
    };
    if hvseed::interrupt::signal().is_some() {
        // The interrupt handler is cleaning up and sets the exit status; whatever the
        // verb made of its killed programs is not the news.
        loop {
            std::thread::park();
        }
    }
    hvseed::cli::flush_log(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors quote file names and arguments: no control character of theirs
            // reaches the terminal (a tool's multi-line stderr keeps its lines).
            hvseed::say!("error: {}", hvseed::escape::escape_lines(&format!("{e:#}")));
            std::process::ExitCode::from(1)
        }
    }
}
