//! Command-line arguments (clap derive) and their validation into the
//! library's configuration types.
//!
//! Why the split: clap types stop here. Everything below this file takes
//! validated values ([`Job`], [`StreamConfig`], [`SourceOptions`]), so the
//! library can be used without the CLI and every check on option values
//! lives in one place.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backend::{BackendChoice, DetectorChoice, Job};
use crate::detect::DetectorSpec;
use crate::error::{Error, Result};
use crate::filter::{ConvMode, FilterSpec, load_kernel};
use crate::pipeline::{DEFAULT_MEMORY_LIMIT, StreamConfig};
use crate::source::{Dtype, Endian, SignalInfo, SourceOptions};

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
    Info(InfoArgs),
    /// Filter inputs and detect events, streaming with constant memory.
    Process(Box<ProcessArgs>),
    /// Generate a synthetic recording with known events, process it through
    /// mmap, and check that every event is found.
    Demo(DemoArgs),
    /// Run the same `process` job on every backend (CPU, GPU) and compare
    /// time, throughput, peak memory and results.
    Bench(BenchArgs),
    /// The exact DFT of a whole signal, larger than memory if need be
    /// (out-of-core four-step FFT through a scratch file), as complex64 .npy.
    Fft(FftArgs),
    /// Streaming short-time Fourier transform: a power spectrogram as .npy
    /// (and a PNG picture), with constant memory.
    Spectrogram(Box<SpectrogramArgs>),
    /// Welch's power spectral density (scipy.signal.welch's defaults) as CSV
    /// (and a log-scale PNG plot).
    Psd(Box<PsdArgs>),
}

/// `sigstream fft`.
#[derive(Debug, Args)]
pub struct FftArgs {
    /// The input file.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// How to read raw input.
    #[command(flatten)]
    pub input_args: InputArgs,
    /// The spectrum: complex64 .npy, N/2+1 bins like np.fft.rfft (N with --full).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Peak memory of the whole process, in MiB; a signal whose transform
    /// fits runs in core, a larger one out of core through a scratch file
    /// beside the output.
    #[arg(long, default_value_t = 64, value_name = "MB")]
    pub memory_limit: u64,
    /// All N bins, like np.fft.fft (default: the one-sided N/2+1 of np.fft.rfft).
    #[arg(long)]
    pub full: bool,
    /// The channel to transform (0-based); required with several.
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

/// `sigstream bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The input file.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Backends to run, the first being the reference others are compared
    /// to (default: cpu, then gpu when an adapter exists).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub backends: Vec<BackendArg>,
    /// Runs per backend; the table shows the median time.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// `process` options for the job (filter, detector, input format,
    /// chunk size...), as for `sigstream process`; outputs and --backend are
    /// set by bench. Everything after INPUT goes to `process`, so bench's own
    /// options (--backends, --repeat) come before INPUT.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPS"
    )]
    pub ops: Vec<String>,
}

/// How to read an input (raw data needs these; npy and wav carry their own).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Sample type of raw input.
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    pub dtype: DtypeArg,
    /// Byte order of raw input.
    #[arg(long, value_enum, default_value_t = EndianArg::Little)]
    pub endian: EndianArg,
    /// Bytes to skip at the start of raw input (a header).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub offset: u64,
    /// Interleaved channels of raw input.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub channels: usize,
    /// Sample rate in Hz (overrides the file's own).
    #[arg(long, value_name = "HZ")]
    pub sample_rate: Option<f64>,
    /// Scale integer samples to [-1, 1) instead of keeping their values.
    #[arg(long)]
    pub normalize: bool,
}

/// Raw sample types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// Signed 8-bit.
    I8,
    /// Signed 16-bit.
    I16,
    /// Signed 32-bit.
    I32,
    /// Unsigned 8-bit.
    U8,
    /// Unsigned 16-bit.
    U16,
}

