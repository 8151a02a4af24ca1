//! NaN, infinities and extreme magnitudes through the FFT (overlap-save)
//! filters, end to end, on every backend: NaN and ±∞ exactly where
//! numpy.convolve puts them (the kernel's support around each one), every
//! other output finite and close to the f64 direct convolution, and
//! constant `f32::MAX` through a moving average still `f32::MAX`.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::Path;

use cli::{sigstream, stderr};

/// The backends to run: the CPU, and the GPU when there is one.
fn backends() -> Vec<&'static str> {
    #[cfg(feature = "gpu")]
    if common::gpu().is_some() {
        return vec!["cpu", "gpu"];
    }
    vec!["cpu"]
}

fn write_f32(path: &Path, x: &[f32]) {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// numpy.convolve(x, k) (full) in f64: IEEE arithmetic, so NaN·0 = NaN,
/// ∞·0 = NaN and ∞ − ∞ = NaN exactly as numpy computes them.
fn convolve(x: &[f32], k: &[f32]) -> Vec<f64> {
    (0..x.len() + k.len() - 1)
        .map(|n| {
            let lo = n.saturating_sub(x.len() - 1);
            (lo..k.len().min(n + 1))
                .map(|t| f64::from(k[t]) * f64::from(x[n - t]))
                .sum()
        })
        .collect()
}

/// Largest error allowed on finite outputs, relative to the largest finite
/// reference output: f32 overlap-save errs by about log2(nfft) rounding
/// units of the block's scale (~1e-6); a wrong or lost sample errs by
/// order 1.
const REF_TOL: f64 = 1e-5;

/// Runs `process INPUT FILTER --conv-mode full` on `backend` in `d` and
/// returns the filtered signal, checked to have `len` samples.
fn filtered(d: &Path, input: &str, filter: &[&str], backend: &str, len: usize) -> Vec<f32> {
    let mut args = vec!["process", input];
    args.extend_from_slice(filter);
    args.extend([
        "--conv-mode",
        "full",
        "-o",
        "y.f32",
        "-q",
        "--backend",
        backend,
    ]);
    let out = sigstream(d, &args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    let y = read_f32(&d.join("y.f32"));
    assert_eq!(y.len(), len, "{args:?}: the full convolution's length");
    y
}

/// `y` is numpy's `want`: NaN and ±∞ exactly where it has them, every
/// other output finite and within [`REF_TOL`] of `scale`.
fn assert_like_numpy(y: &[f32], want: &[f64], scale: f64, what: &str) {
    for (i, (g, w)) in y.iter().zip(want).enumerate() {
        let what = format!("{what}, output {i}: {g} against {w}");
        if w.is_nan() {
            assert!(g.is_nan(), "{what}");
        } else if w.is_infinite() {
            assert_eq!(f64::from(*g), *w, "{what}");
        } else {
            assert!(g.is_finite(), "{what}");
            assert!((f64::from(*g) - w).abs() <= REF_TOL * scale, "{what}");
        }
    }
}

#[test]
fn nan_and_infinities_reach_exactly_the_kernels_support() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 30_000;
    let mut rng = common::Rng::new(21);
    let mut x: Vec<f32> = (0..n).map(|_| rng.normal_pair().0).collect();
    x[5] = f32::NAN;
    x[7_000] = f32::INFINITY;
    x[7_010] = f32::NEG_INFINITY;
    x[15_000] = f32::INFINITY;
    x[22_000..22_003].fill(f32::NAN);
    x[n - 1] = f32::NEG_INFINITY;
    write_f32(&d.join("x.f32"), &x);
    // A kernel of mixed signs with a zero tap (∞·0 is NaN), and moving
    // averages (one sign: ∞ alone stays ∞).
    let mut k: Vec<f32> = (0..1025).map(|_| rng.normal_pair().0 * 0.05).collect();
    k[300] = 0.0;
    let text: String = k.iter().map(|v| format!("{v:?}\n")).collect();
    std::fs::write(d.join("k.txt"), text).unwrap();
    let cases: [(&[&str], Vec<f32>); 3] = [
        (&["--kernel", "k.txt"], k.clone()),
        (&["--moving-average", "17"], vec![1.0 / 17.0; 17]),
        (&["--moving-average", "1025"], vec![1.0 / 1025.0; 1025]),
    ];
    for (filter, kernel) in &cases {
        let want = convolve(&x, kernel);
        let scale = want
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let nan = want.iter().filter(|v| v.is_nan()).count();
        assert!(
            nan >= 2 * kernel.len(),
            "the reference has NaN spans: {nan}"
        );
        for backend in backends() {
            let y = filtered(d, "x.f32", filter, backend, want.len());
            assert_like_numpy(&y, &want, scale, &format!("{filter:?} on {backend}"));
        }
    }
}

#[test]
fn extreme_magnitudes_stay_finite_where_numpy_is_finite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 20_000;
    // Constant f32::MAX, and a signal near the smallest normal f32.
    let big = vec![f32::MAX; n];
    let mut rng = common::Rng::new(5);
    let tiny: Vec<f32> = (0..n).map(|_| rng.normal_pair().0 * 1e-37).collect();
    write_f32(&d.join("big.f32"), &big);
    write_f32(&d.join("tiny.f32"), &tiny);
    for (input, x) in [("big.f32", &big), ("tiny.f32", &tiny)] {
        for taps in ["17", "1025"] {
            let k = vec![1.0 / taps.parse::<f32>().unwrap(); taps.parse().unwrap()];
            let want = convolve(x, &k);
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for backend in backends() {
                let y = filtered(d, input, &["--moving-average", taps], backend, want.len());
                let what = format!("{input} --moving-average {taps} on {backend}");
                assert!(y.iter().all(|v| v.is_finite()), "{what}: finite");
                assert_like_numpy(&y, &want, scale, &what);
            }
        }
    }
}
