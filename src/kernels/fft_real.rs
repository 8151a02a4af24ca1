//! CPU twin of `shaders/fft_real.wgsl`: the real-input FFT by the
//! half-length complex trick, and the parameters and tables the host
//! ([`crate::backend::gpu::rfft`]) and the twin share.
//!
//! Why it is here: as with [`super::fft_stockham`], the twin runs the
//! shader's own loops and f32 operations on the same tables, so the GPU can
//! be checked against it tightly and, when it disagrees, the twin shows
//! where. The multi-pass path's complex FFT is [`super::fft_stockham::run`].

use super::fft_stockham::{
    self, C32, FFT_MAX_LOCAL, FFT_WG, FftPlan, complex_mul, conj, fft_shared_batch,
};
use crate::error::{Error, Result};

/// Invocations per workgroup of `rfft_pack` and `rfft_post` (`RFFT_WG`).
pub const RFFT_WG: usize = 256;

/// The shader's `struct Rfft`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RfftParams {
    /// Real samples per transform, n (a power of two >= 4).
    pub n: u32,
    /// h = n / 2, the complex FFT's length.
    pub half: u32,
    /// Samples between the first samples of consecutive transforms.
    pub stride: u32,
    /// Index of transform 0's first sample in the input.
    pub offset: u32,
    /// Transforms in all.
    pub batch: u32,
    /// Transforms per workgroup in `rfft_fused` (`cols * half <= SHARED`).
    pub cols: u32,
    /// 1: multiply sample `s` of every transform by `window[s]`.
    pub windowed: u32,
    /// Padding to 32 bytes.
    pub pad: u32,
}

/// A planned real-input transform: what the host turns into buffers and
/// dispatches, and what [`run`] executes on the CPU.
#[derive(Debug, Clone)]
pub struct RfftPlan {
    /// Real samples per transform.
    pub n: usize,
    /// Transforms.
    pub batch: usize,
    /// Transforms per `rfft_fused` workgroup; 0 on the multi-pass path.
    pub cols: usize,
    /// The table at binding 1 (see [`twiddles`]).
    pub twiddles: Vec<C32>,
    /// The half-length complex FFT of the multi-pass path (`None` when
    /// fused).
    pub fft: Option<FftPlan>,
}

impl RfftPlan {
    /// Whether the whole transform is the one `rfft_fused` dispatch.
    pub fn is_fused(&self) -> bool {
        self.fft.is_none()
    }

    /// The uniform for reading transform `t` from samples `offset + t
    /// stride ..`, windowed or not.
    pub fn params(&self, stride: usize, offset: usize, windowed: bool) -> RfftParams {
        RfftParams {
            n: self.n as u32,
            half: (self.n / 2) as u32,
            stride: stride as u32,
            offset: offset as u32,
            batch: self.batch as u32,
            cols: self.cols as u32,
            windowed: u32::from(windowed),
            pad: 0,
        }
    }
}

/// Plans `batch` real transforms of `n` samples (a power of two >= 4), with
/// at most `max_local` complex values per workgroup (a power of two, capped
/// at [`FFT_MAX_LOCAL`]): fused when `n / 2` fits, else pack, the
/// multi-pass [`fft_stockham`] plan of `n / 2`, and post-processing.
///
/// # Errors
/// [`Error::Usage`] if `n` is not a power of two >= 4, `batch` is 0, or the
/// output exceeds 2^32 values.
pub fn plan(n: usize, batch: usize, max_local: usize) -> Result<RfftPlan> {
    if n < 4 || !n.is_power_of_two() {
        return Err(Error::usage(format!(
            "real FFT length {n} is not a power of two >= 4"
        )));
    }
    if batch == 0 {
        return Err(Error::usage("real FFT batch of 0 signals"));
    }
    if bins(n)
        .checked_mul(batch)
        .is_none_or(|t| t > u32::MAX as usize)
    {
        return Err(Error::usage(format!(
            "real FFT of {batch} x {n} samples exceeds 2^32 values"
        )));
    }
    let h = n / 2;
    let max_local = max_local.clamp(4, FFT_MAX_LOCAL);
    if h <= max_local {
        let cols = (max_local / h).min(batch.next_power_of_two());
        Ok(RfftPlan {
            n,
            batch,
            cols,
            twiddles: twiddles(n, n),
            fft: None,
        })
    } else {
        Ok(RfftPlan {
            n,
            batch,
            cols: 0,
            twiddles: twiddles(n, h + 1),
            fft: Some(fft_stockham::plan(h, batch, max_local, false)?),
        })
    }
}

/// Runs a whole plan the way the host encodes it: `rfft_fused`, or
/// `rfft_pack`, the complex FFT ([`fft_stockham::run`]) and `rfft_post`.
/// `window` is ignored unless `rp.windowed` is 1.
pub fn run(plan: &RfftPlan, rp: &RfftParams, input: &[f32], window: &[f32], output: &mut [C32]) {
    match &plan.fft {
        None => rfft_fused(rp, &plan.twiddles, input, window, output),
        Some(fft) => {
            let mut packed = vec![[0.0f32; 2]; plan.batch * plan.n / 2];
            rfft_pack(rp, input, window, &mut packed);
            fft_stockham::run(fft, &mut packed);
            rfft_post(rp, &plan.twiddles, &packed, output);
        }
    }
}

