//! Backends: where the per-chunk work (filtering and detection) runs.
//!
//! Why a trait: the chunk engine (reading, pooling, ordering, writing) is the
//! same whatever computes; a backend only turns an input [`Block`] into an
//! output block and events. Like RustFFT's planner, a [`Backend`] *plans* a
//! [`ChunkProcessor`] for one job once (designing FFT plans, allocating
//! buffers and device memory) and the processor then runs chunk after chunk
//! without allocating. A GPU backend can fuse stages inside its processor
//! without forking the pipeline.

pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(not(feature = "gpu"))]
#[path = "no_gpu.rs"]
pub mod gpu;
pub mod staged;

use std::sync::Arc;

use crate::detect::{Detector, DetectorSpec, Event, Polarity};
use crate::error::{Error, Result};
use crate::filter::ConvMode;
use crate::pool::Block;

/// Builds a fresh detector for one channel.
pub type DetectorFactory = Arc<dyn Fn() -> Box<dyn Detector> + Send + Sync>;

/// Which detector a job runs.
#[derive(Clone)]
pub enum DetectorChoice {
    /// One of the built-in detectors, the same on every channel.
    Builtin(DetectorSpec),
    /// A user's own detector (the seed's `custom_detector(chunk, offset)`).
    Custom(DetectorFactory),
    /// A built-in detector per channel: one spec per detected channel, in
    /// channel order (for instance each with its own levels from the
    /// channel's noise, [`DetectorSpec::with_levels`]). The planners refuse
    /// a list whose length is not the number of detected channels (the
    /// complex channels of an I/Q stream).
    PerChannel(Arc<[DetectorSpec]>),
    /// Built-in detectors (a [`DetectorChoice::Builtin`] or
    /// [`DetectorChoice::PerChannel`] choice) for one shard of a longer
    /// stream ([`crate::shard`]): `origin` is the stream index of the
    /// shard's first sample, `sync` its bounds.
    Ranged {
        /// The detectors.
        inner: Arc<DetectorChoice>,
        /// Stream index of the shard's first sample.
        origin: u64,
        /// The shard's bounds, shared by its channels.
        sync: crate::detect::RangeSync,
    },
}

impl std::fmt::Debug for DetectorChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectorChoice::Builtin(spec) => spec.fmt(f),
            DetectorChoice::Custom(_) => f.write_str("Custom"),
            DetectorChoice::PerChannel(specs) => f.debug_tuple("PerChannel").field(specs).finish(),
            DetectorChoice::Ranged {
                inner,
                origin,
                sync,
            } => f
                .debug_struct("Ranged")
                .field("inner", inner)
                .field("origin", origin)
                .field("sync", sync)
                .finish(),
        }
    }
}

impl DetectorChoice {
    /// A fresh detector for one channel (the first, for
    /// [`DetectorChoice::PerChannel`]).
    pub fn build(&self) -> Box<dyn Detector> {
        self.build_for(0)
    }

    /// A fresh detector for `channel`: [`DetectorChoice::Builtin`] and
    /// [`DetectorChoice::Custom`] build the same detector for every
    /// channel, [`DetectorChoice::PerChannel`] the channel's own. Events
    /// carry channel 0 either way; the processors label them.
    ///
    /// # Panics
    /// For [`DetectorChoice::PerChannel`] with no spec for `channel` (see
    /// [`DetectorChoice::check_channels`]), or a spec that does not
    /// validate.
    pub fn build_for(&self, channel: usize) -> Box<dyn Detector> {
        match self {
            DetectorChoice::Builtin(spec) => spec.build(),
            DetectorChoice::Custom(make) => make(),
            DetectorChoice::PerChannel(specs) => match specs.get(channel) {
                Some(spec) => spec.build(),
                None => panic!(
                    "no detector for channel {channel}: the per-channel list has {} (check_channels first)",
                    specs.len()
                ),
            },
            DetectorChoice::Ranged {
                inner,
                origin,
                sync,
            } => {
                let specs = inner.specs();
                let spec = if specs.len() == 1 {
                    &specs[0]
                } else {
                    &specs[channel]
                };
                spec.build_ranged(*origin, sync.clone())
            }
        }
    }

