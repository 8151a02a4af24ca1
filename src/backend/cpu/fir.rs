//! Streaming FIR filtering on the CPU: direct convolution for short kernels,
//! FFT overlap-save (rustfft) for long ones.
//!
//! Why it is built this way:
//! - Results must not depend on the chunk size, bit for bit. The direct
//!   method computes every output with the same sequence of operations
//!   wherever the chunk boundaries fall. The overlap-save method runs on a
//!   grid of FFT blocks fixed to absolute sample positions, not to chunks: a
//!   block is transformed only when all its inputs have arrived, so outputs
//!   come out with a latency of less than one grid step and are identical
//!   for any chunking.
//! - Overlap-save packs two consecutive real blocks into the real and
//!   imaginary parts of one complex FFT (rustfft, AVX at run time): the
//!   kernel is real, so the two convolutions come apart again as the real
//!   and imaginary parts, with none of a real FFT's pre/post-processing
//!   (this beat realfft's one real FFT per block in `cargo bench -- fir/`).
//!   The pairs sit on the fixed grid too.
//! - The history the filter needs (`taps - 1` samples) is carried in the
//!   front of one contiguous buffer, so every output reads one slice.
//! - Nothing allocates after construction: the buffers are sized for the
//!   largest chunk, and each worker thread owns its FFT scratch.
//! - Many channels share one [`FirPlan`] (the kernel's spectrum and the FFT
//!   plans) and one FFT scratch per worker, not one per channel: a channel
//!   then holds only its history and input buffer. With hundreds of
//!   channels, what a channel holds is what bounds the chunk under a
//!   memory budget, so [`FirMethod::choose_for`] also caps the FFT length
//!   by the channel count (see [`FFT_SAMPLES_ALL_CHANNELS`]).
//!
//! Outputs are those of the *full* convolution `y[n] = Σ_j k[j]·x[n−j]`
//! (numpy.convolve's orientation), one per input pushed; the caller trims
//! them to the `same` or `valid` range and pushes zeros at the end for the
//! tail.

use std::sync::Arc;

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Kernels up to this many taps use direct convolution; longer ones use FFT
/// overlap-save. Measured with `cargo bench --bench throughput -- fir_crossover`
/// on the 2-core development machine: direct 3.06 GiB/s vs FFT 2.95 GiB/s at
/// 16 taps, 2.31 vs 2.63 at 24 (see README, "Performance").
pub const DIRECT_MAX_TAPS: usize = 16;

/// Outputs the direct method computes at once, in registers: four SSE
/// vectors (two AVX), enough independent adds to hide their latency.
const DIRECT_LANES: usize = 16;

/// Multiply-adds (outputs × taps, or × [`FFT_WORK_PER_OUTPUT`]) below which
/// splitting a push across threads costs more than it saves: a 3-tap filter
/// over 1 Mi samples ran slower on two threads than on one (memory-bound),
/// a 65-tap one 1.7× faster.
const MIN_PARALLEL_WORK: usize = 1 << 22;

/// Work per output of overlap-save, in direct-method multiply-adds: the
/// methods cost the same near the crossover.
const FFT_WORK_PER_OUTPUT: usize = DIRECT_MAX_TAPS;

/// How a [`Fir`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirMethod {
    /// Direct convolution, `taps` multiply-adds per output.
    Direct,
    /// FFT overlap-save with blocks of `nfft` samples.
    OverlapSave {
        /// FFT length (a power of two).
        nfft: usize,
    },
}

/// FFT samples of all channels together that overlap-save may hold per
/// grid step: [`FirMethod::choose_for`] caps the FFT length at this over the
/// channel count (never below the shortest valid length). Each channel's
/// output block and input buffer hold at least one grid step (about two FFT
/// lengths), so with 385 channels a 2048-point FFT (the cheapest per output
/// for 301 taps) would pin ~11 MiB before the first frame of a chunk, a
/// 1024-point one half that, for 9% more FFT work per output. 2^19 leaves
/// one channel's choice alone up to 2^19-point FFTs (kernels of ~100k taps).
pub const FFT_SAMPLES_ALL_CHANNELS: usize = 1 << 19;

impl FirMethod {
    /// The method for a kernel of `taps` taps: direct up to
    /// [`DIRECT_MAX_TAPS`], else overlap-save with the FFT length that
    /// minimises the FFT work per output sample.
    pub fn choose(taps: usize) -> Self {
        Self::choose_for(taps, 1)
    }

