//! Common reference across channels (`--reference median|mean`): at each
//! sample, subtract the median (or mean) of all channels.
//!
//! Why: on a multi-channel probe, what every channel sees at once (motion,
//! licking, line noise picked up by the reference wire) is not neural; a
//! spike is seen by a few neighbouring channels. Subtracting the median
//! across channels (SpikeInterface's
//! `common_reference(reference='global', operator='median')`, "CMR")
//! removes the shared part and keeps the local one; it runs after the
//! filter, as SpikeInterface's preprocessing chain does.
//!
//! Each sample's median is numpy's (`np.median` along the channel axis:
//! the middle value, or the mean of the two middle values for an even
//! count), computed in `f64` from the `f32` samples, and the difference is
//! rounded once to `f32`. The middle values are found among the `f32`
//! samples themselves, as integer keys in the float's order (see
//! [`f32_key`]): selecting on `u32` compares natively, where `f64` needs
//! `total_cmp` (the median is 3× cheaper, and it dominated a 385-channel
//! probe's pipeline); the values selected, and so the result, are the
//! same. Every frame is independent of the others, so the
//! result does not depend on the chunking, the thread count or the
//! backend.

use rayon::prelude::*;

use crate::pool::Block;

/// What is subtracted at each sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// The median across channels (CMR).
    Median,
    /// The mean across channels (CAR).
    Mean,
}

/// Frames per task when several threads share a block.
const FRAMES_PER_TASK: usize = 1024;

/// Frames gathered at once for their medians: each channel's 16
/// consecutive `f32`s are one cache line, read whole, rather than one
/// sample of each of hundreds of channels per frame (a 385-channel frame
/// touches 385 lines; the gather took as long as the selection).
const TILE: usize = 16;

/// How far ahead of the tile being gathered each channel's samples are
/// fetched into the cache: two tiles, so that the line is there by the
/// time its tile comes (hundreds of channels are hundreds of streams, more
/// than the hardware's prefetcher follows).
const AHEAD: usize = 2 * TILE;