    /// Checks that the choice can detect on `channels` channels: a
    /// [`DetectorChoice::PerChannel`] list must hold exactly one spec per
    /// channel.
    ///
    /// # Errors
    /// [`Error::Usage`] saying how many specs there are and how many
    /// channels.
    pub fn check_channels(&self, channels: usize) -> Result<()> {
        match self {
            DetectorChoice::Ranged { inner, .. } => inner.check_channels(channels),
            DetectorChoice::PerChannel(specs) if specs.len() != channels => {
                Err(Error::usage(format!(
                    "per-channel detectors: {} given for {channels} detected channels; give one per channel",
                    specs.len()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether the GPU backend can run this detector: only a
    /// [`DetectorChoice::Builtin`] spec without dead time and with
    /// [`Polarity::Both`] (the GPU threshold kernel computes `|y|`, and its
    /// candidate replay has no dead time), or a
    /// [`DetectorChoice::Custom`] detector (which runs on the host from
    /// the signal read back). Others run on the CPU backend only.
    pub fn gpu_supported(&self) -> bool {
        match self {
            DetectorChoice::Builtin(spec) => {
                spec.dead().is_none() && spec.polarity() == Polarity::Both
            }
            DetectorChoice::Custom(_) => true,
            // A shard's triggers follow its sync points on the host.
            DetectorChoice::PerChannel(_) | DetectorChoice::Ranged { .. } => false,
        }
    }

    /// The built-in specs of the choice (none for a custom detector).
    pub fn specs(&self) -> &[DetectorSpec] {
        match self {
            DetectorChoice::Builtin(spec) => std::slice::from_ref(spec),
            DetectorChoice::Custom(_) => &[],
            DetectorChoice::PerChannel(specs) => specs,
            DetectorChoice::Ranged { inner, .. } => inner.specs(),
        }
    }

    /// Bytes one channel's detector allocates at most when built
    /// ([`DetectorSpec::memory_bytes`]; 0 for a custom detector, which is
    /// the user's).
    pub fn memory_bytes(&self) -> u64 {
        self.specs()
            .iter()
            .map(DetectorSpec::memory_bytes)
            .max()
            .unwrap_or(0)
    }
}

/// What to compute on every chunk: an optional frequency shift (complex
/// signals), an optional FIR filter, an optional decimation, then an
/// optional detector on the result (`|y|` for a complex signal).
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// FIR kernel in numpy.convolve orientation (the real parts of a
    /// complex kernel); `None` passes samples through.
    pub kernel: Option<Vec<f32>>,
    /// The imaginary parts of a complex kernel, as long as `kernel`; only
    /// complex streams take one.
    pub kernel_imag: Option<Vec<f32>>,
    /// Mix the complex signal by `e^(−2πi·f·n/fs)` before the filter
    /// (`--shift`); only complex streams take one.
    pub shift: Option<crate::filter::mix::Mixer>,
    /// An IIR filter (second-order sections) after the FIR, run as
    /// `scipy.signal.sosfilt` with its state carried across chunks
    /// ([`crate::filter::iir`]).
    pub iir: Option<crate::filter::iir::Sos>,
    /// Subtract the median or mean across channels at each sample, after
    /// the filters (SpikeInterface's common reference,
    /// [`crate::filter::reference`]); real signals only.
    pub reference: Option<crate::filter::reference::Reference>,
    /// Decimate by this factor after the filter, as
    /// `scipy.signal.resample_poly(y, 1, N)` ([`crate::filter::resample`]).
    pub decimate: Option<usize>,
    /// The stream's planes are I/Q pairs (complex channels): the pipeline
    /// sets it from the source ([`crate::source::SignalInfo::complex`]).
    pub complex: bool,
    /// Which part of the full convolution is output.
    pub conv_mode: ConvMode,
    /// The detector, if any.
    pub detector: Option<DetectorChoice>,
    /// Stream position of the first sample: a shard's read start
    /// ([`crate::shard`]), 0 otherwise. The IIR filter's restart grid
    /// ([`crate::filter::iir::Restarts`]) and the detectors' sample counts
    /// are kept in stream positions.
    pub origin: u64,
    /// Forces the FIR method (benchmarks and tests); `None` lets the backend
    /// choose.
    pub fir_method: Option<cpu::fir::FirMethod>,
    /// Cut the output around each event's peak (`--snippets`,
    /// [`crate::detect::snippet`]); runs on the CPU stage, after the
    /// backend's filter.
    pub snippets: Option<crate::detect::snippet::SnippetSpec>,
    /// Report a spike seen on neighbouring channels once, where it peaks
    /// (`--dedup-window`, [`crate::detect::dedup`]); applied to the events
    /// as they are written, in order.
    pub dedup: Option<crate::detect::dedup::DedupSpec>,
    /// Nobody reads the filtered signal (only events): a backend may skip
    /// producing output blocks. The pipeline sets it when there is no signal
    /// sink; the GPU backend then copies back only event candidates.
    pub discard_signal: bool,
}

impl Job {
    /// Checks the job: a kernel has at least one tap, all finite, and a
    /// built-in detector's parameters (every one of a per-channel list) are
    /// valid ([`DetectorSpec::validate`]). Every entry point that runs a job
    /// calls this first, so a bad job is an error, never a panic.
    ///
    /// # Errors
    /// [`Error::Usage`] saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        if let Some(k) = &self.kernel {
            if k.is_empty() {
                return Err(Error::usage("the kernel has no taps"));
            }
            if let Some(i) = k.iter().position(|v| !v.is_finite()) {
                return Err(Error::usage(format!(
                    "kernel tap {i} is {}: every tap must be a finite number",
                    k[i]
                )));
            }
        }
        if let Some(choice) = &self.detector {
            for (c, spec) in choice.specs().iter().enumerate() {
                spec.validate().map_err(|msg| match choice {
                    DetectorChoice::PerChannel(_) => Error::usage(format!("channel {c}: {msg}")),
                    _ => Error::usage(msg),
                })?;
            }
        }
        if let Some(im) = &self.kernel_imag {
            if self.kernel.as_ref().map(Vec::len) != Some(im.len()) {
                return Err(Error::usage(
                    "a complex kernel needs as many imaginary parts as real ones",
                ));
            }
            if let Some(i) = im.iter().position(|v| !v.is_finite()) {
                return Err(Error::usage(format!(
                    "kernel tap {i} has an imaginary part of {}: every tap must be finite",
                    im[i]
                )));
            }
            if !self.complex {
                return Err(Error::usage(
                    "a complex kernel filters complex (I/Q) signals only; this signal is real",
                ));
            }
        }
        if self.shift.is_some() && !self.complex {
            return Err(Error::usage(
                "--shift mixes complex (I/Q) signals only: a real signal has both its ±f images, and shifting one would need the other's Hilbert transform; read the input as complex (--dtype cf32, ...)",
            ));
        }
        if let Some(n) = self.decimate {
            crate::filter::resample::check_factor(n)?;
        }
        if self.dedup.is_some() && self.detector.is_none() {
            return Err(Error::usage(
                "--dedup-window compares the events of neighbouring channels: it needs --detect",
            ));
        }
        if self.snippets.is_some() && self.detector.is_none() {
            return Err(Error::usage(
                "--snippets cuts the signal around each event: it needs --detect",
            ));
        }
        if self.reference.is_some() && self.complex {
            return Err(Error::usage(
                "--reference subtracts a common level from real channels; this signal is complex (I/Q)",
            ));
        }
        Ok(())
    }

    /// Whether the job needs the stages around the filter
    /// ([`staged::StagedProcessor`]): a complex signal, a decimation, an
    /// IIR filter, a common reference or snippets.
    pub fn staged(&self) -> bool {
        self.complex
            || self.decimate.is_some_and(|n| n > 1)
            || self.iir.is_some()
            || self.reference.is_some()
            || self.snippets.is_some()
    }

    /// Kernel length (1 without a kernel).
    pub fn taps(&self) -> usize {
        self.kernel.as_ref().map_or(1, |k| k.len())
    }

    /// Samples of history carried between chunks: what the stages need to see
    /// of earlier chunks (`taps − 1` for the filter; detectors carry their own
    /// windows). Computed from the stages, reported as the seed's "overlap".
    pub fn history(&self) -> usize {
        let detector = self.detector.as_ref().map_or(0, |d| {
            d.specs()
                .iter()
                .map(DetectorSpec::history)
                .max()
                .unwrap_or(0)
        });
        // The decimator's 20N samples (the factor is checked only later).
        let decimate = self.decimate.map_or(0, |n| n.saturating_mul(20));
        (self.taps() - 1)
            .saturating_add(detector)
            .saturating_add(decimate)
    }
}

/// Moves each channel's new events (`per_channel[c]`) to `events`, with
/// their channel set to `c`.
pub(crate) fn collect_channel_events(per_channel: &mut [Vec<Event>], events: &mut Vec<Event>) {
    for (c, ev) in per_channel.iter_mut().enumerate() {
        events.extend(ev.drain(..).map(|mut e| {
            e.channel = c;
            e
        }));
    }
}

/// [`ChunkProcessor::horizon`] of per-channel detectors that have seen
/// `detected` samples: no later event starts before the earliest open one,
/// nor before what they have not seen yet.
pub(crate) fn detectors_horizon(detectors: &[Box<dyn Detector>], detected: u64) -> u64 {
    detectors
        .iter()
        .filter_map(|d| d.open_event_start())
        .min()
        .unwrap_or(detected)
        .min(detected)
}

/// Turns input blocks into output blocks and events, for one job on one
/// stream. Planned by a [`Backend`].
pub trait ChunkProcessor: Send {
    /// Frames an output block must be able to hold.
    fn output_capacity(&self) -> usize;
    /// Processes one input block: writes the output frames that are complete
    /// to `output` (possibly fewer or more than the input's, as filters have
    /// latency) and appends finished events.
    fn process(&mut self, input: &Block, output: &mut Block, events: &mut Vec<Event>)
    -> Result<()>;
    /// The input has ended: writes the remaining output to `output` and
    /// appends the remaining events. Call until it returns `false`.
    fn finish(&mut self, output: &mut Block, events: &mut Vec<Event>) -> Result<bool>;
    /// No event reported later will start before this output index (used to
    /// order events across channels while streaming).
    fn horizon(&self) -> u64;
    /// Output frames (per channel) produced so far, whether or not they were
    /// written to output blocks (see [`Job::discard_signal`]).
    fn emitted(&self) -> u64;
    /// How the filter is computed (for the report), if there is one.
    fn fir_method(&self) -> Option<String>;
    /// The snippets cut around the events (`--snippets`), which the
    /// pipeline takes as it writes each event; `None` without.
    fn snippets(&mut self) -> Option<&mut crate::detect::snippet::Snippets> {
        None
    }
}

/// What a backend will allocate for one plan, known before it plans, so
/// that the chunk planner can check it against the memory budget before
/// anything is allocated (see [`crate::pipeline::plan_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Frames an output block must hold ([`ChunkProcessor::output_capacity`]
    /// of the plan).
    pub output_frames: usize,
    /// Bytes the processor allocates itself: filter state, detectors, blocks
    /// it keeps, staging and device buffers (saturating, never wrapping).
    pub bytes: u64,
}

/// Where the chunk work runs.
pub trait Backend: Send + Sync {
    /// Short name, as in the report's `backend` field.
    fn name(&self) -> &'static str;
    /// What exactly runs the work (CPU model and threads, GPU adapter).
    fn device(&self) -> String;
    /// Plans `job` for a stream of `channels` channels read in blocks of at
    /// most `chunk` frames, using up to `threads` threads.
    fn plan(
        &self,
        job: &Job,
        channels: usize,
        chunk: usize,
        threads: usize,
    ) -> Result<Box<dyn ChunkProcessor>>;
    /// What [`Backend::plan`] would allocate for the same arguments, without
    /// allocating it. It must not decrease as `chunk` grows (the planner
    /// searches for the largest chunk that fits).
    fn footprint(&self, job: &Job, channels: usize, chunk: usize, threads: usize) -> Footprint;
}

/// The `--backend` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU. Never a software
    /// rasteriser (lavapipe, llvmpipe, WARP): those are slower than the CPU
    /// backend on the same CPU.
    #[default]
    Auto,
    /// The CPU backend.
    Cpu,
    /// The GPU backend on any adapter, software ones included; an error
    /// when there is none.
    Gpu,
}

/// How [`open_gpu`] lists the adapters for [`BackendChoice::Auto`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterProbe {
    /// Enumerate them in this process. Simple, but it loads every installed
    /// GPU driver into the process: a software one (Mesa's lavapipe, with
    /// LLVM) adds ~60 MB of resident memory even when the CPU is then chosen.
    InProcess,
    /// Run `EXE info --gpus --json` (a `sigstream` binary) and read its
    /// list, so that no driver is loaded here unless a hardware adapter is
    /// then opened. What the CLI does.
    Child(std::path::PathBuf),
}

