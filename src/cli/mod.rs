//! The command-line front: one module per subcommand, each holding its clap
//! arguments and its run, side by side.
//!
//! Why it is thin: clap types stop here. Each subcommand maps its arguments
//! onto the library's types ([`sigstream::SourceOptions`], [`sigstream::Job`],
//! [`sigstream::DetectorSpec`], the spectral configurations), whose own
//! constructors and `validate` methods do every check, so that any front
//! (this one, Python) gets the same rules and the same messages. What stays
//! here is what only a terminal needs: progress bars, summary lines, `-` for
//! standard output, and exit codes.

mod bench;
mod bench_run;
mod demo;
mod demo_signal;
mod fft;
mod info;
mod process;
mod psd;
pub mod signals;
mod spectral;
mod spectrogram;

use std::io::{IsTerminal, Write};
use std::path::Path;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use sigstream::error::{Error, Result};
pub use sigstream::options::{BackendArg, BackendArgs, InputArgs, RunArgs, memory_limit, threads};
use sigstream::sink::Transaction;

/// Filter, detect events in, and take spectra of signal recordings of any
/// size, with constant memory, on the GPU or the CPU.
#[derive(Debug, Parser)]
#[command(name = "sigstream", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe inputs: format, sample type, channels, samples, rate, duration.
    Info(info::InfoArgs),
    /// Filter inputs and detect events, streaming with constant memory.
    Process(Box<sigstream::process::ProcessOptions>),
    /// Generate a synthetic recording with known events, process it through
    /// mmap, and check that every event is found.
    Demo(demo::DemoArgs),
    /// Run the same `process` job on every backend (CPU, GPU) and compare
    /// time, throughput, peak memory and results.
    Bench(bench::BenchArgs),
    /// The exact DFT of a whole signal, larger than memory if need be
    /// (out-of-core four-step FFT through a scratch file), as complex64 .npy.
    Fft(fft::FftArgs),
    /// Streaming short-time Fourier transform: a power spectrogram as .npy
    /// (and a PNG picture), with constant memory.
    Spectrogram(Box<spectrogram::SpectrogramArgs>),
    /// Welch's power spectral density (scipy.signal.welch's defaults) as CSV
    /// (and a PNG plot in dB).
    Psd(Box<psd::PsdArgs>),
}

/// Runs the parsed command line; returns the exit code.
///
/// # Errors
/// Whatever the subcommand fails with; `main` prints it and exits with
/// [`Error::exit_code`].
///
/// A run's outputs are committed together at its end, or not at all
/// ([`Transaction`]); `process` commits each input's outputs together
/// (a batch keeps what its other inputs produced).
pub fn run(cli: &Cli) -> Result<i32> {
    match &cli.command {
        Command::Process(args) => process::run(args),
        Command::Info(args) => together(|| info::run(args)),
        Command::Demo(args) => together(|| demo::run(args)),
        Command::Bench(args) => together(|| bench::run(args)),
        Command::Fft(args) => together(|| fft::run(args)),
        Command::Spectrogram(args) => together(|| spectrogram::run(args)),
        Command::Psd(args) => together(|| psd::run(args)),
    }
}

/// Runs `command` with its outputs committed together when it succeeds.
fn together(command: impl FnOnce() -> Result<i32>) -> Result<i32> {
    let outputs = Transaction::begin();
    let code = command()?;
    outputs.commit()?;
    Ok(code)
}

/// Writes to stdout; a closed pipe (`sigstream info x | head`) is not an error.
fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io(sigstream::sink::STDOUT_NAME, e))
        }
        _ => Ok(()),
    }
}

/// Reports a failure on one of several inputs and remembers the exit code.
fn report_failure(e: &Error, code: &mut i32) {
    eprintln!("sigstream: {e}");
    *code = (*code).max(e.exit_code());
}

/// 50000000 → "50,000,000".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress bar on stderr when it is a terminal and not `--quiet`.
fn progress_bar(quiet: bool, name: &str, total: Option<u64>) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {percent:>3}% {human_pos}/{human_len} samples, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{prefix} {spinner} {human_pos} samples, {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_prefix(name.to_string());
    bar
}

/// Writes the report to `path` (`-`: standard output).
fn write_report(path: &Path, report: &serde_json::Value) -> Result<()> {
    sigstream::sink::write_json(path, report)
}
