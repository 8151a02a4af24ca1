//! CPU twin of `shaders/fir_overlap_save.wgsl`: the same bindings, the same
//! loop over workgroups (pairs of FFT blocks), the same workgroup FFT
//! ([`fft_stockham::fft_shared`]) and spectrum product.

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

/// The shader's bindings 0..=6.
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
        for (m, s) in sh.iter_mut().enumerate() {
            *s = [ext(k, b, c, a + m), ext(k, b, c, a + valid + m)];
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
            put(k, b, c, a + m, z[0]);
            put(k, b, c, a + valid + m, -z[1]);
        }
    }
}
