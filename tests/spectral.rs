//! The spectral commands (STFT, Welch) against independent `f64`
//! references written here, against literal values from scipy.signal.welch,
//! across chunk sizes, on the GPU against the CPU, and through the CLI
//! (PNG outputs decode at the requested size; bad options and inputs exit
//! with code 2 and a message naming the option or the file).

mod common;
#[path = "common/spectral.rs"]
mod spectral_helpers;

use std::f64::consts::PI;
use std::path::Path;

use sigstream::spectral::{
    Detrend, Scale, Scaling, Stft, StftConfig, Welch, WelchConfig, Window, frame_count,
};
use spectral_helpers::{assert_rows_close, chunks, png_rgb, png_size, sigstream};

/// Relative error allowed against an `f64` reference, as a fraction of the
/// largest value in the spectrum: f32 samples and an f32 FFT carry about
/// 1e-7 relative error per value, a few times that after `|X|²`; 1e-5
/// catches any wrong window, scaling or frame position (errors of order 1).
const REF_TOL: f64 = 1e-5;

/// GPU against CPU, both f32: different FFT algorithms, each within a few
/// 1e-7 of the truth.
#[cfg(feature = "gpu")]
const GPU_TOL: f64 = 1e-5;

/// Seeded noise plus two tones, `channels` planar channels.
fn signal(frames: usize, channels: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = common::Rng::new(seed);
    (0..channels)
        .map(|c| {
            (0..frames)
                .map(|i| {
                    let t = i as f64;
                    ((0.21 * t).sin() * 2.0 + (0.9 * t + c as f64).cos() + 0.3 + c as f64) as f32
                        + 0.5 * rng.normal_pair().0
                })
                .collect()
        })
        .collect()
}

/// The STFT's rows (frames × channels × bins) for one chunk size.
fn stft_rows(
    x: &[Vec<f32>],
    config: StftConfig,
    fs: Option<f64>,
    chunk: usize,
    gpu: Option<&std::sync::Arc<sigstream::backend::gpu::GpuContext>>,
) -> Vec<f32> {
    let mut stft = Stft::new(config, x.len(), fs, gpu).unwrap();
    let mut out = Vec::new();
    let mut next = 0u64;
    chunks(x, chunk, |b| {
        stft.push(b, |rows| {
            assert_eq!(rows.first, next, "rows arrive in order");
            next += rows.count as u64;
            out.extend_from_slice(rows.values);
            Ok(())
        })
        .unwrap()
    });
    out
}

/// Naive f64 DFT power `|X_k|²`, k = 0..=n/2, of one windowed frame.
fn dft_power(frame: &[f64]) -> Vec<f64> {
    let n = frame.len();
    (0..=n / 2)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in frame.iter().enumerate() {
                let a = -2.0 * PI * (k * i) as f64 / n as f64;
                re += v * a.cos();
                im += v * a.sin();
            }
            re * re + im * im
        })
        .collect()
}

/// Periodic Hann, written out independently of the library.
fn hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos())
        .collect()
}

fn one_sided(k: usize, n: usize) -> f64 {
    if k == 0 || (n.is_multiple_of(2) && k == n / 2) {
        1.0
    } else {
        2.0
    }
}

