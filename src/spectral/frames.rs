//! Exact frames across chunk boundaries ([`Framer`]) and the power spectra
//! of windowed frames on the CPU or the GPU ([`FramePower`]).
//!
//! Why a module shared by the STFT and Welch: both cut the signal into
//! frames of `len` samples every `hop` samples, window them (Welch also
//! removes each frame's mean) and need `|X[k]|²` of each. A frame that
//! spans two chunks must come out exactly as if the whole signal had been in
//! memory, so the [`Framer`] keeps the samples of the frames not yet
//! complete (fewer than `len` per channel) and hands out runs of complete
//! frames as slices: frames inside a chunk are read from the chunk itself,
//! only those straddling a boundary are copied (at most `2 len` samples per
//! channel per chunk). Which chunk size was used cannot change any frame.
//!
//! The framer works on planes, so a complex channel's I and Q planes are
//! cut alike; [`FramePower`] takes them together ([`ChannelSamples`]) and
//! transforms each frame as `n` complex values.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::backend::gpu::GpuContext;
use crate::backend::gpu::fft::GpuFftBatch;
use crate::backend::gpu::spectra::{self, GpuPowerSpectra};
use crate::error::{Error, Result};
use crate::pool::Block;

use super::window::Window;

/// Most values of `|X|²` one [`FramePower`] call writes (frames × bins): the
/// callers split longer runs so their scratch stays bounded whatever the
/// hop (4 Mi values, 16 MiB of `f32`).
pub const MAX_BATCH_VALUES: usize = 1 << 22;

/// A run of complete frames, all channels alike: frame `first + j` of
/// channel `c` is `channels[c][offset + j * hop ..][..len]`.
#[derive(Debug)]
pub struct FrameRun<'a> {
    /// Index of the run's first frame in the whole signal.
    pub first: u64,
    /// Frames in the run.
    pub count: usize,
    /// Where the first frame starts in each channel's slice.
    pub offset: usize,
    /// One slice per channel.
    pub channels: Vec<&'a [f32]>,
}

/// Cuts a chunked signal into frames of `len` samples every `hop` samples
/// (frame `k` covers samples `k hop .. k hop + len`), only where a whole
/// frame fits (scipy's `padded=False, boundary=None`).
#[derive(Debug)]
pub struct Framer {
    len: usize,
    hop: usize,
    /// Per channel: samples `carry_start .. consumed` (frames not yet
    /// complete start there).
    carry: Vec<Vec<f32>>,
    carry_start: u64,
    consumed: u64,
    next: u64,
    joint: Vec<Vec<f32>>,
}

/// Frames of `len` every `hop` in `samples` samples.
pub fn frame_count(samples: u64, len: usize, hop: usize) -> u64 {
    let len = len as u64;
    if samples < len {
        0
    } else {
        (samples - len) / hop as u64 + 1
    }
}

impl FrameRun<'_> {
    /// The run's channels as [`FramePower`] takes them: each plane alone,
    /// or, when `complex`, planes `2c` and `2c + 1` as channel `c`'s I and
    /// Q.
    pub fn samples(&self, complex: bool) -> Vec<ChannelSamples<'_>> {
        if complex {
            self.channels
                .chunks_exact(2)
                .map(|p| ChannelSamples::Complex(p[0], p[1]))
                .collect()
        } else {
            self.channels
                .iter()
                .map(|&p| ChannelSamples::Real(p))
                .collect()
        }
    }
}

/// One channel's samples, frames are cut from: real, or a complex
/// channel's I and Q planes (of equal length).
#[derive(Debug, Clone, Copy)]
pub enum ChannelSamples<'a> {
    /// Real samples.
    Real(&'a [f32]),
    /// In-phase and quadrature planes.
    Complex(&'a [f32], &'a [f32]),
}

