//! CPU twin of `shaders/fir_direct.wgsl`: the same bindings, the same loop
//! over workgroups and invocations, the same tap tiles and summation order.

use super::step::StepParams;

/// Outputs per workgroup (`FIR_WG`).
pub const FIR_WG: usize = 256;

/// Taps per tile (`FIR_TT`).
pub const FIR_TT: usize = 256;

/// The shader's override constants.
#[derive(Debug, Clone, Copy)]
pub struct FirDirectConsts {
    /// `TAPS`.
    pub taps: usize,
    /// `CHANNELS`.
    pub channels: usize,
    /// `CHUNK`: input stride between channels.
    pub chunk: usize,
    /// `OUT_STRIDE`: output stride between channels.
    pub out_stride: usize,
}

/// The shader's bindings 0..=5.
#[derive(Debug)]
pub struct FirDirectBindings<'a> {
    /// 0: the step's parameters.
    pub step: &'a StepParams,
    /// 1: the kernel.
    pub taps: &'a [f32],
    /// 2: planar input, channel `c` at `c * chunk`.
    pub input: &'a [f32],
    /// 3: planar output, channel `c` at `c * out_stride`.
    pub output: &'a mut [f32],
    /// 4: this step's history, `taps - 1` per channel.
    pub hist_in: &'a [f32],
    /// 5: the next step's history.
    pub hist_out: &'a mut [f32],
}

/// Workgroups a step of `frames` frames dispatches.
pub fn workgroups(frames: usize, channels: usize) -> usize {
    frames.div_ceil(FIR_WG) * channels
}

/// `ext` of the shader.
fn ext(k: &FirDirectConsts, b: &FirDirectBindings<'_>, c: usize, q: i64) -> f32 {
    let h = k.taps as i64 - 1;
    if q < 0 {
        return 0.0;
    }
    if q < h {
        return b.hist_in[c * (k.taps - 1) + q as usize];
    }
    let i = (q - h) as usize;
    if i < b.step.frames as usize {
        b.input[c * k.chunk + i]
    } else {
        0.0
    }
}

/// Runs every workgroup of one dispatch.
pub fn fir_direct(k: &FirDirectConsts, b: &mut FirDirectBindings<'_>) {
    let frames = b.step.frames as usize;
    let per_channel = frames.div_ceil(FIR_WG);
    let h = k.taps - 1;
    let mut xs = [0.0f32; FIR_WG + FIR_TT - 1];
    let mut ks = [0.0f32; FIR_TT];
    let mut acc = [0.0f32; FIR_WG];
    for g in 0..per_channel * k.channels {
        let c = g / per_channel;
        let j0 = (g % per_channel) * FIR_WG;
        if j0 == 0 {
            for i in 0..h {
                b.hist_out[c * h + i] = ext(k, b, c, (frames + i) as i64);
            }
        }
        acc.fill(0.0);
        let mut t0 = 0;
        while t0 < k.taps {
            let first = (j0 + h) as i64 - t0 as i64 - (FIR_TT as i64 - 1);
            for (m, x) in xs.iter_mut().enumerate() {
                *x = ext(k, b, c, first + m as i64);
            }
            for (u, kk) in ks.iter_mut().enumerate() {
                *kk = if t0 + u < k.taps { b.taps[t0 + u] } else { 0.0 };
            }
            // workgroupBarrier()
            let count = FIR_TT.min(k.taps - t0);
            for (tid, a) in acc.iter_mut().enumerate() {
                for u in 0..count {
                    *a += ks[u] * xs[tid + FIR_TT - 1 - u];
                }
            }
            // workgroupBarrier()
            t0 += FIR_TT;
        }
        let drop = b.step.drop as usize;
        for (tid, &a) in acc.iter().enumerate() {
            let j = j0 + tid;
            if j < frames && j >= drop {
                b.output[c * k.out_stride + j - drop] = a;
            }
        }
    }
}