/// Whether this machine can have a hardware GPU at all, judged without
/// loading any driver.
///
/// On Linux a GPU that Vulkan can drive shows up as a device node: a DRM
/// render node (`/dev/dri/renderD*`), the NVIDIA driver's `/dev/nvidia*`,
/// or WSL's `/dev/dxg`. Without any of them only a software rasteriser can
/// exist, which [`BackendChoice::Auto`] never picks, so `auto` costs
/// nothing there (no probe, no child process). On other systems there is no
/// such cheap test, and this returns `true`.
pub fn hardware_gpu_possible() -> bool {
    if cfg!(target_os = "linux") {
        gpu_device_nodes_in(std::path::Path::new("/dev"))
    } else {
        true
    }
}

/// Whether `dev` (a `/dev`) holds a GPU device node: `dri/renderD*`,
/// `nvidia*` or `dxg`.
pub fn gpu_device_nodes_in(dev: &std::path::Path) -> bool {
    let has = |dir: &std::path::Path, prefix: &str| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
    };
    has(&dev.join("dri"), "renderD") || has(dev, "nvidia") || dev.join("dxg").exists()
}

/// The GPU adapters as (name, is software), listed by `exe info --gpus
/// --json` in a child process; `None` when the child could not be run or
/// said something else.
pub fn adapters_in_child(exe: &std::path::Path) -> Option<Vec<(String, bool)>> {
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
        list["gpus"]
            .as_array()?
            .iter()
            .filter_map(|a| Some((a["name"].as_str()?.to_owned(), a["software"] != false)))
            .collect(),
    )
}