/// Asks the cache for the line holding `p` (a hint: nothing is read, and an
/// address past the data is harmless).
#[inline(always)]
fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetch` needs SSE, which every x86_64 has, and it does not
    // dereference its pointer (no fault, whatever the address).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The stage for blocks of up to `capacity` frames of `channels` channels,
/// its buffers allocated once ([`CommonReference::bytes`]).
#[derive(Debug, Clone)]
pub struct CommonReference {
    reference: Reference,
    /// Each frame's reference.
    levels: Vec<f64>,
    /// [`TILE`] frames of every channel (as [`f32_key`]s for the median,
    /// frame after frame) per task of [`FRAMES_PER_TASK`] frames.
    frames: Vec<Vec<u32>>,
}

impl CommonReference {
    /// The stage for blocks of at most `capacity` frames.
    pub fn new(reference: Reference, channels: usize, capacity: usize) -> Self {
        CommonReference {
            reference,
            levels: vec![0.0; capacity],
            frames: vec![vec![0; TILE * channels]; capacity.div_ceil(FRAMES_PER_TASK)],
        }
    }

    /// What [`CommonReference::new`] allocates.
    pub fn bytes(channels: usize, capacity: usize) -> u64 {
        let levels = (capacity as u64).saturating_mul(8);
        let frames = (capacity.div_ceil(FRAMES_PER_TASK) as u64)
            .saturating_mul(channels as u64)
            .saturating_mul(TILE as u64);
        levels.saturating_add(frames.saturating_mul(4))
    }

    /// Which reference.
    pub fn reference(&self) -> Reference {
        self.reference
    }

    /// Subtracts, in place, the reference of each frame of `block` (all its
    /// channels), with `pool`'s threads when given: first each frame's
    /// level (tasks over frame ranges), then each channel's difference
    /// (tasks over channels).
    ///
    /// # Panics
    /// If `block` is larger than the stage was made for (a caller's bug).
    pub fn apply(&mut self, block: &mut Block, pool: Option<&rayon::ThreadPool>) {
        if self.measure(block, pool) {
            self.subtract(None, block, pool);
        }
    }

    /// [`CommonReference::apply`] from `src` into `dst` (its frames, start
    /// and values set; `src` left as it is): the same values, without
    /// first copying `src` to where it is referenced in place.
    ///
    /// # Panics
    /// If `src` is larger than the stage was made for or than `dst` holds,
    /// or their channels differ (a caller's bug).
    pub fn apply_into(&mut self, src: &Block, dst: &mut Block, pool: Option<&rayon::ThreadPool>) {
        assert_eq!(src.channels(), dst.channels(), "channels");
        dst.start = src.start;
        dst.set_frames(src.frames());
        if self.measure(src, pool) {
            self.subtract(Some(src), dst, pool);
        }
    }

    /// `dst = x − level` for each frame's measured level, where `x` is
    /// `src`'s sample when given, else `dst`'s own; tasks over channels.
    fn subtract(&self, src: Option<&Block>, dst: &mut Block, pool: Option<&rayon::ThreadPool>) {
        let (n, stride) = (dst.frames(), dst.capacity());
        let levels = &self.levels[..n];
        let one = |(c, plane): (usize, &mut [f32])| {
            let plane = &mut plane[..n];
            match src {
                Some(src) => {
                    for ((v, &x), &r) in plane.iter_mut().zip(src.channel(c)).zip(levels) {
                        *v = (f64::from(x) - r) as f32;
                    }
                }
                None => {
                    for (v, &r) in plane.iter_mut().zip(levels) {
                        *v = (f64::from(*v) - r) as f32;
                    }
                }
            }
        };
        let planes = dst.planes_mut();
        match pool {
            Some(pool) => pool.install(|| {
                planes
                    .par_chunks_exact_mut(stride)
                    .enumerate()
                    .for_each(one)
            }),
            None => planes.chunks_exact_mut(stride).enumerate().for_each(one),
        }
    }

    /// Each frame's reference of `src` into `self.levels`; false when there
    /// is nothing to subtract (no frames or no channels).
    fn measure(&mut self, src: &Block, pool: Option<&rayon::ThreadPool>) -> bool {
        let n = src.frames();
        assert!(n <= self.levels.len(), "a block larger than planned");
        if n == 0 || src.channels() == 0 {
            return false;
        }
        let reference = self.reference;
        let levels = &mut self.levels[..n];
        let frames = &mut self.frames;
        let channels = src.channels();
        let level_task = |(t, (out, tile)): (usize, (&mut [f64], &mut Vec<u32>))| {
            let first = t * FRAMES_PER_TASK;
            for (k, levels) in out.chunks_mut(TILE).enumerate() {
                let f0 = first + k * TILE;
                let m = levels.len();
                match reference {
                    Reference::Mean => {
                        for (i, r) in levels.iter_mut().enumerate() {
                            let sum: f64 = (0..channels)
                                .map(|c| f64::from(src.channel(c)[f0 + i]))
                                .sum();
                            *r = sum / channels as f64;
                        }
                    }
                    Reference::Median => {
                        let mut nan = [false; TILE];
                        for c in 0..channels {
                            let row = &src.channel(c)[f0..f0 + m];
                            prefetch(row.as_ptr().wrapping_add(AHEAD));
                            for (i, &v) in row.iter().enumerate() {
                                nan[i] |= v.is_nan();
                                tile[i * channels + c] = f32_key(v);
                            }
                        }
                        for (i, r) in levels.iter_mut().enumerate() {
                            *r = if nan[i] {
                                f64::NAN
                            } else {
                                median_keys(&mut tile[i * channels..(i + 1) * channels])
                            };
                        }
                    }
                }
            }
        };
        match pool {
            Some(pool) => pool.install(|| {
                levels
                    .par_chunks_mut(FRAMES_PER_TASK)
                    .zip(frames.par_iter_mut())
                    .enumerate()
                    .for_each(level_task)
            }),
            None => levels
                .chunks_mut(FRAMES_PER_TASK)
                .zip(frames.iter_mut())
                .enumerate()
                .for_each(level_task),
        }
        true
    }
}

/// The reference of one frame (its values reordered for the median).
/// NaN samples take part as numpy's would: a NaN anywhere makes the
/// frame's median and mean NaN.
pub fn level(reference: Reference, frame: &mut [f64]) -> f64 {
    match reference {
        Reference::Mean => frame.iter().sum::<f64>() / frame.len() as f64,
        Reference::Median => median(frame),
    }
}

/// A `u32` whose unsigned order is `f32::total_cmp`'s order of `v`
/// (negative values flipped whole, the others with the sign bit set).
pub fn f32_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The `f32` of a [`f32_key`].
pub fn f32_of_key(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// numpy's median of the values whose [`f32_key`]s are `keys` (reordered;
/// none of them NaN), in `f64`: the same as [`median`] of the values.
pub fn median_keys(keys: &mut [u32]) -> f64 {
    let n = keys.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (lower, m, _) = keys.select_nth_unstable(mid);
    let m = f64::from(f32_of_key(*m));
    if n % 2 == 1 {
        m
    } else {
        let below = lower.iter().copied().max().expect("n even and > 0");
        (f64::from(f32_of_key(below)) + m) / 2.0
    }
}

/// numpy's median of `values` (reordered): NaN if any is NaN.
pub fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 || values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mid = n / 2;
    let (lower, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + m) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_numpys() {
        // np.median([3, 1, 2]) = 2; np.median([4, 1, 3, 2]) = 2.5
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [-1.0, -1.0, 5.0, 7.0]), 2.0);
        assert!(median(&mut [1.0, f64::NAN, 2.0]).is_nan());
    }

    #[test]
    fn keys_order_floats_as_total_cmp_and_medians_agree() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let specials = [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -1e-45,
            1e-45,
            f32::MAX,
            f32::MIN,
        ];
        for n in [1usize, 2, 3, 4, 5, 384, 385] {
            for _ in 0..200 {
                let values: Vec<f32> = (0..n)
                    .map(|_| match next() % 4 {
                        0 => specials[(next() % specials.len() as u64) as usize],
                        1 => ((next() % 7) as f32) - 3.0, // ties
                        _ => f32::from_bits(next() as u32).clamp(-1e30, 1e30),
                    })
                    .map(|v| if v.is_nan() { 1.5 } else { v })
                    .collect();
                for w in values.windows(2) {
                    assert_eq!(f32_key(w[0]).cmp(&f32_key(w[1])), w[0].total_cmp(&w[1]));
                }
                assert!(
                    values
                        .iter()
                        .all(|&v| f32_of_key(f32_key(v)).to_bits() == v.to_bits())
                );
                let mut keys: Vec<u32> = values.iter().map(|&v| f32_key(v)).collect();
                let mut wide: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
                let (a, b) = (median_keys(&mut keys), median(&mut wide));
                assert_eq!(a.to_bits(), b.to_bits(), "{values:?}");
            }
        }
    }

    #[test]
    fn each_frame_loses_its_median_whatever_the_threads() {
        let channels = 5;
        let n = 3000;
        let make = || {
            let mut block = Block::new(channels, n);
            for c in 0..channels {
                for (i, v) in block.channel_capacity_mut(c).iter_mut().enumerate() {
                    *v = ((i * 7 + c * 13) % 17) as f32 - 8.0;
                }
            }
            block.set_frames(n);
            block
        };
        let block = make();
        let mut one = make();
        CommonReference::new(Reference::Median, channels, n).apply(&mut one, None);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut two = make();
        CommonReference::new(Reference::Median, channels, n).apply(&mut two, Some(&pool));
        // From the block into another (larger, holding stale values), the
        // block left as it was.
        let mut into = Block::new(channels, n + 5);
        for c in 0..channels {
            into.channel_capacity_mut(c).fill(f32::NAN);
        }
        let src = make();
        CommonReference::new(Reference::Median, channels, n).apply_into(
            &src,
            &mut into,
            Some(&pool),
        );
        assert_eq!((into.frames(), into.start), (n, src.start));
        for i in 0..n {
            let mut frame: Vec<f64> = (0..channels)
                .map(|c| f64::from(block.channel(c)[i]))
                .collect();
            let m = median(&mut frame);
            for c in 0..channels {
                let want = (f64::from(block.channel(c)[i]) - m) as f32;
                assert_eq!(one.channel(c)[i], want);
                assert_eq!(two.channel(c)[i], want);
                assert_eq!(into.channel(c)[i], want);
                assert_eq!(src.channel(c)[i], block.channel(c)[i]);
            }
        }
    }
}