impl ChannelSamples<'_> {
    /// Samples (complex values count once).
    pub fn len(&self) -> usize {
        match self {
            ChannelSamples::Real(x) => x.len(),
            ChannelSamples::Complex(i, q) => i.len().min(q.len()),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Framer {
    /// A framer for `channels` channels.
    ///
    /// # Panics
    /// If `len` or `hop` is 0 (validated by the callers).
    pub fn new(channels: usize, len: usize, hop: usize) -> Self {
        assert!(len > 0 && hop > 0, "frame length and hop must be positive");
        Framer {
            len,
            hop,
            carry: vec![Vec::new(); channels],
            carry_start: 0,
            consumed: 0,
            next: 0,
            joint: vec![Vec::new(); channels],
        }
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> u64 {
        self.next
    }

    /// Samples per channel pushed so far.
    pub fn samples(&self) -> u64 {
        self.consumed
    }

    /// Takes the next chunk and calls `f` with the runs of frames it
    /// completes, in order (at most two runs).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn push(
        &mut self,
        block: &Block,
        mut f: impl FnMut(&FrameRun<'_>) -> Result<()>,
    ) -> Result<()> {
        let n = block.frames();
        if n == 0 {
            return Ok(());
        }
        let (len, hop) = (self.len as u64, self.hop as u64);
        let chunk_start = self.consumed;
        let chunk_end = chunk_start + n as u64;
        let mut joint_used = false;
        // Frames that start in the carry (they end in this chunk or later).
        let carried = self.carry.first().map_or(0, Vec::len);
        if carried > 0 {
            let take = n.min(self.len);
            for (c, joint) in self.joint.iter_mut().enumerate() {
                joint.clear();
                joint.extend_from_slice(&self.carry[c]);
                joint.extend_from_slice(&block.channel(c)[..take]);
            }
            joint_used = true;
            let joint_end = self.carry_start + (carried + take) as u64;
            let start = self.next * hop;
            let before = (chunk_start - start).div_ceil(hop);
            let fit = if start + len <= joint_end {
                (joint_end - len - start) / hop + 1
            } else {
                0
            };
            let count = before.min(fit) as usize;
            if count > 0 {
                f(&FrameRun {
                    first: self.next,
                    count,
                    offset: (start - self.carry_start) as usize,
                    channels: self.joint.iter().map(Vec::as_slice).collect(),
                })?;
                self.next += count as u64;
            }
        }
        // Frames that start in this chunk.
        let start = self.next * hop;
        if start >= chunk_start && start + len <= chunk_end {
            let count = ((chunk_end - len - start) / hop + 1) as usize;
            f(&FrameRun {
                first: self.next,
                count,
                offset: (start - chunk_start) as usize,
                channels: (0..block.channels()).map(|c| block.channel(c)).collect(),
            })?;
            self.next += count as u64;
        }
        // Keep what the next frames need.
        let start = self.next * hop;
        for c in 0..self.carry.len() {
            let keep: &[f32] = if start >= chunk_end {
                &[]
            } else if start >= chunk_start {
                &block.channel(c)[(start - chunk_start) as usize..]
            } else {
                debug_assert!(joint_used, "a frame before this chunk implies a carry");
                &self.joint[c][(start - self.carry_start) as usize..]
            };
            // `keep` may borrow `joint`, never `carry`.
            let carry = &mut self.carry[c];
            carry.clear();
            carry.extend_from_slice(keep);
        }
        self.carry_start = start;
        self.consumed = chunk_end;
        Ok(())
    }
}

/// How frames are prepared before their FFT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Detrend {
    /// Use the samples as they are.
    #[default]
    None,
    /// Subtract each frame's mean (scipy's `detrend='constant'`).
    Constant,
}

/// `|X[k]|²` of windowed (and optionally detrended) frames of `n` samples,
/// `hop` apart: for real frames the one-sided `k = 0 ..= n/2` (realfft),
/// for complex frames all `n` bins in increasing frequency (rustfft, then
/// numpy's `fftshift` order: bin `j` holds `X[(j + ⌈n/2⌉) mod n]`), on the
/// CPU across rayon's threads, or batched on the GPU when planned with a
/// context: real frames through [`GpuPowerSpectra`] (which windows and
/// detrends there too), complex frames detrended and windowed on the CPU
/// into one buffer and transformed by the GPU's complex FFT
/// ([`GpuFftBatch`]).
pub struct FramePower {
    n: usize,
    hop: usize,
    window: Vec<f32>,
    detrend: Detrend,
    complex: bool,
    fft: Plan,
    gpu: Option<GpuPath>,
    /// Powers back from the GPU.
    rows: Vec<f32>,
}

/// The CPU transform of a [`FramePower`].
enum Plan {
    /// Real frames: `n/2 + 1` bins.
    Real(Arc<dyn RealToComplex<f32>>),
    /// Complex frames, transformed in place: `n` bins.
    Complex(Arc<dyn rustfft::Fft<f32>>),
}

/// The GPU plan of a [`FramePower`].
enum GpuPath {
    /// Real frames: windowed, detrended and transformed on the GPU.
    Real(Box<GpuPowerSpectra>),
    /// Complex frames: prepared on the host into `staged` (at most
    /// `frames × n` values), transformed on the GPU by the plan for the
    /// batch's size rounded up to a power of two (`plans[log2]`, made when
    /// first needed, so that a short run does not transform a full batch).
    Complex {
        ctx: Arc<GpuContext>,
        plans: Vec<Option<GpuFftBatch>>,
        frames: usize,
        staged: Vec<Complex<f32>>,
    },
}

impl std::fmt::Debug for FramePower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePower")
            .field("n", &self.n)
            .field("detrend", &self.detrend)
            .field("complex", &self.complex)
            .field("gpu", &self.gpu.is_some())
            .finish_non_exhaustive()
    }
}