    /// The method for `channels` channels of a kernel of `taps` taps: as
    /// [`FirMethod::choose`], with the FFT length capped at
    /// [`FFT_SAMPLES_ALL_CHANNELS`]` / channels` (but never below the
    /// shortest valid length, `2·taps` rounded up to a power of two). It
    /// depends on the kernel and the channel count only, never on the chunk
    /// size, so results do not depend on the chunking.
    pub fn choose_for(taps: usize, channels: usize) -> Self {
        if taps <= DIRECT_MAX_TAPS {
            FirMethod::Direct
        } else {
            let cap = FFT_SAMPLES_ALL_CHANNELS / channels.max(1);
            FirMethod::OverlapSave {
                nfft: best_nfft_within(taps, cap),
            }
        }
    }
}

/// The power-of-two FFT length minimising `nfft·log2(nfft) / (nfft − taps + 1)`,
/// the cost of two real FFTs per block divided by the outputs per block.
pub fn best_nfft(taps: usize) -> usize {
    best_nfft_within(taps, usize::MAX)
}

/// [`best_nfft`] among lengths up to `max_nfft` (the shortest valid length
/// when that is larger).
pub fn best_nfft_within(taps: usize, max_nfft: usize) -> usize {
    let mut nfft = (2 * taps).next_power_of_two().max(16);
    let mut best = (f64::INFINITY, nfft);
    // 2^20 samples (4 MiB per buffer) is an upper bound that keeps a block's
    // buffers out of the memory budget's way; the cost curve is flat there.
    while nfft <= (1 << 20).min(max_nfft) {
        let cost = nfft as f64 * (nfft as f64).log2() / (nfft - taps + 1) as f64;
        if cost < best.0 * 0.98 {
            best = (cost, nfft);
        }
        nfft *= 2;
    }
    best.1
}

enum Engine {
    Direct {
        /// The kernel reversed, so that output `i` is a dot product of
        /// `rev` with `ext[i .. i + taps]`.
        rev: Vec<f32>,
    },
    Fft {
        nfft: usize,
        /// Outputs per FFT block (`nfft − taps + 1`); two blocks share one
        /// complex FFT.
        block: usize,
        forward: Arc<dyn Fft<f32>>,
        inverse: Arc<dyn Fft<f32>>,
        /// The kernel's spectrum, scaled by 1/nfft (the inverse FFT is
        /// unnormalised).
        spectrum: Vec<Complex<f32>>,
        /// The kernel reversed, for the outputs a non-finite sample
        /// reaches ([`mark_non_finite`]).
        rev: Vec<f32>,
        /// The signs of its taps.
        sign: TapSigns,
    },
}

/// The signs of a kernel's taps: when they all agree (a moving average),
/// the outputs an infinite sample reaches are known from counts alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TapSigns {
    /// Every tap > 0.
    Positive,
    /// Every tap < 0.
    Negative,
    /// Anything else (zeros included: 0·∞ is NaN).
    Mixed,
}

impl TapSigns {
    fn of(kernel: &[f32]) -> Self {
        if kernel.iter().all(|&k| k > 0.0) {
            TapSigns::Positive
        } else if kernel.iter().all(|&k| k < 0.0) {
            TapSigns::Negative
        } else {
            TapSigns::Mixed
        }
    }
}

/// Buffers for one pair of FFT blocks: one per worker thread, shared by
/// every channel that worker filters. The default one is empty (for direct
/// filters, or no filter).
#[derive(Debug, Default)]
pub struct FirScratch {
    buf: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
    /// Positions of the infinite samples of one block (capacity `nfft`).
    marks: Vec<u32>,
}

/// Bytes per `f32` and per `Complex<f32>`.
const F32_BYTES: u64 = 4;
const C32_BYTES: u64 = 8;

/// What every channel of one filter shares, read-only: the method, the
/// reversed kernel or its spectrum and the FFT plans. Cheap to clone.
#[derive(Clone)]
pub struct FirPlan {
    taps: usize,
    /// Outputs per step of the block grid: 1 for the direct method,
    /// `2 (nfft − taps + 1)` for overlap-save (two blocks per complex FFT).
    grid: usize,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for FirPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirPlan")
            .field("taps", &self.taps)
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}

