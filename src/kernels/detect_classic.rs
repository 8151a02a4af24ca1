//! CPU twin of `shaders/detect_classic.wgsl`: classic STA/LTA from a
//! segment-sum pyramid (entry points `squares`, `reduce`, `ratio`,
//! `history`).
//!
//! Why a pyramid (see the shader): window sums as differences of f32 prefix
//! sums cancel catastrophically after a loud burst; sums of O(log n) aligned
//! non-negative segments do not. The twin keeps the shader's buffers (`hist`,
//! `pyr`, `cft`) and its element-per-invocation loops, in f32.

use super::step::StepParams;

/// The shader's override constants.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// `Y_STRIDE`.
    pub y_stride: usize,
    /// `CHUNK`.
    pub chunk: usize,
    /// `NSTA`.
    pub nsta: usize,
    /// `NLTA`.
    pub nlta: usize,
    /// `LEVELS` = floor(log2(nlta)).
    pub levels: u32,
    /// `PSTRIDE` = 2 · CAP, CAP the power of two `>= nlta − 1 + chunk`.
    pub pstride: usize,
    /// `FRAC` = nlta / nsta.
    pub frac: f32,
}

impl Params {
    /// The constants `GpuDetect` plans for `nsta`, `nlta` and `chunk`.
    pub fn new(nsta: usize, nlta: usize, chunk: usize, y_stride: usize) -> Self {
        Params {
            y_stride,
            chunk,
            nsta,
            nlta,
            levels: nlta.ilog2(),
            pstride: 2 * (nlta - 1 + chunk).next_power_of_two(),
            frac: (nlta as f64 / nsta as f64) as f32,
        }
    }

    /// Start of level `k` within a channel's pyramid.
    pub fn level_start(&self, k: u32) -> usize {
        self.pstride - (self.pstride >> k)
    }
}

/// Entry point `squares`: level 0 = the carried squares then this step's
/// (`+inf` for a non-finite sample).
pub fn squares(
    p: &Params,
    channels: usize,
    step: &StepParams,
    y: &[f32],
    hist: &[f32],
    pyr: &mut [f32],
) {
    let h = p.nlta - 1;
    let ext = h + step.out_frames as usize;
    for c in 0..channels {
        for j in 0..ext {
            pyr[c * p.pstride + j] = if j < h {
                hist[c * h + j]
            } else {
                let x = y[c * p.y_stride + j - h];
                if x.is_finite() { x * x } else { f32::INFINITY }
            };
        }
    }
}

/// Entry point `reduce` for level `k` (>= 1): pairwise sums of level k − 1.
pub fn reduce(p: &Params, channels: usize, step: &StepParams, k: u32, pyr: &mut [f32]) {
    let count = (p.nlta - 1 + step.out_frames as usize) >> k;
    for c in 0..channels {
        for j in 0..count {
            let below = c * p.pstride + p.level_start(k - 1) + 2 * j;
            pyr[c * p.pstride + p.level_start(k) + j] = pyr[below] + pyr[below + 1];
        }
    }
}

/// The shader's `window_sum`: ext[s .. e) of channel `c` as aligned
/// segments, left to right, each the largest that starts at `s` and fits.
pub fn window_sum(p: &Params, pyr: &[f32], c: usize, s0: usize, e: usize) -> f32 {
    let mut s = s0;
    let mut acc = 0.0f32;
    while s < e {
        let mut k = (s as u32).trailing_zeros().min(p.levels);
        while s + (1 << k) > e {
            k -= 1;
        }
        acc += pyr[c * p.pstride + p.level_start(k) + (s >> k)];
        s += 1 << k;
    }
    acc
}

/// Entry point `ratio`: cft = sta / lta · frac, NaN where the long window
/// holds a non-finite sample or only zeros, 0 during the warm-up.
pub fn ratio(p: &Params, channels: usize, step: &StepParams, pyr: &[f32], cft: &mut [f32]) {
    for c in 0..channels {
        for i in 0..step.out_frames as usize {
            let e = p.nlta + i;
            let lta = window_sum(p, pyr, c, e - p.nlta, e);
            let sta = window_sum(p, pyr, c, e - p.nsta, e);
            let mut v = sta / lta * p.frac;
            if !lta.is_finite() || lta == 0.0 {
                v = f32::NAN;
            }
            if i < step.warm_up as usize {
                v = 0.0;
            }
            cft[c * p.chunk + i] = v;
        }
    }
}

/// Entry point `history`: the step's last nlta − 1 squares, for the next.
pub fn history(p: &Params, channels: usize, step: &StepParams, pyr: &[f32], hist: &mut [f32]) {
    let h = p.nlta - 1;
    for c in 0..channels {
        for t in 0..h {
            hist[c * h + t] = pyr[c * p.pstride + step.out_frames as usize + t];
        }
    }
}

/// One whole step, in the order `GpuDetect` encodes it.
pub fn run_step(
    p: &Params,
    channels: usize,
    step: &StepParams,
    y: &[f32],
    hist: &mut [f32],
    pyr: &mut [f32],
    cft: &mut [f32],
) {
    squares(p, channels, step, y, hist, pyr);
    for k in 1..=p.levels {
        reduce(p, channels, step, k, pyr);
    }
    ratio(p, channels, step, pyr, cft);
    history(p, channels, step, pyr, hist);
}
