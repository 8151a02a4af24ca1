//! The exact DFT of a whole signal larger than memory: a four-step
//! transform through a scratch file, with bounded memory.
//!
//! Why it exists: `np.fft.rfft` of a 50M-sample recording takes 3.3 GB of
//! memory; a recording of 10^10 samples cannot be transformed that way at
//! all. This module computes the same spectrum (one-sided like
//! `np.fft.rfft`, or all `N` bins like `np.fft.fft` with
//! [`FftOptions::full`]) within [`FftOptions::memory_limit`].
//!
//! # The decomposition
//! The complex sequence `z` of length `M = P·L` is viewed as a `P × L`
//! row-major matrix, `z[L·p + l]`. Then, with `k = k1 + P·k2`,
//!
//! ```text
//! Z[k1 + P·k2] = Σ_l W_L^(l·k2) · W_M^(l·k1) · Σ_p z[L·p + l] · W_P^(p·k1)
//! ```
//!
//! so the transform is `L` FFTs of length `P` down the columns, a twiddle
//! multiplication by `W_M^(l·k1)`, and `P` FFTs of length `L` along the rows,
//! whose results land transposed. Three passes over the data do it:
//!
//! 1. **input → scratch A**: read the input sequentially, `R` rows at a
//!    time, and write them as tiles so that each block of `B` columns is
//!    contiguous in scratch A.
//! 2. **scratch A → scratch B**: read one column block (`P × B` values),
//!    FFT its columns, multiply by the twiddles, and write each group of
//!    rows' share of it as a contiguous tile in scratch B.
//! 3. **scratch B → output**: read one group of rows (`A × L` values),
//!    FFT them, and write the bins where they belong in the output.
//!
//! Counted in values of the complex sequence (`M` complex values are `N`
//! reals for real input), that is **1 read of the input, 2 writes and 2
//! reads of `M` values through the scratch file, and 1 write of the
//! output**: 3 reads and 3 writes of the data in all, each in blocks of
//! tens of kilobytes or more (`pread`/`pwrite` of whole tiles; every
//! transpose happens in memory). The scratch file (`2·M·8` bytes) lies
//! beside the output and is removed at the end.
//!
//! # Real input
//! A real signal of even length `N` is packed into `M = N/2` complex values
//! `z[m] = x[2m] + i·x[2m+1]`, transformed, and untangled in pass 3:
//! `X[k] = E[k] + W_N^k·O[k]` with `E = (Z[k] + conj Z[M−k])/2` and
//! `O = (Z[k] − conj Z[M−k])/(2i)`. The rows of pass 3 are grouped so that
//! every row `k1` comes with its mirror `P − k1`, so both bins of each pair
//! are in memory together. This halves the work against a complex transform
//! of `N` values. Odd `N`, and `--full`, transform `N` complex values.
//!
//! # Complex input
//! A complex (I/Q) channel, read as its two planes, is the complex sequence
//! itself: `z[m] = I[m] + i·Q[m]`, `M = N`, all `N` bins in numpy's order
//! (`np.fft.fft`: `0, 1, …, then the negative frequencies`), whatever
//! [`FftOptions::full`] says (a complex signal has no one-sided spectrum).
//!
//! # When it runs in core, and when it refuses
//! A signal whose transform fits in the limit (about `4·M·8` bytes: the
//! data, rustfft's scratch and its plan; `12·M·8` when a prime factor above
//! 1000 takes Bluestein's algorithm) is simply read into memory and
//! transformed by rustfft. Otherwise `M` must split into `P·L` with both
//! factors small enough for the limit; rustfft handles any `P` and `L`
//! (Bluestein's algorithm for large prime factors included). A length
//! with no such split (a large prime, or a prime factor larger than the
//! limit allows) is rejected with the largest prime factor and the limit
//! it would need.
//!
//! # GPU
//! With [`FftOptions::gpu`], the batched FFTs of passes 2 and 3 run on the
//! GPU through [`GpuFftBatch`] when their length is a power of two (else that
//! pass stays on the CPU); the twiddles, the transposes, the real-input
//! untangling and all I/O stay on the CPU. Each block is uploaded and read
//! back synchronously through mapped buffers made once per pass (nothing is
//! allocated per block), so the GPU path does not
//! overlap transfers with I/O: it is a correctness path that a hardware GPU
//! speeds up only when the FFTs, not the disk, dominate.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use rustfft::num_complex::{Complex32, Complex64};
use rustfft::{Fft, FftPlanner};

use crate::backend::gpu::GpuContext;
use crate::backend::gpu::fft::GpuFftBatch;
use crate::error::{Error, Result};
use crate::io_at::PositionalIo;
use crate::pipeline::stats;
use crate::pool::Block;
use crate::sink::{AtomicFile, NPY_HEADER_LEN, npy_c8_header};
use crate::source::{self, ChunkSource, SourceOptions};

