//! Decimation by an integer factor, streaming, as
//! `scipy.signal.resample_poly(x, 1, N)` computes it.
//!
//! Why its own stage rather than a FIR followed by dropping samples: a
//! polyphase decimator computes only the outputs it keeps, `1/N` of the
//! work, and its alignment is scipy's, which users compare against.
//!
//! scipy's `resample_poly(x, up=1, down=N)` (default window `('kaiser',
//! 5.0)`, `padtype='constant'`) designs `h = firwin(2·10N + 1, 1/N,
//! window=('kaiser', 5.0))` and returns `ceil(n/N)` outputs
//! `y[m] = Σ_j h[j] · x[mN + 10N − j]`, with `x` zero outside `[0, n)`:
//! the `'same'`-aligned convolution, kept at every N-th sample starting at
//! the first. (In scipy's code: `n_pre_pad = N`, `n_pre_remove = 11`, so
//! output `m` is the full convolution with the padded filter at
//! `(m + 11)N`, which is the plain filter's full output at `mN + 10N`.)
//!
//! Each output is a dot product in `f64` of the `f32` samples with the
//! `f64` taps, rounded to `f32` once: within 1e-7 relative of scipy's own
//! `f64` result. The state is the last `20N` samples of each plane, so the
//! outputs do not depend on how the stream is cut into chunks.

use crate::error::{Error, Result};

/// The largest decimation factor accepted: the filter has `20N + 1` taps
/// and every plane keeps `20N` samples of history, so `N` is bounded to
/// keep both far below any memory budget (2^20 gives 21M taps, 168 MB).
pub const MAX_DECIMATION: usize = 1 << 20;

/// `scipy.signal.resample_poly`'s filter half-length per unit of the rate
/// (`half_len = 10 * max(up, down)`).
const HALF_LEN_PER_RATE: usize = 10;

/// `scipy.signal.resample_poly`'s default window, `('kaiser', 5.0)`.
const KAISER_BETA: f64 = 5.0;

/// Checks a decimation factor.
///
/// # Errors
/// [`Error::Usage`] naming `--decimate` for 0 or more than
/// [`MAX_DECIMATION`].
pub fn check_factor(n: usize) -> Result<usize> {
    if n == 0 || n > MAX_DECIMATION {
        return Err(Error::usage(format!(
            "--decimate {n}: the factor must be between 1 and {MAX_DECIMATION}"
        )));
    }
    Ok(n)
}

/// The anti-aliasing filter `resample_poly(x, 1, n)` uses:
/// `firwin(20n + 1, 1/n, window=('kaiser', 5.0))`, unit gain at DC (the
/// designed filters' own firwin, with the shared Kaiser window).
pub fn design(n: usize) -> Vec<f64> {
    let numtaps = 2 * HALF_LEN_PER_RATE * n + 1;
    let cutoff = 1.0 / n as f64;
    super::firwin(
        numtaps,
        &[0.0, cutoff],
        0.0,
        &super::window::kaiser(numtaps, KAISER_BETA),
    )
}

/// Lanes of the dot product: independent partial sums that the compiler
/// keeps in vector registers (one running sum would wait on each addition).
const LANES: usize = 8;

