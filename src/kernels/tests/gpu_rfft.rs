//! The GPU real-input FFT (`shaders/fft_real.wgsl`) against independent f64
//! references (a naive real DFT for small sizes, rustfft in f64 on the
//! samples as complex values for all), against its CPU twin, on both paths
//! (fused in one workgroup, and pack + multi-pass FFT + post), with
//! contiguous, overlapping and windowed frames.

use super::common;

use std::sync::Arc;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use sigstream::backend::gpu::GpuContext;
use sigstream::backend::gpu::rfft::GpuRfft;
use sigstream::kernels::fft_real;
use sigstream::kernels::fft_stockham::C32;

/// Relative L2 error allowed against an f64 reference: as for the complex
/// FFT (tests/gpu_fft.rs: f32 rounding grows like sqrt(log n), f32-rounded
/// twiddles add as much again), plus one more rounding for the untangling
/// step; measured errors stay below 2e-7 up to 2^20, and a wrong twiddle,
/// index or conjugation gives errors of order 1.
const REF_TOL: f64 = 1e-6;

/// Relative L2 difference allowed between the GPU and its twin, which run
/// the same f32 operations on the same tables: only the GPU's freedom to
/// fuse a multiply and an add (one rounding instead of two) separates them.
const TWIN_TOL: f64 = 2e-7;

/// Seeded pseudo-random samples in [-1, 1) (xorshift).
fn samples(len: usize, seed: u64) -> Vec<f32> {
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

fn rel_l2(got: &[C32], want: &[Complex<f64>]) -> f64 {
    assert_eq!(got.len(), want.len(), "bin counts differ");
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in got.iter().zip(want) {
        num += (f64::from(g[0]) - w.re).powi(2) + (f64::from(g[1]) - w.im).powi(2);
        den += w.norm_sqr();
    }
    (num / den).sqrt()
}

/// Frame `t` of `x`: samples `offset + t stride ..` (+ n), windowed, in f64.
fn frame(
    x: &[f32],
    n: usize,
    t: usize,
    stride: usize,
    offset: usize,
    window: Option<&[f32]>,
) -> Vec<f64> {
    let start = offset + t * stride;
    (0..n)
        .map(|s| f64::from(x[start + s]) * window.map_or(1.0, |w| f64::from(w[s])))
        .collect()
}

/// rustfft in f64 on each frame as complex values, first n/2 + 1 bins.
fn reference(frames: &[Vec<f64>]) -> Vec<Complex<f64>> {
    let n = frames[0].len();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    let mut out = Vec::with_capacity(frames.len() * (n / 2 + 1));
    for f in frames {
        let mut y: Vec<Complex<f64>> = f.iter().map(|&v| Complex::new(v, 0.0)).collect();
        fft.process(&mut y);
        out.extend_from_slice(&y[..=n / 2]);
    }
    out
}

/// The real DFT by its definition, O(n²), in f64.
fn naive_rdft(x: &[f64]) -> Vec<Complex<f64>> {
    let n = x.len();
    (0..=n / 2)
        .map(|k| {
            x.iter()
                .enumerate()
                .map(|(t, &v)| {
                    let a = -2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
                    Complex::new(v * a.cos(), v * a.sin())
                })
                .sum()
        })
        .collect()
}

/// Contiguous frames of `x`.
fn contiguous(x: &[f32], n: usize) -> Vec<Vec<f64>> {
    x.chunks_exact(n)
        .map(|c| c.iter().map(|&v| f64::from(v)).collect())
        .collect()
}

struct Frames<'a> {
    offset: usize,
    stride: usize,
    window: Option<&'a [f32]>,
}

const CONTIGUOUS: Frames<'static> = Frames {
    offset: 0,
    stride: 0,
    window: None,
};

