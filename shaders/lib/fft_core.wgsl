// Library prepended (by concatenation, at load time) to the kernels that
// transform in workgroup memory: fft_stockham.wgsl and fir_overlap_save.wgsl.
// It is not a kernel (no entry point); tests/shaders.rs validates it alone
// and each kernel with it in front. CPU twin: src/kernels/fft_stockham.rs
// (`fft_shared`).
//
// Conventions it imposes on the kernels that include it: binding 1 of group
// 0 is the twiddle table, whose first entries are exp(-2πi m / TL) for
// m < TL (TL = the largest local length the plan uses; computed in f64 on
// the host, stored as f32); invocations per workgroup are FFT_WG.

// Complex values the workgroup array holds (set per pipeline from the
// device's workgroup-memory limit and the plan: at most FFT_MAX_LOCAL).
override SHARED: u32 = 2048u;

// Invocations per workgroup (WebGPU's default limit, on every device).
const FFT_WG: u32 = 256u;

// Values one invocation keeps in registers between two barriers: a radix-4
// stage of length L gives each invocation L / (4 FFT_WG) butterflies of 4
// values, so L <= FFT_WG * FFT_REGS = 4096.
const FFT_REGS: u32 = 16u;

@group(0) @binding(1) var<storage, read> fft_twiddles: array<vec2<f32>>;

var<workgroup> sh: array<vec2<f32>, SHARED>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn conj(a: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x, -a.y);
}

// Forward FFT (exponent sign -1, unnormalised) of sh[0..n] in place, natural
// order in and out: fft_shared_batch with one transform.
fn fft_shared(tid: u32, n: u32, tw_step: u32) {
    fft_shared_batch(tid, n, 1u, tw_step);
}

// Forward FFTs (exponent sign -1, unnormalised) of `count` transforms of
// length n, sh[c n .. (c + 1) n] for c < count, in place, natural order in
// and out. `n` is a power of two and count * n <= min(SHARED, FFT_WG *
// FFT_REGS); `tw_step` = TL / n, so that exp(-2πi m / n) =
// fft_twiddles[m * tw_step].
// Stockham autosort: radix-4 stages, then one radix-2 stage when log2(n) is
// odd. The butterflies of all transforms are numbered together (jj), so a
// workgroup of short transforms keeps every invocation busy: butterfly j of
// transform c is jj = c n/4 + j, and c n = (jj - j) * 4 (n/2 and 2 for the
// radix-2 stage), masks rather than divisions. Each stage reads its inputs
// into registers, waits at a barrier, writes its outputs to their
// autosorted places, and waits again, so one array suffices. Every
// invocation of the workgroup must call it (it has barriers) with the same
// uniform `n`, `count` and `tw_step`; the caller puts a barrier between
// filling sh and the call, and between the call and reading.
fn fft_shared_batch(tid: u32, n: u32, count: u32, tw_step: u32) {
    var regs: array<vec2<f32>, FFT_REGS>;
    var ns = 1u;
    let q4 = n / 4u;
    let all4 = q4 * count;
    let per4 = (all4 + FFT_WG - 1u) / FFT_WG;
    loop {
        if ns * 4u > n {
            break;
        }
        // exp(-2πi r k / (4 ns)) = table[r k n / (4 ns) * tw_step]
        let step = (n / (ns * 4u)) * tw_step;
        for (var i = 0u; i < per4; i++) {
            let jj = tid + i * FFT_WG;
            if jj < all4 {
                let j = jj & (q4 - 1u);
                let o = (jj - j) * 4u + j;
                let k = j & (ns - 1u);
                let a0 = sh[o];
                let a1 = cmul(sh[o + q4], fft_twiddles[k * step]);
                let a2 = cmul(sh[o + 2u * q4], fft_twiddles[2u * k * step]);
                let a3 = cmul(sh[o + 3u * q4], fft_twiddles[3u * k * step]);
                let t0 = a0 + a2;
                let t1 = a0 - a2;
                let t2 = a1 + a3;
                let d = a1 - a3;
                // (a1 - a3) * (-i)
                let t3 = vec2<f32>(d.y, -d.x);
                regs[4u * i] = t0 + t2;
                regs[4u * i + 1u] = t1 + t3;
                regs[4u * i + 2u] = t0 - t2;
                regs[4u * i + 3u] = t1 - t3;
            }
        }
        workgroupBarrier();
        for (var i = 0u; i < per4; i++) {
            let jj = tid + i * FFT_WG;
            if jj < all4 {
                let j = jj & (q4 - 1u);
                let k = j & (ns - 1u);
                let d = (jj - j) * 4u + (j - k) * 4u + k;
                sh[d] = regs[4u * i];
                sh[d + ns] = regs[4u * i + 1u];
                sh[d + 2u * ns] = regs[4u * i + 2u];
                sh[d + 3u * ns] = regs[4u * i + 3u];
            }
        }
        workgroupBarrier();
        ns = ns * 4u;
    }
    if ns < n {
        // Radix-2 tail: ns * 2 == n.
        let q2 = n / 2u;
        let all2 = q2 * count;
        let per2 = (all2 + FFT_WG - 1u) / FFT_WG;
        let step = (n / (ns * 2u)) * tw_step;
        for (var i = 0u; i < per2; i++) {
            let jj = tid + i * FFT_WG;
            if jj < all2 {
                let j = jj & (q2 - 1u);
                let o = (jj - j) * 2u + j;
                let k = j & (ns - 1u);
                let a0 = sh[o];
                let a1 = cmul(sh[o + q2], fft_twiddles[k * step]);
                regs[2u * i] = a0 + a1;
                regs[2u * i + 1u] = a0 - a1;
            }
        }
        workgroupBarrier();
        for (var i = 0u; i < per2; i++) {
            let jj = tid + i * FFT_WG;
            if jj < all2 {
                let j = jj & (q2 - 1u);
                let k = j & (ns - 1u);
                let d = (jj - j) * 2u + (j - k) * 2u + k;
                sh[d] = regs[2u * i];
                sh[d + ns] = regs[2u * i + 1u];
            }
        }
        workgroupBarrier();
    }
}