/// Byte orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EndianArg {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl InputArgs {
    /// The validated source options.
    pub fn source_options(&self) -> Result<SourceOptions> {
        if self.channels == 0 {
            return Err(Error::usage("--channels must be at least 1"));
        }
        if let Some(r) = self.sample_rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(Error::usage(format!(
                "--sample-rate {r}: must be a positive number of Hz"
            )));
        }
        Ok(SourceOptions {
            dtype: match self.dtype {
                DtypeArg::F32 => Dtype::F32,
                DtypeArg::F64 => Dtype::F64,
                DtypeArg::I8 => Dtype::I8,
                DtypeArg::I16 => Dtype::I16,
                DtypeArg::I32 => Dtype::I32,
                DtypeArg::U8 => Dtype::U8,
                DtypeArg::U16 => Dtype::U16,
            },
            endian: match self.endian {
                EndianArg::Little => Endian::Little,
                EndianArg::Big => Endian::Big,
            },
            offset: self.offset,
            channels: self.channels,
            sample_rate: self.sample_rate,
            normalize: self.normalize,
        })
    }
}

/// `sigstream info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Input files (`-` for standard input).
    #[arg(required_unless_present = "gpus", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// How to read raw input.
    #[command(flatten)]
    pub input: InputArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// List the GPU adapters (names for --gpu-adapter) instead.
    #[arg(long)]
    pub gpus: bool,
}

/// numpy.convolve modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvModeArg {
    /// All n+m-1 outputs.
    Full,
    /// n outputs, output i lined up with input i.
    Same,
    /// The n-m+1 outputs that see no padding.
    Valid,
}

/// Detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetectArg {
    /// |y| against --on/--off.
    Threshold,
    /// ObsPy's classic_sta_lta.
    StaLta,
    /// ObsPy's recursive_sta_lta.
    RecursiveStaLta,
}

/// Backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// A hardware GPU if there is one, else the CPU (never a software GPU).
    Auto,
    /// The CPU.
    Cpu,
    /// The GPU, software adapters (lavapipe) included; an error without one.
    Gpu,
}

/// Where to compute (shared by the commands that compute).
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto, help_heading = "Run")]
    pub backend: BackendArg,
    /// Use the GPU adapter whose name contains NAME (case-insensitive), when
    /// there are several; `sigstream info --gpus` lists them.
    #[arg(long, value_name = "NAME", help_heading = "Run")]
    pub gpu_adapter: Option<String>,
}

impl BackendArgs {
    /// The backend choice.
    pub fn choice(&self) -> BackendChoice {
        match self.backend {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Cpu => BackendChoice::Cpu,
            BackendArg::Gpu => BackendChoice::Gpu,
        }
    }

    /// Opens the chosen backend.
    ///
    /// For `auto`, the adapters are listed by a child process (`sigstream
    /// info --gpus --json`): enumerating them loads every installed Vulkan
    /// driver into the process, and a software one (Mesa's lavapipe, with
    /// LLVM) adds ~60 MB to the peak RSS of what then runs on the CPU. Only
    /// when the child reports a hardware adapter is it opened here.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU was asked for and none can be opened.
    pub fn open(&self) -> Result<std::sync::Arc<dyn crate::backend::Backend>> {
        Ok(match self.gpu_context()? {
            Some(ctx) => std::sync::Arc::new(crate::backend::gpu::GpuBackend::with_context(ctx)),
            None => std::sync::Arc::new(crate::backend::cpu::CpuBackend),
        })
    }
}

impl BackendArgs {
    /// The GPU to run on, for commands that use the GPU directly rather
    /// than through a [`crate::backend::Backend`]: `None` for the CPU. The
    /// same rules as [`BackendArgs::open`]: `auto` takes a hardware adapter
    /// only, probed in a child process.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU was asked for and none can be opened.
    pub fn gpu_context(&self) -> Result<Option<std::sync::Arc<crate::backend::gpu::GpuContext>>> {
        let choice = self.choice();
        let listed = if choice == BackendChoice::Auto {
            adapters_in_child()
        } else {
            None
        };
        crate::backend::gpu_context(choice, self.gpu_adapter.as_deref(), listed)
    }
}

