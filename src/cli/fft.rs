//! `sigstream fft`: the exact DFT of a whole signal, out of core when it
//! does not fit the memory limit.

use std::path::PathBuf;

use clap::Args;
use indicatif::ProgressBar;
use serde_json::json;

use super::{BackendArgs, InputArgs, group, progress_bar, write_report};
use sigstream::error::{Error, Result};
use sigstream::report::{Report, describe_input, outputs};

/// `sigstream fft`.
#[derive(Debug, Args)]
pub struct FftArgs {
    /// The input file.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// How to read raw input.
    #[command(flatten)]
    pub input_args: InputArgs,
    /// The spectrum: complex64 .npy, N/2+1 bins like np.fft.rfft (N with
    /// --full); complex (I/Q) input: N bins like np.fft.fft.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Peak memory of the whole process, in MiB; a signal whose transform
    /// fits runs in core, a larger one out of core through a scratch file
    /// beside the output.
    #[arg(long, default_value_t = 64, value_name = "MB")]
    pub memory_limit: u64,
    /// All N bins, like np.fft.fft (default: the one-sided N/2+1 of
    /// np.fft.rfft; complex input always gives all N).
    #[arg(long)]
    pub full: bool,
    /// The channel to transform (0-based; a complex channel counts once);
    /// required with several.
    #[arg(long, value_name = "C")]
    pub channel: Option<usize>,
    /// Run report as JSON (sizes, split, passes, seconds, peak RSS).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Where to compute the FFTs of the out-of-core passes.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// No progress bars and no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `sigstream fft`: the spectrum of the whole input, out of core when it
/// does not fit in `--memory-limit`.
pub fn run(args: &FftArgs) -> Result<i32> {
    use sigstream::spectral::ooc_fft::{self, FftOptions, PassProgress};
    let opts = args.input_args.source_options()?;
    if args.memory_limit == 0 {
        return Err(Error::usage("--memory-limit must be at least 1 (MiB)"));
    }
    if sigstream::sink::is_stdout(&args.output) {
        return Err(Error::usage(
            "-o -: the spectrum is a .npy written in passes and cannot go to standard output; give a file",
        ));
    }
    let mut all = vec![("-o", args.output.as_path())];
    if let Some(r) = &args.report {
        all.push(("--report", r.as_path()));
    }
    sigstream::sink::check_outputs(&[args.input.as_path()], &all)?;

    let gpu = args.backend.gpu_context()?;
    let device = gpu.as_ref().map(|g| g.describe());
    let options = FftOptions {
        memory_limit: args.memory_limit.saturating_mul(1 << 20),
        full: args.full,
        channel: args.channel,
        gpu,
        ..FftOptions::default()
    };
    let mut bar: Option<(usize, ProgressBar)> = None;
    let quiet = args.quiet;
    let mut on_progress = |p: &PassProgress| {
        if bar.as_ref().is_none_or(|(pass, _)| *pass != p.pass) {
            if let Some((_, b)) = bar.take() {
                b.finish_and_clear();
            }
            let b = progress_bar(
                quiet,
                &format!("pass {}/{}: {}", p.pass, p.passes, p.name),
                Some(p.total),
            );
            bar = Some((p.pass, b));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.done);
        }
    };
    let stats = ooc_fft::fft_file(&args.input, &opts, &options, &args.output, &mut on_progress)?;
    if let Some((_, b)) = bar.take() {
        b.finish_and_clear();
    }
    // The header again (no samples are read), for the report: fft_file has
    // refused what it cannot transform (standard input included).
    let info = sigstream::source::open(&args.input, &opts)?.info().clone();
    if !args.quiet && args.report.is_none() {
        let how = match stats.split {
            None => "in core".to_string(),
            Some((p, l)) => format!("out of core, {p} x {l}"),
        };
        eprintln!(
            "{}: {} samples -> {} bins, {how}, {} pass{}, {:.2} s, peak {:.1} MiB",
            args.input.display(),
            group(stats.samples),
            group(stats.bins),
            stats.passes,
            if stats.passes == 1 { "" } else { "es" },
            stats.seconds,
            stats.peak_rss_mb
        );
    }
    if let Some(path) = &args.report {
        let mut report = Report::new("fft");
        report.set_backend(
            if device.is_some() { "gpu" } else { "cpu" },
            &device.unwrap_or_else(|| {
                sigstream::backend::Backend::device(&sigstream::backend::cpu::CpuBackend)
            }),
        );
        let mut entry = describe_input(&info, Some(stats.samples));
        // A complex sample is two stored values (I, Q).
        let values_per_sample = if info.complex { 2 } else { 1 };
        let bytes = stats.samples * values_per_sample * info.dtype.size() as u64;
        for (key, value) in [
            ("bytes", json!(bytes)),
            ("seconds", json!(stats.seconds)),
            (
                "throughput_mb_s",
                json!(bytes as f64 / stats.seconds.max(1e-9) / 1e6),
            ),
            ("channel", json!(args.channel.unwrap_or(0))),
            ("complex", json!(stats.complex)),
            ("bins", json!(stats.bins)),
            ("transform_len", json!(stats.transform_len)),
            ("packed", json!(stats.packed)),
            ("in_core", json!(stats.in_core)),
            ("split", json!(stats.split)),
            ("passes", json!(stats.passes)),
            ("scratch_bytes", json!(stats.scratch_bytes)),
            ("gpu_passes", json!(stats.gpu_passes)),
            ("memory_limit_mb", json!(args.memory_limit)),
            (
                "outputs",
                outputs([("spectrum", Some(args.output.as_path()))]),
            ),
        ] {
            entry.insert(key.into(), value);
        }
        report.push(entry);
        write_report(path, &report.finish())?;
    }
    Ok(0)
}