/// Default `--memory-limit`, in bytes (64 MiB).
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;

/// Memory the process needs whatever the transform (binary, libraries,
/// thread stacks, allocator): measured at 4.6 MiB for `sigstream info`,
/// rounded up. Counted against the limit before any buffer.
pub const BASELINE_BYTES: u64 = 6 << 20;

/// Frames per read of the input (the source's block and its mmap window).
const READ_FRAMES: usize = 1 << 16;

/// Bytes per complex64 value.
const C8: u64 = 8;

/// What to compute, and within which memory.
#[derive(Debug, Clone)]
pub struct FftOptions {
    /// Peak resident memory the whole process may use, in bytes.
    pub memory_limit: u64,
    /// All `N` bins (like `np.fft.fft`) instead of the `N/2 + 1` of a real
    /// signal's one-sided spectrum (like `np.fft.rfft`). Complex input
    /// always gives all `N`.
    pub full: bool,
    /// The channel to transform (a complex channel counts once); required
    /// when the input has several.
    pub channel: Option<usize>,
    /// Run the batched FFTs of the out-of-core passes on this GPU.
    pub gpu: Option<Arc<GpuContext>>,
    /// Where the scratch file goes (default: beside the output).
    pub scratch_dir: Option<PathBuf>,
    /// Force the out-of-core path even when the signal fits (tests).
    pub force_out_of_core: bool,
    /// Caps the complex values per work buffer of the out-of-core path
    /// (tests: many blocks and groups on small signals).
    pub max_buffer: Option<usize>,
}

impl Default for FftOptions {
    fn default() -> Self {
        FftOptions {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            full: false,
            channel: None,
            gpu: None,
            scratch_dir: None,
            force_out_of_core: false,
            max_buffer: None,
        }
    }
}

/// How a transform is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FftPlan {
    /// Samples in (real, or complex values of a complex channel).
    pub n: u64,
    /// Whether the input is complex (I/Q): `M = N`, `N` bins.
    pub complex: bool,
    /// Length of the complex transform (`N/2` when packed, else `N`).
    pub m: u64,
    /// Real input of even length packed into `N/2` complex values.
    pub packed: bool,
    /// Bins out: `N/2 + 1` (rounded down), or `N` with `full` or complex
    /// input.
    pub bins: u64,
    /// In core, or the out-of-core split.
    pub layout: Layout,
}

/// In core or out of core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The whole signal in memory, one rustfft transform.
    InCore,
    /// The four-step split `M = P·L` through a scratch file.
    OutOfCore {
        /// Rows: length of the column FFTs (pass 2).
        p: usize,
        /// Columns: length of the row FFTs (pass 3).
        l: usize,
        /// Complex values in each of the two work buffers.
        buf: usize,
    },
}

impl FftPlan {
    /// Passes over the data: 1 in core, 3 out of core.
    pub fn passes(&self) -> usize {
        match self.layout {
            Layout::InCore => 1,
            Layout::OutOfCore { .. } => 3,
        }
    }
}

/// What a transform did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FftStats {
    /// Samples transformed (of the one channel).
    pub samples: u64,
    /// Whether the channel was complex (I/Q).
    pub complex: bool,
    /// Bins written.
    pub bins: u64,
    /// Length of the complex transform.
    pub transform_len: u64,
    /// Whether the real signal was packed into `N/2` complex values.
    pub packed: bool,
    /// Whether it ran in core.
    pub in_core: bool,
    /// The split `P × L` (`None` in core).
    pub split: Option<(usize, usize)>,
    /// Passes over the data.
    pub passes: usize,
    /// Bytes of scratch file used.
    pub scratch_bytes: u64,
    /// Passes whose FFTs ran on the GPU.
    pub gpu_passes: Vec<String>,
    /// Wall time.
    pub seconds: f64,
    /// The process's peak resident set size, MiB.
    pub peak_rss_mb: f64,
}

/// Where a pass is, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct PassProgress {
    /// 1-based pass number.
    pub pass: usize,
    /// Passes in all.
    pub passes: usize,
    /// What the pass does.
    pub name: &'static str,
    /// Values done in this pass.
    pub done: u64,
    /// Values in this pass.
    pub total: u64,
}

/// Transforms channel [`FftOptions::channel`] of `input` and writes the
/// spectrum to `out` as a complex64 `.npy` (atomically).
///
/// # Errors
/// [`Error::Open`]/[`Error::Format`] for a bad input (missing, empty, of
/// unknown length, several channels without a choice), [`Error::Format`]
/// when its length cannot be transformed within the limit,
/// [`Error::Usage`] for a limit below [`BASELINE_BYTES`] plus a minimum,
/// [`Error::Io`] when reading or writing fails, [`Error::Gpu`] from the GPU.
pub fn fft_file(
    input: &Path,
    opts: &SourceOptions,
    fft: &FftOptions,
    out: &Path,
    progress: &mut dyn FnMut(&PassProgress),
) -> Result<FftStats> {
    let mut source = source::open(input, opts)?;
    fft_source(source.as_mut(), fft, out, progress)
}

