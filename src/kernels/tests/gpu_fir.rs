//! The GPU FIR stage (`shaders/fir_direct.wgsl`,
//! `shaders/fir_overlap_save.wgsl`) against an f64 direct convolution
//! written here, and against its CPU twins, streaming in steps of varying
//! sizes (0 included, some shorter than the kernel) with a leading drop,
//! all steps encoded into one submission (several in flight).

use super::common;

use std::sync::Arc;

use sigstream::backend::gpu::fir::{GpuFir, GpuFirMethod, kernel_spectrum};
use sigstream::backend::gpu::{GpuContext, STEP_PARAMS_SIZE, StepParams};
use sigstream::kernels::fft_stockham;
use sigstream::kernels::fir_direct::{self, FirDirectBindings, FirDirectConsts};
use sigstream::kernels::fir_overlap_save::{self, FirOverlapSaveBindings, FirOverlapSaveConsts};

/// Largest error allowed against the f64 reference, relative to the
/// largest reference output: a direct sum of `taps` f32 products errs by
/// about sqrt(taps) rounding units (1025 taps: ~2e-6), overlap-save by about
/// log2(nfft) units of the block's scale (~1e-6); 1e-5 leaves room for
/// either while any wrong index or lost history errs by order 1.
const REF_TOL: f64 = 1e-5;

/// Largest GPU-versus-twin difference allowed, relative to the largest
/// output: both run the same f32 operations in the same order, and only a
/// GPU's freedom to fuse multiply-adds separates them (a few rounding
/// units).
const TWIN_TOL: f64 = 1e-6;

/// Seeded pseudo-random values in [-1, 1) (xorshift).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Full convolution in f64, one output per input: y[n] = Σ_t k[t] x[n−t].
fn reference(x: &[f32], k: &[f32]) -> Vec<f64> {
    (0..x.len())
        .map(|n| {
            (0..k.len().min(n + 1))
                .map(|t| f64::from(k[t]) * f64::from(x[n - t]))
                .sum()
        })
        .collect()
}

/// The steps (frames, drop) streaming `len` frames in chunks of at most
/// `chunk`: varied sizes, an empty step, a leading drop.
fn steps(len: usize, chunk: usize) -> Vec<(usize, usize)> {
    let pattern = [
        chunk,
        0,
        chunk / 3 + 1,
        1,
        chunk,
        chunk.saturating_sub(1).max(1),
    ];
    let mut out = Vec::new();
    let mut done = 0;
    let mut i = 0;
    while done < len {
        let f = pattern[i % pattern.len()].min(len - done);
        let drop = if out.is_empty() { f / 2 } else { 0 };
        out.push((f, drop));
        done += f;
        i += 1;
    }
    out
}

/// What a run gives back: per channel, the outputs at absolute positions
/// (None where dropped).
type Outputs = Vec<Vec<Option<f32>>>;

fn params(frames: usize, drop: usize) -> StepParams {
    StepParams {
        frames: frames as u32,
        drop: drop as u32,
        out_frames: (frames - drop) as u32,
        ..StepParams::default()
    }
}