impl FirPlan {
    /// Plans `kernel` (numpy.convolve orientation) with `method`.
    ///
    /// # Errors
    /// [`Error::Usage`] if the kernel is empty, or an overlap-save length
    /// does not exceed the taps.
    pub fn new(kernel: &[f32], method: FirMethod) -> crate::Result<Self> {
        if kernel.is_empty() {
            return Err(crate::Error::usage("the kernel has no taps"));
        }
        let taps = kernel.len();
        if let FirMethod::OverlapSave { nfft } = method
            && nfft <= taps
        {
            return Err(crate::Error::usage(format!(
                "an overlap-save FFT of {nfft} points cannot filter with {taps} taps: it must be longer than the kernel"
            )));
        }
        let (engine, grid) = match method {
            FirMethod::Direct => {
                let rev = kernel.iter().rev().copied().collect();
                (Engine::Direct { rev }, 1)
            }
            FirMethod::OverlapSave { nfft } => {
                let mut planner = FftPlanner::<f32>::new();
                let forward = planner.plan_fft_forward(nfft);
                let inverse = planner.plan_fft_inverse(nfft);
                let mut spectrum = vec![Complex::default(); nfft];
                for (s, &k) in spectrum.iter_mut().zip(kernel) {
                    s.re = k;
                }
                forward.process(&mut spectrum);
                let scale = 1.0 / nfft as f32;
                for c in &mut spectrum {
                    *c *= scale;
                }
                let block = nfft - taps + 1;
                let engine = Engine::Fft {
                    nfft,
                    block,
                    forward,
                    inverse,
                    spectrum,
                    rev: kernel.iter().rev().copied().collect(),
                    sign: TapSigns::of(kernel),
                };
                (engine, 2 * block)
            }
        };
        Ok(FirPlan {
            taps,
            grid,
            engine: Arc::new(engine),
        })
    }

    /// Number of taps.
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// Outputs per step of the block grid (1 for the direct method).
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// The method in use.
    pub fn method(&self) -> FirMethod {
        match &*self.engine {
            Engine::Direct { .. } => FirMethod::Direct,
            Engine::Fft { nfft, .. } => FirMethod::OverlapSave { nfft: *nfft },
        }
    }

    /// Most outputs one push of at most `max_input` samples can return:
    /// outputs leave in whole grid steps, and fewer than one step of inputs
    /// is ever pending, so this is `max_input + grid − 1` rounded down to a
    /// whole step (exactly `max_input` when it is a multiple of the grid).
    pub fn max_output(&self, max_input: usize) -> usize {
        grid_outputs(max_input, self.grid)
    }

    /// A scratch for one worker (empty for the direct method).
    pub fn scratch(&self) -> FirScratch {
        match &*self.engine {
            Engine::Direct { .. } => FirScratch::default(),
            Engine::Fft {
                nfft,
                forward,
                inverse,
                ..
            } => {
                let scratch_len = forward
                    .get_inplace_scratch_len()
                    .max(inverse.get_inplace_scratch_len());
                FirScratch {
                    buf: vec![Complex::default(); *nfft],
                    fft: vec![Complex::default(); scratch_len],
                    marks: Vec::with_capacity(*nfft),
                }
            }
        }
    }
}

/// See [`FirPlan::max_output`].
fn grid_outputs(max_input: usize, grid: usize) -> usize {
    max_input.saturating_add(grid - 1) / grid * grid
}

/// The grid step of a kernel of `taps` taps computed with `method`.
pub(crate) fn grid_of(taps: usize, method: FirMethod) -> usize {
    match method {
        FirMethod::Direct => 1,
        FirMethod::OverlapSave { nfft } => 2 * (nfft.saturating_sub(taps) + 1),
    }
}

/// What a filter will allocate, known before it is built (for the chunk
/// planner's memory budget). All sizes saturate instead of overflowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirFootprint {
    /// Most outputs one push returns ([`FirPlan::max_output`]).
    pub max_output: usize,
    /// Bytes of one channel's state (history and input buffer).
    pub per_channel: u64,
    /// Bytes of the shared plan (kernel or spectrum and FFT twiddles).
    pub shared: u64,
    /// Bytes of one worker's scratch.
    pub per_worker: u64,
}

