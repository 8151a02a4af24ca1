// Batched real-input FFT (numpy.fft.rfft layout: n/2 + 1 complex bins per
// transform of n real samples), by the half-length complex trick. Loaded
// with shaders/lib/fft_core.wgsl in front.
// CPU twin: src/kernels/fft_real.rs. Host: src/backend/gpu/rfft.rs.
//
// Why the trick: n real samples x packed as h = n/2 complex values
// z[m] = x[2m] + i x[2m+1] need one complex FFT of half the length, Z =
// FFT_h(z), and a cheap O(n) untangling:
//   X[k] = (Z[k] + conj(Z[h-k])) / 2 - i W^k (Z[k] - conj(Z[h-k])) / 2,
// for k = 0 .. h, with W = exp(-2πi / n) and Z[h] read as Z[0] (so X[h] =
// Re Z[0] - Im Z[0], X[0] = Re Z[0] + Im Z[0]).
//
// Two ways to run, both from this file:
// - `rfft_fused` (h fits in workgroup memory): one dispatch does it all.
//   A workgroup takes C = `cols` transforms (C h <= SHARED): it reads
//   their samples (optionally windowed) straight from the signal into
//   workgroup memory, transforms them there (fft_shared_batch), and writes
//   the untangled bins. The twiddle table (binding 1) is exp(-2πi m / n),
//   m < n, computed in f64: the h-point FFT's exp(-2πi m / h) is its entry
//   2m (tw_step = 2), the untangling's W^k its entry k.
// - h too long for a workgroup: `rfft_pack` writes z into a complex buffer,
//   the multi-pass GpuFft (shaders/fft_stockham.wgsl) transforms it in
//   place, and `rfft_post` untangles it (one invocation per bin; the table
//   then holds exp(-2πi k / n) for k <= h).
//
// Transform t reads samples input[offset + t stride + s], s < n (stride =
// n for contiguous frames; hop < n for overlapping spectrogram frames),
// each multiplied by window[s] when `windowed` is 1, and writes
// output[t (h + 1) + k], k <= h.

struct Rfft {
    // Real samples per transform, n (a power of two >= 4).
    n: u32,
    // h = n / 2, the complex FFT's length.
    half: u32,
    // Samples between the first samples of consecutive transforms.
    stride: u32,
    // Index of transform 0's first sample in the input.
    offset: u32,
    // Transforms in all.
    batch: u32,
    // Transforms per workgroup in `rfft_fused` (C h <= SHARED).
    cols: u32,
    // 1: multiply sample s by window[s].
    windowed: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> rp: Rfft;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> window: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> packed: array<vec2<f32>>;

// Invocations per workgroup of the one-value-per-invocation passes.
const RFFT_WG: u32 = 256u;

// The workgroup's linear index, from a grid folded into y (context::grid).
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// z[m] of transform t: samples 2m and 2m + 1, windowed.
fn load_pair(t: u32, m: u32) -> vec2<f32> {
    let s = rp.offset + t * rp.stride + 2u * m;
    var v = vec2<f32>(input[s], input[s + 1u]);
    if rp.windowed != 0u {
        v = v * vec2<f32>(window[2u * m], window[2u * m + 1u]);
    }
    return v;
}

// Bin k (<= h) from zk = Z[k], zc = conj(Z[h - k]) and w = W^k.
fn untangle(zk: vec2<f32>, zc: vec2<f32>, w: vec2<f32>) -> vec2<f32> {
    let e = (zk + zc) * 0.5;
    let o = cmul(w, (zk - zc) * 0.5);
    // e - i o
    return e + vec2<f32>(o.y, -o.x);
}

@compute @workgroup_size(FFT_WG)
fn rfft_fused(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = group_index(wid, nwg);
    let first = g * rp.cols;
    if first >= rp.batch {
        return;
    }
    let h = rp.half;
    // Samples in order: transform c's pairs are sh[c h ..], consecutive
    // invocations read consecutive pairs.
    for (var e = tid; e < rp.cols * h; e += FFT_WG) {
        let t = first + e / h;
        if t < rp.batch {
            sh[e] = load_pair(t, e & (h - 1u));
        }
    }
    workgroupBarrier();
    fft_shared_batch(tid, h, rp.cols, 2u);
    let bins = h + 1u;
    for (var e = tid; e < rp.cols * bins; e += FFT_WG) {
        let c = e / bins;
        let k = e - c * bins;
        let t = first + c;
        if t < rp.batch {
            let zk = sh[c * h + (k & (h - 1u))];
            let zc = conj(sh[c * h + ((h - k) & (h - 1u))]);
            output[t * bins + k] = untangle(zk, zc, fft_twiddles[k]);
        }
    }
}

// Multi-pass path, step 1: z of every transform into `packed` (batch x h).
@compute @workgroup_size(RFFT_WG)
fn rfft_pack(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = group_index(wid, nwg) * RFFT_WG + tid;
    if i >= rp.batch * rp.half {
        return;
    }
    let m = i & (rp.half - 1u);
    packed[i] = load_pair((i - m) / rp.half, m);
}

// Multi-pass path, step 3: the bins of every transform from Z in `packed`.
@compute @workgroup_size(RFFT_WG)
fn rfft_post(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = group_index(wid, nwg) * RFFT_WG + tid;
    let h = rp.half;
    let bins = h + 1u;
    if i >= rp.batch * bins {
        return;
    }
    let t = i / bins;
    let k = i - t * bins;
    let zk = packed[t * h + (k & (h - 1u))];
    let zc = conj(packed[t * h + ((h - k) & (h - 1u))]);
    output[i] = untangle(zk, zc, fft_twiddles[k]);
}