/// Streams `x` (planar, per channel) through the GPU stage, all steps in
/// one submission, the step uniform and input filled by copies from
/// buffers prepared up front (as the chunk engine does).
fn run_gpu(
    ctx: &Arc<GpuContext>,
    kernel: &[f32],
    x: &[Vec<f32>],
    chunk: usize,
    out_stride: usize,
    steps: &[(usize, usize)],
    method: Option<GpuFirMethod>,
) -> (Outputs, GpuFirMethod) {
    let channels = x.len();
    let len = x[0].len();
    let step_buf = ctx.uniform("step", &StepParams::default()).unwrap();
    let input = ctx.storage("input", (channels * chunk * 4) as u64);
    let output = ctx.storage("output", (channels * out_stride * 4) as u64);
    let mut fir = GpuFir::new(
        ctx, kernel, channels, chunk, &step_buf, &input, &output, out_stride, method,
    )
    .unwrap();
    let mut all_in = vec![0.0f32; steps.len() * channels * chunk];
    let mut all_params = Vec::new();
    let mut pos = 0;
    for (s, &(f, d)) in steps.iter().enumerate() {
        for (c, xc) in x.iter().enumerate() {
            let at = (s * channels + c) * chunk;
            all_in[at..at + f].copy_from_slice(&xc[pos..pos + f]);
        }
        all_params.push(params(f, d));
        pos += f;
    }
    assert_eq!(pos, len);
    let in_buf = ctx.storage_init("all inputs", &all_in).unwrap();
    let par_buf = ctx.storage_init("all params", &all_params).unwrap();
    let res_len = steps.len() * channels * out_stride;
    let res_buf = ctx.storage("all outputs", (res_len * 4) as u64);
    let mut enc = ctx.encoder("fir test");
    let in_bytes = (channels * chunk * 4) as u64;
    let out_bytes = (channels * out_stride * 4) as u64;
    for (s, &(f, _)) in steps.iter().enumerate() {
        enc.copy_buffer_to_buffer(
            &par_buf,
            s as u64 * STEP_PARAMS_SIZE,
            &step_buf,
            0,
            STEP_PARAMS_SIZE,
        );
        enc.copy_buffer_to_buffer(&in_buf, s as u64 * in_bytes, &input, 0, in_bytes);
        fir.encode(&mut enc, f);
        enc.copy_buffer_to_buffer(&output, 0, &res_buf, s as u64 * out_bytes, out_bytes);
    }
    ctx.run(enc).unwrap();
    let res: Vec<f32> = ctx.read(&res_buf, 0, res_len).unwrap();
    (
        collect(&res, steps, channels, out_stride, len),
        fir.method(),
    )
}

/// Gathers per-step outputs (step `s`, channel `c` at
/// `(s * channels + c) * out_stride`) into absolute positions.
fn collect(
    res: &[f32],
    steps: &[(usize, usize)],
    channels: usize,
    out_stride: usize,
    len: usize,
) -> Outputs {
    let mut out = vec![vec![None; len]; channels];
    let mut pos = 0;
    for (s, &(f, d)) in steps.iter().enumerate() {
        for (c, oc) in out.iter_mut().enumerate() {
            let at = (s * channels + c) * out_stride;
            for j in d..f {
                oc[pos + j] = Some(res[at + j - d]);
            }
        }
        pos += f;
    }
    out
}

/// The same stream through the CPU twin of the method in use.
fn run_twin(
    kernel: &[f32],
    x: &[Vec<f32>],
    chunk: usize,
    out_stride: usize,
    steps: &[(usize, usize)],
    method: GpuFirMethod,
) -> Outputs {
    let channels = x.len();
    let len = x[0].len();
    let taps = kernel.len();
    let mut hist = [
        vec![0.0f32; channels * (taps - 1)],
        vec![0.0f32; channels * (taps - 1)],
    ];
    let mut input = vec![0.0f32; channels * chunk];
    let mut res = vec![0.0f32; steps.len() * channels * out_stride];
    let mut output = vec![0.0f32; channels * out_stride];
    let (twiddles, spectrum) = match method {
        GpuFirMethod::OverlapSave { nfft } => (
            fft_stockham::local_twiddles(nfft),
            kernel_spectrum(kernel, nfft),
        ),
        GpuFirMethod::Direct => (Vec::new(), Vec::new()),
    };
    let mut pos = 0;
    let mut parity = 0;
    for (s, &(f, d)) in steps.iter().enumerate() {
        for (c, xc) in x.iter().enumerate() {
            input[c * chunk..c * chunk + f].copy_from_slice(&xc[pos..pos + f]);
        }
        let step = params(f, d);
        if f > 0 {
            let [h0, h1] = &mut hist;
            let (hist_in, hist_out) = if parity == 0 { (&*h0, h1) } else { (&*h1, h0) };
            match method {
                GpuFirMethod::Direct => fir_direct::fir_direct(
                    &FirDirectConsts {
                        taps,
                        channels,
                        chunk,
                        out_stride,
                    },
                    &mut FirDirectBindings {
                        step: &step,
                        taps: kernel,
                        input: &input,
                        output: &mut output,
                        hist_in,
                        hist_out,
                    },
                ),
                GpuFirMethod::OverlapSave { nfft } => fir_overlap_save::fir_overlap_save(
                    &FirOverlapSaveConsts {
                        nfft,
                        taps,
                        channels,
                        chunk,
                        out_stride,
                    },
                    &mut FirOverlapSaveBindings {
                        step: &step,
                        twiddles: &twiddles,
                        spectrum: &spectrum,
                        input: &input,
                        output: &mut output,
                        hist_in,
                        hist_out,
                        kernel,
                    },
                ),
            }
            parity ^= 1;
        }
        let at = s * channels * out_stride;
        res[at..at + channels * out_stride].copy_from_slice(&output);
        pos += f;
    }
    collect(&res, steps, channels, out_stride, len)
}