impl FirFootprint {
    /// The footprint of a `taps`-tap filter computed with `method` taking
    /// up to `max_input` samples per push.
    pub fn new(taps: usize, method: FirMethod, max_input: usize) -> Self {
        let grid = grid_of(taps, method);
        let ext = ext_len(taps, grid, max_input) as u64;
        let (shared, per_worker) = match method {
            FirMethod::Direct => (taps as u64 * F32_BYTES, 0),
            // The spectrum, the two plans' twiddles (about one transform's
            // worth each) and the reversed kernel; per worker, the pair
            // buffer, rustfft's in-place scratch (at most one transform's
            // worth) and the marks of infinite samples.
            FirMethod::OverlapSave { nfft } => {
                let one = nfft as u64 * C32_BYTES;
                let marks = nfft as u64 * F32_BYTES;
                (3 * one + taps as u64 * F32_BYTES, 2 * one + marks)
            }
        };
        FirFootprint {
            max_output: grid_outputs(max_input, grid),
            per_channel: ext.saturating_mul(F32_BYTES),
            shared,
            per_worker,
        }
    }
}

/// Length of a channel's `[history | pending | new]` buffer: fewer than a
/// grid step pending plus a push, or one whole step for the flush.
fn ext_len(taps: usize, grid: usize, max_input: usize) -> usize {
    (taps - 1).saturating_add((grid - 1).saturating_add(max_input).max(grid))
}

/// A streaming FIR filter for one channel.
pub struct Fir {
    plan: FirPlan,
    max_input: usize,
    /// `[history (taps − 1) | pending inputs | new inputs]`.
    ext: Vec<f32>,
    /// `ext[..filled]` holds valid samples.
    filled: usize,
    /// One per worker of `pool`; empty for a filter whose caller lends the
    /// scratch ([`Fir::with_plan`]).
    scratch: Vec<FirScratch>,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for Fir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fir")
            .field("taps", &self.taps())
            .finish_non_exhaustive()
    }
}