/// Runs `rfft` on `x` with `frames` (stride 0: n); returns the bins and the
/// binding's uniform.
fn gpu_run(
    ctx: &Arc<GpuContext>,
    rfft: &GpuRfft,
    x: &[f32],
    frames: &Frames<'_>,
) -> (Vec<C32>, fft_real::RfftParams) {
    let input = ctx.storage_init("rfft test input", x).unwrap();
    let out_len = rfft.bins() * rfft.batch();
    let output = ctx.storage("rfft test output", (out_len * 8) as u64);
    let window = frames
        .window
        .map(|w| ctx.storage_init("rfft test window", w).unwrap());
    let stride = if frames.stride == 0 {
        rfft.len()
    } else {
        frames.stride
    };
    let binding = rfft.bind_windowed(&input, frames.offset, stride, window.as_ref(), &output);
    let mut enc = ctx.encoder("rfft test");
    rfft.encode(&mut enc, &binding);
    ctx.run(enc).unwrap();
    (ctx.read(&output, 0, out_len).unwrap(), *binding.params())
}

#[test]
fn naive_rdft_agrees_with_rustfft_reference() {
    for n in [4, 16, 64] {
        let frames = contiguous(&samples(n, n as u64), n);
        let want = naive_rdft(&frames[0]);
        let got = reference(&frames);
        let diff: f64 = got.iter().zip(&want).map(|(a, b)| (a - b).norm_sqr()).sum();
        let norm: f64 = want.iter().map(Complex::norm_sqr).sum();
        assert!((diff / norm).sqrt() < 1e-12, "n={n}");
    }
}

#[test]
fn twin_matches_references_on_both_paths() {
    for bits in 2..=13 {
        let n = 1usize << bits;
        let batch = 3;
        let x = samples(n * batch, bits);
        let frames = contiguous(&x, n);
        let want = reference(&frames);
        // 4096: fused up to 2^13; 8: pack + multi-pass FFT + post from 32.
        for max_local in [4096, 8] {
            let plan = fft_real::plan(n, batch, max_local).unwrap();
            let rp = plan.params(n, 0, false);
            let mut y = vec![[0.0; 2]; batch * fft_real::bins(n)];
            fft_real::run(&plan, &rp, &x, &[], &mut y);
            let e = rel_l2(&y, &want);
            assert!(e <= REF_TOL, "twin n={n} max_local={max_local}: {e:.3e}");
            if n <= 256 {
                let naive: Vec<_> = frames.iter().flat_map(|f| naive_rdft(f)).collect();
                let e = rel_l2(&y, &naive);
                assert!(e <= REF_TOL, "twin n={n} vs naive DFT: {e:.3e}");
            }
        }
    }
}

#[test]
fn gpu_matches_f64_reference_for_every_power_of_two() {
    let Some(ctx) = common::gpu() else { return };
    let start = std::time::Instant::now();
    let sizes = (2..=16).chain([18, 20]);
    for bits in sizes {
        let n = 1usize << bits;
        // Several transforms where they are small, so that a workgroup
        // holds more than one.
        let batch = if bits <= 12 { 5 } else { 1 };
        let x = samples(n * batch, 200 + bits as u64);
        let rfft = GpuRfft::new(&ctx, n, batch).unwrap();
        let (y, _) = gpu_run(&ctx, &rfft, &x, &CONTIGUOUS);
        let frames = contiguous(&x, n);
        let want: Vec<_> = if n <= 64 {
            frames.iter().flat_map(|f| naive_rdft(f)).collect()
        } else {
            reference(&frames)
        };
        let e = rel_l2(&y, &want);
        eprintln!(
            "n=2^{bits} batch {batch} ({}): rel L2 {e:.2e}",
            if rfft.plan().is_fused() {
                "fused"
            } else {
                "multi-pass"
            }
        );
        assert!(e <= REF_TOL, "n=2^{bits}: rel L2 {e:.3e}");
    }
    eprintln!("2^2..2^20 took {:?}", start.elapsed());
}

