//! `sigstream spectrogram`: a streaming STFT to .npy and a PNG picture.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::InputArgs;
use super::spectral::{
    DetrendArg, SpectralRun, SpectralRunArgs, WindowArg, input_title, too_short,
};
use sigstream::error::{Error, Result};
use sigstream::report::outputs;

/// `sigstream spectrogram`.
#[derive(Debug, Args)]
pub struct SpectrogramArgs {
    /// The input file (`-` for standard input).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// How to read raw input.
    #[command(flatten)]
    pub input_args: InputArgs,
    /// Samples per frame (FFT length; a power of two on the GPU).
    #[arg(long, value_name = "N", help_heading = "Spectrogram")]
    pub nfft: usize,
    /// Samples between frame starts (default: nfft / 4).
    #[arg(long, value_name = "H", help_heading = "Spectrogram")]
    pub hop: Option<usize>,
    /// Window.
    #[arg(long, value_enum, default_value_t = WindowArg::Hann, help_heading = "Spectrogram")]
    pub window: WindowArg,
    /// Remove each frame's mean first.
    #[arg(long, value_enum, default_value_t = DetrendArg::None, help_heading = "Spectrogram")]
    pub detrend: DetrendArg,
    /// Values written to the .npy.
    #[arg(long, value_enum, default_value_t = ScaleArg::Db, help_heading = "Spectrogram")]
    pub scale: ScaleArg,
    /// Dynamic range of the PNG's colour scale: the top DB decibels.
    #[arg(
        long,
        default_value_t = 80.0,
        value_name = "DB",
        help_heading = "Outputs"
    )]
    pub db_range: f64,
    /// Spectrogram as .npy float32: (frames, bins) for one channel,
    /// (frames, channels, bins) for several; bins = nfft/2+1, or nfft
    /// two-sided (−fs/2 .. fs/2) for complex input.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Outputs"
    )]
    pub output: Option<PathBuf>,
    /// PNG, report, run options.
    #[command(flatten)]
    pub run: SpectralRunArgs,
}

/// Spectrogram values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleArg {
    /// 10·log10 of the power spectral density (floored at -300 dB).
    Db,
    /// Power spectral density (scipy.signal.spectrogram's default 'psd').
    Power,
    /// |X| / sum(window) (scipy's mode='magnitude', scaling='spectrum').
    Magnitude,
}

impl SpectrogramArgs {
    /// The validated STFT configuration.
    pub fn config(&self) -> Result<sigstream::spectral::StftConfig> {
        if !(self.db_range.is_finite() && self.db_range > 0.0) {
            return Err(Error::usage("--db-range must be a positive number of dB"));
        }
        if self.output.is_none() && self.run.png.is_none() {
            return Err(Error::usage(
                "nothing to write: give -o FILE.npy and/or --png FILE.png",
            ));
        }
        if self
            .output
            .as_deref()
            .is_some_and(sigstream::sink::is_stdout)
        {
            return Err(Error::usage(
                "-o -: the spectrogram is a .npy whose header is completed at the end and cannot go to standard output; give a file",
            ));
        }
        self.run
            .validate(&self.input, &[("-o", self.output.as_deref())])?;
        let config = sigstream::spectral::StftConfig {
            nfft: self.nfft,
            hop: self
                .hop
                .unwrap_or(sigstream::spectral::StftConfig::default_hop(self.nfft)),
            window: self.window.window(),
            detrend: self.detrend.detrend(),
            scale: match self.scale {
                ScaleArg::Db => sigstream::spectral::Scale::Db,
                ScaleArg::Power => sigstream::spectral::Scale::Power,
                ScaleArg::Magnitude => sigstream::spectral::Scale::Magnitude,
            },
        };
        config.validate()?;
        Ok(config)
    }
}

/// `sigstream spectrogram`: returns the exit code.
pub fn run(args: &SpectrogramArgs) -> Result<i32> {
    use sigstream::sink::NpyArrayWriter;
    use sigstream::sink::plot::{SpectrogramAxes, SpectrogramImage};
    use sigstream::spectral::{Stft, Stream, frame_count};

    let config = args.config()?;
    let mut run = SpectralRun::open(&args.input, &args.input_args, &args.run, config.nfft)?;
    let info = run.info.clone();
    let stream = Stream::of(&info);
    let channels = stream.channels;
    let mut stft = Stft::for_stream(config, stream, run.gpu.as_ref())?;
    let bins = stft.bins();
    let axis = stft.axis();
    let tail = if channels == 1 {
        vec![bins]
    } else {
        vec![channels, bins]
    };
    let mut npy = args
        .output
        .as_ref()
        .map(|p| NpyArrayWriter::create(p, &tail))
        .transpose()?;
    let total = info.frames.map(|n| frame_count(n, config.nfft, config.hop));
    let mut image = args
        .run
        .png
        .as_ref()
        .map(|_| SpectrogramImage::new(args.run.width, args.run.height, channels, bins, total))
        .transpose()?;
    let samples = run.stream(&args.run, |block| {
        stft.push(block, |rows| {
            if let Some(w) = npy.as_mut() {
                w.write(rows.values)?;
            }
            if let Some(img) = image.as_mut() {
                img.add(rows.first, rows.count, rows.db);
            }
            Ok(())
        })
    })?;
    if stft.frames() == 0 {
        return Err(too_short(&args.input, config.nfft, samples));
    }
    if let Some(w) = npy {
        w.finish()?;
    }
    if let (Some(img), Some(path)) = (&image, &args.run.png) {
        let title = format!(
            "{}: {} window, nfft {}, hop {}",
            input_title(&args.input),
            config.window.name(),
            config.nfft,
            config.hop
        );
        img.write_png(
            path,
            SpectrogramAxes {
                sample_rate: info.sample_rate,
                hop: config.hop,
                nfft: config.nfft,
                frequencies: (axis.first, axis.last()),
                start_time: info.start_time,
                channel_names: info.channel_names.clone(),
            },
            args.db_range,
            &title,
        )?;
    }
    let mut entry = run.entry(samples);
    for (key, value) in [
        ("nfft", json!(config.nfft)),
        ("hop", json!(config.hop)),
        ("window", json!(config.window)),
        ("scale", json!(config.scale)),
        ("frames", json!(stft.frames())),
        ("bins", json!(bins)),
        ("two_sided", json!(axis.two_sided)),
        ("frequency_first", json!(axis.first)),
        ("frequency_step", json!(axis.step)),
        ("center_frequency", json!(info.center_frequency)),
        (
            "outputs",
            outputs([
                ("npy", args.output.as_deref()),
                ("png", args.run.png.as_deref()),
            ]),
        ),
    ] {
        entry.insert(key.into(), value);
    }
    run.finish("spectrogram", &args.run, entry)?;
    Ok(0)
}
