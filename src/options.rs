//! The options the fronts share: how to read an input, how a command runs
//! (chunking, memory, threads, backend), and their checks.
//!
//! Why they live in the library with their clap attributes: the CLI
//! flattens them into its subcommands, and the Python front parses its
//! keywords through the same definitions ([`crate::process::ProcessOptions::from_pairs`]),
//! so that both take the same options, with the same defaults, checks and
//! messages, from one place.

use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::backend::{AdapterProbe, Backend, BackendChoice};
use crate::error::{Error, Result};
use crate::source::{Dtype, Endian, SourceOptions};
use crate::time::UtcTime;

/// How to read an input (raw data needs these; npy and wav carry their own).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Sample type of raw (headerless) input; required unless the file's
    /// extension names it (.f32, .f64, .i8, .i16, .i32, .u8, .u16, and the
    /// complex I/Q types .cf32, .cf64, .ci8, .ci16, .ci32, .cu8, .cu16, .cfile).
    #[arg(long, value_enum)]
    pub dtype: Option<DtypeArg>,
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
    /// When the first sample was taken, UTC, ISO 8601 (e.g.
    /// 2024-03-01T12:00:00.25Z; overrides the file's own): events and
    /// reports then carry absolute times.
    #[arg(long, value_name = "TIME")]
    pub start_time: Option<String>,
    /// miniSEED channels to read, NET.STA.LOC.CHA with ObsPy's wildcards
    /// (`*`, `?`, `[...]`; repeat for several): all of one sample rate,
    /// processed together, aligned on time.
    #[arg(long, value_name = "ID")]
    pub select: Vec<String>,
    /// miniSEED gaps: `split` runs each contiguous stretch on its own
    /// (filter and detector restarted, as ObsPy per trace); `fill=VALUE`
    /// or `interpolate` fills them and runs once.
    #[arg(long, value_name = "HOW", default_value = "split")]
    pub gaps: String,
    /// Arrow (Feather v2) input: the columns to read as channels, by name,
    /// in this order (default: every column, all numeric).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub columns: Vec<String>,
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
    /// Complex: interleaved I/Q pairs of 32-bit floats (complex64).
    Cf32,
    /// Complex: I/Q pairs of 64-bit floats (complex128).
    Cf64,
    /// Complex: I/Q pairs of signed 8-bit integers.
    Ci8,
    /// Complex: I/Q pairs of signed 16-bit integers.
    Ci16,
    /// Complex: I/Q pairs of signed 32-bit integers.
    Ci32,
    /// Complex: I/Q pairs of unsigned 8-bit integers (RTL-SDR).
    Cu8,
    /// Complex: I/Q pairs of unsigned 16-bit integers.
    Cu16,
}

impl DtypeArg {
    /// The component type, and whether the samples are complex.
    fn sample_type(self) -> (Dtype, bool) {
        match self {
            DtypeArg::F32 => (Dtype::F32, false),
            DtypeArg::F64 => (Dtype::F64, false),
            DtypeArg::I8 => (Dtype::I8, false),
            DtypeArg::I16 => (Dtype::I16, false),
            DtypeArg::I32 => (Dtype::I32, false),
            DtypeArg::U8 => (Dtype::U8, false),
            DtypeArg::U16 => (Dtype::U16, false),
            DtypeArg::Cf32 => (Dtype::F32, true),
            DtypeArg::Cf64 => (Dtype::F64, true),
            DtypeArg::Ci8 => (Dtype::I8, true),
            DtypeArg::Ci16 => (Dtype::I16, true),
            DtypeArg::Ci32 => (Dtype::I32, true),
            DtypeArg::Cu8 => (Dtype::U8, true),
            DtypeArg::Cu16 => (Dtype::U16, true),
        }
    }
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
    /// The source options, checked by the library.
    pub fn source_options(&self) -> Result<SourceOptions> {
        let opts = SourceOptions {
            dtype: self.dtype.map(|d| d.sample_type().0),
            complex: self.dtype.is_some_and(|d| d.sample_type().1),
            endian: match self.endian {
                EndianArg::Little => Endian::Little,
                EndianArg::Big => Endian::Big,
            },
            offset: self.offset,
            channels: self.channels,
            sample_rate: self.sample_rate,
            normalize: self.normalize,
            start_time: self
                .start_time
                .as_deref()
                .map(|t| UtcTime::parse(t).map_err(|e| Error::usage(format!("--start-time {e}"))))
                .transpose()?,
            select: self.select.clone(),
            gaps: crate::source::mseed::Gaps::parse(&self.gaps)?,
            columns: self.columns.clone(),
        };
        opts.validate()?;
        Ok(opts)
    }
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

impl BackendArg {
    /// The name `--backend` takes.
    pub fn name(self) -> &'static str {
        match self {
            BackendArg::Auto => "auto",
            BackendArg::Cpu => "cpu",
            BackendArg::Gpu => "gpu",
        }
    }
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
    /// List the GPUs in this process ([`BackendArgs::probe`]): for fronts
    /// whose executable is not `sigstream` (Python). Not an option.
    #[arg(skip)]
    pub probe_in_process: bool,
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

