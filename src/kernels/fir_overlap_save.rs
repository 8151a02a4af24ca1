//! CPU twin of `shaders/fir_overlap_save.wgsl`: the same bindings, the same
//! loop over workgroups (pairs of FFT blocks), the same workgroup FFT
//! ([`fft_stockham::fft_shared`]) and spectrum product, and the same
//! handling of non-finite samples and extreme magnitudes (see the shader's
//! header), on the same bits.

use super::fft_stockham::{self, C32, complex_mul, conj};
use super::step::StepParams;

/// The shader's override constants.
#[derive(Debug, Clone, Copy)]
pub struct FirOverlapSaveConsts {
    /// `NFFT`: the FFT length (a power of two > `taps - 1`).
    pub nfft: usize,
    /// `TAPS`.
    pub taps: usize,
    /// `CHANNELS`.
    pub channels: usize,
    /// `CHUNK`: input stride between channels.
    pub chunk: usize,
    /// `OUT_STRIDE`: output stride between channels.
    pub out_stride: usize,
}

/// The shader's bindings 0..=7.
#[derive(Debug)]
pub struct FirOverlapSaveBindings<'a> {
    /// 0: the step's parameters.
    pub step: &'a StepParams,
    /// 1: `exp(-2πi m / nfft)` ([`fft_stockham::local_twiddles`]).
    pub twiddles: &'a [C32],
    /// 2: the kernel's spectrum over `nfft`, scaled by `1 / nfft`.
    pub spectrum: &'a [C32],
    /// 3: planar input, channel `c` at `c * chunk`.
    pub input: &'a [f32],
    /// 4: planar output, channel `c` at `c * out_stride`.
    pub output: &'a mut [f32],
    /// 5: this step's history, `taps - 1` per channel.
    pub hist_in: &'a [f32],
    /// 6: the next step's history.
    pub hist_out: &'a mut [f32],
    /// 7: the kernel, `k[t]` for `t < taps`.
    pub kernel: &'a [f32],
}

const EXP_MASK: u32 = 0x7f80_0000;
const MANT_MASK: u32 = 0x007f_ffff;
const SIGN_MASK: u32 = 0x8000_0000;
const SCALE_FROM: u32 = 191;
const SCALE_BELOW: u32 = 63;
/// The shader's `FFT_ROUNDING`.
const FFT_ROUNDING: f32 = 1.0 / 65536.0;
const NAN_BITS: u32 = 0x7fc0_0000;
const POS_INF_BITS: u32 = 0x7f80_0000;
const NEG_INF_BITS: u32 = 0xff80_0000;

/// `pow2` of the shader: 2^k for -126 <= k <= 127.
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `tame` of the shader.
fn tame(v: f32) -> f32 {
    if v.to_bits() & EXP_MASK == EXP_MASK {
        0.0
    } else {
        v
    }
}

/// `non_finite` of the shader.
fn non_finite(
    k: &FirOverlapSaveConsts,
    b: &FirOverlapSaveBindings<'_>,
    c: usize,
    start: usize,
) -> u32 {
    let (mut pos, mut neg) = (false, false);
    for t in 0..k.taps {
        let bits = ext(k, b, c, start + k.taps - 1 - t).to_bits();
        if bits & EXP_MASK != EXP_MASK {
            continue;
        }
        let kb = b.kernel[t].to_bits();
        if bits & MANT_MASK != 0 || kb & !SIGN_MASK == 0 {
            return NAN_BITS;
        }
        if (bits ^ kb) & SIGN_MASK != 0 {
            neg = true;
        } else {
            pos = true;
        }
        if pos && neg {
            return NAN_BITS;
        }
    }
    if pos {
        POS_INF_BITS
    } else if neg {
        NEG_INF_BITS
    } else {
        0
    }
}

/// `unscale` of the shader.
fn unscale(v: f32, k1: i32, k2: i32) -> f32 {
    let y = v * pow2(-k1) * pow2(-k2);
    let limit = f32::MAX * pow2(k1) * pow2(k2) * (1.0 + FFT_ROUNDING);
    if y.to_bits() & EXP_MASK == EXP_MASK && v.abs() <= limit {
        f32::from_bits(f32::MAX.to_bits() | (v.to_bits() & SIGN_MASK))
    } else {
        y
    }
}

