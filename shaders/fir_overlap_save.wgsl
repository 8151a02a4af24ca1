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
    for (var m = tid; m < NFFT; m += FFT_WG) {
        sh[m] = vec2<f32>(ext(c, a + m), ext(c, a + valid + m));
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
        put(c, a + m, z.x);
        put(c, a + valid + m, -z.y);
    }
}
