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
            // Errors quote file names and arguments: no control character of theirs
            // reaches the terminal (a tool's multi-line stderr keeps its lines).
            eprintln!("error: {}", hvseed::escape::escape_lines(&format!("{e:#}")));
            std::process::ExitCode::from(1)
        }
    }
}
