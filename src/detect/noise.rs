//! Noise levels: the median absolute deviation of a channel, scaled to a
//! standard deviation, from a few chunks spread over the recording.
//!
//! Why this module exists: spike detection sets each channel's threshold as
//! a multiple of that channel's noise (`--on 5` noise levels, say), and the
//! noise must be robust to the spikes themselves, so it is the MAD, not the
//! standard deviation. It reproduces SpikeInterface's
//! `get_noise_levels(recording, method="mad")`: per channel,
//! `median(|x − median(x)|) / 0.6744897501960817` over random chunks of the
//! recording. Two deliberate choices:
//!
//! * **Arithmetic**: the medians are NumPy's `np.median` in `f64` (the
//!   samples widened from `f32`, exactly): the middle value for an odd
//!   count, the mean `(a + b) / 2` of the two middle values for an even
//!   one; `|x − median|` is taken in `f64`. (SpikeInterface computes in the
//!   recording's dtype, often `float32`; `f64` is the exact version of the
//!   same formula.) A median is found with `select_nth_unstable`, in O(n),
//!   without a full sort.
//! * **Where the chunks are** ([`NoiseChunks::positions`]): SpikeInterface
//!   draws the chunks' starts at random (seeded); we space them evenly
//!   instead, so that the levels, and therefore the events, are a
//!   deterministic function of the file, whatever the seed, the chunking or
//!   the machine. The defaults are SpikeInterface's: 20 chunks
//!   (`num_chunks_per_segment`) of 10 000 samples (`chunk_size`).
//!
//! Non-finite samples (NaN, ±Inf: dropouts, saturation markers) are left
//! out: the MAD is that of the finite samples only. A channel with no
//! finite sample at all has a NaN noise level (a threshold made from it
//! never triggers).

use crate::error::Error;

/// The MAD of a normal distribution per unit of standard deviation,
/// `Φ⁻¹(3/4)`: `MAD / MAD_SCALE` estimates σ. SpikeInterface's constant.
pub const MAD_SCALE: f64 = 0.6744897501960817;

/// Largest number of samples per channel that [`NoiseChunks`] may ask for:
/// 2³¹ (8 GiB of `f32`), far beyond what a noise estimate needs.
pub const MAX_NOISE_SAMPLES: u64 = 1 << 31;

/// The noise level of `values`: `median(|v − median(v)|) / MAD_SCALE` over
/// the finite values, computed as NumPy does in `f64` (see the module
/// docs); NaN when no value is finite.
///
/// Allocates a scratch of `values.len()` `f64`; [`mad_with`] reuses the
/// caller's.
pub fn mad(values: &[f32]) -> f64 {
    let mut scratch = Vec::with_capacity(values.len());
    mad_with(values, &mut scratch)
}

/// [`mad`] with a caller-owned scratch buffer, which it overwrites: no
/// allocation once `scratch` has the capacity of `values.len()`.
///
/// The medians select on the values' bits as integer keys in the floats'
/// order ([`f64_key`]): native `u64` comparisons, where `f64::total_cmp`
/// costs a few operations more per comparison (on a 385-channel probe the
/// noise estimate's selections took 1.5 s of its 1.8 s). The values
/// selected, and so the result, are the same.
pub fn mad_with(values: &[f32], scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(
        values
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| f64::from(v)),
    );
    if scratch.is_empty() {
        return f64::NAN;
    }
    let keys: &mut [u64] = bytemuck::cast_slice_mut(scratch.as_mut_slice());
    for k in keys.iter_mut() {
        *k = f64_key(*k);
    }
    let med = median_of_keys(keys);
    for k in keys.iter_mut() {
        *k = f64_key((f64_of_key(*k) - med).abs().to_bits());
    }
    median_of_keys(keys) / MAD_SCALE
}

/// A `u64` whose unsigned order is `f64::total_cmp`'s order of the `f64`
/// with bits `b` (negative values flipped whole, the others with the sign
/// bit set).
fn f64_key(b: u64) -> u64 {
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The `f64` of a [`f64_key`].
fn f64_of_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// `np.median` of the finite, non-empty values whose [`f64_key`]s are
/// `keys` (reordered): the middle value, or the mean of the two middle
/// values for an even count.
fn median_of_keys(keys: &mut [u64]) -> f64 {
    let n = keys.len();
    debug_assert!(n > 0, "median of nothing");
    let k = n / 2;
    let (lower, upper, _) = keys.select_nth_unstable(k);
    let upper = f64_of_key(*upper);
    if n % 2 == 1 {
        return upper;
    }
    // The lower middle value is the largest of those before position k.
    let below = f64_of_key(*lower.iter().max().expect("n even and > 0"));
    // NumPy: np.mean of the two, i.e. their sum divided by 2.
    (below + upper) / 2.0
}

/// Where to read the chunks that a noise level is measured on: `chunks`
/// chunks of `chunk_samples` samples, spread evenly over the recording.
///
/// [`Default`] gives SpikeInterface's 20 chunks of 10 000 samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseChunks {
    /// How many chunks (at least 1).
    pub chunks: usize,
    /// Samples per chunk (at least 1).
    pub chunk_samples: usize,
}