impl Fir {
    /// A filter with `kernel` (numpy.convolve orientation) that accepts up
    /// to `max_input` samples per [`Fir::push`], computing with `method`, and
    /// spreading the work of one push over `pool`'s threads when given.
    ///
    /// # Errors
    /// [`Error::Usage`] if the kernel is empty, `max_input` is 0, or the
    /// method cannot take the kernel ([`FirPlan::new`]).
    pub fn new(
        kernel: &[f32],
        max_input: usize,
        method: FirMethod,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> crate::Result<Self> {
        if max_input == 0 {
            return Err(crate::Error::usage(
                "a filter must take at least one sample per push",
            ));
        }
        let plan = FirPlan::new(kernel, method)?;
        let mut fir = Fir::with_plan(&plan, max_input, pool);
        if fir.scratch.is_empty() {
            fir.scratch.push(plan.scratch());
        }
        Ok(fir)
    }

    /// A filter on a shared `plan` with no scratch of its own: its caller
    /// lends one per push ([`Fir::push_with`]), so channels filtered by the
    /// same worker share one. With `pool`, pushes big enough to split use
    /// scratch of their own, one per worker, allocated here.
    ///
    /// # Panics
    /// If `max_input` is 0.
    pub fn with_plan(
        plan: &FirPlan,
        max_input: usize,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        assert!(max_input > 0, "FIR input size must be positive");
        let (taps, grid) = (plan.taps, plan.grid);
        let scratch = match &pool {
            Some(p) => (0..p.current_num_threads())
                .map(|_| plan.scratch())
                .collect(),
            None => Vec::new(),
        };
        Fir {
            plan: plan.clone(),
            max_input,
            ext: vec![0.0; ext_len(taps, grid, max_input)],
            filled: taps - 1,
            scratch,
            pool,
        }
    }

    /// Number of taps.
    pub fn taps(&self) -> usize {
        self.plan.taps
    }

    /// The method in use.
    pub fn method(&self) -> FirMethod {
        self.plan.method()
    }

    /// Most outputs one push can return (see [`FirPlan::max_output`]).
    pub fn max_output(&self) -> usize {
        self.plan.max_output(self.max_input)
    }

    /// Largest input one push accepts.
    pub fn max_input(&self) -> usize {
        self.max_input
    }

    /// Feeds `input` (at most `max_input` samples) and writes every output
    /// that is now complete to the front of `out` (which must hold
    /// [`Fir::max_output`]), returning how many.
    ///
    /// # Panics
    /// For a filter made by [`Fir::with_plan`] without a pool: use
    /// [`Fir::push_with`].
    pub fn push(&mut self, input: &[f32], out: &mut [f32]) -> usize {
        self.push_with(input, out, None)
    }

    /// [`Fir::push`] with `scratch` lent by the caller (any scratch from
    /// the same plan); `None` uses the filter's own.
    pub fn push_with(
        &mut self,
        input: &[f32],
        out: &mut [f32],
        scratch: Option<&mut FirScratch>,
    ) -> usize {
        assert!(
            input.len() <= self.max_input,
            "FIR push of {} samples exceeds the {} it was sized for",
            input.len(),
            self.max_input
        );
        let hist = self.plan.taps - 1;
        self.ext[self.filled..self.filled + input.len()].copy_from_slice(input);
        self.filled += input.len();
        let pending = self.filled - hist;
        let nout = pending / self.plan.grid * self.plan.grid;
        if nout > 0 {
            // With chunks shorter than a grid step, most pushes only
            // gather inputs: moving the buffer onto itself would cost a
            // copy of it per push for nothing.
            self.compute(nout, out, scratch);
            self.ext.copy_within(nout..self.filled, 0);
            self.filled -= nout;
        }
        nout
    }

    /// Ends the stream: computes the outputs of the inputs still pending in a
    /// partial block as if zeros followed (they do not affect these outputs
    /// beyond rounding), writes them to `out` and returns how many. The
    /// caller pushes the zeros of the convolution's tail first. `out` must
    /// hold [`Fir::max_output`].
    pub fn flush(&mut self, out: &mut [f32]) -> usize {
        self.flush_with(out, None)
    }

    /// [`Fir::flush`] with `scratch` lent by the caller (see
    /// [`Fir::push_with`]).
    pub fn flush_with(&mut self, out: &mut [f32], scratch: Option<&mut FirScratch>) -> usize {
        let hist = self.plan.taps - 1;
        let grid = self.plan.grid;
        let pending = self.filled - hist;
        if pending == 0 {
            return 0;
        }
        let end = hist + grid;
        self.ext[self.filled..end].fill(0.0);
        // One block of outputs (`out` holds max_output() >= grid); only
        // `pending` of them are real.
        self.compute(grid, out, scratch);
        self.ext.copy_within(grid..end, 0);
        self.filled = hist;
        pending
    }

    /// Computes `nout` outputs (a multiple of the grid) from `ext` into `out`.
    fn compute(&mut self, nout: usize, out: &mut [f32], lent: Option<&mut FirScratch>) {
        if nout == 0 {
            return;
        }
        let taps = self.plan.taps;
        let out = &mut out[..nout];
        let ext = &self.ext[..nout + taps - 1];
        let grid = self.plan.grid;
        let work_per_output = match *self.plan.engine {
            Engine::Direct { .. } => taps,
            Engine::Fft { .. } => FFT_WORK_PER_OUTPUT,
        };
        let workers = match &self.pool {
            Some(p) if nout * work_per_output >= MIN_PARALLEL_WORK => p.current_num_threads(),
            _ => 1,
        };
        // Split the outputs into `workers` runs of whole blocks.
        let blocks = nout / grid;
        let per = blocks.div_ceil(workers) * grid;
        match &*self.plan.engine {
            Engine::Direct { rev } => {
                if workers > 1 {
                    let pool = self.pool.as_ref().expect("workers > 1 implies a pool");
                    pool.install(|| {
                        out.par_chunks_mut(per).enumerate().for_each(|(t, o)| {
                            direct(rev, &ext[t * per..], o);
                        })
                    });
                } else {
                    direct(rev, ext, out);
                }
            }
            Engine::Fft {
                nfft,
                block,
                forward,
                inverse,
                spectrum,
                rev,
                sign,
            } => {
                let pair = Pair {
                    nfft: *nfft,
                    forward: forward.as_ref(),
                    inverse: inverse.as_ref(),
                    spectrum,
                    rev,
                    sign: *sign,
                };
                let job = |start: usize, o: &mut [f32], s: &mut FirScratch| {
                    for (p, op) in o.chunks_mut(grid).enumerate() {
                        let seg = &ext[start + p * grid..start + p * grid + block + nfft];
                        pair.run(seg, op, s);
                    }
                };
                if workers > 1 {
                    let pool = self.pool.as_ref().expect("workers > 1 implies a pool");
                    pool.install(|| {
                        out.par_chunks_mut(per)
                            .zip(self.scratch.par_iter_mut())
                            .enumerate()
                            .for_each(|(t, (o, s))| job(t * per, o, s))
                    });
                } else {
                    let s = match lent {
                        Some(s) => s,
                        None => self
                            .scratch
                            .first_mut()
                            .expect("a filter without a pool of its own is lent a scratch"),
                    };
                    job(0, out, s);
                }
            }
        }
    }
}

/// Direct convolution: `out[i] = Σ_j rev[j]·ext[i + j]`, summed in the order
/// of `j` for every `i`. Outputs are computed [`DIRECT_LANES`] at a time with
/// the accumulators held in registers across all taps (one load, one
/// multiply and one add per tap and lane), which the compiler vectorises.
fn direct(rev: &[f32], ext: &[f32], out: &mut [f32]) {
    let main = out.len() / DIRECT_LANES * DIRECT_LANES;
    let (body, tail) = out.split_at_mut(main);
    for (i, o) in body.chunks_exact_mut(DIRECT_LANES).enumerate() {
        let base = i * DIRECT_LANES;
        let mut acc = [0.0f32; DIRECT_LANES];
        for (j, &w) in rev.iter().enumerate() {
            let xs: &[f32; DIRECT_LANES] = ext[base + j..base + j + DIRECT_LANES]
                .try_into()
                .expect("slice has DIRECT_LANES samples");
            for (a, &x) in acc.iter_mut().zip(xs) {
                *a += w * x;
            }
        }
        o.copy_from_slice(&acc);
    }
    for (i, o) in tail.iter_mut().enumerate() {
        let base = main + i;
        let mut acc = 0.0f32;
        for (j, &w) in rev.iter().enumerate() {
            acc += w * ext[base + j];
        }
        *o = acc;
    }
}

/// What [`Pair::run`] needs of the plan.
struct Pair<'a> {
    nfft: usize,
    forward: &'a dyn Fft<f32>,
    inverse: &'a dyn Fft<f32>,
    spectrum: &'a [Complex<f32>],
    rev: &'a [f32],
    sign: TapSigns,
}