/// As [`fft_file`], from an opened source.
///
/// # Errors
/// As [`fft_file`].
pub fn fft_source(
    source: &mut dyn ChunkSource,
    fft: &FftOptions,
    out: &Path,
    progress: &mut dyn FnMut(&PassProgress),
) -> Result<FftStats> {
    let started = Instant::now();
    let info = source.info().clone();
    let path = info.path.clone();
    let channel = match (fft.channel, info.signal_channels()) {
        (Some(c), n) if c >= n => {
            return Err(Error::format(
                &path,
                format!(
                    "--channel {c}: the input has {n} channel{} (0..{})",
                    if n == 1 { "" } else { "s" },
                    n - 1
                ),
            ));
        }
        (Some(c), _) => c,
        (None, 1) => 0,
        (None, n) => {
            return Err(Error::format(
                &path,
                format!(
                    "{n} channels: choose the one to transform with --channel C (0..{})",
                    n - 1
                ),
            ));
        }
    };
    let Some(n) = info.frames else {
        return Err(Error::format(
            &path,
            "length unknown (a stream): the transform needs a file",
        ));
    };
    if n == 0 {
        return Err(Error::format(&path, "no samples to transform"));
    }
    let plan = plan_input(n, info.channels, info.complex, fft).map_err(|e| match e {
        Error::Usage { msg } => Error::format(&path, msg),
        e => e,
    })?;
    let mut reader = if info.complex {
        ChannelReader::new(source, 2 * channel, Some(2 * channel + 1))
    } else {
        ChannelReader::new(source, channel, None)
    };
    let output = Output::create(out, plan.bins)?;
    let mut run = Run {
        plan: &plan,
        progress,
        gpu_passes: Vec::new(),
    };
    let mut scratch_bytes = 0;
    match plan.layout {
        Layout::InCore => run.in_core(&mut reader, &output)?,
        Layout::OutOfCore { p, l, buf } => {
            let dir = fft
                .scratch_dir
                .clone()
                .unwrap_or_else(|| parent_dir(out).to_path_buf());
            // Unlinked from the start (O_TMPFILE on Linux, unlinked right
            // after creation on other Unixes, delete-on-close on Windows):
            // no name ever appears in `dir`, and even `kill -9` leaves
            // nothing behind: the space is freed when the file is closed.
            let scratch = tempfile::tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
            let scratch_name = dir.join("<fft scratch>");
            scratch_bytes = 2 * plan.m * C8;
            let ooc = OutOfCore::new(p, l, buf, plan.packed, fft.gpu.clone())?;
            run.out_of_core(&ooc, &mut reader, &scratch, &scratch_name, &output)?;
        }
    }
    let gpu_passes = run.gpu_passes;
    output.commit()?;
    Ok(FftStats {
        samples: n,
        complex: plan.complex,
        bins: plan.bins,
        transform_len: plan.m,
        packed: plan.packed,
        in_core: plan.layout == Layout::InCore,
        split: match plan.layout {
            Layout::InCore => None,
            Layout::OutOfCore { p, l, .. } => Some((p, l)),
        },
        passes: plan.passes(),
        scratch_bytes,
        gpu_passes,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: stats::peak_rss_mib(),
    })
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Plans the transform of `n` real samples of a `channels`-channel input
/// within `opts.memory_limit` bytes: in core when it fits (unless
/// `opts.force_out_of_core`), else the out-of-core split.
///
/// # Errors
/// [`Error::Usage`] when the limit is below what the process needs for
/// itself, or when no split of the length fits (the message names the
/// length's largest prime factor and the limit that would do).
pub fn plan(n: u64, channels: usize, opts: &FftOptions) -> Result<FftPlan> {
    plan_input(n, channels, false, opts)
}

/// As [`plan`], for `n` samples of an input of `planes` planes, real or
/// `complex` (a complex channel is two planes and transforms as `N`
/// complex values into `N` bins).
///
/// # Errors
/// As [`plan`].
pub fn plan_input(n: u64, planes: usize, complex: bool, opts: &FftOptions) -> Result<FftPlan> {
    let channels = planes;
    let (full, memory_limit) = (opts.full || complex, opts.memory_limit);
    let packed = !full && n >= 2 && n.is_multiple_of(2);
    let m = if packed { n / 2 } else { n };
    let bins = if full { n } else { n / 2 + 1 };
    let read_bytes = READ_FRAMES as u64 * channels as u64 * 12;
    let fixed = BASELINE_BYTES + read_bytes;
    let min_limit = fixed + (1 << 20);
    if memory_limit < min_limit {
        return Err(Error::usage(format!(
            "--memory-limit {}: too small; sigstream needs {} MiB for itself and its reads, and at least 1 MiB more for the transform",
            mib(memory_limit),
            mib(fixed.div_ceil(1 << 20) << 20)
        )));
    }
    let work = memory_limit - fixed;
    let mut layout = None;
    // In core: the data (with room for the extra bin), rustfft's scratch and
    // its plan (twiddles, inner plans): about three more transforms' worth
    // for lengths rustfft splits into small factors, and about eleven when
    // a large prime factor takes Bluestein's algorithm (an inner transform
    // of twice the length or more, with its own scratch and plan).
    let copies = if largest_prime_factor(m) <= 1000 {
        4
    } else {
        12
    };
    let in_core_bytes = copies * (m + 1) * C8 + twiddle_table_bytes(2 * m);
    if !opts.force_out_of_core && in_core_bytes <= work {
        layout = Some(Layout::InCore);
    }
    if layout.is_none() {
        layout = split(m, work, packed, opts.max_buffer.unwrap_or(usize::MAX));
    }
    let Some(layout) = layout else {
        let big = largest_prime_factor(m);
        let what = if packed {
            format!("the {m} complex values that {n} real samples pack into")
        } else {
            format!("{m} values")
        };
        // A split needs both factors (at least the largest prime) to fit
        // about 8 buffers' worth of memory each; the transform in core needs
        // `copies` of the data.
        let need_split = fixed + 32 * big.max(isqrt(m)) * C8;
        let need = need_split.min(fixed + in_core_bytes);
        return Err(Error::usage(format!(
            "cannot transform {what} within --memory-limit {} MiB: the length's largest prime factor is {big}, and an out-of-core split M = P·L needs P and L to fit in memory; it needs --memory-limit {} MiB or more",
            mib(memory_limit),
            need.div_ceil(1 << 20)
        )));
    };
    Ok(FftPlan {
        n,
        complex,
        m,
        packed,
        bins,
        layout,
    })
}

fn mib(bytes: u64) -> String {
    let v = bytes as f64 / (1 << 20) as f64;
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The first split `M = P·L` (smallest `L`, which makes the scratch I/O
/// segments longest) that fits `work` bytes: two buffers of `buf` values
/// holding at least two columns (`2·P ≤ buf`) and two rows (`2·L ≤ buf`),
/// plus the FFT plans, their per-thread scratch and the twiddle tables.
fn split(m: u64, work: u64, packed: bool, max_buffer: usize) -> Option<Layout> {
    let threads = rayon::current_num_threads() as u64;
    let cap = work / (4 * C8);
    let mut divisors = divisors(m);
    divisors.sort_unstable();
    for &l in &divisors {
        let p = m / l;
        if l < 2 || p < 2 || p > cap || l > cap {
            continue;
        }
        let (p, l) = (p as usize, l as usize);
        let mut planner = FftPlanner::<f32>::new();
        let sp = planner.plan_fft_forward(p).get_inplace_scratch_len() as u64;
        let sl = planner.plan_fft_forward(l).get_inplace_scratch_len() as u64;
        drop(planner);
        let fixed = threads * sp.max(sl) * C8
            + 2 * (p + l) as u64 * C8
            + p as u64 * 4
            + twiddle_table_bytes(m)
            + if packed {
                twiddle_table_bytes(2 * m)
            } else {
                0
            };
        let Some(left) = work.checked_sub(fixed) else {
            continue;
        };
        let buf = (left / (2 * C8)).min(max_buffer as u64);
        if 2 * p as u64 <= buf && 2 * l as u64 <= buf {
            return Some(Layout::OutOfCore {
                p,
                l,
                buf: buf.min(m) as usize,
            });
        }
    }
    None
}

fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// The prime factors of `n` with multiplicity (trial division: at most
/// 2^20 steps for lengths below 2^40).
fn factor(mut n: u64) -> Vec<u64> {
    let mut f = Vec::new();
    let mut d = 2;
    while d * d <= n {
        while n.is_multiple_of(d) {
            f.push(d);
            n /= d;
        }
        d += if d == 2 { 1 } else { 2 };
    }
    if n > 1 {
        f.push(n);
    }
    f
}

/// The largest prime factor of `n` (1 for 1).
pub fn largest_prime_factor(n: u64) -> u64 {
    factor(n).into_iter().max().unwrap_or(1)
}

fn divisors(n: u64) -> Vec<u64> {
    let mut ds = vec![1u64];
    let f = factor(n);
    let mut i = 0;
    while i < f.len() {
        let p = f[i];
        let mut k = 0;
        while i < f.len() && f[i] == p {
            k += 1;
            i += 1;
        }
        let base = ds.clone();
        let mut pk = 1;
        for _ in 0..k {
            pk *= p;
            ds.extend(base.iter().map(|d| d * pk));
        }
    }
    ds
}

// ------------------------------------------------------------- twiddles

/// `W_mod^r = exp(−2πi·r/mod)` for `0 ≤ r ≤ mod`, from two tables of about
/// `√mod` values each, in f64: `W^r = hi[r >> s] · lo[r & mask]`. Exact to
/// f64 rounding, with no sin/cos per value.
struct Twiddles {
    shift: u32,
    mask: u64,
    lo: Vec<Complex64>,
    hi: Vec<Complex64>,
}

fn twiddle_table_bytes(modulus: u64) -> u64 {
    let s = (isqrt(modulus) + 1).next_power_of_two();
    (s + modulus / s + 2) * 16
}

impl Twiddles {
    fn new(modulus: u64) -> Self {
        let s = (isqrt(modulus) + 1).next_power_of_two();
        let w = |r: u64| {
            let a = -2.0 * std::f64::consts::PI * (r as f64 / modulus as f64);
            Complex64::new(a.cos(), a.sin())
        };
        Twiddles {
            shift: s.trailing_zeros(),
            mask: s - 1,
            lo: (0..s).map(w).collect(),
            hi: (0..=modulus / s).map(|h| w(h * s)).collect(),
        }
    }

    #[inline]
    fn get(&self, r: u64) -> Complex64 {
        self.hi[(r >> self.shift) as usize] * self.lo[(r & self.mask) as usize]
    }
}

// ---------------------------------------------------------------- input

/// Reads one channel of a source as a stream of complex values: real
/// samples in the real parts, or packed in pairs, or a complex channel's I
/// and Q planes as the real and imaginary parts.
struct ChannelReader<'a> {
    source: &'a mut dyn ChunkSource,
    channel: usize,
    /// The Q plane of a complex channel (`channel` is its I plane).
    imag: Option<usize>,
    block: Block,
    pos: usize,
    /// Samples read so far.
    read: u64,
}

impl<'a> ChannelReader<'a> {
    fn new(source: &'a mut dyn ChunkSource, channel: usize, imag: Option<usize>) -> Self {
        let channels = source.info().channels;
        ChannelReader {
            source,
            channel,
            imag,
            block: Block::new(channels, READ_FRAMES),
            pos: 0,
            read: 0,
        }
    }

    /// The next value: the real sample (imaginary part 0), or the complex
    /// channel's I and Q.
    fn next(&mut self) -> Result<Complex32> {
        if self.pos == self.block.frames() {
            let got = self.source.read_block(&mut self.block)?;
            self.pos = 0;
            if got == 0 {
                let info = self.source.info();
                return Err(Error::format(
                    &info.path,
                    format!(
                        "input ended after {} of {} samples",
                        self.read,
                        info.frames.unwrap_or(0)
                    ),
                ));
            }
        }
        let re = self.block.channel(self.channel)[self.pos];
        let im = self.imag.map_or(0.0, |q| self.block.channel(q)[self.pos]);
        let v = Complex32::new(re, im);
        self.pos += 1;
        self.read += 1;
        Ok(v)
    }

    /// Fills `out` with the next values: pairs of samples when `packed`,
    /// else one sample each (I and Q of a complex channel, or a real
    /// sample with a zero imaginary part).
    fn fill(&mut self, out: &mut [Complex32], packed: bool) -> Result<()> {
        let mut i = 0;
        while i < out.len() {
            if self.pos == self.block.frames() || (packed && self.pos + 1 >= self.block.frames()) {
                // Slow path at block edges (a pair may straddle two blocks).
                out[i] = if packed {
                    Complex32::new(self.next()?.re, self.next()?.re)
                } else {
                    self.next()?
                };
                i += 1;
                continue;
            }
            let src = &self.block.channel(self.channel)[self.pos..];
            if packed {
                let k = (src.len() / 2).min(out.len() - i);
                for (o, s) in out[i..i + k].iter_mut().zip(src.chunks_exact(2)) {
                    *o = Complex32::new(s[0], s[1]);
                }
                self.pos += 2 * k;
                self.read += 2 * k as u64;
                i += k;
            } else if let Some(q) = self.imag {
                let k = src.len().min(out.len() - i);
                let im = &self.block.channel(q)[self.pos..];
                for ((o, s), v) in out[i..i + k].iter_mut().zip(src).zip(im) {
                    *o = Complex32::new(*s, *v);
                }
                self.pos += k;
                self.read += k as u64;
                i += k;
            } else {
                let k = src.len().min(out.len() - i);
                for (o, s) in out[i..i + k].iter_mut().zip(src) {
                    *o = Complex32::new(*s, 0.0);
                }
                self.pos += k;
                self.read += k as u64;
                i += k;
            }
        }
        Ok(())
    }
}

// --------------------------------------------------------------- output

/// The complex64 `.npy` being written, bins placed with `pwrite`.
struct Output {
    file: AtomicFile,
}

impl Output {
    fn create(path: &Path, bins: u64) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        let header = npy_c8_header(bins);
        let f = file.file();
        f.write_all_at(&header, 0)
            .and_then(|_| f.set_len(NPY_HEADER_LEN as u64 + bins * C8))
            .map_err(|e| Error::io(path, e))?;
        Ok(Output { file })
    }

    /// Writes `values` as bins `first..`.
    fn write(&self, first: u64, values: &[Complex32]) -> Result<()> {
        let at = NPY_HEADER_LEN as u64 + first * C8;
        write_at(self.file_ref(), self.file.target(), at, values)
    }

    fn file_ref(&self) -> &File {
        self.file.as_file()
    }

    fn commit(self) -> Result<()> {
        self.file.commit()
    }
}

fn write_at(file: &File, path: &Path, at: u64, values: &[Complex32]) -> Result<()> {
    file.write_all_at(bytemuck::cast_slice(values), at)
        .map_err(|e| Error::io(path, e))
}

fn read_at(file: &File, path: &Path, at: u64, values: &mut [Complex32]) -> Result<()> {
    file.read_exact_at(bytemuck::cast_slice_mut(values), at)
        .map_err(|e| Error::io(path, e))
}

// ------------------------------------------------------------ transforms

/// Runs `fft` on every `fft.len()`-long row of `data`, the rows split
/// evenly across rayon's threads, each with its own scratch.
fn fft_rows(fft: &Arc<dyn Fft<f32>>, data: &mut [Complex32]) {
    let n = fft.len();
    let rows = data.len() / n;
    let threads = rayon::current_num_threads().max(1);
    let per = rows.div_ceil(threads).max(1) * n;
    let scratch = fft.get_inplace_scratch_len();
    data.par_chunks_mut(per).for_each(|part| {
        let mut s = vec![Complex32::default(); scratch];
        fft.process_with_scratch(part, &mut s);
    });
}

/// The real-input untangling of one pair of bins: `X[k]` from `Z[k]` and
/// `Z[M−k]`, with `w = W_N^k`.
#[inline]
fn untangle(zk: Complex32, zmk: Complex32, w: Complex64) -> Complex32 {
    let a = Complex64::new(f64::from(zk.re), f64::from(zk.im));
    let b = Complex64::new(f64::from(zmk.re), -f64::from(zmk.im));
    let e = (a + b) * 0.5;
    // (a − b) / (2i) = −i (a − b) / 2
    let d = (a - b) * 0.5;
    let o = Complex64::new(d.im, -d.re);
    let x = e + w * o;
    Complex32::new(x.re as f32, x.im as f32)
}

/// Plans and tables of the out-of-core transform.
struct OutOfCore {
    p: usize,
    l: usize,
    m: u64,
    /// Columns per block in passes 1 and 2.
    b: usize,
    /// Rows per input chunk in pass 1.
    r: usize,
    fft_p: Arc<dyn Fft<f32>>,
    fft_l: Arc<dyn Fft<f32>>,
    gpu_p: Option<GpuFftBatch>,
    gpu_l: Option<GpuFftBatch>,
    tw_m: Twiddles,
    /// W_N for the real-input untangling.
    tw_n: Option<Twiddles>,
    /// Row `k1` of each position of scratch B: mirror rows side by side
    /// when packed.
    order: Vec<u32>,
    /// Groups of pass 3: (first position in `order`, rows).
    groups: Vec<(usize, usize)>,
    buf: usize,
}

impl OutOfCore {
    fn new(
        p: usize,
        l: usize,
        buf: usize,
        packed: bool,
        gpu: Option<Arc<GpuContext>>,
    ) -> Result<Self> {
        let m = (p * l) as u64;
        let mut planner = FftPlanner::<f32>::new();
        let b = (buf / p).min(l).max(1);
        let r = (buf / l).min(p).max(1);
        // Units of rows that must stay together: a row and its mirror.
        let mut order = Vec::with_capacity(p);
        let mut units = Vec::new();
        if packed {
            order.push(0u32);
            units.push(1);
            if p.is_multiple_of(2) {
                order.push((p / 2) as u32);
                units.push(1);
            }
            for a in 1..p.div_ceil(2) {
                order.push(a as u32);
                order.push((p - a) as u32);
                units.push(2);
            }
        } else {
            order.extend(0..p as u32);
            units.resize(p, 1);
        }
        let max_rows = (buf / l).max(2);
        let mut groups = Vec::new();
        let (mut start, mut rows) = (0, 0);
        for u in units {
            if rows + u > max_rows {
                groups.push((start, rows));
                start += rows;
                rows = 0;
            }
            rows += u;
        }
        if rows > 0 {
            groups.push((start, rows));
        }
        let (gpu_p, gpu_l) = match &gpu {
            Some(ctx) => (
                GpuFftBatch::new(ctx, p, b)?,
                GpuFftBatch::new(ctx, l, groups.iter().map(|g| g.1).max().unwrap_or(1))?,
            ),
            None => (None, None),
        };
        Ok(OutOfCore {
            p,
            l,
            m,
            b,
            r,
            fft_p: planner.plan_fft_forward(p),
            fft_l: planner.plan_fft_forward(l),
            gpu_p,
            gpu_l,
            tw_m: Twiddles::new(m),
            tw_n: packed.then(|| Twiddles::new(2 * m)),
            order,
            groups,
            buf,
        })
    }

    /// Width of column block `j`.
    fn width(&self, j: usize) -> usize {
        self.b.min(self.l - j * self.b)
    }
}

struct Run<'a> {
    plan: &'a FftPlan,
    progress: &'a mut dyn FnMut(&PassProgress),
    gpu_passes: Vec<String>,
}