#[test]
fn stft_matches_naive_dft() {
    let (nfft, hop, fs) = (100, 37, 250.0);
    let x = signal(3000, 2, 1);
    let config = StftConfig {
        nfft,
        hop,
        window: Window::Hann,
        detrend: Detrend::None,
        scale: Scale::Power,
    };
    let got = stft_rows(&x, config, Some(fs), 512, None);
    let w = hann(nfft);
    let sum_sq: f64 = w.iter().map(|v| v * v).sum();
    let frames = frame_count(3000, nfft, hop) as usize;
    let bins = nfft / 2 + 1;
    let mut want = Vec::new();
    for k in 0..frames {
        for ch in &x {
            let frame: Vec<f64> = (0..nfft)
                .map(|i| f64::from(ch[k * hop + i]) * w[i])
                .collect();
            for (b, p) in dft_power(&frame).into_iter().enumerate() {
                want.push(p * one_sided(b, nfft) / (fs * sum_sq));
            }
        }
    }
    assert_rows_close(&got, &want, bins, REF_TOL, "stft power");

    // Magnitude and dB are functions of the same values.
    let mag = stft_rows(
        &x,
        StftConfig {
            scale: Scale::Magnitude,
            ..config
        },
        Some(fs),
        512,
        None,
    );
    let db = stft_rows(
        &x,
        StftConfig {
            scale: Scale::Db,
            ..config
        },
        Some(fs),
        512,
        None,
    );
    let sum: f64 = w.iter().sum();
    let mag_want: Vec<f64> = want
        .iter()
        .enumerate()
        .map(|(i, p)| (p * fs * sum_sq / one_sided(i % bins, nfft)).sqrt() / sum)
        .collect();
    assert_rows_close(&mag, &mag_want, bins, REF_TOL, "stft magnitude");
    for (i, (&d, &p)) in db.iter().zip(&want).enumerate() {
        if p > 1e-8 {
            assert!(
                (f64::from(d) - 10.0 * p.log10()).abs() < 1e-3,
                "dB {i}: {d}"
            );
        }
    }
}

#[test]
fn stft_is_identical_for_every_chunk_size() {
    let x = signal(5000, 3, 2);
    for (nfft, hop) in [(64, 16), (100, 150), (256, 1)] {
        let config = StftConfig {
            nfft,
            hop,
            window: Window::Blackman,
            detrend: Detrend::Constant,
            scale: Scale::Db,
        };
        let whole = stft_rows(&x, config, None, 5000, None);
        assert_eq!(
            whole.len() as u64,
            frame_count(5000, nfft, hop) * 3 * (nfft as u64 / 2 + 1)
        );
        for chunk in [1, 7, 63, 64, 65, 1000] {
            let got = stft_rows(&x, config, None, chunk, None);
            assert!(
                got == whole,
                "nfft {nfft} hop {hop}: chunk {chunk} differs from one chunk at value {:?}",
                got.iter()
                    .zip(&whole)
                    .position(|(a, b)| a.to_bits() != b.to_bits())
            );
        }
    }
}

/// Welch's estimate in f64, written out here: mean over segments of
/// `|DFT(w · (x − mean))|²`, one-sided, scaled.
fn welch_ref(x: &[f32], fs: f64, nperseg: usize, noverlap: usize, density: bool) -> Vec<f64> {
    let w = hann(nperseg);
    let hop = nperseg - noverlap;
    let segs = (x.len() - nperseg) / hop + 1;
    let bins = nperseg / 2 + 1;
    let mut acc = vec![0.0; bins];
    for s in 0..segs {
        let seg: Vec<f64> = x[s * hop..s * hop + nperseg]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let mean = seg.iter().sum::<f64>() / nperseg as f64;
        let frame: Vec<f64> = seg.iter().zip(&w).map(|(v, w)| (v - mean) * w).collect();
        for (a, p) in acc.iter_mut().zip(dft_power(&frame)) {
            *a += p;
        }
    }
    let norm = if density {
        fs * w.iter().map(|v| v * v).sum::<f64>()
    } else {
        w.iter().sum::<f64>().powi(2)
    };
    acc.iter()
        .enumerate()
        .map(|(k, a)| a / segs as f64 / norm * one_sided(k, nperseg))
        .collect()
}

fn welch(
    x: &[Vec<f32>],
    config: WelchConfig,
    fs: Option<f64>,
    chunk: usize,
    gpu: Option<&std::sync::Arc<sigstream::backend::gpu::GpuContext>>,
) -> sigstream::spectral::Psd {
    let mut w = Welch::new(config, x.len(), fs, gpu).unwrap();
    chunks(x, chunk, |b| w.push(b).unwrap());
    w.finish().unwrap()
}

