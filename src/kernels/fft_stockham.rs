//! CPU twin of `shaders/fft_stockham.wgsl` (and of the workgroup FFT in
//! `shaders/lib/fft_core.wgsl`), plus the pass plan and twiddle tables the
//! host and the twin share.
//!
//! Why the plan lives here: the twin must run exactly the stage sequence the
//! GPU runs (same radices, same tables, same f32 operations), so that tests
//! can compare the two tightly; the host module
//! [`crate::backend::gpu::fft`] only turns this plan into buffers and
//! dispatches.

use crate::error::{Error, Result};

/// A complex value as the shaders store it: `vec2<f32>` (re, im).
pub type C32 = [f32; 2];

/// Invocations per workgroup (`FFT_WG` in `fft_core.wgsl`).
pub const FFT_WG: usize = 256;

/// Values one invocation holds between barriers (`FFT_REGS`).
pub const FFT_REGS: usize = 16;

/// Longest transform one workgroup does in workgroup memory, whatever the
/// device: a radix-4 stage gives each invocation `L / (4 FFT_WG)`
/// butterflies of 4 values, which must fit in its [`FFT_REGS`] registers.
pub const FFT_MAX_LOCAL: usize = FFT_WG * FFT_REGS;

/// One pass's parameters: the shader's `struct FftPass`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FftPass {
    /// Transform length N.
    pub n: u32,
    /// This pass's radix R, transformed in workgroup memory.
    pub radix: u32,
    /// Product of the earlier passes' radices.
    pub ns: u32,
    /// Index multiplier into the local twiddle table: `TL / R`.
    pub tw_step: u32,
    /// Bits of the low table of the two-level twiddle of N.
    pub lo_bits: u32,
    /// Offset of the low table in the twiddle buffer.
    pub lo_off: u32,
    /// Offset of the high table in the twiddle buffer.
    pub hi_off: u32,
    /// 1 for the inverse transform.
    pub inverse: u32,
    /// Columns in all: `(N / R) * batch`.
    pub total: u32,
    /// Columns per workgroup, C (a power of two, `C R <=` the plan's
    /// [`FftPlan::shared_len`]).
    pub cols: u32,
    /// Padding to a multiple of 16 bytes.
    pub pad: [u32; 2],
}

/// A transform planned as passes over one twiddle table.
#[derive(Debug, Clone)]
pub struct FftPlan {
    /// The passes, in order (one when the transform fits a workgroup).
    pub passes: Vec<FftPass>,
    /// `[local (TL values) | low (2^B) | high (N / 2^B)]`, computed in f64
    /// and rounded to f32; the two-level parts only when there are several
    /// passes.
    pub twiddles: Vec<C32>,
    /// TL: the largest radix, the length of the local twiddle table.
    pub local_len: usize,
    /// The workgroup array's length: the largest `cols * radix` of a pass.
    pub shared_len: usize,
}

/// `exp(-2πi m / n)` computed in f64, rounded to f32.
fn root(m: usize, n: usize) -> C32 {
    let a = -2.0 * std::f64::consts::PI * (m as f64) / (n as f64);
    [a.cos() as f32, a.sin() as f32]
}

/// The local twiddle table of a single-workgroup transform of `n`:
/// `exp(-2πi m / n)` for `m < n`, computed in f64, stored as f32.
pub fn local_twiddles(n: usize) -> Vec<C32> {
    (0..n).map(|m| root(m, n)).collect()
}