/// The GPU adapters as (name, is software), listed by `sigstream info
/// --gpus --json` in a child process, so that their drivers are never loaded
/// into this one (see [`BackendArgs::open`]); `None` when the child could
/// not be run.
pub fn adapters_in_child() -> Option<Vec<(String, bool)>> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["info", "--gpus", "--json"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        list.as_array()?
            .iter()
            .filter_map(|a| Some((a["name"].as_str()?.to_owned(), a["software"] != false)))
            .collect(),
    )
}

/// `sigstream process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Input files, directories (their files) or `-` for standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// How to read raw input.
    #[command(flatten)]
    pub input: InputArgs,

    /// FIR kernel file: .npy or text (numbers separated by spaces/commas).
    #[arg(long, value_name = "FILE", group = "filter", help_heading = "Filter")]
    pub kernel: Option<PathBuf>,
    /// Moving average over N samples.
    #[arg(long, value_name = "N", group = "filter", help_heading = "Filter")]
    pub moving_average: Option<usize>,
    /// Windowed-sinc low-pass (Hamming, like scipy.signal.firwin), cutoff in Hz.
    #[arg(long, value_name = "HZ", group = "filter", help_heading = "Filter")]
    pub lowpass: Option<f64>,
    /// Windowed-sinc high-pass, cutoff in Hz (odd --taps).
    #[arg(long, value_name = "HZ", group = "filter", help_heading = "Filter")]
    pub highpass: Option<f64>,
    /// Windowed-sinc band-pass between LO and HI Hz.
    #[arg(long, value_name = "LO:HI", group = "filter", help_heading = "Filter")]
    pub bandpass: Option<String>,
    /// Taps of a designed filter.
    #[arg(long, value_name = "N", default_value_t = 101, help_heading = "Filter")]
    pub taps: usize,
    /// Which outputs of the convolution to keep, as numpy.convolve.
    #[arg(long, value_enum, default_value_t = ConvModeArg::Same, help_heading = "Filter")]
    pub conv_mode: ConvModeArg,

    /// Detector to run on the filtered signal (the raw one without a filter).
    #[arg(long, value_enum, help_heading = "Detection")]
    pub detect: Option<DetectArg>,
    /// Trigger-on level of the characteristic function.
    #[arg(long, value_name = "X", help_heading = "Detection")]
    pub on: Option<f64>,
    /// Trigger-off level (default: the --on level).
    #[arg(long, value_name = "Y", help_heading = "Detection")]
    pub off: Option<f64>,
    /// STA window in samples.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "sta_seconds",
        help_heading = "Detection"
    )]
    pub sta: Option<usize>,
    /// LTA window in samples.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "lta_seconds",
        help_heading = "Detection"
    )]
    pub lta: Option<usize>,
    /// STA window in seconds (needs a sample rate).
    #[arg(long, value_name = "S", help_heading = "Detection")]
    pub sta_seconds: Option<f64>,
    /// LTA window in seconds (needs a sample rate).
    #[arg(long, value_name = "S", help_heading = "Detection")]
    pub lta_seconds: Option<f64>,
    /// Longest event in samples; a longer one is cut and a new one starts
    /// when the function rises above --on again (ObsPy's max_len).
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub max_len: Option<u64>,

    /// Filtered signal: .npy (float32), .wav (float) or anything else (raw f32 LE).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Outputs"
    )]
    pub output: Option<PathBuf>,
    /// Events as CSV: channel,start,end,peak_index,peak_value.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub events: Option<PathBuf>,
    /// Run report as JSON.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub report: Option<PathBuf>,
    /// Directory for per-input outputs: DIR/<input stem>.<name given to -o/--events>.
    /// Required with several inputs.
    #[arg(long, value_name = "DIR", help_heading = "Outputs")]
    pub output_dir: Option<PathBuf>,

    /// Frames (samples per channel) per chunk (default: the largest that
    /// fits --memory-limit); refused if it does not fit.
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub chunk_size: Option<usize>,
    /// Peak memory of the whole process, in MiB, that the chunk and every
    /// buffer must fit.
    #[arg(long, default_value_t = DEFAULT_MEMORY_LIMIT >> 20, value_name = "MB", help_heading = "Run")]
    pub memory_limit: u64,
    /// Compute threads (default: all cores).
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub threads: Option<usize>,
    /// Where to compute.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// No progress bar.
    #[arg(short, long, help_heading = "Run")]
    pub quiet: bool,
}