/// `exp(-2πi m / n)` for `m < count`, computed in f64, stored as f32: the
/// table at binding 1 (`count = n` for `rfft_fused`, whose h-point FFT uses
/// every second entry; `n / 2 + 1` for `rfft_post`).
pub fn twiddles(n: usize, count: usize) -> Vec<C32> {
    (0..count)
        .map(|m| {
            let a = -2.0 * std::f64::consts::PI * (m as f64) / (n as f64);
            [a.cos() as f32, a.sin() as f32]
        })
        .collect()
}

/// Bins per transform: `n / 2 + 1`.
pub fn bins(n: usize) -> usize {
    n / 2 + 1
}

/// `load_pair` of the shader: z\[m\] of transform `t`.
fn load_pair(rp: &RfftParams, input: &[f32], window: &[f32], t: usize, m: usize) -> C32 {
    let s = rp.offset as usize + t * rp.stride as usize + 2 * m;
    let mut v = [input[s], input[s + 1]];
    if rp.windowed != 0 {
        v = [v[0] * window[2 * m], v[1] * window[2 * m + 1]];
    }
    v
}

/// `untangle` of the shader: bin k from `Z[k]`, `conj(Z[h - k])`, `W^k`.
fn untangle(zk: C32, zc: C32, w: C32) -> C32 {
    let e = [(zk[0] + zc[0]) * 0.5, (zk[1] + zc[1]) * 0.5];
    let o = complex_mul(w, [(zk[0] - zc[0]) * 0.5, (zk[1] - zc[1]) * 0.5]);
    [e[0] + o[1], e[1] - o[0]]
}

/// Workgroups of the `rfft_fused` dispatch.
pub fn fused_groups(rp: &RfftParams) -> usize {
    (rp.batch as usize).div_ceil(rp.cols as usize)
}

/// Twin of the `rfft_fused` entry point: every workgroup, invocation by
/// invocation between the barriers. `twiddles` is [`twiddles`]`(n, n)`.
pub fn rfft_fused(
    rp: &RfftParams,
    twiddles: &[C32],
    input: &[f32],
    window: &[f32],
    output: &mut [C32],
) {
    let (h, cols, batch) = (rp.half as usize, rp.cols as usize, rp.batch as usize);
    let bins = h + 1;
    let mut sh = vec![[0.0f32; 2]; cols * h];
    for g in 0..fused_groups(rp) {
        let first = g * cols;
        for tid in 0..FFT_WG {
            for e in (tid..cols * h).step_by(FFT_WG) {
                let t = first + e / h;
                if t < batch {
                    sh[e] = load_pair(rp, input, window, t, e & (h - 1));
                }
            }
        }
        // workgroupBarrier()
        fft_shared_batch(&mut sh, h, cols, 2, twiddles);
        for tid in 0..FFT_WG {
            for e in (tid..cols * bins).step_by(FFT_WG) {
                let c = e / bins;
                let k = e - c * bins;
                let t = first + c;
                if t < batch {
                    let zk = sh[c * h + (k & (h - 1))];
                    let zc = conj(sh[c * h + ((h - k) & (h - 1))]);
                    output[t * bins + k] = untangle(zk, zc, twiddles[k]);
                }
            }
        }
    }
}

/// Twin of the `rfft_pack` entry point: `packed[t h + m]` = z\[m\] of
/// transform `t`, for all of them.
pub fn rfft_pack(rp: &RfftParams, input: &[f32], window: &[f32], packed: &mut [C32]) {
    let h = rp.half as usize;
    let total = rp.batch as usize * h;
    for g in 0..total.div_ceil(RFFT_WG) {
        for tid in 0..RFFT_WG {
            let i = g * RFFT_WG + tid;
            if i < total {
                let m = i & (h - 1);
                packed[i] = load_pair(rp, input, window, (i - m) / h, m);
            }
        }
    }
}

/// Twin of the `rfft_post` entry point: the bins of every transform from
/// the half-length spectra in `packed`. `twiddles` is
/// [`twiddles`]`(n, n / 2 + 1)`.
pub fn rfft_post(rp: &RfftParams, twiddles: &[C32], packed: &[C32], output: &mut [C32]) {
    let h = rp.half as usize;
    let bins = h + 1;
    let total = rp.batch as usize * bins;
    for g in 0..total.div_ceil(RFFT_WG) {
        for tid in 0..RFFT_WG {
            let i = g * RFFT_WG + tid;
            if i < total {
                let t = i / bins;
                let k = i - t * bins;
                let zk = packed[t * h + (k & (h - 1))];
                let zc = conj(packed[t * h + ((h - k) & (h - 1))]);
                output[i] = untangle(zk, zc, twiddles[k]);
            }
        }
    }
}
