//! Run statistics, and the run's real peak memory.
//!
//! Why peak memory is measured here rather than by the caller: the figure
//! must mean the same on every OS and in every report (`process`, `fft`,
//! `spectrogram`, `psd`, `bench`), and it must not leave out work the run
//! started in a child process (`--backend auto` lists the GPU adapters in a
//! child, `sigstream info --gpus --json`, so that their drivers stay out of
//! this process; a software Vulkan driver costs that child ~60 MB).
//!
//! What [`peak_rss_bytes`] reports is the larger of this process's own peak
//! resident set ([`own_peak_rss_bytes`]) and the largest peak of the child
//! processes it has waited for ([`children_peak_rss_bytes`]): the peak of
//! any one process of the run. It is a max, not a sum, because the children
//! exit before the run's buffers exist: their peaks and this process's
//! never coincide, and adding them would count memory that was never in use
//! at once. What the max may leave out is what this process held while a
//! child ran (its start-up memory, a few MiB).

/// The run's peak resident set size in bytes: this process's own peak or
/// the largest peak of its waited-for children, whichever is larger (see
/// the module docs). File-backed pages count, as the kernel counts them.
///
/// On Windows children are not counted (the OS keeps no peak of waited-for
/// children; only a job object would): the figure is the process's own.
pub fn peak_rss_bytes() -> u64 {
    own_peak_rss_bytes().max(children_peak_rss_bytes())
}

/// Peak resident set size in MiB (2^20 bytes), as [`peak_rss_bytes`].
pub fn peak_rss_mib() -> f64 {
    peak_rss_bytes() as f64 / (1024.0 * 1024.0)
}

/// This process's own peak resident set size in bytes, 0 where the OS does
/// not say.
///
/// - Linux: `VmHWM` from `/proc/self/status`, the high-water mark of this
///   process image's memory. Not `getrusage`'s `ru_maxrss`, which `execve`
///   carries over from the image before it (a child spawned by a large
///   process would report its parent's peak). When `/proc` is not mounted,
///   `ru_maxrss`.
/// - macOS and the other Unixes: `getrusage(RUSAGE_SELF).ru_maxrss`
///   (bytes on macOS, KiB elsewhere).
/// - Windows: `GetProcessMemoryInfo`'s `PeakWorkingSetSize`.
pub fn own_peak_rss_bytes() -> u64 {
    os::own_peak()
}

/// The largest peak resident set size, in bytes, of the child processes
/// this process has waited for (and of their waited-for descendants): Unix
/// `getrusage(RUSAGE_CHILDREN).ru_maxrss`. 0 before any child has been
/// waited for, and always 0 on Windows (see [`peak_rss_bytes`]).
///
/// On Linux a child's figure includes the peak of the image it replaced at
/// `execve`, which for a spawned child is this process's memory at spawn
/// time: never more than [`own_peak_rss_bytes`], so the max in
/// [`peak_rss_bytes`] is not inflated by it.
pub fn children_peak_rss_bytes() -> u64 {
    os::children_peak()
}

/// `VmHWM` from `/proc/self/status`, in bytes.
#[cfg(target_os = "linux")]
fn vm_hwm() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(unix)]
mod os {
    /// Bytes per unit of `ru_maxrss`: bytes on macOS, KiB on Linux and the
    /// BSDs.
    const MAXRSS_UNIT: u64 = if cfg!(target_os = "macos") { 1 } else { 1024 };

    /// `getrusage(who).ru_maxrss` in bytes, 0 when the call fails.
    fn maxrss(who: libc::c_int) -> u64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `usage` points to writable memory of the right type;
        // getrusage fills it and does nothing else.
        let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
        if rc != 0 {
            return 0;
        }
        // SAFETY: getrusage returned 0, so it initialised the struct.
        let maxrss = unsafe { usage.assume_init() }.ru_maxrss;
        u64::try_from(maxrss).unwrap_or(0) * MAXRSS_UNIT
    }

    pub(super) fn own_peak() -> u64 {
        #[cfg(target_os = "linux")]
        let hwm = super::vm_hwm();
        #[cfg(not(target_os = "linux"))]
        let hwm = None;
        hwm.unwrap_or_else(|| maxrss(libc::RUSAGE_SELF))
    }

    pub(super) fn children_peak() -> u64 {
        maxrss(libc::RUSAGE_CHILDREN)
    }
}

#[cfg(windows)]
mod os {
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    pub(super) fn own_peak() -> u64 {
        // SAFETY: PROCESS_MEMORY_COUNTERS is plain data, valid zeroed.
        let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
        counters.cb = size;
        // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no
        // closing; `counters` is writable and `size` is its size, which is
        // all GetProcessMemoryInfo writes.
        let ok = unsafe { GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, size) };
        if ok == 0 {
            return 0;
        }
        counters.PeakWorkingSetSize as u64
    }

    pub(super) fn children_peak() -> u64 {
        0
    }
}

#[cfg(not(any(unix, windows)))]
mod os {
    pub(super) fn own_peak() -> u64 {
        0
    }

    pub(super) fn children_peak() -> u64 {
        0
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Input frames (samples per channel).
    pub samples: u64,
    /// Output frames (samples per channel) after the conv mode and the
    /// decimation.
    pub output_samples: u64,
    /// Channels (a complex channel counts once).
    pub channels: usize,
    /// Chunks read.
    pub chunks: u64,
    /// Events found (written: after de-duplication).
    pub events: u64,
    /// Events dropped as duplicates of a neighbour's (`--dedup-window`).
    pub duplicates: u64,
    /// Bytes of sample data read.
    pub bytes: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Input bytes per second, in MB/s (10^6 bytes).
    pub throughput_mb_s: f64,
    /// The run's peak resident set size so far, in MiB: this process's or
    /// its largest child's, whichever is larger ([`peak_rss_bytes`]).
    pub peak_rss_mb: f64,
    /// Backend name.
    pub backend: String,
    /// What ran the work.
    pub device: String,
    /// Samples of history carried between chunks (the seed's "overlap"),
    /// derived from the stages.
    pub overlap: usize,
    /// Frames per chunk.
    pub chunk_size: usize,
    /// The memory limit the chunk was planned under, in MiB: the
    /// configured one, or more when a default limit was raised to fit the
    /// job's own state (see [`super::StreamConfig::strict_memory_limit`]).
    pub memory_limit_mb: f64,
    /// The planner's estimate of the run's peak memory, in MiB.
    pub planned_mb: f64,
    /// How the backend computed the filter, if there was one.
    pub fir_method: Option<String>,
}

impl Stats {
    /// Adds the counts of another run of the same job over a later part of
    /// the same input (a miniSEED segment): samples, chunks, events, bytes
    /// and seconds add up, the peaks and the plan are the larger, and the
    /// throughput is left for the caller to work out from the sums.
    pub fn add(&mut self, other: &Stats) {
        self.samples += other.samples;
        self.output_samples += other.output_samples;
        self.chunks += other.chunks;
        self.events += other.events;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
        self.seconds += other.seconds;
        self.channels = other.channels;
        self.peak_rss_mb = self.peak_rss_mb.max(other.peak_rss_mb);
        self.backend.clone_from(&other.backend);
        self.device.clone_from(&other.device);
        self.overlap = other.overlap;
        self.chunk_size = self.chunk_size.max(other.chunk_size);
        self.memory_limit_mb = self.memory_limit_mb.max(other.memory_limit_mb);
        self.planned_mb = self.planned_mb.max(other.planned_mb);
        if other.fir_method.is_some() {
            self.fir_method.clone_from(&other.fir_method);
        }
    }
}