#[test]
fn gpu_matches_twin() {
    let Some(ctx) = common::gpu() else { return };
    let n = 512;
    let window: Vec<f32> = (0..n)
        .map(|s| {
            let a = std::f64::consts::PI * s as f64 / n as f64;
            (a.sin() * a.sin()) as f32
        })
        .collect();
    let overlapping = Frames {
        offset: 7,
        stride: n / 4,
        window: None,
    };
    let windowed = Frames {
        offset: 3,
        stride: 3 * n / 8,
        window: Some(&window),
    };
    // (n, batch, max_local, frames): fused with several transforms per
    // workgroup and a ragged last workgroup; multi-pass with the copy
    // (contiguous) and with rfft_pack (strided, windowed); 2^14 on the
    // device's own split.
    for (n, batch, max_local, frames) in [
        (64, 37, 4096, &CONTIGUOUS),
        (512, 9, 4096, &overlapping),
        (512, 6, 4096, &windowed),
        (512, 3, 16, &CONTIGUOUS),
        (512, 5, 16, &overlapping),
        (512, 4, 32, &windowed),
        (1 << 14, 2, 4096, &CONTIGUOUS),
    ] {
        let stride = if frames.stride == 0 { n } else { frames.stride };
        let x = samples(
            frames.offset + (batch - 1) * stride + n + 5,
            n as u64 + batch as u64,
        );
        let rfft = GpuRfft::with_max_local(&ctx, n, batch, max_local).unwrap();
        let (y, rp) = gpu_run(&ctx, &rfft, &x, frames);
        let mut twin = vec![[0.0; 2]; y.len()];
        fft_real::run(
            rfft.plan(),
            &rp,
            &x,
            frames.window.unwrap_or(&[]),
            &mut twin,
        );
        let twin64: Vec<Complex<f64>> = twin
            .iter()
            .map(|c| Complex::new(f64::from(c[0]), f64::from(c[1])))
            .collect();
        let e_twin = rel_l2(&y, &twin64);
        let want: Vec<Vec<f64>> = (0..batch)
            .map(|t| frame(&x, n, t, stride, frames.offset, frames.window))
            .collect();
        let e_ref = rel_l2(&y, &reference(&want));
        eprintln!(
            "n={n} batch={batch} max_local={max_local} stride={stride} windowed={}: GPU vs twin {e_twin:.2e}, vs f64 {e_ref:.2e}",
            frames.window.is_some()
        );
        assert!(
            e_twin <= TWIN_TOL,
            "n={n} batch={batch}: GPU vs twin {e_twin:.3e}"
        );
        assert!(e_ref <= REF_TOL, "n={n} batch={batch}: vs f64 {e_ref:.3e}");
    }
}

#[test]
fn spectrum_of_a_real_cosine_is_two_bins() {
    let Some(ctx) = common::gpu() else { return };
    // cos(2π 5 s / n): X[5] = n/2, every other bin 0; X[0] and X[n/2] real.
    let n = 256;
    let x: Vec<f32> = (0..n)
        .map(|s| (2.0 * std::f64::consts::PI * 5.0 * s as f64 / n as f64).cos() as f32)
        .collect();
    let rfft = GpuRfft::new(&ctx, n, 1).unwrap();
    let (y, _) = gpu_run(&ctx, &rfft, &x, &CONTIGUOUS);
    assert_eq!(y.len(), n / 2 + 1);
    for (k, c) in y.iter().enumerate() {
        let want = if k == 5 { n as f32 / 2.0 } else { 0.0 };
        assert!(
            (c[0] - want).abs() < 1e-4 && c[1].abs() < 1e-4,
            "bin {k}: {c:?}, want {want}"
        );
    }
}

#[test]
fn bad_lengths_are_errors() {
    assert!(fft_real::plan(2, 1, 4096).is_err());
    assert!(fft_real::plan(12, 1, 4096).is_err());
    assert!(fft_real::plan(16, 0, 4096).is_err());
}