/// `emit` of the shader.
fn emit(
    k: &FirOverlapSaveConsts,
    b: &mut FirOverlapSaveBindings<'_>,
    c: usize,
    j: usize,
    z: f32,
    wild: bool,
    (k1, k2): (i32, i32),
) {
    let (frames, drop) = (b.step.frames as usize, b.step.drop as usize);
    if j >= frames || j < drop {
        return;
    }
    let mut v = z;
    if k1 != 0 || k2 != 0 {
        v = unscale(z, k1, k2);
    }
    if wild {
        let bits = non_finite(k, b, c, j);
        if bits != 0 {
            v = f32::from_bits(bits);
        }
    }
    put(k, b, c, j, v);
}

/// Workgroups (pairs of blocks, all channels) a step of `frames` frames
/// dispatches.
pub fn workgroups(nfft: usize, taps: usize, frames: usize, channels: usize) -> usize {
    let valid = nfft - (taps - 1);
    frames.div_ceil(valid).div_ceil(2) * channels
}

/// `ext` of the shader.
fn ext(k: &FirOverlapSaveConsts, b: &FirOverlapSaveBindings<'_>, c: usize, q: usize) -> f32 {
    let h = k.taps - 1;
    if q < h {
        return b.hist_in[c * h + q];
    }
    let i = q - h;
    if i < b.step.frames as usize {
        b.input[c * k.chunk + i]
    } else {
        0.0
    }
}

/// `put` of the shader.
fn put(k: &FirOverlapSaveConsts, b: &mut FirOverlapSaveBindings<'_>, c: usize, j: usize, v: f32) {
    let (frames, drop) = (b.step.frames as usize, b.step.drop as usize);
    if j < frames && j >= drop {
        b.output[c * k.out_stride + j - drop] = v;
    }
}

/// Runs every workgroup of one dispatch.
pub fn fir_overlap_save(k: &FirOverlapSaveConsts, b: &mut FirOverlapSaveBindings<'_>) {
    let frames = b.step.frames as usize;
    let h = k.taps - 1;
    let valid = k.nfft - h;
    let pairs = frames.div_ceil(valid).div_ceil(2);
    let mut sh = vec![[0.0f32; 2]; k.nfft];
    for g in 0..pairs * k.channels {
        let c = g / pairs;
        let p = g % pairs;
        if p == 0 {
            for i in 0..h {
                b.hist_out[c * h + i] = ext(k, b, c, frames + i);
            }
        }
        let a = 2 * p * valid;
        // `note`, over both blocks.
        let (mut wild, mut top) = (false, 0u32);
        for m in 0..k.nfft {
            for v in [ext(k, b, c, a + m), ext(k, b, c, a + valid + m)] {
                let e = (v.to_bits() & EXP_MASK) >> 23;
                if e == 255 {
                    wild = true;
                } else {
                    top = top.max(e);
                }
            }
        }
        // workgroupBarrier()
        let (mut k1, mut k2) = (0i32, 0i32);
        if top >= SCALE_FROM || (top > 0 && top < SCALE_BELOW) {
            let e = 127 - top as i32;
            k1 = e / 2;
            k2 = e - k1;
        }
        let (s1, s2) = (pow2(k1), pow2(k2));
        for (m, s) in sh.iter_mut().enumerate() {
            *s = [
                tame(ext(k, b, c, a + m)) * s1 * s2,
                tame(ext(k, b, c, a + valid + m)) * s1 * s2,
            ];
        }
        // workgroupBarrier()
        fft_stockham::fft_shared(&mut sh, k.nfft, 1, b.twiddles);
        for (s, &w) in sh.iter_mut().zip(b.spectrum) {
            *s = conj(complex_mul(*s, w));
        }
        // workgroupBarrier()
        fft_stockham::fft_shared(&mut sh, k.nfft, 1, b.twiddles);
        for m in 0..valid {
            let z = sh[h + m];
            emit(k, b, c, a + m, z[0], wild, (k1, k2));
            emit(k, b, c, a + valid + m, -z[1], wild, (k1, k2));
        }
    }
}
