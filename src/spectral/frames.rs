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

use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::backend::gpu::GpuContext;
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

/// `|X[k]|²`, `k = 0 ..= n/2`, of windowed (and optionally detrended)
/// frames of `n` real samples, `hop` apart: realfft on the CPU across
/// rayon's threads, or batched on the GPU ([`GpuPowerSpectra`], which
/// windows and detrends there too) when planned with a context.
pub struct FramePower {
    n: usize,
    hop: usize,
    window: Vec<f32>,
    detrend: Detrend,
    fft: Arc<dyn RealToComplex<f32>>,
    gpu: Option<GpuPowerSpectra>,
    /// Powers back from the GPU.
    rows: Vec<f32>,
}

impl std::fmt::Debug for FramePower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePower")
            .field("n", &self.n)
            .field("detrend", &self.detrend)
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

/// Per-thread buffers of the CPU path.
struct Scratch {
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
}

impl FramePower {
    /// Plans frames of `n` samples every `hop` samples with `window`, on
    /// the GPU when `gpu` is given.
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
                GpuPowerSpectra::new(ctx, n, hop, &window, detrend == Detrend::Constant)
            })
            .transpose()?;
        Ok(FramePower {
            n,
            hop,
            window,
            detrend,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(n),
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

    /// Bins per spectrum: `n / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.n / 2 + 1
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

    fn scratch(&self) -> Scratch {
        Scratch {
            input: vec![0.0; self.n],
            spectrum: self.fft.make_output_vec(),
            fft: self.fft.make_scratch_vec(),
        }
    }

    /// The spectrum of `src` in `s.spectrum`.
    fn transform(&self, src: &[f32], s: &mut Scratch) {
        self.prepare(src, &mut s.input);
        // Lengths are the plan's own: process cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut s.input, &mut s.spectrum, &mut s.fft);
    }

    /// `|X|²` of `count` frames of `data` (frame `j` at `offset + j hop`)
    /// into `out[j * stride + col ..][..bins]`.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU fails.
    ///
    /// # Panics
    /// If `data` or `out` is too short for the frames asked for.
    #[expect(
        clippy::too_many_arguments,
        reason = "a frame layout in and a row layout out, each a few numbers"
    )]
    pub fn power_rows(
        &mut self,
        data: &[f32],
        offset: usize,
        hop: usize,
        count: usize,
        out: &mut [f32],
        stride: usize,
        col: usize,
    ) -> Result<()> {
        let (n, bins) = (self.n, self.bins());
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
        out.par_chunks_mut(stride)
            .take(count)
            .enumerate()
            .with_min_len(8)
            .for_each_init(
                || this.scratch(),
                |s, (j, row)| {
                    this.transform(&data[offset + j * hop..][..n], s);
                    for (o, x) in row[col..col + bins].iter_mut().zip(&s.spectrum) {
                        *o = x.norm_sqr();
                    }
                },
            );
        Ok(())
    }

    /// Adds `|X|²` of `count` frames of `data` (frame `j` at `offset + j
    /// hop`) to `acc` (`bins` values), summing in `f64`.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the GPU fails.
    pub fn power_sum(
        &mut self,
        data: &[f32],
        offset: usize,
        hop: usize,
        count: usize,
        acc: &mut [f64],
    ) -> Result<()> {
        let (n, bins) = (self.n, self.bins());
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
        let sum = (0..count)
            .into_par_iter()
            .with_min_len(32)
            .fold(
                || (this.scratch(), vec![0.0f64; bins]),
                |(mut s, mut sum), j| {
                    this.transform(&data[offset + j * hop..][..n], &mut s);
                    for (a, x) in sum.iter_mut().zip(&s.spectrum) {
                        *a += f64::from(x.norm_sqr());
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
    fn gpu_rows(&mut self, data: &[f32], offset: usize, hop: usize, count: usize) -> Result<()> {
        assert_eq!(hop, self.hop, "frames come at the planned hop");
        let bins = self.bins();
        self.rows.resize(count * bins, 0.0);
        let gpu = self.gpu.as_mut().ok_or_else(|| Error::gpu("no GPU plan"))?;
        let per_call = gpu.frames_per_call();
        for (call, rows) in self.rows.chunks_mut(per_call * bins).enumerate() {
            let first = call * per_call;
            gpu.power(data, offset + first * hop, rows.len() / bins, rows)?;
        }
        Ok(())
    }
}
