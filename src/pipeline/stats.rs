//! Run statistics, and the process's real peak memory.

/// Peak resident set size of this process in bytes: the kernel's high-water
/// mark (`ru_maxrss`, the same figure as `VmHWM` and `/usr/bin/time -v`'s
/// "Maximum resident set size"), file-backed pages included.
///
/// On Linux the figure comes from `VmHWM` in `/proc/self/status`: unlike
/// `ru_maxrss`, which `execve` carries over from the process image before
/// it (a child spawned by a large test process would report the parent's
/// peak), `VmHWM` belongs to this image's own memory.
pub fn peak_rss_bytes() -> u64 {
    if let Some(hwm) = vm_hwm() {
        return hwm;
    }
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory of the right type; getrusage
    // fills it and does nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage returned 0, so it initialised the struct.
    let maxrss = unsafe { usage.assume_init() }.ru_maxrss as u64;
    if cfg!(target_os = "macos") {
        maxrss
    } else {
        maxrss * 1024
    }
}

/// `VmHWM` from `/proc/self/status`, in bytes (Linux only).
fn vm_hwm() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident set size in MiB (2^20 bytes).
pub fn peak_rss_mib() -> f64 {
    peak_rss_bytes() as f64 / (1024.0 * 1024.0)
}

/// What one run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Input frames (samples per channel).
    pub samples: u64,
    /// Output frames (samples per channel) after the conv mode.
    pub output_samples: u64,
    /// Channels.
    pub channels: usize,
    /// Chunks read.
    pub chunks: u64,
    /// Events found.
    pub events: u64,
    /// Bytes of sample data read.
    pub bytes: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Input bytes per second, in MB/s (10^6 bytes).
    pub throughput_mb_s: f64,
    /// The process's peak resident set size so far, in MiB.
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
    /// How the backend computed the filter, if there was one.
    pub fir_method: Option<String>,
}
