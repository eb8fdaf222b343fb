//! `hvseed`: parse arguments, set up logging, dispatch. Nothing else lives here.

use clap::Parser;
use hvseed::cli::{Cli, Cmd};
use hvseed::commands;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hvseed::cli::init_logging(cli.verbose, cli.quiet);
    let result = match cli.cmd {
        Cmd::Check(c) => commands::check(c),
        Cmd::Render(c) => commands::render(c),
        Cmd::Iso(c) => commands::iso(c),
        Cmd::Pxe(c) => commands::pxe(c),
        Cmd::Serve(c) => commands::serve(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
