//! The `sigstream` binary: parse the command line, run, map errors to exit
//! codes (2 for bad input or usage, 1 for failures at run time).

use std::process::ExitCode;

use clap::Parser;
use sigstream::cli::{Cli, Command};
use sigstream::commands;

fn main() -> ExitCode {
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("sigstream: internal error: {info}");
    }));
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Info(args) => commands::info(args),
        Command::Process(args) => commands::process(args),
        Command::Demo(args) => commands::demo(args),
        Command::Bench(args) => commands::bench(args),
        Command::Fft(args) => commands::fft(args),
        Command::Spectrogram(args) => commands::spectrogram(args),
        Command::Psd(args) => commands::psd(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("sigstream: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