/// The sum of `x` in `f64`, over eight independent lanes so that the adds
/// vectorise instead of waiting on each other.
fn sum_f64(x: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f64::from(v);
        }
    }
    let tail: f64 = it.remainder().iter().map(|&v| f64::from(v)).sum();
    lanes.iter().sum::<f64>() + tail
}

/// Per-thread buffers of the CPU path (those of the other kind of frame
/// stay empty).
struct Scratch {
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
}

/// Complex values per batch the GPU path of complex frames aims at (16 MiB
/// of complex `f32` up and back).
const GPU_COMPLEX_BATCH_VALUES: usize = 1 << 21;

impl FramePower {
    /// Plans real frames of `n` samples every `hop` samples with `window`,
    /// on the GPU when `gpu` is given.
    ///
    /// # Errors
    /// [`Error::Usage`] for `n == 0` or `hop == 0`, or a GPU with `n` not a
    /// power of two >= 4 (the GPU real FFT's limit,
    /// [`spectra::supports`]); [`Error::Gpu`] when the GPU plan fails.
    pub fn new(
        n: usize,
        hop: usize,
        window: Window,
        detrend: Detrend,
        gpu: Option<&Arc<GpuContext>>,
    ) -> Result<Self> {
        Self::with_kind(n, hop, window, detrend, false, gpu)
    }