/// `sigstream demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Samples in the synthetic recording.
    #[arg(long, default_value_t = 50_000_000, value_name = "N")]
    pub samples: u64,
    /// Events injected.
    #[arg(long, default_value_t = 1000, value_name = "K")]
    pub events: usize,
    /// Frames per chunk (default: the largest within the default memory limit).
    #[arg(long, value_name = "N")]
    pub chunk_size: Option<usize>,
    /// Compute threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seed of the random signal.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to compute.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--memory-limit` in bytes.
pub fn memory_limit(mib: u64) -> Result<u64> {
    if mib == 0 {
        return Err(Error::usage("--memory-limit must be at least 1 (MiB)"));
    }
    Ok(mib.saturating_mul(1 << 20))
}

/// Threads to use: the option, or every core.
pub fn threads(opt: Option<usize>) -> Result<usize> {
    match opt {
        Some(0) => Err(Error::usage("--threads must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

impl ProcessArgs {
    /// The validated run configuration.
    pub fn stream_config(&self) -> Result<StreamConfig> {
        Ok(StreamConfig {
            chunk_size: self.chunk_size,
            memory_limit: memory_limit(self.memory_limit)?,
            threads: threads(self.threads)?,
            ..StreamConfig::default()
        })
    }

    /// The filter as described, without taps yet (designed filters need the
    /// input's sample rate). Reads a kernel file once.
    pub fn filter_spec(&self) -> Result<Option<FilterSpec>> {
        let taps = self.taps;
        Ok(if let Some(path) = &self.kernel {
            Some(FilterSpec::Kernel(load_kernel(path)?))
        } else if let Some(n) = self.moving_average {
            Some(FilterSpec::MovingAverage(n))
        } else if let Some(cutoff) = self.lowpass {
            Some(FilterSpec::Lowpass { cutoff, taps })
        } else if let Some(cutoff) = self.highpass {
            Some(FilterSpec::Highpass { cutoff, taps })
        } else if let Some(band) = &self.bandpass {
            let parse = |s: &str| s.trim().parse::<f64>().ok();
            let (lo, hi) = band
                .split_once(':')
                .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--bandpass '{band}': expected LO:HI in Hz, e.g. 1:20"
                    ))
                })?;
            Some(FilterSpec::Bandpass {
                low: lo,
                high: hi,
                taps,
            })
        } else {
            None
        })
    }

    /// The job for one input (designed filters and windows in seconds need
    /// its sample rate).
    pub fn job(&self, filter: Option<&FilterSpec>, info: &SignalInfo) -> Result<Job> {
        if let Some(f) = filter {
            let limit = memory_limit(self.memory_limit)?;
            crate::pipeline::budget::check_kernel(f.len(), info.channels, limit)?;
        }
        let kernel = filter.map(|f| f.taps(info.sample_rate)).transpose()?;
        let detector = self
            .detector(info.sample_rate)?
            .map(DetectorChoice::Builtin);
        Ok(Job {
            kernel,
            conv_mode: match self.conv_mode {
                ConvModeArg::Full => ConvMode::Full,
                ConvModeArg::Same => ConvMode::Same,
                ConvModeArg::Valid => ConvMode::Valid,
            },
            detector,
            ..Job::default()
        })
    }

    /// The detector, validated.
    pub fn detector(&self, sample_rate: Option<f64>) -> Result<Option<DetectorSpec>> {
        let Some(kind) = self.detect else {
            for (set, name) in [
                (self.on.is_some(), "--on"),
                (self.off.is_some(), "--off"),
                (self.sta.is_some() || self.sta_seconds.is_some(), "--sta"),
                (self.lta.is_some() || self.lta_seconds.is_some(), "--lta"),
                (self.max_len.is_some(), "--max-len"),
            ] {
                if set {
                    return Err(Error::usage(format!("{name} needs --detect")));
                }
            }
            return Ok(None);
        };
        let on = self
            .on
            .ok_or_else(|| Error::usage("--detect needs --on LEVEL"))?;
        let off = self.off.unwrap_or(on);
        let max_len = self.max_len;
        let window = |samples: Option<usize>, seconds: Option<f64>, name: &str| -> Result<usize> {
            match (samples, seconds) {
                (Some(n), _) => Ok(n),
                (None, Some(s)) => {
                    let fs = sample_rate.ok_or_else(|| {
                        Error::usage(format!(
                            "--{name}-seconds needs a sample rate: the input has none, give --sample-rate HZ"
                        ))
                    })?;
                    if !(s.is_finite() && s > 0.0) {
                        return Err(Error::usage(format!("--{name}-seconds must be positive")));
                    }
                    Ok((s * fs).round().max(1.0) as usize)
                }
                (None, None) => Err(Error::usage(format!(
                    "this detector needs --{name} N (samples) or --{name}-seconds S"
                ))),
            }
        };
        let spec = match kind {
            DetectArg::Threshold => DetectorSpec::Threshold { on, off, max_len },
            DetectArg::StaLta => DetectorSpec::ClassicStaLta {
                nsta: window(self.sta, self.sta_seconds, "sta")?,
                nlta: window(self.lta, self.lta_seconds, "lta")?,
                on,
                off,
                max_len,
            },
            DetectArg::RecursiveStaLta => DetectorSpec::RecursiveStaLta {
                nsta: window(self.sta, self.sta_seconds, "sta")?,
                nlta: window(self.lta, self.lta_seconds, "lta")?,
                on,
                off,
                max_len,
            },
        };
        spec.validate().map_err(Error::usage)?;
        Ok(Some(spec))
    }

    /// Where an output named `given` goes for `input`: as given for a single
    /// input without --output-dir, else `DIR/<stem>.<file name of given>`.
    pub fn output_path(&self, given: &Path, input: &Path) -> PathBuf {
        match &self.output_dir {
            None => given.to_path_buf(),
            Some(dir) => {
                let stem = input_stem(input);
                let name = given.file_name().map_or_else(
                    || given.to_string_lossy().into_owned(),
                    |n| n.to_string_lossy().into_owned(),
                );
                dir.join(format!("{stem}.{name}"))
            }
        }
    }
}