/// Plans a transform of `n` (a power of two >= 2) for `batch` signals, with
/// at most `max_local` complex values per workgroup (a power of two >= 4,
/// capped at [`FFT_MAX_LOCAL`]).
///
/// The passes split `log2 n` as evenly as possible into the fewest parts of
/// at most `log2 max_local` bits. Each pass's workgroups take as many
/// neighbouring columns as fit in `max_local` values (and as there are
/// columns in the whole batch), so short radices and short transforms still
/// fill a workgroup.
///
/// # Errors
/// [`Error::Usage`] if `n` is not a power of two >= 2, `batch` is 0, or the
/// transform needs more than 2^32 values or workgroups.
pub fn plan(n: usize, batch: usize, max_local: usize, inverse: bool) -> Result<FftPlan> {
    if n < 2 || !n.is_power_of_two() {
        return Err(Error::usage(format!(
            "FFT length {n} is not a power of two >= 2"
        )));
    }
    if batch == 0 {
        return Err(Error::usage("FFT batch of 0 signals"));
    }
    if n.checked_mul(batch).is_none_or(|t| t > u32::MAX as usize) {
        return Err(Error::usage(format!(
            "FFT of {batch} x {n} values exceeds 2^32 values"
        )));
    }
    let max_local = max_local.min(FFT_MAX_LOCAL);
    let max_bits = max_local.max(4).ilog2() as usize;
    let bits = n.ilog2() as usize;
    let count = bits.div_ceil(max_bits);
    let radix_bits: Vec<usize> = (0..count)
        .map(|i| bits / count + usize::from(i < bits % count))
        .collect();
    let local_len = 1usize << radix_bits[0];
    let mut twiddles = local_twiddles(local_len);
    let (mut lo_bits, mut lo_off, mut hi_off) = (0, 0, 0);
    if count > 1 {
        lo_bits = bits.div_ceil(2);
        lo_off = twiddles.len();
        twiddles.extend((0..1usize << lo_bits).map(|b| root(b, n)));
        hi_off = twiddles.len();
        twiddles.extend((0..n >> lo_bits).map(|a| root(a << lo_bits, n)));
    }
    let mut ns = 1usize;
    let mut passes = Vec::with_capacity(count);
    let mut shared_len = 0;
    for rb in radix_bits {
        let radix = 1usize << rb;
        let total = (n / radix) * batch;
        let cols = (max_local.max(4) / radix).min(total.next_power_of_two());
        shared_len = shared_len.max(cols * radix);
        passes.push(FftPass {
            n: n as u32,
            radix: radix as u32,
            ns: ns as u32,
            tw_step: (local_len / radix) as u32,
            lo_bits: lo_bits as u32,
            lo_off: lo_off as u32,
            hi_off: hi_off as u32,
            inverse: u32::from(inverse),
            total: total as u32,
            cols: cols as u32,
            pad: [0; 2],
        });
        ns *= radix;
    }
    Ok(FftPlan {
        passes,
        twiddles,
        local_len,
        shared_len,
    })
}

fn cmul(a: C32, b: C32) -> C32 {
    [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]]
}

fn add(a: C32, b: C32) -> C32 {
    [a[0] + b[0], a[1] + b[1]]
}

fn sub(a: C32, b: C32) -> C32 {
    [a[0] - b[0], a[1] - b[1]]
}

/// `conj` of the shader.
pub fn conj(a: C32) -> C32 {
    [a[0], -a[1]]
}

/// `cmul` of the shader.
pub fn complex_mul(a: C32, b: C32) -> C32 {
    cmul(a, b)
}

/// Twin of `fft_shared` in `fft_core.wgsl`: forward FFT of `sh[..n]` in
/// place, one workgroup, invocation by invocation between the barriers.
pub fn fft_shared(sh: &mut [C32], n: usize, tw_step: usize, twiddles: &[C32]) {
    fft_shared_batch(sh, n, 1, tw_step, twiddles);
}