/// Magnitudes beyond which a block is scaled by a power of two before its
/// FFT (and back after): above 2^64, sums over a block of up to 2^20
/// samples times the kernel's gain could overflow f32 (constant `f32::MAX`
/// input gave all-NaN output); below 2^-64, products fall towards the
/// subnormals and lose precision. Scaling by a power of two is exact, so
/// blocks in between are left alone and keep their bits.
const SIGN_BIT: u32 = 0x8000_0000;
const INFINITY_BITS: u32 = 0x7f80_0000;
const SCALE_ABOVE: f32 = 1.8446744e19; // 2^64
const SCALE_BELOW: f32 = 5.421011e-20; // 2^-64

/// The power of two that brings `peak` (the largest finite magnitude of a
/// block) to [1, 2), or 1 when the block needs no scaling.
fn block_scale(peak: f32) -> f32 {
    if peak > SCALE_ABOVE || (peak > 0.0 && peak < SCALE_BELOW) {
        // Exponent of the peak, at least −126 so that 2^−e is an f32.
        let e = (peak.log2().floor() as i32).clamp(-126, 127);
        (2f64).powi(-e) as f32
    } else {
        1.0
    }
}

/// Relative rounding error of an overlap-save output (f32 FFTs of up to
/// 2^21 points: about log2(nfft)·ε_f32 ≈ 1.3·10⁻⁶, with margin): a scaled
/// output that lands this close above `f32::MAX` is `f32::MAX` rounded up
/// by the FFT, not an overflow (constant `f32::MAX` through a moving
/// average is `f32::MAX`, as numpy.convolve has it).
const FFT_ROUNDING: f32 = 1.0 / 65536.0;

/// Undoes [`block_scale`]'s `scale` on one output.
fn unscaler(scale: f32) -> impl Fn(f32) -> f32 {
    let unscale = 1.0 / scale;
    let limit = f32::MAX * scale * (1.0 + FFT_ROUNDING);
    move |v: f32| {
        let y = v * unscale;
        if y.is_infinite() && v.abs() <= limit {
            f32::MAX.copysign(v)
        } else {
            y
        }
    }
}