/// `Σ h[k]·x[k]` in `f64`, in [`LANES`] interleaved partial sums added at
/// the end: a fixed order of operations for given lengths, so every output
/// is the same whatever the chunking.
fn dot(h: &[f64], x: &[f32]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (hc, xc) = (h.chunks_exact(LANES), x.chunks_exact(LANES));
    let (hr, xr) = (hc.remainder(), xc.remainder());
    for (hs, xs) in hc.zip(xc) {
        for k in 0..LANES {
            acc[k] += hs[k] * f64::from(xs[k]);
        }
    }
    let mut tail = 0.0;
    for (h, &x) in hr.iter().zip(xr) {
        tail += h * f64::from(x);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// One plane's decimator: samples in, every `factor`-th output of the
/// `'same'`-aligned filter out.
#[derive(Debug, Clone)]
pub struct Decimator {
    /// The taps reversed, so that each output is a forward dot product.
    rev: std::sync::Arc<[f64]>,
    factor: usize,
    half: usize,
    /// Samples from absolute index `base` on (those still needed).
    buf: Vec<f32>,
    base: u64,
    /// Samples received so far.
    received: u64,
    /// Index of the next output.
    next: u64,
}

/// Bytes of one plane's [`Decimator`] for `factor` and pushes of up to
/// `chunk` samples (its history buffer; the taps are shared).
pub fn state_bytes(factor: usize, chunk: usize) -> u64 {
    let history = 2 * HALF_LEN_PER_RATE as u64 * factor as u64 + factor as u64;
    (history + chunk as u64).saturating_mul(4)
}

/// Bytes of the shared taps for `factor`.
pub fn taps_bytes(factor: usize) -> u64 {
    (2 * HALF_LEN_PER_RATE as u64 * factor as u64 + 1).saturating_mul(8)
}

/// Most outputs one push of `frames` samples can give (the outputs waiting
/// for the filter's look-ahead included).
pub fn max_outputs(frames: usize, factor: usize) -> usize {
    frames.div_ceil(factor) + 1
}

/// Most outputs [`Decimator::finish`] gives: the ones still waiting for
/// the filter's look-ahead of `10·factor` samples.
pub fn max_tail(factor: usize) -> usize {
    (HALF_LEN_PER_RATE * factor).div_ceil(factor) + 1
}

impl Decimator {
    /// A decimator by `factor` with the taps of [`design`]`(factor)`
    /// reversed (shared between planes), for pushes of at most `chunk`
    /// samples (its buffer is allocated here, once).
    pub fn new(rev_taps: std::sync::Arc<[f64]>, factor: usize, chunk: usize) -> Self {
        let half = HALF_LEN_PER_RATE * factor;
        debug_assert_eq!(rev_taps.len(), 2 * half + 1);
        Decimator {
            rev: rev_taps,
            factor,
            half,
            buf: Vec::with_capacity(2 * half + factor + chunk),
            base: 0,
            received: 0,
            next: 0,
        }
    }

    /// The taps of [`design`]`(factor)`, reversed, for [`Decimator::new`].
    pub fn reversed_taps(factor: usize) -> std::sync::Arc<[f64]> {
        let mut h = design(factor);
        h.reverse();
        h.into()
    }

    /// Output `m`: `Σ_k rev[k] · x[mN − half + k]`, `x` zero outside what
    /// was received (before 0, and after the end once finished).
    fn output(&self, m: u64) -> f32 {
        let first = (m * self.factor as u64) as i64 - self.half as i64;
        let mut acc = 0.0f64;
        // Taps before sample 0 meet zeros.
        let k0 = (-first).max(0) as usize;
        let start = (first + k0 as i64) as u64;
        let avail = self.received.saturating_sub(start) as usize;
        let k1 = self.rev.len().min(k0 + avail);
        if k1 > k0 {
            let from = (start - self.base) as usize;
            acc = dot(&self.rev[k0..k1], &self.buf[from..from + (k1 - k0)]);
        }
        acc as f32
    }

    /// Takes `x`, writes the outputs that are complete to `out` and returns
    /// how many (at most [`max_outputs`]`(x.len(), factor)`).
    pub fn push(&mut self, x: &[f32], out: &mut [f32]) -> usize {
        self.buf.extend_from_slice(x);
        self.received += x.len() as u64;
        let mut n = 0;
        // Output m needs samples up to mN + half.
        while self.next * self.factor as u64 + (self.half as u64) < self.received {
            out[n] = self.output(self.next);
            n += 1;
            self.next += 1;
        }
        self.compact();
        n
    }

    /// The input has ended: writes the remaining outputs (up to
    /// `ceil(received / factor)` in all) and returns how many.
    pub fn finish(&mut self, out: &mut [f32]) -> usize {
        let total = self.received.div_ceil(self.factor as u64);
        let mut n = 0;
        while self.next < total {
            out[n] = self.output(self.next);
            n += 1;
            self.next += 1;
        }
        n
    }

    /// Drops the samples no later output needs.
    fn compact(&mut self) {
        let keep_from = (self.next * self.factor as u64).saturating_sub(self.half as u64);
        if keep_from > self.base {
            let drop = ((keep_from - self.base) as usize).min(self.buf.len());
            self.buf.copy_within(drop.., 0);
            self.buf.truncate(self.buf.len() - drop);
            self.base += drop as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scipy.signal.resample_poly`'s filter for N = 3, printed by scipy
    /// 1.17.1 (`firwin(61, 1/3, window=('kaiser', 5.0))`), taps 1, 2, 29, 30.
    #[test]
    fn the_filter_is_scipys() {
        let h = design(3);
        assert_eq!(h.len(), 61);
        // f64 design against scipy's printed f64 values: the same formula
        // in a different order of operations, within a few ulps.
        const TOL: f64 = 1e-15;
        for (i, want) in [
            (1usize, -0.000_507_575_810_220_031_3),
            (2, -0.000_717_161_508_011_700_2),
            (29, 0.275_147_722_678_933_8),
            (30, 0.333_535_391_184_592_4),
        ] {
            assert!((h[i] - want).abs() < TOL, "tap {i}: {} vs {want}", h[i]);
        }
    }

    /// Streaming in any pieces gives exactly what one push gives, and the
    /// output count is ceil(n / N).
    #[test]
    fn outputs_do_not_depend_on_the_pieces() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32) - 50.0).collect();
        for factor in [1, 2, 3, 7] {
            let rev = Decimator::reversed_taps(factor);
            let run = |piece: usize| {
                let mut d = Decimator::new(rev.clone(), factor, piece);
                let mut y = Vec::new();
                let mut out = vec![0.0; max_outputs(piece, factor).max(max_tail(factor))];
                for c in x.chunks(piece) {
                    let n = d.push(c, &mut out);
                    y.extend_from_slice(&out[..n]);
                }
                let n = d.finish(&mut out);
                y.extend_from_slice(&out[..n]);
                y
            };
            let whole = run(x.len());
            assert_eq!(whole.len(), x.len().div_ceil(factor));
            for piece in [1, 5, 64, 999] {
                assert_eq!(run(piece), whole, "factor {factor}, pieces of {piece}");
            }
        }
    }
}
