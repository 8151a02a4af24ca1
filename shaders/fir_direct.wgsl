// Streaming FIR filter, direct convolution: y[n] = sum_t k[t] x[n - t]
// (numpy.convolve orientation), one output per new input, for short
// kernels (and as the fallback for kernels too long for overlap-save in
// workgroup memory). CPU twin: src/kernels/fir_direct.rs. Host:
// src/backend/gpu/fir.rs.
//
// Each workgroup computes FIR_WG consecutive outputs of one channel. The
// extended input ext = [history (TAPS - 1) | new frames] is read through
// workgroup memory in tiles: for each block of FIR_TT taps, the workgroup
// loads those taps and the FIR_WG + FIR_TT - 1 inputs they touch, then every
// invocation accumulates its output over the block in tap order.
// The workgroups of block 0 also write the history for the next step,
// ext[frames .. frames + TAPS - 1], into the other history buffer (the two
// alternate by step parity, so no step reads what it writes).

// struct Step: shaders/lib/step.wgsl, prepended by the host.

// Kernel length.
override TAPS: u32 = 1u;
// Channels.
override CHANNELS: u32 = 1u;
// Input stride between channels (the step's largest frame count).
override CHUNK: u32 = 1u;
// Output stride between channels.
override OUT_STRIDE: u32 = 1u;

// Outputs per workgroup (one per invocation).
const FIR_WG: u32 = 256u;
// Taps per tile.
const FIR_TT: u32 = 256u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> taps: array<f32>;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;
@group(0) @binding(4) var<storage, read> hist_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> hist_out: array<f32>;

var<workgroup> xs: array<f32, 511>; // FIR_WG + FIR_TT - 1
var<workgroup> ks: array<f32, FIR_TT>;

// ext[q] of channel c: history, then this step's frames, then zeros.
fn ext(c: u32, q: i32) -> f32 {
    let h = i32(TAPS) - 1;
    if q < 0 {
        return 0.0;
    }
    if q < h {
        return hist_in[c * (TAPS - 1u) + u32(q)];
    }
    let i = u32(q - h);
    if i < step.frames {
        return input[c * CHUNK + i];
    }
    return 0.0;
}

@compute @workgroup_size(FIR_WG)
fn fir_direct(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let frames = step.frames;
    let per_channel = (frames + FIR_WG - 1u) / FIR_WG;
    let g = wid.x + wid.y * nwg.x;
    if g >= per_channel * CHANNELS {
        return;
    }
    let c = g / per_channel;
    let j0 = (g % per_channel) * FIR_WG;
    let h = TAPS - 1u;
    if j0 == 0u {
        for (var i = tid; i < h; i += FIR_WG) {
            hist_out[c * h + i] = ext(c, i32(frames + i));
        }
    }
    let j = j0 + tid;
    var acc = 0.0;
    for (var t0 = 0u; t0 < TAPS; t0 += FIR_TT) {
        // xs[m] = ext[j0 + h - t0 - (FIR_TT - 1) + m]
        let first = i32(j0 + h) - i32(t0) - i32(FIR_TT - 1u);
        for (var m = tid; m < FIR_WG + FIR_TT - 1u; m += FIR_WG) {
            xs[m] = ext(c, first + i32(m));
        }
        for (var u = tid; u < FIR_TT; u += FIR_WG) {
            var k = 0.0;
            if t0 + u < TAPS {
                k = taps[t0 + u];
            }
            ks[u] = k;
        }
        workgroupBarrier();
        let count = min(FIR_TT, TAPS - t0);
        for (var u = 0u; u < count; u++) {
            acc += ks[u] * xs[tid + FIR_TT - 1u - u];
        }
        workgroupBarrier();
    }
    if j < frames && j >= step.drop {
        output[c * OUT_STRIDE + j - step.drop] = acc;
    }
}
