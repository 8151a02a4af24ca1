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
//! rounded once to `f32`. Every frame is independent of the others, so the
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

/// The stage for blocks of up to `capacity` frames of `channels` channels,
/// its buffers allocated once ([`CommonReference::bytes`]).
#[derive(Debug, Clone)]
pub struct CommonReference {
    reference: Reference,
    /// Each frame's reference.
    levels: Vec<f64>,
    /// One frame of every channel per task of [`FRAMES_PER_TASK`] frames.
    frames: Vec<Vec<f64>>,
}

impl CommonReference {
    /// The stage for blocks of at most `capacity` frames.
    pub fn new(reference: Reference, channels: usize, capacity: usize) -> Self {
        CommonReference {
            reference,
            levels: vec![0.0; capacity],
            frames: vec![vec![0.0; channels]; capacity.div_ceil(FRAMES_PER_TASK)],
        }
    }

    /// What [`CommonReference::new`] allocates.
    pub fn bytes(channels: usize, capacity: usize) -> u64 {
        let levels = capacity as u64;
        let frames = (capacity.div_ceil(FRAMES_PER_TASK) as u64).saturating_mul(channels as u64);
        levels.saturating_add(frames).saturating_mul(8)
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
        let (n, stride) = (block.frames(), block.capacity());
        assert!(n <= self.levels.len(), "a block larger than planned");
        if n == 0 || block.channels() == 0 {
            return;
        }
        let reference = self.reference;
        let levels = &mut self.levels[..n];
        let frames = &mut self.frames;
        let src: &Block = block;
        let level_task = |(t, (out, frame)): (usize, (&mut [f64], &mut Vec<f64>))| {
            let first = t * FRAMES_PER_TASK;
            for (i, r) in out.iter_mut().enumerate() {
                for (c, v) in frame.iter_mut().enumerate() {
                    *v = f64::from(src.channel(c)[first + i]);
                }
                *r = level(reference, frame);
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
        let levels = &self.levels[..n];
        let subtract = |plane: &mut [f32]| {
            for (v, &r) in plane[..n].iter_mut().zip(levels) {
                *v = (f64::from(*v) - r) as f32;
            }
        };
        let planes = block.planes_mut();
        match pool {
            Some(pool) => pool.install(|| planes.par_chunks_exact_mut(stride).for_each(subtract)),
            None => planes.chunks_exact_mut(stride).for_each(subtract),
        }
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
        for i in 0..n {
            let mut frame: Vec<f64> = (0..channels)
                .map(|c| f64::from(block.channel(c)[i]))
                .collect();
            let m = median(&mut frame);
            for c in 0..channels {
                let want = (f64::from(block.channel(c)[i]) - m) as f32;
                assert_eq!(one.channel(c)[i], want);
                assert_eq!(two.channel(c)[i], want);
            }
        }
    }
}