impl Pair<'_> {
    /// Two overlap-save blocks in one complex FFT: block A (`seg[..nfft]`)
    /// in the real part, block B (`seg[block..]`, `block = nfft − taps + 1`
    /// later) in the imaginary part. The kernel is real, so the circular
    /// convolution of `a + i·b` is `a∗k + i·(b∗k)`: the real part of the
    /// result is A's convolution and the imaginary part B's. Each keeps its
    /// last `block` outputs (the ones without wrap-around). This does the
    /// work of two real FFT pairs with one complex pair, with no real-FFT
    /// pre/post-processing.
    ///
    /// Non-finite samples would spread through the whole FFT (one NaN made
    /// 13,824 NaN outputs with 1025 taps): they go in as zeros, and the
    /// outputs they reach are then set to what the direct sum gives
    /// ([`mark_non_finite`]), so NaN and ±∞ land exactly where
    /// numpy.convolve puts them. Extreme magnitudes are scaled
    /// ([`block_scale`]).
    fn run(&self, seg: &[f32], out: &mut [f32], s: &mut FirScratch) {
        let nfft = self.nfft;
        let block = out.len() / 2;
        let span = &seg[..block + nfft];
        // The largest magnitude's bits: an integer max, which vectorises
        // (a float max with NaN checks in the loop cost 20% of the whole
        // filter). At or above the exponent of infinity: a non-finite
        // sample is in the block, and the finite peak needs its own pass.
        let top = span
            .iter()
            .fold(0u32, |m, v| m.max(v.to_bits() & !SIGN_BIT));
        let wild = top >= INFINITY_BITS;
        let peak = if wild {
            span.iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()))
        } else {
            f32::from_bits(top)
        };
        let scale = block_scale(peak);
        let (a, b) = (&seg[..nfft], &seg[block..block + nfft]);
        if wild || scale != 1.0 {
            let tame = |v: f32| if v.is_finite() { v * scale } else { 0.0 };
            for ((z, &re), &im) in s.buf.iter_mut().zip(a).zip(b) {
                *z = Complex {
                    re: tame(re),
                    im: tame(im),
                };
            }
        } else {
            for ((z, &re), &im) in s.buf.iter_mut().zip(a).zip(b) {
                *z = Complex { re, im };
            }
        }
        self.forward.process_with_scratch(&mut s.buf, &mut s.fft);
        for (z, h) in s.buf.iter_mut().zip(self.spectrum) {
            *z *= h;
        }
        self.inverse.process_with_scratch(&mut s.buf, &mut s.fft);
        let skip = nfft - block;
        let (out_a, out_b) = out.split_at_mut(block);
        if scale == 1.0 {
            for ((ya, yb), z) in out_a.iter_mut().zip(out_b.iter_mut()).zip(&s.buf[skip..]) {
                *ya = z.re;
                *yb = z.im;
            }
        } else {
            let back = unscaler(scale);
            for ((ya, yb), z) in out_a.iter_mut().zip(out_b.iter_mut()).zip(&s.buf[skip..]) {
                *ya = back(z.re);
                *yb = back(z.im);
            }
        }
        if wild {
            mark_non_finite(a, out_a, self.rev, self.sign, &mut s.marks);
            mark_non_finite(b, out_b, self.rev, self.sign, &mut s.marks);
        }
    }
}