/// The GPU a choice runs on, `None` for the CPU; `adapter` restricts the
/// GPU to adapters whose name contains it (case-insensitive).
///
/// [`BackendChoice::Auto`] takes a hardware adapter only: where none can
/// exist ([`hardware_gpu_possible`]) it is the CPU at once, otherwise the
/// adapters are listed as `probe` says and a hardware one is opened.
///
/// # Errors
/// As [`gpu_context`].
pub fn open_gpu(
    choice: BackendChoice,
    adapter: Option<&str>,
    probe: &AdapterProbe,
) -> Result<Option<Arc<gpu::GpuContext>>> {
    if choice == BackendChoice::Auto && adapter.is_none() && !hardware_gpu_possible() {
        return Ok(None);
    }
    let listed = match (choice, probe) {
        (BackendChoice::Auto, AdapterProbe::Child(exe)) => adapters_in_child(exe),
        _ => None,
    };
    gpu_context(choice, adapter, listed)
}

/// The backend a choice runs on (see [`open_gpu`]).
///
/// # Errors
/// As [`gpu_context`].
pub fn open(
    choice: BackendChoice,
    adapter: Option<&str>,
    probe: &AdapterProbe,
) -> Result<Arc<dyn Backend>> {
    Ok(match open_gpu(choice, adapter, probe)? {
        #[cfg(feature = "gpu")]
        Some(ctx) => Arc::new(gpu::GpuBackend::with_context(ctx)),
        #[cfg(not(feature = "gpu"))]
        Some(ctx) => match *ctx {},
        None => Arc::new(cpu::CpuBackend),
    })
}