/// Largest |got − want| over the written outputs, relative to max |want|;
/// fails if an output that should be there is missing.
fn max_rel_err(got: &[Option<f32>], want: &[f64], what: &str) -> f64 {
    let scale = want
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let mut worst = (0.0, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some(g) = g {
            let e = (f64::from(*g) - w).abs() / scale;
            if e > worst.0 || e.is_nan() {
                worst = (e, i);
            }
        }
    }
    eprintln!("{what}: max rel err {:.2e} at {}", worst.0, worst.1);
    worst.0
}

struct Case {
    taps: usize,
    channels: usize,
    chunk: usize,
    len: usize,
    method: Option<GpuFirMethod>,
}

fn check(ctx: &Arc<GpuContext>, case: &Case, expect_direct: Option<bool>) {
    let kernel = noise(case.taps, case.taps as u64);
    let x: Vec<Vec<f32>> = (0..case.channels)
        .map(|c| noise(case.len, 1000 + c as u64))
        .collect();
    let steps = steps(case.len, case.chunk);
    let out_stride = case.chunk + 3;
    let start = std::time::Instant::now();
    let (gpu, method) = run_gpu(
        ctx,
        &kernel,
        &x,
        case.chunk,
        out_stride,
        &steps,
        case.method,
    );
    let gpu_time = start.elapsed();
    if let Some(direct) = expect_direct {
        assert_eq!(
            method == GpuFirMethod::Direct,
            direct,
            "taps {}: {method:?}",
            case.taps
        );
    }
    let twin = run_twin(&kernel, &x, case.chunk, out_stride, &steps, method);
    let what = format!(
        "taps {} x{} chunk {} {method:?} ({gpu_time:?})",
        case.taps, case.channels, case.chunk
    );
    for c in 0..case.channels {
        let want = reference(&x[c], &kernel);
        // Outputs dropped in the first step are absent; all others present.
        let first_drop = steps[0].1;
        for (i, g) in gpu[c].iter().enumerate() {
            assert_eq!(g.is_some(), i >= first_drop, "{what}: output {i} presence");
        }
        let e = max_rel_err(&gpu[c], &want, &format!("{what} ch {c} GPU vs f64"));
        assert!(e <= REF_TOL, "{what} ch {c}: GPU vs f64 {e:.3e}");
        let e = max_rel_err(&twin[c], &want, &format!("{what} ch {c} twin vs f64"));
        assert!(e <= REF_TOL, "{what} ch {c}: twin vs f64 {e:.3e}");
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = gpu[c]
            .iter()
            .zip(&twin[c])
            .filter_map(|(g, t)| Some((f64::from((*g)?) - f64::from((*t)?)).abs() / scale))
            .fold(0.0, f64::max);
        assert!(diff <= TWIN_TOL, "{what} ch {c}: GPU vs twin {diff:.3e}");
    }
}

#[test]
fn direct_short_kernels() {
    let Some(ctx) = common::gpu() else { return };
    for (taps, channels, chunk) in [(1, 1, 1000), (3, 3, 777), (16, 1, 4096)] {
        let case = Case {
            taps,
            channels,
            chunk,
            len: 12_000,
            method: None,
        };
        check(&ctx, &case, Some(true));
    }
    // Direct forced on a longer kernel, chunks shorter than it.
    let case = Case {
        taps: 65,
        channels: 3,
        chunk: 50,
        len: 3_000,
        method: Some(GpuFirMethod::Direct),
    };
    check(&ctx, &case, Some(true));
}

#[test]
fn overlap_save_kernels() {
    let Some(ctx) = common::gpu() else { return };
    for (taps, channels, chunk) in [
        (17, 3, 500),
        (65, 1, 10_000),
        (1025, 3, 700),
        (1025, 1, 5000),
    ] {
        let case = Case {
            taps,
            channels,
            chunk,
            len: 12_000,
            method: None,
        };
        check(&ctx, &case, Some(false));
    }
    // A small forced FFT length: 16 valid outputs per block, many pairs.
    let case = Case {
        taps: 17,
        channels: 1,
        chunk: 300,
        len: 5_000,
        method: Some(GpuFirMethod::OverlapSave { nfft: 32 }),
    };
    check(&ctx, &case, Some(false));
}