/// Sets each output of `out` (`out[i] = Σ_j rev[j]·seq[i + j]`) whose taps
/// reach a non-finite sample of `seq` to what that sum is in IEEE
/// arithmetic, as numpy.convolve computes it: NaN when a NaN is in reach
/// (NaN·0 is NaN), else the sum of the infinite terms alone (finite terms
/// cannot change an infinite sum): ±∞, or NaN where +∞ meets −∞ or ∞ meets
/// a zero tap.
///
/// Linear in the block: NaN and infinities are counted over a sliding
/// window; only an output that infinities reach through a kernel of mixed
/// signs sums their terms, and stops at the first NaN. `marks` holds the
/// infinities' positions (its capacity, `seq.len()`, is never exceeded).
fn mark_non_finite(
    seq: &[f32],
    out: &mut [f32],
    rev: &[f32],
    sign: TapSigns,
    marks: &mut Vec<u32>,
) {
    let taps = rev.len();
    marks.clear();
    marks.extend(
        seq.iter()
            .enumerate()
            .filter(|(_, v)| v.is_infinite())
            .map(|(q, _)| q as u32),
    );
    // Counts of NaN, +∞ and −∞ in the window seq[i .. i + taps].
    let mut counts = [0usize; 3];
    let class = |v: f32| -> Option<usize> {
        if v.is_nan() {
            Some(0)
        } else if v == f32::INFINITY {
            Some(1)
        } else if v == f32::NEG_INFINITY {
            Some(2)
        } else {
            None
        }
    };
    for &v in &seq[..taps - 1] {
        if let Some(c) = class(v) {
            counts[c] += 1;
        }
    }
    let mut first = 0;
    for (i, o) in out.iter_mut().enumerate() {
        if let Some(c) = class(seq[i + taps - 1]) {
            counts[c] += 1;
        }
        if i > 0
            && let Some(c) = class(seq[i - 1])
        {
            counts[c] -= 1;
        }
        let [nan, pos, neg] = counts;
        if nan > 0 {
            *o = f32::NAN;
            continue;
        }
        if pos + neg == 0 {
            continue;
        }
        *o = match sign {
            TapSigns::Positive | TapSigns::Negative if pos > 0 && neg > 0 => f32::NAN,
            TapSigns::Positive => {
                if pos > 0 {
                    f32::INFINITY
                } else {
                    f32::NEG_INFINITY
                }
            }
            TapSigns::Negative => {
                if pos > 0 {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                }
            }
            TapSigns::Mixed => {
                while (marks[first] as usize) < i {
                    first += 1;
                }
                let mut acc = 0.0f32;
                for &q in &marks[first..] {
                    let q = q as usize;
                    if q >= i + taps || acc.is_nan() {
                        break;
                    }
                    acc += rev[q - i] * seq[q];
                }
                acc
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Full convolution in f64, the textbook definition.
    fn reference(x: &[f32], k: &[f32]) -> Vec<f64> {
        let n = x.len() + k.len() - 1;
        (0..n)
            .map(|i| {
                (0..k.len())
                    .filter(|&j| i >= j && i - j < x.len())
                    .map(|j| k[j] as f64 * x[i - j] as f64)
                    .sum()
            })
            .collect()
    }

    fn run(fir: &mut Fir, x: &[f32], chunk: usize) -> Vec<f32> {
        let mut out = vec![0.0; fir.max_output()];
        let mut y = Vec::new();
        let zeros = vec![0.0; fir.taps() - 1];
        for c in x.chunks(chunk).chain(zeros.chunks(chunk)) {
            let n = fir.push(c, &mut out);
            y.extend_from_slice(&out[..n]);
        }
        let n = fir.flush(&mut out);
        y.extend_from_slice(&out[..n]);
        y
    }

    fn signal(n: usize) -> Vec<f32> {
        let mut s = 0x2545_f491_u64;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// f32 arithmetic over `taps` terms of magnitude ≤ 1: rounding error grows
    /// like sqrt(taps)·2^-24 per output relative to Σ|k||x|; 1e-5 of the
    /// kernel's L1 norm bounds it for these sizes.
    const REL_TOL: f64 = 1e-5;

    #[test]
    fn both_methods_match_the_definition_for_every_chunking() {
        let x = signal(5000);
        for taps in [1, 2, 3, 17, 64, 129, 300] {
            let k = signal(taps + 7)[7..].to_vec();
            let want = reference(&x, &k);
            let l1: f64 = k.iter().map(|v| v.abs() as f64).sum();
            for method in [
                FirMethod::Direct,
                FirMethod::OverlapSave {
                    nfft: (2 * taps).next_power_of_two().max(16),
                },
            ] {
                let mut whole = None;
                for chunk in [1, 7, taps + 1, 1000, 5000] {
                    let mut fir = Fir::new(&k, chunk, method, None).unwrap();
                    let y = run(&mut fir, &x, chunk);
                    assert_eq!(y.len(), want.len(), "taps {taps} {method:?} chunk {chunk}");
                    for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                        assert!(
                            (*a as f64 - b).abs() <= REL_TOL * l1,
                            "taps {taps} {method:?} chunk {chunk}: y[{i}] = {a}, want {b}"
                        );
                    }
                    let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    match &whole {
                        None => whole = Some(bits),
                        Some(w) => assert!(
                            *w == bits,
                            "taps {taps} {method:?}: chunk {chunk} differs from chunk 1"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn threads_do_not_change_the_bits() {
        let x = signal(300_000);
        let k = signal(1025);
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap(),
        );
        for method in [FirMethod::Direct, FirMethod::choose(1025)] {
            let mut one = Fir::new(&k, 100_000, method, None).unwrap();
            let mut many = Fir::new(&k, 100_000, method, Some(pool.clone())).unwrap();
            assert_eq!(run(&mut one, &x, 100_000), run(&mut many, &x, 100_000));
        }
    }

    #[test]
    fn nfft_choice_is_a_power_of_two_with_room_for_outputs() {
        for taps in [49, 65, 1025, 16385] {
            let n = best_nfft(taps);
            assert!(
                n.is_power_of_two() && n >= 2 * taps,
                "taps {taps}: nfft {n}"
            );
        }
    }
}
