//! CPU twin of `shaders/detect_compact.wgsl`: candidates (cft `>= LOW`) of
//! a step, per channel, with a per-workgroup scan and one reservation per
//! workgroup.
//!
//! Why: the GPU sends back only candidates; this twin is the executable
//! specification of where each one lands (fast region, overflow region).
//! Workgroups run here in order, so candidates come out sorted; on the GPU
//! they land in any order of tiles.

use super::step::StepParams;

/// Invocations per workgroup.
const WG: usize = 256;
/// Outputs per invocation.
const ITEMS: usize = 4;

/// The shader's override constants.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// `CHUNK`: cft elements per channel, and candidate capacity per channel.
    pub chunk: usize,
    /// `FAST`: candidates per channel in the region read back every step.
    pub fast: usize,
    /// `CHANNELS`.
    pub channels: usize,
    /// `LOW`: min(on, off) rounded down to f32.
    pub low: f32,
}

/// The shader's `is_candidate`: not NaN and `>= LOW`.
pub fn is_candidate(v: f32, low: f32) -> bool {
    !v.is_nan() && v >= low
}

/// The shader's `slot`: where channel `c`'s candidate `j` is stored.
pub fn slot(p: &Params, c: usize, j: usize) -> usize {
    if j < p.fast {
        c * p.fast + j
    } else {
        p.channels * p.fast + c * (p.chunk - p.fast) + (j - p.fast)
    }
}

/// Entry point `main` (bindings: `step`, `cft`, `counts`, `cands` as
/// (index, cft bits) pairs).
pub fn main(
    p: &Params,
    step: &StepParams,
    cft: &[f32],
    counts: &mut [u32],
    cands: &mut [[u32; 2]],
) {
    let n = step.out_frames as usize;
    for c in 0..p.channels {
        for wg in 0..n.div_ceil(WG * ITEMS) {
            // Phase 1: each invocation counts its candidates.
            let mut mine = [0u32; WG];
            for (lid, m) in mine.iter_mut().enumerate() {
                let first = wg * WG * ITEMS + lid * ITEMS;
                for i in first..first + ITEMS {
                    if i < n && is_candidate(cft[c * p.chunk + i], p.low) {
                        *m += 1;
                    }
                }
            }
            // Phase 2: inclusive scan (Hillis-Steele, as the shader).
            let mut sums = mine;
            let mut off = 1;
            while off < WG {
                let prev = sums;
                for lid in off..WG {
                    sums[lid] = prev[lid] + prev[lid - off];
                }
                off *= 2;
            }
            // Phase 3: one reservation, then the writes.
            let base = counts[c];
            counts[c] += sums[WG - 1];
            for lid in 0..WG {
                let mut pos = (base + sums[lid] - mine[lid]) as usize;
                let first = wg * WG * ITEMS + lid * ITEMS;
                for i in first..(first + ITEMS).min(n) {
                    let v = cft[c * p.chunk + i];
                    if is_candidate(v, p.low) {
                        cands[slot(p, c, pos)] = [i as u32, v.to_bits()];
                        pos += 1;
                    }
                }
            }
        }
    }
}