/// Twin of `fft_shared_batch` in `fft_core.wgsl`: forward FFTs of `count`
/// transforms of length `n`, `sh[c n .. (c + 1) n]`, in place, their
/// butterflies numbered together across the workgroup's invocations.
pub fn fft_shared_batch(sh: &mut [C32], n: usize, count: usize, tw_step: usize, twiddles: &[C32]) {
    let mut regs = vec![[[0.0f32; 2]; FFT_REGS]; FFT_WG];
    let mut ns = 1;
    let q4 = n / 4;
    let all4 = q4 * count;
    let per4 = all4.div_ceil(FFT_WG);
    while ns * 4 <= n {
        let step = (n / (ns * 4)) * tw_step;
        for (tid, reg) in regs.iter_mut().enumerate() {
            for i in 0..per4 {
                let jj = tid + i * FFT_WG;
                if jj < all4 {
                    let j = jj & (q4 - 1);
                    let o = (jj - j) * 4 + j;
                    let k = j & (ns - 1);
                    let a0 = sh[o];
                    let a1 = cmul(sh[o + q4], twiddles[k * step]);
                    let a2 = cmul(sh[o + 2 * q4], twiddles[2 * k * step]);
                    let a3 = cmul(sh[o + 3 * q4], twiddles[3 * k * step]);
                    let t0 = add(a0, a2);
                    let t1 = sub(a0, a2);
                    let t2 = add(a1, a3);
                    let d = sub(a1, a3);
                    let t3 = [d[1], -d[0]];
                    reg[4 * i] = add(t0, t2);
                    reg[4 * i + 1] = add(t1, t3);
                    reg[4 * i + 2] = sub(t0, t2);
                    reg[4 * i + 3] = sub(t1, t3);
                }
            }
        }
        // workgroupBarrier()
        for (tid, reg) in regs.iter().enumerate() {
            for i in 0..per4 {
                let jj = tid + i * FFT_WG;
                if jj < all4 {
                    let j = jj & (q4 - 1);
                    let k = j & (ns - 1);
                    let d = (jj - j) * 4 + (j - k) * 4 + k;
                    for r in 0..4 {
                        sh[d + r * ns] = reg[4 * i + r];
                    }
                }
            }
        }
        // workgroupBarrier()
        ns *= 4;
    }
    if ns < n {
        let q2 = n / 2;
        let all2 = q2 * count;
        let per2 = all2.div_ceil(FFT_WG);
        let step = (n / (ns * 2)) * tw_step;
        for (tid, reg) in regs.iter_mut().enumerate() {
            for i in 0..per2 {
                let jj = tid + i * FFT_WG;
                if jj < all2 {
                    let j = jj & (q2 - 1);
                    let o = (jj - j) * 2 + j;
                    let k = j & (ns - 1);
                    let a0 = sh[o];
                    let a1 = cmul(sh[o + q2], twiddles[k * step]);
                    reg[2 * i] = add(a0, a1);
                    reg[2 * i + 1] = sub(a0, a1);
                }
            }
        }
        // workgroupBarrier()
        for (tid, reg) in regs.iter().enumerate() {
            for i in 0..per2 {
                let jj = tid + i * FFT_WG;
                if jj < all2 {
                    let j = jj & (q2 - 1);
                    let k = j & (ns - 1);
                    let d = (jj - j) * 2 + (j - k) * 2 + k;
                    sh[d] = reg[2 * i];
                    sh[d + ns] = reg[2 * i + 1];
                }
            }
        }
        // workgroupBarrier()
    }
}

/// `twiddle_n` of the shader: `exp(-2πi m / N)` from the two-level table.
fn twiddle_n(fp: &FftPass, twiddles: &[C32], m: usize) -> C32 {
    let lo = twiddles[fp.lo_off as usize + (m & ((1 << fp.lo_bits) - 1))];
    let hi = twiddles[fp.hi_off as usize + (m >> fp.lo_bits)];
    cmul(hi, lo)
}

/// `element` of the shader: element `e` (< C R) of workgroup `g` as
/// (column of the dispatch, r), column fastest or r fastest.
fn element(fp: &FftPass, g: usize, e: usize, r_fastest: bool) -> (usize, usize) {
    let (cols, radix) = (fp.cols as usize, fp.radix as usize);
    if r_fastest {
        (g * cols + e / radix, e % radix)
    } else {
        (g * cols + e % cols, e / cols)
    }
}

/// `column_start` of the shader: index of column `col`'s first value.
fn column_start(fp: &FftPass, col: usize) -> usize {
    let per_signal = (fp.n / fp.radix) as usize;
    let j = col & (per_signal - 1);
    (col - j) * fp.radix as usize + j
}

/// `store_index` of the shader: where output `r` of column `col` goes.
fn store_index(fp: &FftPass, col: usize, r: usize) -> usize {
    let (radix, ns) = (fp.radix as usize, fp.ns as usize);
    let j = col & ((fp.n / fp.radix) as usize - 1);
    let k = j & (ns - 1);
    (col - j) * radix + (j - k) * radix + k + r * ns
}

