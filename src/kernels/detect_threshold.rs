//! CPU twin of `shaders/detect_threshold.wgsl`: cft = |y| per output.
//!
//! Why: the simplest cft, kept as a twin so the GPU detection path can be
//! checked stage by stage (cft, then compaction) like the others.

use super::step::StepParams;

/// The shader's override constants.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// `Y_STRIDE`: elements between two channels' outputs in `y`.
    pub y_stride: usize,
    /// `CHUNK`: elements between two channels' cft in `cft`.
    pub chunk: usize,
}

/// Entry point `main`, over workgroups `0 .. out_frames / 256` of each of
/// `channels` channels (bindings: `step`, `y`, `cft`).
pub fn main(p: &Params, channels: usize, step: &StepParams, y: &[f32], cft: &mut [f32]) {
    let n = step.out_frames as usize;
    for c in 0..channels {
        for wg in 0..n.div_ceil(256) {
            for lid in 0..256 {
                let i = wg * 256 + lid;
                if i < n {
                    cft[c * p.chunk + i] =
                        f32::from_bits(y[c * p.y_stride + i].to_bits() & 0x7fff_ffff);
                }
            }
        }
    }
}
