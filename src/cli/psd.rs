//! `sigstream psd`: Welch's power spectral density to CSV and a PNG plot.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::InputArgs;
use super::spectral::{DetrendArg, SpectralRun, SpectralRunArgs, WindowArg, input_title};
use sigstream::error::about_input;
use sigstream::error::{Error, Result};
use sigstream::report::outputs;

/// `sigstream psd`.
#[derive(Debug, Args)]
pub struct PsdArgs {
    /// The input file (`-` for standard input).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// How to read raw input.
    #[command(flatten)]
    pub input_args: InputArgs,
    /// Samples per segment (FFT length; a power of two on the GPU).
    #[arg(long, value_name = "N", help_heading = "Welch")]
    pub nperseg: usize,
    /// Samples shared by consecutive segments (default: nperseg / 2).
    #[arg(long, value_name = "K", help_heading = "Welch")]
    pub overlap: Option<usize>,
    /// Window.
    #[arg(long, value_enum, default_value_t = WindowArg::Hann, help_heading = "Welch")]
    pub window: WindowArg,
    /// Per-segment detrending (scipy's default: constant).
    #[arg(long, value_enum, default_value_t = DetrendArg::Constant, help_heading = "Welch")]
    pub detrend: DetrendArg,
    /// Density (units²/Hz) or spectrum (units²).
    #[arg(long, value_enum, default_value_t = ScalingArg::Density, help_heading = "Welch")]
    pub scaling: ScalingArg,
    /// CSV: frequency, then one column per channel (ch0, ch1, ...; a complex
    /// channel is one column of its two-sided spectrum).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Outputs"
    )]
    pub output: Option<PathBuf>,
    /// The PNG's y axis: dB re 1 unit²/Hz, or the values on a log axis.
    #[arg(long, value_enum, default_value_t = PngScaleArg::Db, help_heading = "Outputs")]
    pub png_scale: PngScaleArg,
    /// PNG, report, run options.
    #[command(flatten)]
    pub run: SpectralRunArgs,
}

/// `--png-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PngScaleArg {
    /// 10·log10 of the values.
    Db,
    /// The values on a logarithmic axis.
    Log,
}

impl PngScaleArg {
    /// The library's scale.
    pub fn scale(self) -> sigstream::sink::plot::PsdScale {
        match self {
            PngScaleArg::Db => sigstream::sink::plot::PsdScale::Db,
            PngScaleArg::Log => sigstream::sink::plot::PsdScale::Log,
        }
    }
}

/// Welch scalings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScalingArg {
    /// Power spectral density, units²/Hz.
    Density,
    /// Power spectrum, units².
    Spectrum,
}

impl PsdArgs {
    /// The validated Welch configuration.
    pub fn config(&self) -> Result<sigstream::spectral::WelchConfig> {
        if self.output.is_none() && self.run.png.is_none() {
            return Err(Error::usage(
                "nothing to write: give -o FILE.csv and/or --png FILE.png",
            ));
        }
        self.run
            .validate(&self.input, &[("-o", self.output.as_deref())])?;
        let config = sigstream::spectral::WelchConfig {
            nperseg: self.nperseg,
            noverlap: self.overlap.unwrap_or(self.nperseg / 2),
            window: self.window.window(),
            detrend: self.detrend.detrend(),
            scaling: match self.scaling {
                ScalingArg::Density => sigstream::spectral::Scaling::Density,
                ScalingArg::Spectrum => sigstream::spectral::Scaling::Spectrum,
            },
        };
        config.validate()?;
        Ok(config)
    }
}
/// `sigstream psd`: returns the exit code.
pub fn run(args: &PsdArgs) -> Result<i32> {
    use sigstream::spectral::{Scaling, Stream, Welch};

    let config = args.config()?;
    let mut run = SpectralRun::open(&args.input, &args.input_args, &args.run, config.nperseg)?;
    let info = run.info.clone();
    let stream = Stream::of(&info);
    let mut welch = Welch::for_stream(config, stream, run.gpu.as_ref())?;
    let samples = run.stream(&args.run, |block| welch.push(block))?;
    let psd = welch.finish().map_err(about_input(&args.input))?;
    if let Some(path) = &args.output {
        let mut file = std::io::BufWriter::new(sigstream::sink::Output::create(path)?);
        let mut text = String::from("frequency");
        for c in 0..psd.values.len() {
            text.push_str(&format!(",ch{c}"));
        }
        text.push('\n');
        for (k, f) in psd.frequencies.iter().enumerate() {
            text.push_str(&format!("{f}"));
            for ch in &psd.values {
                text.push_str(&format!(",{:e}", ch[k]));
            }
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(path, e))?;
        file.into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?
            .commit()?;
    }
    if let Some(path) = &args.run.png {
        let title = format!(
            "{}: Welch, {} window, nperseg {}, overlap {}, {} segments",
            input_title(&args.input),
            config.window.name(),
            config.nperseg,
            config.noverlap,
            psd.segments
        );
        sigstream::sink::plot::psd_png(
            path,
            &psd.frequencies,
            &psd.values,
            &sigstream::sink::plot::PsdPlot {
                size: (args.run.width, args.run.height),
                title,
                sample_rate_known: info.sample_rate.is_some(),
                density: config.scaling == Scaling::Density,
                scale: args.png_scale.scale(),
            },
        )?;
    }
    let mut entry = run.entry(samples);
    for (key, value) in [
        ("nperseg", json!(config.nperseg)),
        ("noverlap", json!(config.noverlap)),
        ("window", json!(config.window)),
        ("scaling", json!(config.scaling)),
        ("segments", json!(psd.segments)),
        ("bins", json!(psd.frequencies.len())),
        ("two_sided", json!(psd.two_sided)),
        ("frequency_first", json!(psd.frequencies.first())),
        ("frequency_step", json!(stream.axis(config.nperseg).step)),
        ("center_frequency", json!(info.center_frequency)),
        (
            "outputs",
            outputs([
                ("csv", args.output.as_deref()),
                ("png", args.run.png.as_deref()),
            ]),
        ),
    ] {
        entry.insert(key.into(), value);
    }
    run.finish("psd", &args.run, entry)?;
    Ok(0)
}