#[test]
fn long_kernel_falls_back_to_direct() {
    let Some(ctx) = common::gpu() else { return };
    let max = sigstream::backend::gpu::fft::max_local(&ctx);
    let taps = max / 2 + 300;
    let case = Case {
        taps,
        channels: 1,
        chunk: 3000,
        len: 8_000,
        method: None,
    };
    check(&ctx, &case, Some(true));
}

#[test]
fn bad_plans_are_errors() {
    let Some(ctx) = common::gpu() else { return };
    let step = ctx.uniform("step", &StepParams::default()).unwrap();
    let buf = ctx.storage("b", 4096);
    let new = |k: &[f32], stride, m| GpuFir::new(&ctx, k, 1, 100, &step, &buf, &buf, stride, m);
    assert!(new(&[], 100, None).is_err());
    assert!(new(&[1.0], 99, None).is_err());
    let k = noise(40, 1);
    assert!(new(&k, 100, Some(GpuFirMethod::OverlapSave { nfft: 32 })).is_err());
    assert!(new(&k, 100, Some(GpuFirMethod::OverlapSave { nfft: 96 })).is_err());
    assert!(new(&k, 100, Some(GpuFirMethod::OverlapSave { nfft: 1 << 20 })).is_err());
}

/// Channels of samples that break a plain FFT: NaN, ±∞ (alone, meeting
/// each other, meeting a zero tap) and magnitudes near `f32::MAX` and near
/// the smallest normal. The twin (always) and the GPU (when there is one)
/// must put NaN and ±∞ exactly where the IEEE direct sum in f64 has them
/// (numpy.convolve's answer), keep every other output finite and within
/// [`REF_TOL`] of it.
#[test]
fn non_finite_and_extreme_samples_give_numpys_outputs() {
    for (taps, nfft) in [(65, 256), (1025, 4096)] {
        non_finite_case(taps, nfft);
    }
}

fn non_finite_case(taps: usize, nfft: usize) {
    let mut kernel = noise(taps, 7);
    kernel[10] = 0.0;
    // A one-signed kernel too: there ∞ alone gives ∞ of one sign.
    let positive: Vec<f32> = kernel.iter().map(|k| k.abs() + 0.01).collect();
    let len = 6_000;
    let mut wild = noise(len, 11);
    wild[100] = f32::NAN;
    wild[1000] = f32::INFINITY;
    wild[1020] = f32::NEG_INFINITY;
    wild[3000] = f32::NEG_INFINITY;
    wild[4000..4003].fill(f32::NAN);
    // Near f32::MAX, yet every output representable: |y| ≤ Σ|k|·max|x|
    // with Σ|k| < taps.
    let huge: Vec<f32> = noise(len, 12)
        .iter()
        .map(|v| v * (f32::MAX / taps as f32 / 1.01))
        .collect();
    let tiny: Vec<f32> = noise(len, 13).iter().map(|v| v * 1e-37).collect();
    let x = vec![wild, huge, tiny];
    let chunk = 1000;
    let steps = steps(len, chunk);
    let out_stride = chunk + 3;
    let method = GpuFirMethod::OverlapSave { nfft };
    let ctx = common::gpu();
    for k in [&kernel, &positive] {
        let twin = run_twin(k, &x, chunk, out_stride, &steps, method);
        let gpu = ctx
            .as_ref()
            .map(|ctx| run_gpu(ctx, k, &x, chunk, out_stride, &steps, Some(method)).0);
        for c in 0..x.len() {
            let want = reference(&x[c], k);
            let finite_scale = want
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |m, v| m.max(v.abs()));
            let runs = [
                Some(("twin", &twin[c])),
                gpu.as_ref().map(|g| ("GPU", &g[c])),
            ];
            for (who, got) in runs.into_iter().flatten() {
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let Some(g) = g else { continue };
                    let what = format!("{taps} taps, {who} ch {c} output {i}: {g} against {w}");
                    if w.is_nan() {
                        assert!(g.is_nan(), "{what}");
                    } else if w.is_infinite() {
                        assert_eq!(f64::from(*g), *w, "{what}");
                    } else {
                        assert!(g.is_finite(), "{what}");
                        let e = (f64::from(*g) - w).abs() / finite_scale;
                        assert!(e <= REF_TOL, "{what}: {e:.2e}");
                    }
                }
            }
        }
    }
}