/// An input's stem for output names (`stdin` for `-`).
pub fn input_stem(input: &Path) -> String {
    if input == Path::new("-") {
        return "stdin".into();
    }
    input
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned())
}

/// Windows for the spectral commands (periodic, as scipy.signal.get_window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WindowArg {
    /// Hann.
    Hann,
    /// Hamming.
    Hamming,
    /// Blackman.
    Blackman,
    /// Rectangular (boxcar).
    Rect,
}

impl WindowArg {
    /// The library's window.
    pub fn window(self) -> crate::spectral::Window {
        use crate::spectral::Window;
        match self {
            WindowArg::Hann => Window::Hann,
            WindowArg::Hamming => Window::Hamming,
            WindowArg::Blackman => Window::Blackman,
            WindowArg::Rect => Window::Rect,
        }
    }
}

/// Per-frame detrending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetrendArg {
    /// None.
    None,
    /// Subtract each frame's mean.
    Constant,
}

impl DetrendArg {
    fn detrend(self) -> crate::spectral::Detrend {
        match self {
            DetrendArg::None => crate::spectral::Detrend::None,
            DetrendArg::Constant => crate::spectral::Detrend::Constant,
        }
    }
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

/// Welch scalings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScalingArg {
    /// Power spectral density, units²/Hz.
    Density,
    /// Power spectrum, units².
    Spectrum,
}