#[test]
fn welch_matches_independent_f64() {
    let x = signal(6000, 2, 3);
    for (nperseg, noverlap, density) in [(128, 64, true), (90, 20, false), (256, 255, true)] {
        let config = WelchConfig {
            noverlap,
            scaling: if density {
                Scaling::Density
            } else {
                Scaling::Spectrum
            },
            ..WelchConfig::new(nperseg)
        };
        for chunk in [333, 6000] {
            let psd = welch(&x, config, Some(100.0), chunk, None);
            assert_eq!(psd.segments, frame_count(6000, nperseg, nperseg - noverlap));
            for (c, ch) in x.iter().enumerate() {
                let want = welch_ref(ch, 100.0, nperseg, noverlap, density);
                let got: Vec<f32> = psd.values[c].iter().map(|&v| v as f32).collect();
                assert_rows_close(
                    &got,
                    &want,
                    want.len(),
                    REF_TOL,
                    &format!("welch {nperseg}/{noverlap} ch{c}"),
                );
            }
            assert!((psd.frequencies[1] - 100.0 / nperseg as f64).abs() < 1e-12);
        }
    }
}

#[test]
fn welch_matches_scipy_literals() {
    // Printed once by scipy 1.x (the test does not need Python):
    //   import numpy as np, scipy.signal as s
    //   i = np.arange(64)
    //   x = (np.sin(0.3*i) + 0.5*np.cos(0.05*i*i) + 0.01*i).astype(np.float32).astype(np.float64)
    //   s.welch(x, fs=10.0, nperseg=16)
    //   s.welch(x, fs=10.0, nperseg=20, noverlap=5, window='hamming', scaling='spectrum')
    const HANN16: [f64; 9] = [
        0.07907349108886508,
        0.3134675922656715,
        0.04737639076227506,
        0.026394773967803233,
        0.03167865638148524,
        0.024190595282189066,
        0.03268360521265787,
        0.020520755154315666,
        0.004369812462096478,
    ];
    const HAMMING20: [f64; 11] = [
        0.06451274338364277,
        0.46160118848655,
        0.05775716003640624,
        0.020322190640686265,
        0.01640177571571024,
        0.00777537318888941,
        0.01548485056588917,
        0.03459689457843478,
        0.03730442199840208,
        0.013440594186362316,
        0.0016283185424260406,
    ];
    let x: Vec<f32> = (0..64)
        .map(|i| {
            let i = f64::from(i);
            ((0.3 * i).sin() + 0.5 * (0.05 * i * i).cos() + 0.01 * i) as f32
        })
        .collect();
    let x = vec![x];
    let psd = welch(&x, WelchConfig::new(16), Some(10.0), 5, None);
    assert_eq!(
        psd.frequencies,
        vec![0.0, 0.625, 1.25, 1.875, 2.5, 3.125, 3.75, 4.375, 5.0]
    );
    let got: Vec<f32> = psd.values[0].iter().map(|&v| v as f32).collect();
    assert_rows_close(&got, &HANN16, 9, REF_TOL, "scipy hann 16");
    let config = WelchConfig {
        noverlap: 5,
        window: Window::Hamming,
        scaling: Scaling::Spectrum,
        ..WelchConfig::new(20)
    };
    let psd = welch(&x, config, Some(10.0), 64, None);
    let got: Vec<f32> = psd.values[0].iter().map(|&v| v as f32).collect();
    assert_rows_close(&got, &HAMMING20, 11, REF_TOL, "scipy hamming 20 spectrum");
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_matches_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let x = signal(4000, 2, 4);
    let config = StftConfig {
        nfft: 64,
        hop: 24,
        window: Window::Hann,
        detrend: Detrend::None,
        scale: Scale::Power,
    };
    let cpu = stft_rows(&x, config, Some(8.0), 1000, None);
    let gpu = stft_rows(&x, config, Some(8.0), 1000, Some(&ctx));
    let cpu64: Vec<f64> = cpu.iter().map(|&v| f64::from(v)).collect();
    // Odd frame counts per run exercise the unpaired last frame.
    assert_rows_close(&gpu, &cpu64, 33, GPU_TOL, "stft gpu vs cpu");

    let wc = WelchConfig::new(128);
    let cpu = welch(&x, wc, None, 777, None);
    let gpu = welch(&x, wc, None, 777, Some(&ctx));
    for c in 0..2 {
        let g: Vec<f32> = gpu.values[c].iter().map(|&v| v as f32).collect();
        assert_rows_close(&g, &cpu.values[c], 65, GPU_TOL, "welch gpu vs cpu");
    }
    // Non-power-of-two frames are refused on the GPU.
    let err = Welch::new(WelchConfig::new(100), 1, None, Some(&ctx)).unwrap_err();
    assert!(err.to_string().contains("power of two"), "{err}");
}