impl Run<'_> {
    fn report(&mut self, pass: usize, name: &'static str, done: u64, total: u64) {
        (self.progress)(&PassProgress {
            pass,
            passes: self.plan.passes(),
            name,
            done,
            total,
        });
    }

    fn in_core(&mut self, reader: &mut ChannelReader<'_>, out: &Output) -> Result<()> {
        let plan = self.plan;
        let m = plan.m as usize;
        let mut data = Vec::with_capacity(m + 1);
        data.resize(m, Complex32::default());
        self.report(1, "read", 0, plan.m);
        for (i, chunk) in data.chunks_mut(1 << 20).enumerate() {
            reader.fill(chunk, plan.packed)?;
            self.report(1, "read", ((i + 1) << 20).min(m) as u64, plan.m);
        }
        let fft = FftPlanner::<f32>::new().plan_fft_forward(m);
        fft.process(&mut data);
        if plan.packed {
            let tw = Twiddles::new(2 * plan.m);
            let z0 = data[0];
            for k in 1..m {
                let mk = m - k;
                if mk < k {
                    break;
                }
                let (zk, zmk) = (data[k], data[mk]);
                data[k] = untangle(zk, zmk, tw.get(k as u64));
                data[mk] = untangle(zmk, zk, tw.get(mk as u64));
            }
            data[0] = Complex32::new(z0.re + z0.im, 0.0);
            data.push(Complex32::new(z0.re - z0.im, 0.0));
        }
        data.truncate(plan.bins as usize);
        out.write(0, &data)?;
        self.report(1, "read", plan.m, plan.m);
        Ok(())
    }

    fn out_of_core(
        &mut self,
        o: &OutOfCore,
        reader: &mut ChannelReader<'_>,
        scratch: &File,
        scratch_path: &Path,
        out: &Output,
    ) -> Result<()> {
        let (p, l, m) = (o.p, o.l, o.m);
        let b = o.b;
        let blocks = l.div_ceil(b);
        let region_b = m * C8;
        let mut buf1 = vec![Complex32::default(); o.buf];
        let mut buf2 = vec![Complex32::default(); o.buf];

        // Pass 1: input rows -> column-block tiles in scratch A.
        let mut p0 = 0;
        while p0 < p {
            let rows = o.r.min(p - p0);
            let data = &mut buf1[..rows * l];
            reader.fill(data, self.plan.packed)?;
            let tiles = &mut buf2[..rows * l];
            let mut at = 0;
            for j in 0..blocks {
                let w = o.width(j);
                for row in 0..rows {
                    tiles[at + row * w..at + (row + 1) * w]
                        .copy_from_slice(&data[row * l + j * b..row * l + j * b + w]);
                }
                let off = ((j * b * p + p0 * w) as u64) * C8;
                write_at(scratch, scratch_path, off, &tiles[at..at + rows * w])?;
                at += rows * w;
            }
            p0 += rows;
            self.report(1, "read input, tile columns", (p0 * l) as u64, m);
        }

        // Pass 2: column FFTs, twiddles, row-group tiles in scratch B.
        if o.gpu_p.is_some() {
            self.gpu_passes.push("columns".into());
        }
        for j in 0..blocks {
            let w = o.width(j);
            let block = &mut buf1[..p * w];
            read_at(scratch, scratch_path, ((j * b * p) as u64) * C8, block)?;
            let cols = &mut buf2[..p * w];
            for (row, src) in block.chunks_exact(w).enumerate() {
                for (c, v) in src.iter().enumerate() {
                    cols[c * p + row] = *v;
                }
            }
            match &o.gpu_p {
                Some(g) => g.run(cols)?,
                None => fft_rows(&o.fft_p, cols),
            }
            let tw = &o.tw_m;
            cols.par_chunks_mut(p).enumerate().for_each(|(c, col)| {
                let lcol = (j * b + c) as u64;
                for (k1, v) in col.iter_mut().enumerate().skip(1) {
                    let t = tw.get(lcol * k1 as u64);
                    let x = Complex64::new(f64::from(v.re), f64::from(v.im)) * t;
                    *v = Complex32::new(x.re as f32, x.im as f32);
                }
            });
            for (q, &k1) in o.order.iter().enumerate() {
                for c in 0..w {
                    block[q * w + c] = cols[c * p + k1 as usize];
                }
            }
            for &(s, rows) in &o.groups {
                let off = region_b + ((s * l + rows * j * b) as u64) * C8;
                write_at(scratch, scratch_path, off, &block[s * w..(s + rows) * w])?;
            }
            self.report(2, "column FFTs", ((j * b + w) * p) as u64, m);
        }

        // Pass 3: row FFTs, untangling, bins to the output.
        if o.gpu_l.is_some() {
            self.gpu_passes.push("rows".into());
        }
        let bins = self.plan.bins;
        let mut stage = Vec::new();
        let mut done = 0u64;
        for &(s, rows) in &o.groups {
            let tiles = &mut buf1[..rows * l];
            read_at(
                scratch,
                scratch_path,
                region_b + ((s * l) as u64) * C8,
                tiles,
            )?;
            let data = &mut buf2[..rows * l];
            for j in 0..blocks {
                let w = o.width(j);
                let tile = &tiles[rows * j * b..rows * (j * b + w)];
                for r in 0..rows {
                    data[r * l + j * b..r * l + j * b + w]
                        .copy_from_slice(&tile[r * w..(r + 1) * w]);
                }
            }
            match &o.gpu_l {
                Some(g) => g.run(data)?,
                None => fft_rows(&o.fft_l, data),
            }
            let k1s = &o.order[s..s + rows];
            // (k1, row) sorted by k1: the partner lookup, and the runs of
            // consecutive k1 that are written together.
            let mut sorted: Vec<(usize, usize)> = k1s
                .iter()
                .enumerate()
                .map(|(r, &k1)| (k1 as usize, r))
                .collect();
            sorted.sort_unstable();
            let row_of = |k1: usize| -> usize {
                let i = sorted
                    .binary_search_by_key(&k1, |e| e.0)
                    .expect("mirror rows are grouped together");
                sorted[i].1
            };
            let result = &mut buf1[..rows * l];
            match &o.tw_n {
                None => result.copy_from_slice(data),
                Some(tw) => {
                    let data = &*data;
                    let partners: Vec<usize> = k1s
                        .iter()
                        .map(|&k1| row_of((p - k1 as usize) % p))
                        .collect();
                    result
                        .par_chunks_mut(l)
                        .enumerate()
                        .for_each(|(r, out_row)| {
                            let k1 = k1s[r] as usize;
                            let pr = partners[r];
                            for (k2, x) in out_row.iter_mut().enumerate() {
                                let k = (k1 + p * k2) as u64;
                                let k2m = if k1 == 0 { (l - k2) % l } else { l - 1 - k2 };
                                *x = untangle(data[r * l + k2], data[pr * l + k2m], tw.get(k));
                            }
                        });
                    if let Some(r0) = k1s.iter().position(|&x| x == 0) {
                        let z0 = data[r0 * l];
                        result[r0 * l] = Complex32::new(z0.re + z0.im, 0.0);
                        out.write(m, &[Complex32::new(z0.re - z0.im, 0.0)])?;
                    }
                }
            }
            // Runs of consecutive k1 in this group, each written per k2.
            let mut i = 0;
            while i < sorted.len() {
                let mut e = i + 1;
                while e < sorted.len() && sorted[e].0 == sorted[e - 1].0 + 1 {
                    e += 1;
                }
                let first = sorted[i].0;
                for k2 in 0..l {
                    let k = (first + p * k2) as u64;
                    if k >= bins {
                        break;
                    }
                    let len = ((e - i) as u64).min(bins - k) as usize;
                    stage.clear();
                    stage.extend(sorted[i..i + len].iter().map(|&(_, r)| result[r * l + k2]));
                    out.write(k, &stage)?;
                }
                i = e;
            }
            done += (rows * l) as u64;
            self.report(3, "row FFTs, write bins", done, m);
        }
        Ok(())
    }
}
