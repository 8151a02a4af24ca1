// Streaming FIR filter by FFT overlap-save, one fused dispatch per step:
// y[n] = sum_t k[t] x[n - t] (numpy.convolve orientation), one output per
// new input. Loaded with shaders/lib/fft_core.wgsl in front (binding 1 is
// its twiddle table, exp(-2πi m / NFFT) for m < NFFT). CPU twin:
// src/kernels/fir_overlap_save.rs. Host: src/backend/gpu/fir.rs.
//
// Outputs come in blocks of V = NFFT - TAPS + 1; block b needs ext[b V ..
// b V + NFFT), where ext = [history (TAPS - 1) | new frames | zeros]. Each
// workgroup takes two consecutive blocks of one channel as the real and
// imaginary parts of one complex signal (the kernel is real, so the two
// circular convolutions come back as the real and imaginary parts, as in
// the CPU backend), transforms it forward in workgroup memory, multiplies by
// the kernel's spectrum (scaled by 1/NFFT, from f64 on the host), transforms
// back (inverse = conj(FFT(conj))), drops the first TAPS - 1 values of each
// block and writes the V valid ones. The block never leaves workgroup
// memory. The workgroups of pair 0 also write the next step's history,
// ext[frames .. frames + TAPS - 1], to the other history buffer (the two
// alternate by step parity).
//
// Non-finite samples and extreme magnitudes: a NaN or an infinity would
// spread through the whole FFT, and magnitudes near f32::MAX overflow it.
// So the workgroup first notes whether its two blocks hold a non-finite
// sample (`wild`) and the largest exponent of the finite ones (`top`).
// Non-finite samples go into the FFT as zeros; a block pair whose largest
// magnitude is at or above 2^64 (or nonzero and below 2^-64) is scaled by a
// power of two (exact) and scaled back. Then, in a wild pair, each output
// whose taps reach a non-finite sample is set to what the direct sum gives
// in IEEE arithmetic (numpy.convolve's answer): NaN if a NaN is in reach,
// or an infinity meets a zero tap, or infinite terms of both signs meet;
// else the infinity of the terms' sign. The classification works on the
// bits (WGSL may assume arithmetic never sees NaN or infinity).

// struct Step: shaders/lib/step.wgsl, prepended by the host.

// FFT length (a power of two, <= SHARED).
override NFFT: u32 = 1024u;
// Kernel length (< NFFT).
override TAPS: u32 = 1u;
// Channels.
override CHANNELS: u32 = 1u;
// Input stride between channels.
override CHUNK: u32 = 1u;
// Output stride between channels.
override OUT_STRIDE: u32 = 1u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> spectrum: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;
@group(0) @binding(5) var<storage, read> hist_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> hist_out: array<f32>;
// The kernel k[t], t < TAPS, for the outputs non-finite samples reach.
@group(0) @binding(7) var<storage, read> kernel: array<f32>;

const EXP_MASK: u32 = 0x7f800000u;
const MANT_MASK: u32 = 0x007fffffu;
const SIGN_MASK: u32 = 0x80000000u;
// Exponent fields of 2^64 and 2^-64: the pair is scaled from the first on,
// or when nonzero and below the second.
const SCALE_FROM: u32 = 191u;
const SCALE_BELOW: u32 = 63u;
// Relative rounding of an output (see FFT_ROUNDING in src/backend/cpu/fir.rs):
// a scaled output this close above f32::MAX is f32::MAX, not an overflow.
const FFT_ROUNDING: f32 = 1.0 / 65536.0;
const F32_MAX: f32 = 3.40282347e38;
const NAN_BITS: u32 = 0x7fc00000u;
const POS_INF_BITS: u32 = 0x7f800000u;
const NEG_INF_BITS: u32 = 0xff800000u;

// 2^k for -126 <= k <= 127, exactly.
fn pow2(k: i32) -> f32 {
    return bitcast<f32>(u32(k + 127) << 23u);
}

// Notes v in (wild, top): wild is 1 once a NaN or an infinity is seen,
// top the largest exponent field of the finite samples.
fn note(acc: vec2<u32>, v: f32) -> vec2<u32> {
    let e = (bitcast<u32>(v) & EXP_MASK) >> 23u;
    if e == 255u {
        return vec2<u32>(1u, acc.y);
    }
    return vec2<u32>(acc.x, max(acc.y, e));
}

// v if finite, else 0.
fn tame(v: f32) -> f32 {
    if (bitcast<u32>(v) & EXP_MASK) == EXP_MASK {
        return 0.0;
    }
    return v;
}