/// The STFT's power density (sample rate 1, Hann) in f64, written out here:
/// rows of frames × channels × bins.
#[cfg(feature = "gpu")]
fn stft_ref(x: &[Vec<f32>], nfft: usize, hop: usize, detrend: Detrend) -> Vec<f64> {
    let w = hann(nfft);
    let sum_sq: f64 = w.iter().map(|v| v * v).sum();
    let frames = frame_count(x[0].len() as u64, nfft, hop) as usize;
    let mut want = Vec::new();
    for k in 0..frames {
        for ch in x {
            let seg: Vec<f64> = ch[k * hop..][..nfft]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let mean = match detrend {
                Detrend::Constant => seg.iter().sum::<f64>() / nfft as f64,
                Detrend::None => 0.0,
            };
            let frame: Vec<f64> = seg.iter().zip(&w).map(|(v, w)| (v - mean) * w).collect();
            for (b, p) in dft_power(&frame).into_iter().enumerate() {
                want.push(p * one_sided(b, nfft) / sum_sq);
            }
        }
    }
    want
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_matches_cpu_detrended_at_any_hop() {
    let Some(ctx) = common::gpu() else { return };
    let mut x = signal(3000, 2, 5);
    // A large DC offset: the case detrending is for, and the one where
    // removing the mean in the spectrum would cancel badly if done naively.
    for v in &mut x[1] {
        *v += 1000.0;
    }
    // Against an f64 reference, not the CPU path: with this offset the CPU's
    // f32 mean leaves a residual DC of ~1e-5 of the row's peak in bin 1.
    // Overlapping (hop < n), contiguous (hop = n) and gapped (hop > n)
    // frames, detrended or not, across chunk boundaries.
    for (nfft, hop) in [(64, 16), (128, 128), (64, 100), (4, 3)] {
        for detrend in [Detrend::Constant, Detrend::None] {
            let config = StftConfig {
                nfft,
                hop,
                window: Window::Hann,
                detrend,
                scale: Scale::Power,
            };
            let gpu = stft_rows(&x, config, None, 333, Some(&ctx));
            assert_rows_close(
                &gpu,
                &stft_ref(&x, nfft, hop, detrend),
                nfft / 2 + 1,
                GPU_TOL,
                &format!("stft gpu nfft {nfft} hop {hop} {detrend:?}"),
            );
        }
    }
    // Welch's default detrend, against the f64 reference.
    let config = WelchConfig {
        noverlap: 48,
        ..WelchConfig::new(64)
    };
    let gpu = welch(&x, config, Some(100.0), 500, Some(&ctx));
    for (c, ch) in x.iter().enumerate() {
        let want = welch_ref(ch, 100.0, 64, 48, true);
        let got: Vec<f32> = gpu.values[c].iter().map(|&v| v as f32).collect();
        assert_rows_close(&got, &want, 33, GPU_TOL, &format!("welch gpu ch{c}"));
    }
    // The real FFT's smallest length is 4.
    let err = Welch::new(WelchConfig::new(2), 1, None, Some(&ctx)).unwrap_err();
    assert!(err.to_string().contains("power of two >= 4"), "{err}");
}

// ---- CLI ----

fn write_f32(path: &Path, x: &[f32]) {
    std::fs::write(path, bytemuck::cast_slice::<f32, u8>(x)).unwrap();
}

#[test]
fn cli_outputs_and_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = signal(20_000, 2, 5);
    let inter: Vec<f32> = (0..20_000).flat_map(|i| [x[0][i], x[1][i]]).collect();
    write_f32(&d.join("x.f32"), &inter);
    let (code, err) = sigstream(
        d,
        &[
            "spectrogram",
            "x.f32",
            "--channels",
            "2",
            "--sample-rate",
            "1000",
            "--nfft",
            "256",
            "--hop",
            "64",
            "-o",
            "s.npy",
            "--png",
            "s.png",
            "--width",
            "800",
            "--height",
            "500",
            "--chunk-size",
            "3000",
            "-q",
            "--report",
            "r.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(png_size(&d.join("s.png")), (800, 500));
    let npy = std::fs::read(d.join("s.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[10..128]);
    let frames = frame_count(20_000, 256, 64);
    assert!(
        header.contains(&format!("'shape': ({frames}, 2, 129)")),
        "{header}"
    );
    assert_eq!(npy.len(), 128 + frames as usize * 2 * 129 * 4);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("r.json")).unwrap()).unwrap();
    assert_eq!(report["backend"], "cpu");
    assert_eq!(report["command"], "spectrogram");
    let entry = &report["inputs"][0];
    assert_eq!(entry["samples"], 20_000);
    assert_eq!(entry["channels"], 2);
    assert_eq!(entry["outputs"]["npy"], "s.npy");
    assert_eq!(entry["outputs"]["png"], "s.png");
    assert!(entry["throughput_mb_s"].as_f64().unwrap() > 0.0);

    let (code, err) = sigstream(
        d,
        &[
            "psd",
            "x.f32",
            "--channels",
            "2",
            "--nperseg",
            "512",
            "-o",
            "p.csv",
            "--png",
            "p.png",
            "--width",
            "640",
            "--height",
            "400",
            "-q",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(png_size(&d.join("p.png")), (640, 400));
    let csv = std::fs::read_to_string(d.join("p.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("frequency,ch0,ch1"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 257);
    let want = welch_ref(&x[1], 1.0, 512, 256, true);
    for (row, w) in rows.iter().zip(&want) {
        assert!((row[2] - w).abs() <= REF_TOL * want.iter().cloned().fold(0.0, f64::max));
    }
    // Without a sample rate, frequencies are in cycles/sample.
    assert_eq!(rows[256][0], 0.5);
}

#[test]
fn cli_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("short.f32"), &[0.5; 100]);
    std::fs::write(d.join("empty.f32"), b"").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["spectrogram", "short.f32", "--nfft", "256", "-o", "o.npy"],
            "short.f32: frame length 256",
        ),
        (
            &[
                "spectrogram",
                "short.f32",
                "--nfft",
                "16",
                "--hop",
                "0",
                "-o",
                "o.npy",
            ],
            "--hop must be at least 1",
        ),
        (
            &["spectrogram", "short.f32", "--nfft", "0", "-o", "o.npy"],
            "--nfft must be at least 1",
        ),
        (
            &["spectrogram", "missing.f32", "--nfft", "16", "-o", "o.npy"],
            "missing.f32: no such file",
        ),
        (
            &["spectrogram", "empty.f32", "--nfft", "16", "-o", "o.npy"],
            "empty.f32",
        ),
        (
            &["psd", "short.f32", "--nperseg", "0", "-o", "o.csv"],
            "--nperseg must be at least 1",
        ),
        (
            &[
                "psd",
                "short.f32",
                "--nperseg",
                "16",
                "--overlap",
                "16",
                "-o",
                "o.csv",
            ],
            "--overlap 16 must be less than --nperseg 16",
        ),
        (
            &["psd", "short.f32", "--nperseg", "128", "-o", "o.csv"],
            "short.f32: frame length 128",
        ),
        (
            &["psd", "empty.f32", "--nperseg", "16", "-o", "o.csv"],
            "empty.f32",
        ),
        (&["psd", "short.f32", "--nperseg", "16"], "nothing to write"),
    ];
    for (args, want) in cases {
        let (code, err) = sigstream(d, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.starts_with("sigstream: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
    assert!(
        !d.join("o.npy").exists() && !d.join("o.csv").exists(),
        "no output on failure"
    );
}

#[test]
fn psd_png_shows_identical_channels_apart_over_the_full_range() {
    use sigstream::sink::plot::{CHANNEL_COLOURS, PsdPlot, PsdScale, channel_style, psd_png};

    let dir = tempfile::tempdir().unwrap();
    // Two identical channels spanning 2e-6 .. 3e-2 (the CSV), with
    // a zero DC bin, at 30 kHz: the y axis must reach the smallest value
    // and the two lines must both show.
    let fs = 30_000.0;
    let n = 513;
    let frequencies: Vec<f64> = (0..n)
        .map(|k| k as f64 * fs / 2.0 / (n - 1) as f64)
        .collect();
    let line: Vec<f64> = (0..n)
        .map(|k| {
            if k == 0 {
                0.0
            } else {
                3e-2 * (2e-6f64 / 3e-2).powf(k as f64 / (n - 1) as f64)
            }
        })
        .collect();
    let values = vec![line.clone(), line];
    let path = dir.path().join("psd.png");
    let plot = PsdPlot {
        size: (900, 500),
        title: "two identical channels".into(),
        sample_rate_known: true,
        density: true,
        scale: PsdScale::Db,
    };
    psd_png(&path, &frequencies, &values, &plot).unwrap();
    let (w, h, px) = png_rgb(&path);
    assert_eq!((w, h), (900, 500));
    // The legend sits in the upper right: count each channel's colour in
    // the left half only, where only the lines can put it.
    let count = |c: usize| {
        let (colour, _) = channel_style(c);
        let want = [colour.0, colour.1, colour.2];
        px.iter()
            .enumerate()
            .filter(|(i, p)| (*i as u32 % w) < w / 2 && **p == want)
            .count()
    };
    let (a, b) = (count(0), count(1));
    // Each line crosses ~400 columns of the left half, 2 pixels thick; the
    // dashed one on top hides at most its dashes' share (10 of 16 pixels)
    // of the solid one, which leaves it well over 100 pixels.
    const MIN_VISIBLE_PIXELS: usize = 100;
    assert!(
        a > MIN_VISIBLE_PIXELS && b > MIN_VISIBLE_PIXELS,
        "ch0 {a} pixels, ch1 {b} pixels"
    );
    // The styles differ in colour and dash for the first channels.
    assert_ne!(channel_style(0), channel_style(1));
    assert_ne!(CHANNEL_COLOURS[0], CHANNEL_COLOURS[1]);

    // The lowest value is drawn: the line reaches the bottom of the plot
    // area (with a 5 % margin below it), which it cannot when clipped at
    // 3e-2 / 1e4 as before. Rows holding ch0's colour, lowest one:
    let lowest_row = px
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let (c, _) = channel_style(0);
            **p == [c.0, c.1, c.2]
        })
        .map(|(i, _)| i as u32 / w)
        .max()
        .unwrap();
    // Plot area: 12 px margin, 45 px of x labels below; the lowest data
    // point sits 5 % of the span above the bottom edge.
    assert!(
        lowest_row > h * 3 / 4,
        "the line's lowest pixel is on row {lowest_row} of {h}"
    );

    // The log scale draws too, at the requested size.
    let log = dir.path().join("log.png");
    psd_png(
        &log,
        &frequencies,
        &values,
        &PsdPlot {
            scale: PsdScale::Log,
            ..plot
        },
    )
    .unwrap();
    assert_eq!(png_size(&log), (900, 500));
}