/// Options the spectral commands share.
#[derive(Debug, Clone, Args)]
pub struct SpectralRunArgs {
    /// Optional PNG picture of the result.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub png: Option<PathBuf>,
    /// PNG width in pixels.
    #[arg(
        long,
        default_value_t = 1200,
        value_name = "PX",
        help_heading = "Outputs"
    )]
    pub width: u32,
    /// PNG height in pixels.
    #[arg(
        long,
        default_value_t = 600,
        value_name = "PX",
        help_heading = "Outputs"
    )]
    pub height: u32,
    /// Run report as JSON (seconds, throughput_mb_s, peak_rss_mb, backend, device).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub report: Option<PathBuf>,
    /// Frames (samples per channel) per chunk (default: the largest that
    /// fits --memory-limit); refused if it does not fit.
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub chunk_size: Option<usize>,
    /// Peak memory of the whole process, in MiB, that the chunk and every
    /// buffer must fit.
    #[arg(long, default_value_t = DEFAULT_MEMORY_LIMIT >> 20, value_name = "MB", help_heading = "Run")]
    pub memory_limit: u64,
    /// Compute threads (default: all cores).
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub threads: Option<usize>,
    /// Where to compute.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// No progress bar.
    #[arg(short, long, help_heading = "Run")]
    pub quiet: bool,
}

impl SpectralRunArgs {
    /// Checks the options that do not depend on the input.
    pub fn validate(&self) -> Result<()> {
        if self.chunk_size == Some(0) {
            return Err(Error::usage("--chunk-size must be at least 1"));
        }
        memory_limit(self.memory_limit)?;
        threads(self.threads)?;
        Ok(())
    }
}

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
    /// (frames, channels, bins) for several.
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

impl SpectrogramArgs {
    /// The validated STFT configuration.
    pub fn config(&self) -> Result<crate::spectral::StftConfig> {
        if self.nfft == 0 {
            return Err(Error::usage("--nfft must be at least 1"));
        }
        let hop = self.hop.unwrap_or((self.nfft / 4).max(1));
        if hop == 0 {
            return Err(Error::usage("--hop must be at least 1"));
        }
        if !(self.db_range.is_finite() && self.db_range > 0.0) {
            return Err(Error::usage("--db-range must be a positive number of dB"));
        }
        if self.output.is_none() && self.run.png.is_none() {
            return Err(Error::usage(
                "nothing to write: give -o FILE.npy and/or --png FILE.png",
            ));
        }
        self.run.validate()?;
        Ok(crate::spectral::StftConfig {
            nfft: self.nfft,
            hop,
            window: self.window.window(),
            detrend: self.detrend.detrend(),
            scale: match self.scale {
                ScaleArg::Db => crate::spectral::Scale::Db,
                ScaleArg::Power => crate::spectral::Scale::Power,
                ScaleArg::Magnitude => crate::spectral::Scale::Magnitude,
            },
        })
    }
}

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
    /// CSV: frequency, then one column per channel (ch0, ch1, ...).
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

impl PsdArgs {
    /// The validated Welch configuration.
    pub fn config(&self) -> Result<crate::spectral::WelchConfig> {
        if self.nperseg == 0 {
            return Err(Error::usage("--nperseg must be at least 1"));
        }
        let noverlap = self.overlap.unwrap_or(self.nperseg / 2);
        if noverlap >= self.nperseg {
            return Err(Error::usage(format!(
                "--overlap {noverlap} must be less than --nperseg {}",
                self.nperseg
            )));
        }
        if self.output.is_none() && self.run.png.is_none() {
            return Err(Error::usage(
                "nothing to write: give -o FILE.csv and/or --png FILE.png",
            ));
        }
        self.run.validate()?;
        Ok(crate::spectral::WelchConfig {
            nperseg: self.nperseg,
            noverlap,
            window: self.window.window(),
            detrend: self.detrend.detrend(),
            scaling: match self.scaling {
                ScalingArg::Density => crate::spectral::Scaling::Density,
                ScalingArg::Spectrum => crate::spectral::Scaling::Spectrum,
            },
        })
    }
}