/// The GPU device a choice runs on, `None` for the CPU; `adapter` restricts
/// the GPU to adapters whose name contains it (`--gpu-adapter`).
///
/// For [`BackendChoice::Auto`], `listed` is the adapters as (name, is
/// software) when the caller already knows them; with `None` they are
/// enumerated in this process, which loads every installed GPU driver (a
/// software one adds ~60 MB of resident memory even when the CPU is then
/// chosen), so the CLI lists them in a child process and passes them in.
///
/// # Errors
/// [`Error::Gpu`] for [`BackendChoice::Gpu`] without a usable adapter, or
/// for [`BackendChoice::Auto`] when `adapter` is given and matches no
/// hardware adapter.
#[cfg(feature = "gpu")]
pub fn gpu_context(
    choice: BackendChoice,
    adapter: Option<&str>,
    listed: Option<Vec<(String, bool)>>,
) -> Result<Option<Arc<gpu::GpuContext>>, Error> {
    let open = |adapter: Option<&str>| {
        gpu::GpuContext::new(&gpu::GpuOptions {
            adapter: adapter.map(str::to_owned),
            allow_software: choice == BackendChoice::Gpu,
        })
    };
    match choice {
        BackendChoice::Cpu => Ok(None),
        BackendChoice::Gpu => open(adapter).map(Some),
        BackendChoice::Auto => {
            let wanted = adapter.map(str::to_lowercase);
            let hardware = listed.map(|list| {
                list.into_iter()
                    .filter(|(_, software)| !software)
                    .map(|(name, _)| name)
                    .find(|name| {
                        wanted
                            .as_deref()
                            .is_none_or(|w| name.to_lowercase().contains(w))
                    })
            });
            match hardware {
                // Listed: open exactly that adapter.
                Some(Some(name)) => open(Some(&name)).map(Some),
                // Listed, none: the CPU, unless one was asked for by name
                // (then `open` says which adapters there are).
                Some(None) if adapter.is_none() => Ok(None),
                _ => match open(adapter) {
                    Ok(ctx) => Ok(Some(ctx)),
                    Err(e) if adapter.is_some() => Err(e),
                    Err(_) => Ok(None),
                },
            }
        }
    }
}

/// The GPU device a choice runs on: in a build without the `gpu` cargo
/// feature, always the CPU.
///
/// # Errors
/// [`Error::Gpu`] when the GPU is asked for, by [`BackendChoice::Gpu`] or
/// by an adapter's name: this binary cannot drive one.
#[cfg(not(feature = "gpu"))]
pub fn gpu_context(
    choice: BackendChoice,
    adapter: Option<&str>,
    _listed: Option<Vec<(String, bool)>>,
) -> Result<Option<Arc<gpu::GpuContext>>, Error> {
    if choice == BackendChoice::Gpu || (choice == BackendChoice::Auto && adapter.is_some()) {
        return Err(Error::gpu(
            "this sigstream was built without the GPU backend (cargo feature `gpu`); rebuild with default features, or use --backend cpu",
        ));
    }
    Ok(None)
}

/// The backend for a choice, adapters enumerated in this process (see
/// [`open`] and [`AdapterProbe::InProcess`]).
///
/// # Errors
/// As [`gpu_context`].
pub fn select(choice: BackendChoice, adapter: Option<&str>) -> Result<Arc<dyn Backend>, Error> {
    open(choice, adapter, &AdapterProbe::InProcess)
}