impl Default for NoiseChunks {
    fn default() -> Self {
        NoiseChunks {
            chunks: 20,
            chunk_samples: 10_000,
        }
    }
}

impl NoiseChunks {
    /// Checks the numbers: at least one chunk of at least one sample, and
    /// at most [`MAX_NOISE_SAMPLES`] samples in all.
    ///
    /// # Errors
    /// [`Error::Usage`] saying which number is wrong.
    pub fn validate(&self) -> crate::Result<()> {
        if self.chunks == 0 {
            return Err(Error::usage(
                "noise levels need at least 1 chunk (SpikeInterface's default is 20)",
            ));
        }
        if self.chunk_samples == 0 {
            return Err(Error::usage(
                "noise chunks need at least 1 sample each (SpikeInterface's default is 10000)",
            ));
        }
        let total = (self.chunks as u64).saturating_mul(self.chunk_samples as u64);
        if total > MAX_NOISE_SAMPLES {
            return Err(Error::usage(format!(
                "noise levels from {} chunks of {} samples: {total} samples per channel is more than the {MAX_NOISE_SAMPLES} allowed; a few hundred thousand samples already give the MAD to a fraction of a percent",
                self.chunks, self.chunk_samples
            )));
        }
        Ok(())
    }

    /// Samples each chunk holds in a recording of `total_frames` frames:
    /// `chunk_samples`, or the whole recording if it is shorter.
    pub fn chunk_len(&self, total_frames: u64) -> u64 {
        total_frames.min(self.chunk_samples as u64)
    }

    /// The first frame of each chunk in a recording of `total_frames`
    /// (`N`) frames, in increasing order; each chunk is
    /// [`NoiseChunks::chunk_len`] frames long. With `L = chunk_samples`:
    ///
    /// * `N = 0`: no chunk;
    /// * `N <= L`: one chunk, `[0]`, the whole recording;
    /// * otherwise `K = min(chunks, ⌊N / L⌋)` chunks (fewer than asked when
    ///   the recording cannot hold them all without overlap), chunk `i`
    ///   starting at `⌊i · (N − L) / (K − 1)⌋` for `K > 1` (the first at
    ///   0, the last ending at the last frame; consecutive starts are at
    ///   least `L` apart, so the chunks never overlap), and `[0]` for
    ///   `K = 1`.
    ///
    /// # Panics
    /// If [`NoiseChunks::validate`] fails: validate user input first.
    pub fn positions(&self, total_frames: u64) -> Vec<u64> {
        if let Err(e) = self.validate() {
            panic!("invalid noise chunks: {e}");
        }
        let (n, l) = (total_frames, self.chunk_samples as u64);
        if n == 0 {
            return Vec::new();
        }
        if n <= l {
            return vec![0];
        }
        let k = (self.chunks as u64).min(n / l);
        if k == 1 {
            return vec![0];
        }
        let span = u128::from(n - l);
        let gaps = u128::from(k - 1);
        (0..k)
            .map(|i| {
                // i · (N − L) < 2³¹ · 2⁶⁴ fits u128; the quotient is <= N − L.
                (u128::from(i) * span / gaps) as u64
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median of `values` through their keys.
    fn median_in_place(values: &[f64]) -> f64 {
        let mut keys: Vec<u64> = values.iter().map(|v| f64_key(v.to_bits())).collect();
        median_of_keys(&mut keys)
    }

    #[test]
    fn median_is_numpys() {
        // np.median([3, 1, 2]) = 2; np.median([4, 1, 3, 2]) = 2.5;
        // np.median([-1, -1, 7, 7]) = 3; np.median([-3, -1.5, -2, -7]) = -2.5.
        assert_eq!(median_in_place(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_in_place(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median_in_place(&[-1.0, 7.0, -1.0, 7.0]), 3.0);
        assert_eq!(median_in_place(&[-3.0, -1.5, -2.0, -7.0]), -2.5);
        assert_eq!(median_in_place(&[5.0]), 5.0);
    }

    #[test]
    fn keys_order_doubles_as_total_cmp() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1e-310,
            -0.0,
            0.0,
            1e-310,
            3.0,
            1e300,
            f64::INFINITY,
        ];
        for a in values {
            assert_eq!(f64_of_key(f64_key(a.to_bits())).to_bits(), a.to_bits());
            for b in values {
                assert_eq!(
                    f64_key(a.to_bits()).cmp(&f64_key(b.to_bits())),
                    a.total_cmp(&b),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn mad_with_reuses_its_scratch() {
        let mut scratch = Vec::with_capacity(8);
        let ptr = scratch.as_ptr();
        // |x − 2| = [1, 0, 1, 2]: median 1.
        assert_eq!(
            mad_with(&[1.0, 2.0, 3.0, 4.0], &mut scratch),
            1.0 / MAD_SCALE
        );
        assert_eq!(scratch.as_ptr(), ptr, "no reallocation within capacity");
    }
}
