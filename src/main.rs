//! The `sigstream` binary: parse the command line, run, map errors to exit
//! codes (2 for bad input or usage, 1 for failures at run time).
//!
//! The command-line front ([`cli`]) lives in the binary, not the library:
//! it can use only the library's public API, so everything a command checks
//! or computes is available to every other front as well.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    // First, before any thread starts: the interruption signals are taken
    // by one thread that removes temporary files.
    cli::signals::install();
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("sigstream: internal error: {info}");
    }));
    let cli = Cli::parse();
    let result = cli::run(&cli);
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("sigstream: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
