//! Frequency shift of a complex signal: `y[n] = x[n] · e^(−2πi·f·n/fs)`,
//! the mixer that moves a signal at `f` Hz to 0 Hz (`--shift`).
//!
//! Why the care with the phase: over a long recording `n` reaches 10^10 and
//! more, and `f·n/fs` computed plainly in `f64` then carries an error of
//! `n · 2^-53` cycles (10^-6 cycles at 10^10: a phase that drifts with the
//! position in the file). Here the phase `frac(n · f/fs)` is exact to a few
//! ulps at any `n`: `f/fs` is kept as the sum of two `f64`s, and `n · r` is
//! split into its rounded product and that product's exact error (one
//! fused multiply-add), whose fractional parts are added.
//!
//! Between exact phases, the phasor advances by multiplying with the
//! one-sample step `e^(−2πi·f/fs)` in `f64`; an exact phasor is taken every
//! [`ANCHOR`] samples of the *absolute* sample index, and a block that
//! starts between two anchors recomputes from the previous anchor. The
//! factor applied to sample `n` is therefore a function of `n` alone, and
//! the output does not depend on how the stream is cut into chunks, bit for
//! bit. The recurrence's drift over [`ANCHOR`] steps is below 1e-12, far
//! below `f32`'s resolution.

use crate::error::{Error, Result};

/// Samples between exact phasors (see the module docs).
pub const ANCHOR: u64 = 1024;

/// A mixer by `f/fs` cycles per sample.
#[derive(Debug, Clone, Copy)]
pub struct Mixer {
    /// `f/fs` as `hi + lo`, `|lo| ≤ ulp(hi)/2`.
    hi: f64,
    lo: f64,
    /// `e^(−2πi·f/fs)` as (cos, sin).
    step: (f64, f64),
}

impl Mixer {
    /// A mixer that moves `hz` to 0 Hz in a signal sampled at `sample_rate`
    /// Hz.
    ///
    /// # Errors
    /// [`Error::Usage`] naming `--shift` for a non-finite shift or a
    /// sample rate that is not a positive finite number.
    pub fn new(hz: f64, sample_rate: f64) -> Result<Self> {
        if !hz.is_finite() {
            return Err(Error::usage(format!(
                "--shift {hz}: must be a number of Hz"
            )));
        }
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(Error::usage(format!(
                "--shift needs a positive sample rate, not {sample_rate}"
            )));
        }
        let hi = hz / sample_rate;
        // The division's exact remainder: hz − hi·fs, with one rounding.
        let lo = (-hi).mul_add(sample_rate, hz) / sample_rate;
        let (s, c) = (-2.0 * std::f64::consts::PI * hi).sin_cos();
        Ok(Mixer {
            hi,
            lo,
            step: (c, s),
        })
    }

    /// Cycles per sample of the shift (`f/fs`).
    pub fn cycles_per_sample(&self) -> f64 {
        self.hi + self.lo
    }

    /// The phasor `e^(−2πi·frac(n·f/fs))` as (cos, sin), exact to a few
    /// ulps at any `n`.
    pub fn phasor(&self, n: u64) -> (f64, f64) {
        let nf = n as f64; // exact below 2^53 samples
        let p = nf * self.hi;
        let err = nf.mul_add(self.hi, -p); // p + err == nf·hi exactly
        let mut phase = (p - p.floor()) + err + nf * self.lo;
        phase -= phase.round(); // [-0.5, 0.5]: the most accurate sin/cos
        let (s, c) = (-2.0 * std::f64::consts::PI * phase).sin_cos();
        (c, s)
    }

    /// Mixes one complex channel in place: `re[i] + i·im[i]` is sample
    /// `start + i`.
    pub fn mix(&self, start: u64, re: &mut [f32], im: &mut [f32]) {
        debug_assert_eq!(re.len(), im.len());
        if re.is_empty() {
            return;
        }
        // Start from the anchor at or before `start`, as every chunking does.
        let anchor = start - start % ANCHOR;
        let mut p = self.phasor(anchor);
        for _ in anchor..start {
            p = self.advance(p);
        }
        for (n, (r, i)) in (start..).zip(re.iter_mut().zip(im.iter_mut())) {
            if n.is_multiple_of(ANCHOR) {
                p = self.phasor(n);
            }
            let (xr, xi) = (f64::from(*r), f64::from(*i));
            *r = (xr * p.0 - xi * p.1) as f32;
            *i = (xr * p.1 + xi * p.0) as f32;
            p = self.advance(p);
        }
    }

    /// The phasor one sample later.
    fn advance(&self, p: (f64, f64)) -> (f64, f64) {
        let (c, s) = self.step;
        (p.0 * c - p.1 * s, p.0 * s + p.1 * c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against `exp(−2πi·f·n/fs)` computed in f64 from the exact rational
    /// phase (integers: f and fs whole Hz), at small and huge `n`.
    #[test]
    fn phase_is_exact_at_any_index() {
        // A few ulps of a unit phasor, after sin/cos.
        const TOL: f64 = 1e-14;
        let (f, fs) = (123_457i128, 2_000_000i128);
        let m = Mixer::new(f as f64, fs as f64).unwrap();
        for n in [0u64, 1, 1023, 1024, 99_999, 1 << 40, (1 << 45) + 12_345] {
            // frac(n f / fs) exactly, in integers.
            let num = (n as i128 * f) % fs;
            let phase = num as f64 / fs as f64;
            let (s, c) = (-2.0 * std::f64::consts::PI * phase).sin_cos();
            let (pc, ps) = m.phasor(n);
            assert!(
                (pc - c).abs() < TOL && (ps - s).abs() < TOL,
                "n = {n}: ({pc}, {ps}) vs ({c}, {s})"
            );
        }
    }

    /// The output does not depend on where the blocks start.
    #[test]
    fn mixing_in_pieces_is_bit_identical() {
        let m = Mixer::new(-3_210.5, 48_000.0).unwrap();
        let n = 5000;
        let re0: Vec<f32> = (0..n).map(|i| ((i % 17) as f32) - 8.0).collect();
        let im0: Vec<f32> = (0..n).map(|i| ((i % 13) as f32) * 0.5).collect();
        let whole = {
            let (mut re, mut im) = (re0.clone(), im0.clone());
            m.mix(0, &mut re, &mut im);
            (re, im)
        };
        for piece in [1, 7, 1000, 1024, 4999] {
            let (mut re, mut im) = (re0.clone(), im0.clone());
            let mut at = 0;
            while at < n {
                let end = (at + piece).min(n);
                m.mix(at as u64, &mut re[at..end], &mut im[at..end]);
                at = end;
            }
            assert_eq!((re, im), whole, "pieces of {piece}");
        }
    }
}