/// Twin of one workgroup of `fft_in_place` / `fft_pass`: loads workgroup
/// `g`'s columns from `src` into `sh` (conjugated for the inverse,
/// twiddled), invocation by invocation, and transforms them there.
fn workgroup(fp: &FftPass, twiddles: &[C32], src: &[C32], g: usize, sh: &mut [C32]) {
    let (n, radix, ns, cols) = (
        fp.n as usize,
        fp.radix as usize,
        fp.ns as usize,
        fp.cols as usize,
    );
    let per_signal = n / radix;
    let scale = n / (ns * radix);
    for tid in 0..FFT_WG {
        for e in (tid..cols * radix).step_by(FFT_WG) {
            let (col, r) = element(fp, g, e, per_signal == 1);
            if col < fp.total as usize {
                let mut v = src[column_start(fp, col) + r * per_signal];
                if fp.inverse != 0 {
                    v = conj(v);
                }
                if ns > 1 {
                    let k = col & (ns - 1);
                    v = cmul(v, twiddle_n(fp, twiddles, r * k * scale));
                }
                sh[(col - g * cols) * radix + r] = v;
            }
        }
    }
    // workgroupBarrier()
    fft_shared_batch(sh, radix, cols, fp.tw_step as usize, twiddles);
}

/// The store loop of both entry points: every (buffer index, value) of
/// workgroup `g`, in invocation order.
fn outputs(fp: &FftPass, g: usize, sh: &[C32]) -> impl Iterator<Item = (usize, C32)> {
    let (radix, cols) = (fp.radix as usize, fp.cols as usize);
    (0..FFT_WG).flat_map(move |tid| {
        (tid..cols * radix).step_by(FFT_WG).filter_map(move |e| {
            let (col, r) = element(fp, g, e, fp.ns == 1);
            (col < fp.total as usize).then(|| {
                let v = sh[(col - g * cols) * radix + r];
                let v = if fp.inverse != 0 { conj(v) } else { v };
                (store_index(fp, col, r), v)
            })
        })
    })
}

/// Workgroups of a pass's dispatch.
fn groups(fp: &FftPass) -> usize {
    (fp.total as usize).div_ceil(fp.cols as usize)
}

/// Twin of the `fft_in_place` entry point: every workgroup of a
/// single-pass transform, `data` in place.
pub fn fft_in_place(fp: &FftPass, twiddles: &[C32], data: &mut [C32]) {
    let mut sh = vec![[0.0; 2]; (fp.cols * fp.radix) as usize];
    for g in 0..groups(fp) {
        workgroup(fp, twiddles, data, g, &mut sh);
        for (i, v) in outputs(fp, g, &sh) {
            data[i] = v;
        }
    }
}

/// Twin of the `fft_pass` entry point: every workgroup of one pass,
/// `src` to `dst`.
pub fn fft_pass(fp: &FftPass, twiddles: &[C32], src: &[C32], dst: &mut [C32]) {
    let mut sh = vec![[0.0; 2]; (fp.cols * fp.radix) as usize];
    for g in 0..groups(fp) {
        workgroup(fp, twiddles, src, g, &mut sh);
        for (i, v) in outputs(fp, g, &sh) {
            dst[i] = v;
        }
    }
}

/// Runs a whole plan on `data` (batch × n values) the way the host encodes
/// it: one in-place pass, or passes alternating between `data` and a
/// scratch buffer, with a final copy back when their count is odd.
pub fn run(plan: &FftPlan, data: &mut [C32]) {
    if let [fp] = plan.passes.as_slice() {
        fft_in_place(fp, &plan.twiddles, data);
        return;
    }
    let mut scratch = vec![[0.0; 2]; data.len()];
    for (i, fp) in plan.passes.iter().enumerate() {
        if i % 2 == 0 {
            fft_pass(fp, &plan.twiddles, data, &mut scratch);
        } else {
            fft_pass(fp, &plan.twiddles, &scratch, data);
        }
    }
    if plan.passes.len() % 2 == 1 {
        data.copy_from_slice(&scratch);
    }
}
