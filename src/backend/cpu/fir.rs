//! Streaming FIR filtering on the CPU: direct convolution for short kernels,
//! FFT overlap-save (realfft) for long ones.
//!
//! Why it is built this way:
//! - Results must not depend on the chunk size, bit for bit. The direct
//!   method computes every output with the same sequence of operations
//!   wherever the chunk boundaries fall. The overlap-save method runs on a
//!   grid of FFT blocks fixed to absolute sample positions, not to chunks: a
//!   block is transformed only when all its inputs have arrived, so outputs
//!   come out with a latency of less than one block and are identical for any
//!   chunking.
//! - The history the filter needs (`taps - 1` samples) is carried in the
//!   front of one contiguous buffer, so every output reads one slice.
//! - Nothing allocates after construction: the buffers are sized for the
//!   largest chunk, and each worker thread owns its FFT scratch.
//!
//! Outputs are those of the *full* convolution `y[n] = Σ_j k[j]·x[n−j]`
//! (numpy.convolve's orientation), one per input pushed; the caller trims
//! them to the `same` or `valid` range and pushes zeros at the end for the
//! tail.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Kernels up to this many taps use direct convolution; longer ones use FFT
/// overlap-save. Measured with `cargo bench --bench throughput -- fir_crossover`
/// on the 2-core development machine (AVX-512): direct is faster up to 48
/// taps (see README, "FIR method crossover").
pub const DIRECT_MAX_TAPS: usize = 48;

/// Outputs the direct method computes at once, in registers: four SSE
/// vectors (two AVX), enough independent adds to hide their latency.
const DIRECT_LANES: usize = 16;

/// Outputs below which splitting work across threads costs more than it
/// saves.
const MIN_PARALLEL_OUTPUTS: usize = 32 * 1024;

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

impl FirMethod {
    /// The method for a kernel of `taps` taps: direct up to
    /// [`DIRECT_MAX_TAPS`], else overlap-save with the FFT length that
    /// minimises the FFT work per output sample.
    pub fn choose(taps: usize) -> Self {
        if taps <= DIRECT_MAX_TAPS {
            FirMethod::Direct
        } else {
            FirMethod::OverlapSave {
                nfft: best_nfft(taps),
            }
        }
    }
}

/// The power-of-two FFT length minimising `nfft·log2(nfft) / (nfft − taps + 1)`,
/// the cost of two real FFTs per block divided by the outputs per block.
pub fn best_nfft(taps: usize) -> usize {
    let mut best = (f64::INFINITY, 0);
    let mut nfft = (2 * taps).next_power_of_two().max(16);
    // 2^20 samples (4 MiB per buffer) is an upper bound that keeps a block's
    // buffers out of the memory budget's way; the cost curve is flat there.
    while nfft <= 1 << 20 {
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
        forward: Arc<dyn RealToComplex<f32>>,
        inverse: Arc<dyn ComplexToReal<f32>>,
        /// The kernel's spectrum, scaled by 1/nfft (the inverse FFT is
        /// unnormalised).
        spectrum: Vec<Complex<f32>>,
    },
}

/// Per-worker buffers for one FFT block.
struct Scratch {
    time: Vec<f32>,
    freq: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
}