    /// Plans frames of `n` samples every `hop` samples with `window`, real
    /// or `complex`, on the GPU when `gpu` is given.
    ///
    /// # Errors
    /// As [`FramePower::new`]; the GPU takes complex frames of the same
    /// lengths as real ones (a power of two >= 4).
    pub fn with_kind(
        n: usize,
        hop: usize,
        window: Window,
        detrend: Detrend,
        complex: bool,
        gpu: Option<&Arc<GpuContext>>,
    ) -> Result<Self> {
        if n == 0 {
            return Err(Error::usage("the frame length must be at least 1"));
        }
        if hop == 0 {
            return Err(Error::usage("the hop must be at least 1"));
        }
        let window: Vec<f32> = window.coefficients(n).iter().map(|&w| w as f32).collect();
        let gpu = gpu
            .map(|ctx| {
                if !spectra::supports(n) {
                    return Err(Error::usage(format!(
                        "the GPU backend needs a frame length that is a power of two >= 4, not {n}; use --backend cpu"
                    )));
                }
                if complex {
                    // A power of two, rounded down: a batch stays under the
                    // budget.
                    let frames = 1usize << (GPU_COMPLEX_BATCH_VALUES / n).max(1).ilog2();
                    // Fail now, not mid-stream, if the device cannot hold a
                    // full batch.
                    let full = complex_plan(ctx, n, frames)?;
                    let mut plans: Vec<Option<GpuFftBatch>> =
                        (0..=frames.ilog2()).map(|_| None).collect();
                    plans[frames.ilog2() as usize] = Some(full);
                    Ok(GpuPath::Complex {
                        ctx: ctx.clone(),
                        plans,
                        frames,
                        staged: Vec::new(),
                    })
                } else {
                    GpuPowerSpectra::new(ctx, n, hop, &window, detrend == Detrend::Constant)
                        .map(|g| GpuPath::Real(Box::new(g)))
                }
            })
            .transpose()?;
        Ok(FramePower {
            n,
            hop,
            window,
            detrend,
            complex,
            fft: if complex {
                Plan::Complex(rustfft::FftPlanner::<f32>::new().plan_fft_forward(n))
            } else {
                Plan::Real(RealFftPlanner::<f32>::new().plan_fft_forward(n))
            },
            gpu,
            rows: Vec::new(),
        })
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (frames have at least one sample).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether frames are complex.
    pub fn is_complex(&self) -> bool {
        self.complex
    }

    /// Bins per spectrum: `n / 2 + 1` for real frames, `n` for complex
    /// ones.
    pub fn bins(&self) -> usize {
        if self.complex { self.n } else { self.n / 2 + 1 }
    }

    /// Whether the FFTs run on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    /// Frames per batch that keep a batch's powers under
    /// [`MAX_BATCH_VALUES`].
    pub fn batch_frames(&self) -> usize {
        (MAX_BATCH_VALUES / self.bins()).max(1)
    }

    /// Detrends and windows `src` (`n` samples) into `dst`.
    fn prepare(&self, src: &[f32], dst: &mut [f32]) {
        let mean = match self.detrend {
            Detrend::None => 0.0,
            Detrend::Constant => (sum_f64(src) / self.n as f64) as f32,
        };
        for ((d, &x), &w) in dst.iter_mut().zip(src).zip(&self.window) {
            *d = (x - mean) * w;
        }
    }

    /// Detrends (by the complex mean) and windows the complex frame `re +
    /// i im` (`n` values each) into `dst`.
    fn prepare_complex(&self, re: &[f32], im: &[f32], dst: &mut [Complex<f32>]) {
        let (mr, mi) = match self.detrend {
            Detrend::None => (0.0, 0.0),
            Detrend::Constant => (
                (sum_f64(re) / self.n as f64) as f32,
                (sum_f64(im) / self.n as f64) as f32,
            ),
        };
        for (((d, &r), &i), &w) in dst.iter_mut().zip(re).zip(im).zip(&self.window) {
            *d = Complex::new((r - mr) * w, (i - mi) * w);
        }
    }

    fn scratch(&self) -> Scratch {
        match &self.fft {
            Plan::Complex(fft) => Scratch {
                input: Vec::new(),
                spectrum: vec![Complex::default(); self.n],
                fft: vec![Complex::default(); fft.get_inplace_scratch_len()],
            },
            Plan::Real(fft) => Scratch {
                input: vec![0.0; self.n],
                spectrum: fft.make_output_vec(),
                fft: fft.make_scratch_vec(),
            },
        }
    }

    /// The spectrum of frame `at` of `data` in `s.spectrum` (natural
    /// order).
    fn transform(&self, data: ChannelSamples<'_>, at: usize, s: &mut Scratch) {
        let n = self.n;
        match (data, &self.fft) {
            (ChannelSamples::Complex(re, im), Plan::Complex(fft)) => {
                self.prepare_complex(&re[at..at + n], &im[at..at + n], &mut s.spectrum);
                fft.process_with_scratch(&mut s.spectrum, &mut s.fft);
            }
            (ChannelSamples::Real(x), Plan::Real(fft)) => {
                self.prepare(&x[at..at + n], &mut s.input);
                // Lengths are the plan's own: process cannot fail.
                let _ = fft.process_with_scratch(&mut s.input, &mut s.spectrum, &mut s.fft);
            }
            _ => unreachable!("{}", KIND_MISMATCH),
        }
    }

    /// Where natural-order bin `k` goes in an output row: itself for real
    /// frames, its `fftshift` place for complex ones.
    fn shift(&self) -> usize {
        if self.complex { self.n / 2 } else { 0 }
    }

    /// `|X|²` of `count` frames of `data` (frame `j` at `offset + j hop`)
    /// into `out[j * stride + col ..][..bins]`.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU fails.
    ///
    /// # Panics
    /// If `data` or `out` is too short for the frames asked for, or `data`
    /// is not of the planned kind (real or complex).
    #[expect(
        clippy::too_many_arguments,
        reason = "a frame layout in and a row layout out, each a few numbers"
    )]
    pub fn power_rows(
        &mut self,
        data: ChannelSamples<'_>,
        offset: usize,
        hop: usize,
        count: usize,
        out: &mut [f32],
        stride: usize,
        col: usize,
    ) -> Result<()> {
        let (n, bins) = (self.n, self.bins());
        assert_eq!(
            matches!(data, ChannelSamples::Complex(..)),
            self.complex,
            "{KIND_MISMATCH}"
        );
        assert!(count == 0 || offset + (count - 1) * hop + n <= data.len());
        assert!(count == 0 || (count - 1) * stride + col + bins <= out.len());
        if self.gpu.is_some() {
            self.gpu_rows(data, offset, hop, count)?;
            for (j, row) in self.rows.chunks_exact(bins).take(count).enumerate() {
                out[j * stride + col..][..bins].copy_from_slice(row);
            }
            return Ok(());
        }
        let this = &*self;
        let shift = this.shift();
        out.par_chunks_mut(stride)
            .take(count)
            .enumerate()
            .with_min_len(8)
            .for_each_init(
                || this.scratch(),
                |s, (j, row)| {
                    this.transform(data, offset + j * hop, s);
                    let row = &mut row[col..col + bins];
                    for (k, x) in s.spectrum[..bins].iter().enumerate() {
                        row[(k + shift) % bins] = x.norm_sqr();
                    }
                },
            );
        Ok(())
    }

    /// Adds `|X|²` of `count` frames of `data` (frame `j` at `offset + j
    /// hop`) to `acc` (`bins` values, complex frames' in `fftshift` order),
    /// summing in `f64`.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU fails.
    ///
    /// # Panics
    /// If `data` is not of the planned kind (real or complex).
    pub fn power_sum(
        &mut self,
        data: ChannelSamples<'_>,
        offset: usize,
        hop: usize,
        count: usize,
        acc: &mut [f64],
    ) -> Result<()> {
        let bins = self.bins();
        assert_eq!(
            matches!(data, ChannelSamples::Complex(..)),
            self.complex,
            "{KIND_MISMATCH}"
        );
        if self.gpu.is_some() {
            let batch = self.batch_frames();
            let mut done = 0;
            while done < count {
                let take = batch.min(count - done);
                self.gpu_rows(data, offset + done * hop, hop, take)?;
                for row in self.rows.chunks_exact(bins).take(take) {
                    for (a, &p) in acc.iter_mut().zip(row) {
                        *a += f64::from(p);
                    }
                }
                done += take;
            }
            return Ok(());
        }
        let this = &*self;
        let shift = this.shift();
        let sum = (0..count)
            .into_par_iter()
            .with_min_len(32)
            .fold(
                || (this.scratch(), vec![0.0f64; bins]),
                |(mut s, mut sum), j| {
                    this.transform(data, offset + j * hop, &mut s);
                    for (k, x) in s.spectrum[..bins].iter().enumerate() {
                        sum[(k + shift) % bins] += f64::from(x.norm_sqr());
                    }
                    (s, sum)
                },
            )
            .map(|(_, sum)| sum)
            .reduce_with(|mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            });
        if let Some(sum) = sum {
            for (a, s) in acc.iter_mut().zip(&sum) {
                *a += s;
            }
        }
        Ok(())
    }

    /// The GPU path: `|X|²` of `count` frames of `data` (frame `j` at
    /// `offset + j hop`, the plan's hop) into `self.rows` (`count × bins`),
    /// in batches the plan holds.
    ///
    /// # Panics
    /// If `hop` is not the hop the plan was made with.
    fn gpu_rows(
        &mut self,
        data: ChannelSamples<'_>,
        offset: usize,
        hop: usize,
        count: usize,
    ) -> Result<()> {
        assert_eq!(hop, self.hop, "frames come at the planned hop");
        let (n, bins) = (self.n, self.bins());
        let mut rows = std::mem::take(&mut self.rows);
        rows.resize(count * bins, 0.0);
        let mut gpu = self.gpu.take().ok_or_else(|| Error::gpu("no GPU plan"))?;
        let result = match (&mut gpu, data) {
            (GpuPath::Real(g), ChannelSamples::Real(x)) => {
                let per_call = g.frames_per_call();
                rows.chunks_mut(per_call * bins)
                    .enumerate()
                    .try_for_each(|(call, rows)| {
                        let first = call * per_call;
                        g.power(x, offset + first * hop, rows.len() / bins, rows)
                    })
            }
            (
                GpuPath::Complex {
                    ctx,
                    plans,
                    frames,
                    staged,
                },
                ChannelSamples::Complex(re, im),
            ) => {
                let this = &*self;
                let shift = n / 2;
                rows.chunks_mut(*frames * bins)
                    .enumerate()
                    .try_for_each(|(call, rows)| {
                        let first = offset + call * *frames * hop;
                        let take = rows.len() / bins;
                        staged.resize(take * n, Complex::default());
                        staged
                            .par_chunks_mut(n)
                            .enumerate()
                            .with_min_len(8)
                            .for_each(|(j, dst)| {
                                let at = first + j * hop;
                                this.prepare_complex(&re[at..at + n], &im[at..at + n], dst);
                            });
                        let slot = take.next_power_of_two().ilog2() as usize;
                        if plans[slot].is_none() {
                            plans[slot] = Some(complex_plan(ctx, n, 1 << slot)?);
                        }
                        let fft = plans[slot]
                            .as_ref()
                            .ok_or_else(|| Error::gpu("complex FFT plan missing"))?;
                        // Frames past `take` hold stale values: independent
                        // transforms whose bins are never read.
                        fft.run(staged)?;
                        for (spectrum, row) in staged.chunks_exact(n).zip(rows.chunks_exact_mut(n))
                        {
                            for (k, x) in spectrum.iter().enumerate() {
                                row[(k + shift) % n] = x.norm_sqr();
                            }
                        }
                        Ok(())
                    })
            }
            _ => unreachable!("{}", KIND_MISMATCH),
        };
        self.gpu = Some(gpu);
        self.rows = rows;
        result
    }
}

/// The GPU's batched complex FFT of `frames` transforms of `n` points.
fn complex_plan(ctx: &Arc<GpuContext>, n: usize, frames: usize) -> Result<GpuFftBatch> {
    GpuFftBatch::new(ctx, n, frames)?
        .ok_or_else(|| Error::usage(format!("the GPU complex FFT cannot take {n} points")))
}

/// The panic message of frames of the wrong kind.
const KIND_MISMATCH: &str = "frames are of the kind (real or complex) the plan was made for";