// The bits of the output whose window is ext[start .. start + TAPS) when a
// non-finite sample is in reach, else 0 (no such output has bits 0).
fn non_finite(c: u32, start: u32) -> u32 {
    var pos = false;
    var neg = false;
    for (var t = 0u; t < TAPS; t++) {
        let bits = bitcast<u32>(ext(c, start + TAPS - 1u - t));
        if (bits & EXP_MASK) != EXP_MASK {
            continue;
        }
        let kb = bitcast<u32>(kernel[t]);
        if (bits & MANT_MASK) != 0u || (kb & ~SIGN_MASK) == 0u {
            return NAN_BITS;
        }
        if ((bits ^ kb) & SIGN_MASK) != 0u {
            neg = true;
        } else {
            pos = true;
        }
        if pos && neg {
            return NAN_BITS;
        }
    }
    if pos {
        return POS_INF_BITS;
    }
    if neg {
        return NEG_INF_BITS;
    }
    return 0u;
}

// Undoes the scale 2^k1 · 2^k2 on one output.
fn unscale(v: f32, k1: i32, k2: i32) -> f32 {
    let y = v * pow2(-k1) * pow2(-k2);
    let limit = F32_MAX * pow2(k1) * pow2(k2) * (1.0 + FFT_ROUNDING);
    if (bitcast<u32>(y) & EXP_MASK) == EXP_MASK && abs(v) <= limit {
        return bitcast<f32>(bitcast<u32>(F32_MAX) | (bitcast<u32>(v) & SIGN_MASK));
    }
    return y;
}

// The output written for block position j (z: the FFT's value for it).
fn emit(c: u32, j: u32, z: f32, wild_pair: bool, k1: i32, k2: i32) {
    if j >= step.frames || j < step.drop {
        return;
    }
    var v = z;
    if k1 != 0 || k2 != 0 {
        v = unscale(z, k1, k2);
    }
    if wild_pair {
        let bits = non_finite(c, j);
        if bits != 0u {
            v = bitcast<f32>(bits);
        }
    }
    put(c, j, v);
}

// ext[q] of channel c: history, then this step's frames, then zeros.
fn ext(c: u32, q: u32) -> f32 {
    let h = TAPS - 1u;
    if q < h {
        return hist_in[c * h + q];
    }
    let i = q - h;
    if i < step.frames {
        return input[c * CHUNK + i];
    }
    return 0.0;
}

fn put(c: u32, j: u32, v: f32) {
    if j < step.frames && j >= step.drop {
        output[c * OUT_STRIDE + j - step.drop] = v;
    }
}

@compute @workgroup_size(FFT_WG)
fn fir_overlap_save(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let frames = step.frames;
    let h = TAPS - 1u;
    let valid = NFFT - h;
    let blocks = (frames + valid - 1u) / valid;
    let pairs = (blocks + 1u) / 2u;
    let g = wid.x + wid.y * nwg.x;
    if g >= pairs * CHANNELS {
        return;
    }
    let c = g / pairs;
    let p = g % pairs;
    if p == 0u {
        for (var i = tid; i < h; i += FFT_WG) {
            hist_out[c * h + i] = ext(c, frames + i);
        }
    }
    let a = 2u * p * valid;
    var mine = vec2<u32>(0u, 0u);
    for (var m = tid; m < NFFT; m += FFT_WG) {
        mine = note(mine, ext(c, a + m));
        mine = note(mine, ext(c, a + valid + m));
    }
    // The workgroup's (wild, top): a max-reduction through `sh` itself
    // (workgroup memory is all taken by the FFT), as small exact floats.
    // Invocations at or past NFFT saw nothing.
    let lanes = min(FFT_WG, NFFT);
    if tid < lanes {
        sh[tid] = vec2<f32>(f32(mine.x), f32(mine.y));
    }
    workgroupBarrier();
    for (var half = lanes / 2u; half > 0u; half /= 2u) {
        if tid < half {
            sh[tid] = max(sh[tid], sh[tid + half]);
        }
        workgroupBarrier();
    }
    let flags = sh[0];
    workgroupBarrier();
    let wild_pair = flags.x != 0.0;
    let e = u32(flags.y);
    // The scale 2^(127 - e) as two factors, each a normal f32.
    var k1 = 0i;
    var k2 = 0i;
    if e >= SCALE_FROM || (e > 0u && e < SCALE_BELOW) {
        let k = 127i - i32(e);
        k1 = k / 2i;
        k2 = k - k1;
    }
    let s1 = pow2(k1);
    let s2 = pow2(k2);
    for (var m = tid; m < NFFT; m += FFT_WG) {
        sh[m] = vec2<f32>(tame(ext(c, a + m)) * s1 * s2, tame(ext(c, a + valid + m)) * s1 * s2);
    }
    workgroupBarrier();
    fft_shared(tid, NFFT, 1u);
    for (var m = tid; m < NFFT; m += FFT_WG) {
        sh[m] = conj(cmul(sh[m], spectrum[m]));
    }
    workgroupBarrier();
    fft_shared(tid, NFFT, 1u);
    for (var m = tid; m < valid; m += FFT_WG) {
        let z = sh[h + m];
        emit(c, a + m, z.x, wild_pair, k1, k2);
        emit(c, a + valid + m, -z.y, wild_pair, k1, k2);
    }
}