/// A streaming FIR filter for one channel.
pub struct Fir {
    taps: usize,
    /// Outputs per block: 1 for the direct method, `nfft − taps + 1` for
    /// overlap-save.
    grid: usize,
    max_input: usize,
    /// `[history (taps − 1) | pending inputs | new inputs]`.
    ext: Vec<f32>,
    /// `ext[..filled]` holds valid samples.
    filled: usize,
    engine: Engine,
    scratch: Vec<Scratch>,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Fir {
    /// A filter with `kernel` (numpy.convolve orientation) that accepts up
    /// to `max_input` samples per [`Fir::push`], computing with `method`, and
    /// spreading the work of one push over `pool`'s threads when given.
    ///
    /// # Panics
    /// If the kernel is empty or `max_input` is 0 (the caller validates).
    pub fn new(
        kernel: &[f32],
        max_input: usize,
        method: FirMethod,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        assert!(!kernel.is_empty(), "FIR kernel must have at least one tap");
        assert!(max_input > 0, "FIR input size must be positive");
        let taps = kernel.len();
        let workers = pool.as_ref().map_or(1, |p| p.current_num_threads());
        let (engine, grid, scratch) = match method {
            FirMethod::Direct => {
                let rev = kernel.iter().rev().copied().collect();
                (Engine::Direct { rev }, 1, Vec::new())
            }
            FirMethod::OverlapSave { nfft } => {
                assert!(nfft > taps, "FFT length {nfft} must exceed the {taps} taps");
                let mut planner = RealFftPlanner::<f32>::new();
                let forward = planner.plan_fft_forward(nfft);
                let inverse = planner.plan_fft_inverse(nfft);
                let mut padded = forward.make_input_vec();
                padded[..taps].copy_from_slice(kernel);
                let mut spectrum = forward.make_output_vec();
                let mut fft_scratch = forward.make_scratch_vec();
                forward
                    .process_with_scratch(&mut padded, &mut spectrum, &mut fft_scratch)
                    .expect("buffer sizes come from the plan");
                let scale = 1.0 / nfft as f32;
                for c in &mut spectrum {
                    *c *= scale;
                }
                let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
                let scratch = (0..workers)
                    .map(|_| Scratch {
                        time: vec![0.0; nfft],
                        freq: vec![Complex::default(); nfft / 2 + 1],
                        fft: vec![Complex::default(); scratch_len],
                    })
                    .collect();
                let engine = Engine::Fft {
                    nfft,
                    forward,
                    inverse,
                    spectrum,
                };
                (engine, nfft - taps + 1, scratch)
            }
        };
        let ext = vec![0.0; taps - 1 + grid - 1 + max_input.max(grid)];
        Fir {
            taps,
            grid,
            max_input,
            ext,
            filled: taps - 1,
            engine,
            scratch,
            pool,
        }
    }

    /// Number of taps.
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// The method in use.
    pub fn method(&self) -> FirMethod {
        match &self.engine {
            Engine::Direct { .. } => FirMethod::Direct,
            Engine::Fft { nfft, .. } => FirMethod::OverlapSave { nfft: *nfft },
        }
    }

    /// Most outputs one push can return: the pending inputs of a partial
    /// block plus the new ones.
    pub fn max_output(&self) -> usize {
        self.max_input + self.grid - 1
    }

    /// Largest input one push accepts.
    pub fn max_input(&self) -> usize {
        self.max_input
    }

    /// Feeds `input` (at most `max_input` samples) and writes every output
    /// that is now complete to the front of `out` (which must hold
    /// [`Fir::max_output`]), returning how many.
    pub fn push(&mut self, input: &[f32], out: &mut [f32]) -> usize {
        assert!(
            input.len() <= self.max_input,
            "FIR push of {} samples exceeds the {} it was sized for",
            input.len(),
            self.max_input
        );
        let hist = self.taps - 1;
        self.ext[self.filled..self.filled + input.len()].copy_from_slice(input);
        self.filled += input.len();
        let pending = self.filled - hist;
        let nout = pending / self.grid * self.grid;
        self.compute(nout, out);
        self.ext.copy_within(nout..self.filled, 0);
        self.filled -= nout;
        nout
    }

    /// Ends the stream: computes the outputs of the inputs still pending in a
    /// partial block as if zeros followed (they do not affect these outputs
    /// beyond rounding), writes them to `out` and returns how many. The
    /// caller pushes the zeros of the convolution's tail first. `out` must
    /// hold [`Fir::max_output`].
    pub fn flush(&mut self, out: &mut [f32]) -> usize {
        let hist = self.taps - 1;
        let pending = self.filled - hist;
        if pending == 0 {
            return 0;
        }
        let end = hist + self.grid;
        self.ext[self.filled..end].fill(0.0);
        // One block of outputs (`out` holds max_output() >= grid); only
        // `pending` of them are real.
        self.compute(self.grid, out);
        self.ext.copy_within(self.grid..end, 0);
        self.filled = hist;
        pending
    }

    /// Computes `nout` outputs (a multiple of the grid) from `ext` into `out`.
    fn compute(&mut self, nout: usize, out: &mut [f32]) {
        if nout == 0 {
            return;
        }
        let out = &mut out[..nout];
        let ext = &self.ext[..nout + self.taps - 1];
        let grid = self.grid;
        let workers = match &self.pool {
            Some(p) if nout >= MIN_PARALLEL_OUTPUTS => p.current_num_threads(),
            _ => 1,
        };
        // Split the outputs into `workers` runs of whole blocks.
        let blocks = nout / grid;
        let per = blocks.div_ceil(workers) * grid;
        match &self.engine {
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
                forward,
                inverse,
                spectrum,
            } => {
                let job = |start: usize, o: &mut [f32], s: &mut Scratch| {
                    for (b, ob) in o.chunks_mut(grid).enumerate() {
                        let seg = &ext[start + b * grid..start + b * grid + nfft];
                        fft_block(seg, ob, forward.as_ref(), inverse.as_ref(), spectrum, s);
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
                    job(0, out, &mut self.scratch[0]);
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

/// One overlap-save block: circular convolution of `seg` (nfft samples) with
/// the kernel, keeping the last `nfft − taps + 1` outputs (the ones without
/// wrap-around).
fn fft_block(
    seg: &[f32],
    out: &mut [f32],
    forward: &dyn RealToComplex<f32>,
    inverse: &dyn ComplexToReal<f32>,
    spectrum: &[Complex<f32>],
    s: &mut Scratch,
) {
    s.time.copy_from_slice(seg);
    forward
        .process_with_scratch(&mut s.time, &mut s.freq, &mut s.fft)
        .expect("buffer sizes come from the plan");
    for (x, h) in s.freq.iter_mut().zip(spectrum) {
        *x *= h;
    }
    // The DC and Nyquist bins of a real signal's spectrum are real; rounding
    // in the product leaves them so, but realfft insists on exact zeros.
    let last = s.freq.len() - 1;
    s.freq[0].im = 0.0;
    s.freq[last].im = 0.0;
    inverse
        .process_with_scratch(&mut s.freq, &mut s.time, &mut s.fft)
        .expect("buffer sizes come from the plan");
    let skip = seg.len() - out.len();
    out.copy_from_slice(&s.time[skip..]);
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
                    let mut fir = Fir::new(&k, chunk, method, None);
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
            let mut one = Fir::new(&k, 100_000, method, None);
            let mut many = Fir::new(&k, 100_000, method, Some(pool.clone()));
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
