// One pass of a batched complex FFT (vec2<f32> = re, im), Stockham
// formulation. Loaded with shaders/lib/fft_core.wgsl in front.
// CPU twin: src/kernels/fft_stockham.rs. Host plan: src/backend/gpu/fft.rs.
//
// A transform of length N = R_0 R_1 ... R_{p-1} runs as p passes; each pass
// is one dispatch whose workgroups each transform R (this pass's radix,
// <= the workgroup-memory maximum) values entirely in workgroup memory:
//   j   = the workgroup's index in its signal (0 .. N / R), k = j mod Ns,
//   in  = src[j + r N/R] * exp(-2πi r k / (Ns R)),  r = 0 .. R
//   out = FFT_R(in), written to dst[(j - k) R + k + r Ns],
// where Ns = R_0 ... R_{i-1}. This is the four-step decomposition at every
// level: column FFTs at stride N/R with the inter-level twiddle fused into
// the load, and a transposing store. The twiddle exp(-2πi m / N) of large N
// comes from two f32 tables, hi[m >> B] * lo[m & (2^B - 1)], each exact to
// f32 rounding (computed in f64). A transform that fits (p = 1) runs in
// place through `fft_in_place`; otherwise passes alternate between the data
// and a scratch buffer through `fft_pass`.
//
// The inverse transform (unnormalised, like rustfft) is conj(FFT(conj(x))):
// every pass conjugates on load and on store, and the conjugations between
// passes cancel.

struct FftPass {
    // Transform length N.
    n: u32,
    // This pass's radix R (a power of two, transformed in workgroup memory).
    radix: u32,
    // Product of the earlier passes' radices.
    ns: u32,
    // Index multiplier into the local table: TL / R.
    tw_step: u32,
    // Bits of the low table of the two-level twiddle of N.
    lo_bits: u32,
    // Offsets of the low and high tables in fft_twiddles.
    lo_off: u32,
    hi_off: u32,
    // 1 for the inverse transform.
    inverse: u32,
    // Workgroups in all: (N / R) * batch.
    total: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> fp: FftPass;
@group(0) @binding(2) var<storage, read_write> src: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec2<f32>>;

// exp(-2πi m / N) for m < N.
fn twiddle_n(m: u32) -> vec2<f32> {
    let lo = fft_twiddles[fp.lo_off + (m & ((1u << fp.lo_bits) - 1u))];
    let hi = fft_twiddles[fp.hi_off + (m >> fp.lo_bits)];
    return cmul(hi, lo);
}

// The workgroup's linear index, from a grid folded into y (context::grid).
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Loads this workgroup's R values into sh, conjugated for the inverse and
// twiddled; returns the index of the signal's first element in the buffer.
fn load(tid: u32, g: u32) -> u32 {
    let per_signal = fp.n / fp.radix;
    let base = (g / per_signal) * fp.n;
    let j = g % per_signal;
    let k = j & (fp.ns - 1u);
    // exp(-2πi r k / (Ns R)) = exp(-2πi (r k N / (Ns R)) / N)
    let scale = fp.n / (fp.ns * fp.radix);
    for (var r = tid; r < fp.radix; r += FFT_WG) {
        var v = src[base + j + r * per_signal];
        if fp.inverse != 0u {
            v = conj(v);
        }
        if fp.ns > 1u {
            v = cmul(v, twiddle_n(r * k * scale));
        }
        sh[r] = v;
    }
    return base;
}

// Where output r of workgroup g goes, relative to its signal's base.
fn store_index(g: u32, r: u32) -> u32 {
    let j = g % (fp.n / fp.radix);
    let k = j & (fp.ns - 1u);
    return (j - k) * fp.radix + k + r * fp.ns;
}

fn out_value(r: u32) -> vec2<f32> {
    if fp.inverse != 0u {
        return conj(sh[r]);
    }
    return sh[r];
}

// A single-pass transform (N = R, Ns = 1), written back to src.
@compute @workgroup_size(FFT_WG)
fn fft_in_place(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = group_index(wid, nwg);
    if g >= fp.total {
        return;
    }
    let base = load(tid, g);
    workgroupBarrier();
    fft_shared(tid, fp.radix, fp.tw_step);
    for (var r = tid; r < fp.radix; r += FFT_WG) {
        src[base + store_index(g, r)] = out_value(r);
    }
}

// One pass of a multi-pass transform, src -> dst.
@compute @workgroup_size(FFT_WG)
fn fft_pass(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = group_index(wid, nwg);
    if g >= fp.total {
        return;
    }
    let base = load(tid, g);
    workgroupBarrier();
    fft_shared(tid, fp.radix, fp.tw_step);
    for (var r = tid; r < fp.radix; r += FFT_WG) {
        dst[base + store_index(g, r)] = out_value(r);
    }
}