    /// The adapter probe for a front that is a `sigstream` binary: that
    /// binary in a child process (see [`AdapterProbe::Child`]), or in
    /// process when the executable cannot be found. Other fronts (Python,
    /// whose executable is not `sigstream`) probe in process.
    pub fn probe(&self) -> AdapterProbe {
        if self.probe_in_process {
            return AdapterProbe::InProcess;
        }
        std::env::current_exe().map_or(AdapterProbe::InProcess, AdapterProbe::Child)
    }

    /// Opens the chosen backend ([`crate::backend::open`]).
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU was asked for and none can be opened.
    pub fn open(&self) -> Result<Arc<dyn Backend>> {
        crate::backend::open(self.choice(), self.gpu_adapter.as_deref(), &self.probe())
    }

    /// The GPU to run on, for commands that use the GPU directly: `None`
    /// for the CPU ([`crate::backend::open_gpu`]).
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU was asked for and none can be opened.
    pub fn gpu_context(&self) -> Result<Option<Arc<crate::backend::gpu::GpuContext>>> {
        crate::backend::open_gpu(self.choice(), self.gpu_adapter.as_deref(), &self.probe())
    }
}

/// `--memory-limit` (MiB): a hard limit when given, else the default
/// budget, which a job's own state may raise (see
/// [`crate::pipeline::StreamConfig::strict_memory_limit`]).
pub fn memory_limit(mib: Option<u64>) -> Result<crate::pipeline::budget::Limit> {
    use crate::pipeline::budget::Limit;
    match mib {
        Some(0) => Err(Error::usage("--memory-limit must be at least 1 (MiB)")),
        Some(mib) => Ok(Limit::strict(mib.saturating_mul(1 << 20))),
        None => Ok(Limit {
            bytes: crate::pipeline::DEFAULT_MEMORY_LIMIT,
            strict: false,
        }),
    }
}

/// How a command runs: chunking, memory, threads, backend, progress.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Frames (samples per channel) per chunk (default: the largest that
    /// fits --memory-limit); refused if it does not fit.
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub chunk_size: Option<usize>,
    /// Peak memory of the whole process, in MiB, that the chunk and every
    /// buffer must fit; refused if the job cannot (default: 24 for the
    /// buffers, raised by what a job's per-channel state needs beyond it).
    #[arg(long, value_name = "MB", help_heading = "Run")]
    pub memory_limit: Option<u64>,
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

impl RunArgs {
    /// Checks the options (the library checks them again where it uses them).
    pub fn validate(&self) -> Result<()> {
        if self.chunk_size == Some(0) {
            return Err(Error::usage("--chunk-size must be at least 1"));
        }
        memory_limit(self.memory_limit)?;
        threads(self.threads)?;
        Ok(())
    }
}

/// Threads to use: the option, or every core.
pub fn threads(opt: Option<usize>) -> Result<usize> {
    match opt {
        Some(n) => crate::pipeline::check_threads(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}
