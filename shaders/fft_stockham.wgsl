// One pass of a batched complex FFT (vec2<f32> = re, im), Stockham
// formulation. Loaded with shaders/lib/fft_core.wgsl in front.
// CPU twin: src/kernels/fft_stockham.rs. Host plan: src/backend/gpu/fft.rs.
//
// A transform of length N = R_0 R_1 ... R_{p-1} runs as p passes; each pass
// is one dispatch that transforms the N / R columns of every signal
// (column j: the values at j + r N/R, r < R, R = this pass's radix, <= the
// workgroup-memory maximum) entirely in workgroup memory:
//   k   = j mod Ns,
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
// Why a workgroup takes C = `cols` consecutive columns (C R <= the
// workgroup-memory maximum): a pass of short columns (R = 128 of a 2^14
// transform) would otherwise leave most of the 256 invocations idle, and
// each load would be a lone value at stride N/R. With C columns, the
// invocations load row r of C neighbouring columns from consecutive
// addresses (column index fastest), transform all C columns together
// (fft_shared_batch), and store so that consecutive invocations write
// consecutive addresses: r fastest in the first pass (Ns = 1: column j's
// outputs are dst[j R + r]), column fastest after it (C <= Ns, so the C
// columns' outputs for one r are neighbours). Columns are numbered across
// the batch (column g of the dispatch belongs to signal g / (N/R)); in a
// single pass (N = R) each signal is one column, so C whole signals share a
// workgroup, loaded and stored r fastest.
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
    // Columns in all: (N / R) * batch.
    total: u32,
    // Columns per workgroup, C (a power of two, C R <= SHARED).
    cols: u32,
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

// Element e (< C R) of workgroup g as (column of the dispatch, r), column
// fastest or r fastest.
fn element(g: u32, e: u32, r_fastest: bool) -> vec2<u32> {
    if r_fastest {
        return vec2<u32>(g * fp.cols + e / fp.radix, e % fp.radix);
    }
    return vec2<u32>(g * fp.cols + e % fp.cols, e / fp.cols);
}

// Index in the buffer of column `col`'s first value.
fn column_start(col: u32) -> u32 {
    let per_signal = fp.n / fp.radix;
    let j = col & (per_signal - 1u);
    return (col - j) * fp.radix + j;
}

// Loads workgroup g's C columns into sh (column c at sh[c R ..]),
// conjugated for the inverse and twiddled.
fn load(tid: u32, g: u32) {
    let per_signal = fp.n / fp.radix;
    // exp(-2πi r k / (Ns R)) = exp(-2πi (r k N / (Ns R)) / N)
    let scale = fp.n / (fp.ns * fp.radix);
    for (var e = tid; e < fp.cols * fp.radix; e += FFT_WG) {
        let cr = element(g, e, per_signal == 1u);
        let col = cr.x;
        let r = cr.y;
        if col < fp.total {
            var v = src[column_start(col) + r * per_signal];
            if fp.inverse != 0u {
                v = conj(v);
            }
            if fp.ns > 1u {
                let k = col & (fp.ns - 1u);
                v = cmul(v, twiddle_n(r * k * scale));
            }
            sh[(col - g * fp.cols) * fp.radix + r] = v;
        }
    }
}

// Where output r of column `col` goes in the buffer.
fn store_index(col: u32, r: u32) -> u32 {
    let per_signal = fp.n / fp.radix;
    let j = col & (per_signal - 1u);
    let k = j & (fp.ns - 1u);
    return (col - j) * fp.radix + (j - k) * fp.radix + k + r * fp.ns;
}

// Output r of column `col` (of workgroup g) and where it goes; the store
// loops of both entry points are this, r fastest in the first pass.
fn output(g: u32, e: u32) -> vec3<u32> {
    let cr = element(g, e, fp.ns == 1u);
    return vec3<u32>(cr.x, cr.y, store_index(cr.x, cr.y));
}

// The value stored for output r of column `col` of workgroup g, conjugated
// back for the inverse.
fn out_value(g: u32, col: u32, r: u32) -> vec2<f32> {
    let v = sh[(col - g * fp.cols) * fp.radix + r];
    if fp.inverse != 0u {
        return conj(v);
    }
    return v;
}

// A single-pass transform (N = R, Ns = 1), written back to src.
@compute @workgroup_size(FFT_WG)
fn fft_in_place(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = group_index(wid, nwg);
    if g * fp.cols >= fp.total {
        return;
    }
    load(tid, g);
    workgroupBarrier();
    fft_shared_batch(tid, fp.radix, fp.cols, fp.tw_step);
    for (var e = tid; e < fp.cols * fp.radix; e += FFT_WG) {
        let o = output(g, e);
        if o.x < fp.total {
            src[o.z] = out_value(g, o.x, o.y);
        }
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
    if g * fp.cols >= fp.total {
        return;
    }
    load(tid, g);
    workgroupBarrier();
    fft_shared_batch(tid, fp.radix, fp.cols, fp.tw_step);
    for (var e = tid; e < fp.cols * fp.radix; e += FFT_WG) {
        let o = output(g, e);
        if o.x < fp.total {
            dst[o.z] = out_value(g, o.x, o.y);
        }
    }
}
