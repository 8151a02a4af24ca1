//! Spectra of complex (I/Q) input: `psd`, `spectrogram` and `fft` of a
//! complex channel against independent `f64` references written here
//! (naive DFT, two-sided Welch spelled out), against scipy.signal's
//! `welch`/`spectrogram` with `return_onesided=False` and numpy's `fft`
//! (values in `tests/fixtures/spectral_complex*`, written by
//! `tests/fixtures/make_spectral_complex.py`), across chunk sizes, with a
//! centre frequency, on the GPU against the CPU, and through the CLI with
//! raw `.cf32` and npy complex64 input.

mod common;
#[path = "common/spectral.rs"]
mod spectral_helpers;

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sigstream::spectral::{
    Detrend, Psd, Scale, Scaling, Stft, StftConfig, Stream, Welch, WelchConfig, Window, frame_count,
};
use spectral_helpers::{assert_rows_close, chunks, png_rgb, png_size, sigstream};

/// Error allowed against an `f64` reference, as a fraction of the largest
/// value of the row (a frame's or Welch's spectrum): f32 samples and an f32
/// FFT carry about 1e-7 relative error per value, a few times that after
/// `|X|²`; 1e-5 catches any wrong window, scaling, bin order or frame
/// position (errors of order 1).
const REF_TOL: f64 = 1e-5;

/// Welch against scipy, per bin relative to the bin's own value: the
/// issue's criterion (1e-4). Averaging over segments keeps each bin, the
/// noise floor 40 dB under the tones included, within a few 1e-6 of scipy
/// (measured 4e-6), so this checks every bin, not only the peaks.
const SCIPY_WELCH_BIN_TOL: f64 = 1e-4;

/// Frequencies against scipy's `fftfreq` (Hz, for 8 kHz bins of a 2.048 MHz
/// rate): both are `k fs / n` in f64, computed in different orders, so
/// they differ by a few ulps of values up to 1e6 (≈1e-10 Hz), or of 1e8
/// with a centre frequency (≈1e-8 Hz).
const FREQ_TOL_HZ: f64 = 1e-6;

/// Welch sums in f64 whose order depends on the chunking (the segments of
/// a chunk are summed in parallel, then added): the same f32 powers added
/// in another order differ by f64 rounding only.
const ORDER_TOL: f64 = 1e-12;

/// GPU against CPU, both f32: different FFT algorithms (Stockham on the
/// GPU, rustfft on the CPU), each within a few 1e-7 of the truth.
#[cfg(feature = "gpu")]
const GPU_TOL: f64 = 1e-5;

/// `sigstream fft` against an f64 DFT, relative L2 error over all bins: the
/// bound the real transform is held to (`tests/spectral_fft.rs`); f32
/// FFTs of 4096 points measure about 1e-7.
const FFT_L2_TOL: f64 = 1e-6;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture's parameters and scipy's results.
fn fixture_json() -> Value {
    let text = std::fs::read_to_string(fixtures().join("spectral_complex.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixture signal as planes: I0, Q0, I1, Q1 (`frames` each).
fn fixture_planes() -> Vec<Vec<f32>> {
    let bytes = std::fs::read(fixtures().join("spectral_complex.cf32")).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (0..4)
        .map(|p| values.iter().skip(p).step_by(4).copied().collect())
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn read_f64_file(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Seeded complex noise plus tones at `freqs` (cycles/sample, negative
/// ones included) and a DC offset, as `channels` pairs of planes.
fn signal(frames: usize, channels: usize, freqs: &[f64], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = common::Rng::new(seed);
    let mut planes = Vec::new();
    for c in 0..channels {
        let (mut i, mut q) = (Vec::new(), Vec::new());
        for t in 0..frames {
            let (mut re, mut im) = (0.4 + c as f64, -0.3);
            for (k, f) in freqs.iter().enumerate() {
                let a = 2.0 * PI * f * t as f64 + k as f64 + c as f64;
                let amp = 1.0 / (k + 1) as f64;
                re += amp * a.cos();
                im += amp * a.sin();
            }
            let (nr, ni) = rng.normal_pair();
            i.push(re as f32 + 0.1 * nr);
            q.push(im as f32 + 0.1 * ni);
        }
        planes.push(i);
        planes.push(q);
    }
    planes
}

type Gpu<'a> = Option<&'a std::sync::Arc<sigstream::backend::gpu::GpuContext>>;

fn welch(x: &[Vec<f32>], config: WelchConfig, stream: Stream, chunk: usize, gpu: Gpu) -> Psd {
    let mut w = Welch::for_stream(config, stream, gpu).unwrap();
    chunks(x, chunk, |b| w.push(b).unwrap());
    w.finish().unwrap()
}

/// The STFT's rows (frames × channels × bins) for one chunk size.
fn stft_rows(
    x: &[Vec<f32>],
    config: StftConfig,
    stream: Stream,
    chunk: usize,
    gpu: Gpu,
) -> Vec<f32> {
    let mut stft = Stft::for_stream(config, stream, gpu).unwrap();
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

// ---- the f64 reference, written out here ----

/// The window, written out independently of the library (periodic, as
/// scipy's `get_window(name, n)`).
fn window(kind: Window, n: usize) -> Vec<f64> {
    let (a0, a1, a2) = match kind {
        Window::Hann => (0.5, 0.5, 0.0),
        Window::Hamming => (0.54, 0.46, 0.0),
        Window::Blackman => (0.42, 0.5, 0.08),
        Window::Rect => (1.0, 0.0, 0.0),
    };
    (0..n)
        .map(|i| {
            let x = 2.0 * PI * i as f64 / n as f64;
            a0 - a1 * x.cos() + a2 * (2.0 * x).cos()
        })
        .collect()
}

/// `|X_k|²` of the complex frame `(re, im)` by the naive DFT, in
/// increasing frequency: position `j` holds `k = j − ⌊n/2⌋ (mod n)`.
fn dft_power_shifted(frame: &[(f64, f64)]) -> Vec<f64> {
    let n = frame.len();
    (0..n)
        .map(|j| {
            let k = (j + n - n / 2) % n;
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &(a, b)) in frame.iter().enumerate() {
                let (s, c) = (-2.0 * PI * ((k * t) % n) as f64 / n as f64).sin_cos();
                re += a * c - b * s;
                im += a * s + b * c;
            }
            re * re + im * im
        })
        .collect()
}

/// Frame `start .. start + n` of complex channel `c` of `x`, detrended by
/// its complex mean when asked, times `w`.
fn frame(x: &[Vec<f32>], c: usize, start: usize, w: &[f64], detrend: Detrend) -> Vec<(f64, f64)> {
    let n = w.len();
    let seg: Vec<(f64, f64)> = (start..start + n)
        .map(|t| (f64::from(x[2 * c][t]), f64::from(x[2 * c + 1][t])))
        .collect();
    let (mr, mi) = match detrend {
        Detrend::None => (0.0, 0.0),
        Detrend::Constant => (
            seg.iter().map(|v| v.0).sum::<f64>() / n as f64,
            seg.iter().map(|v| v.1).sum::<f64>() / n as f64,
        ),
    };
    seg.iter()
        .zip(w)
        .map(|(&(a, b), &w)| ((a - mr) * w, (b - mi) * w))
        .collect()
}

/// Two-sided Welch in f64: mean over segments of `|DFT(w (z − mean))|²`,
/// no bin doubled, increasing frequency; channels × bins.
fn welch_ref(x: &[Vec<f32>], fs: f64, config: WelchConfig) -> Vec<Vec<f64>> {
    let (n, hop) = (config.nperseg, config.nperseg - config.noverlap);
    let w = window(config.window, n);
    let segs = frame_count(x[0].len() as u64, n, hop) as usize;
    let norm = match config.scaling {
        Scaling::Density => fs * w.iter().map(|v| v * v).sum::<f64>(),
        Scaling::Spectrum => w.iter().sum::<f64>().powi(2),
    };
    (0..x.len() / 2)
        .map(|c| {
            let mut acc = vec![0.0; n];
            for s in 0..segs {
                for (a, p) in
                    acc.iter_mut()
                        .zip(dft_power_shifted(&frame(x, c, s * hop, &w, config.detrend)))
                {
                    *a += p;
                }
            }
            acc.iter().map(|a| a / segs as f64 / norm).collect()
        })
        .collect()
}

/// The two-sided STFT in f64 (`power` or `magnitude`): frames × channels ×
/// bins.
fn stft_ref(x: &[Vec<f32>], fs: f64, config: StftConfig) -> Vec<f64> {
    let n = config.nfft;
    let w = window(config.window, n);
    let sum: f64 = w.iter().sum();
    let sum_sq: f64 = w.iter().map(|v| v * v).sum();
    let frames = frame_count(x[0].len() as u64, n, config.hop) as usize;
    let mut want = Vec::new();
    for k in 0..frames {
        for c in 0..x.len() / 2 {
            for p in dft_power_shifted(&frame(x, c, k * config.hop, &w, config.detrend)) {
                want.push(match config.scale {
                    Scale::Power => p / (fs * sum_sq),
                    Scale::Magnitude => p.sqrt() / sum,
                    Scale::Db => 10.0 * (p / (fs * sum_sq)).max(1e-30).log10(),
                });
            }
        }
    }
    want
}

/// Checks every bin of `got` against `want` relative to the bin itself.
fn assert_bins_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1e-300);
        assert!(
            err <= tol,
            "{what}: bin {k}: got {g:e}, want {w:e} (relative error {err:.2e})"
        );
    }
}

fn assert_frequencies(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: bins");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= FREQ_TOL_HZ,
            "{what}: frequency {k}: got {g}, want {w}"
        );
    }
}

fn window_named(name: &str) -> Window {
    match name {
        "hann" => Window::Hann,
        "hamming" => Window::Hamming,
        "blackman" => Window::Blackman,
        other => panic!("fixture window {other}"),
    }
}

fn detrend_of(v: &Value) -> Detrend {
    if v.as_str() == Some("constant") {
        Detrend::Constant
    } else {
        assert_eq!(v.as_bool(), Some(false), "fixture detrend {v}");
        Detrend::None
    }
}

// ---- the library ----

#[test]
fn welch_matches_independent_f64_two_sided() {
    let fs = 1000.0;
    // Tones at -0.3 and +0.12 cycles/sample, two complex channels.
    let x = signal(3000, 2, &[-0.3, 0.12], 7);
    for (nperseg, noverlap, window, scaling) in [
        (128, 64, Window::Hann, Scaling::Density),
        (99, 40, Window::Hamming, Scaling::Spectrum),
        (64, 63, Window::Blackman, Scaling::Density),
    ] {
        let config = WelchConfig {
            noverlap,
            window,
            scaling,
            ..WelchConfig::new(nperseg)
        };
        let want = welch_ref(&x, fs, config);
        let stream = Stream::complex(2, Some(fs), None);
        for chunk in [1, 97, 3000] {
            let psd = welch(&x, config, stream, chunk, None);
            assert!(psd.two_sided);
            assert_eq!(psd.values.len(), 2, "one spectrum per complex channel");
            assert_eq!(psd.segments, frame_count(3000, nperseg, nperseg - noverlap));
            for (c, (values, want)) in psd.values.iter().zip(&want).enumerate() {
                let got: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                assert_rows_close(
                    &got,
                    want,
                    nperseg,
                    REF_TOL,
                    &format!("welch {nperseg}/{noverlap} chunk {chunk} ch{c}"),
                );
            }
            // fftshift(fftfreq(n, 1/fs)): from -⌊n/2⌋ fs/n up.
            let step = fs / nperseg as f64;
            for (k, f) in psd.frequencies.iter().enumerate() {
                let want = (k as f64 - (nperseg / 2) as f64) * step;
                assert!((f - want).abs() <= FREQ_TOL_HZ, "bin {k}: {f} vs {want}");
            }
        }
    }
}

#[test]
fn negative_tone_lands_in_a_negative_bin() {
    // One tone at -fs/8 exactly on a bin; its mirror at +fs/8 is empty.
    let (fs, n) = (8000.0, 64);
    let x = signal(4096, 1, &[-0.125], 3);
    let psd = welch(
        &x,
        WelchConfig::new(n),
        Stream::complex(1, Some(fs), None),
        500,
        None,
    );
    let v = &psd.values[0];
    let peak = (0..n).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    assert_eq!(psd.frequencies[peak], -1000.0, "the tone is at -1 kHz");
    let mirror = psd.frequencies.iter().position(|&f| f == 1000.0).unwrap();
    assert!(
        v[mirror] < v[peak] * 1e-3,
        "+1 kHz holds {} against the tone's {}: the spectrum must be asymmetric",
        v[mirror],
        v[peak]
    );
    // The STFT too: every frame peaks in the same negative bin.
    let config = StftConfig {
        nfft: n,
        hop: 48,
        window: Window::Hann,
        detrend: Detrend::None,
        scale: Scale::Power,
    };
    let rows = stft_rows(&x, config, Stream::complex(1, Some(fs), None), 1000, None);
    for (r, row) in rows.chunks(n).enumerate() {
        let p = (0..n).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(p, peak, "frame {r}");
    }
}

#[test]
fn welch_matches_scipy_fixture() {
    let fx = fixture_json();
    let fs = fx["sample_rate"].as_f64().unwrap();
    let x = fixture_planes();
    for (name, case) in fx["welch"].as_object().unwrap() {
        let config = WelchConfig {
            nperseg: case["nperseg"].as_u64().unwrap() as usize,
            noverlap: case["noverlap"].as_u64().unwrap() as usize,
            window: window_named(case["window"].as_str().unwrap()),
            detrend: detrend_of(&case["detrend"]),
            scaling: match case["scaling"].as_str().unwrap() {
                "density" => Scaling::Density,
                _ => Scaling::Spectrum,
            },
        };
        for chunk in [100, 4096] {
            let psd = welch(&x, config, Stream::complex(2, Some(fs), None), chunk, None);
            assert_frequencies(&psd.frequencies, &f64s(&case["frequencies"]), name);
            for (c, want) in case["values"].as_array().unwrap().iter().enumerate() {
                assert_bins_close(
                    &psd.values[c],
                    &f64s(want),
                    SCIPY_WELCH_BIN_TOL,
                    &format!("scipy welch {name} chunk {chunk} ch{c}"),
                );
            }
        }
    }
}

/// The STFT configuration and stream of a fixture spectrogram case.
fn spectrogram_case(case: &Value) -> StftConfig {
    let nfft = case["nperseg"].as_u64().unwrap() as usize;
    StftConfig {
        nfft,
        hop: nfft - case["noverlap"].as_u64().unwrap() as usize,
        window: window_named(case["window"].as_str().unwrap()),
        detrend: detrend_of(&case["detrend"]),
        scale: match case["mode"].as_str().unwrap() {
            "psd" => Scale::Power,
            _ => Scale::Magnitude,
        },
    }
}

#[test]
fn stft_matches_scipy_fixture_and_f64() {
    let fx = fixture_json();
    let fs = fx["sample_rate"].as_f64().unwrap();
    let planes = fixture_planes();
    for (name, case) in fx["spectrogram"].as_object().unwrap() {
        let samples = case["samples"].as_u64().unwrap() as usize;
        let x: Vec<Vec<f32>> = planes.iter().map(|p| p[..samples].to_vec()).collect();
        let config = spectrogram_case(case);
        let stream = Stream::complex(2, Some(fs), None);
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let scipy = read_f64_file(&fixtures().join(format!("spectral_complex_sxx_{name}.f64")));
        assert_eq!(scipy.len(), shape.iter().product::<usize>());
        let whole = stft_rows(&x, config, stream, samples, None);
        assert_eq!(
            shape,
            [
                frame_count(samples as u64, config.nfft, config.hop) as usize,
                2,
                config.nfft
            ]
        );
        assert_rows_close(
            &whole,
            &scipy,
            config.nfft,
            REF_TOL,
            &format!("scipy {name}"),
        );
        assert_rows_close(
            &whole,
            &stft_ref(&x, fs, config),
            config.nfft,
            REF_TOL,
            &format!("f64 {name}"),
        );
        let stft = Stft::for_stream(config, stream, None).unwrap();
        assert_eq!(stft.bins(), config.nfft);
        assert_frequencies(
            &stft.axis().frequencies(),
            &f64s(&case["frequencies"]),
            name,
        );
        // Frames are exact across chunk boundaries: bit for bit.
        for chunk in [1, 13, config.nfft, 333] {
            let got = stft_rows(&x, config, stream, chunk, None);
            assert!(
                got == whole,
                "{name}: chunk {chunk} differs at value {:?}",
                got.iter()
                    .zip(&whole)
                    .position(|(a, b)| a.to_bits() != b.to_bits())
            );
        }
    }
}

#[test]
fn stft_db_and_odd_lengths_match_f64() {
    let fs = 50.0;
    let x = signal(700, 1, &[0.2, -0.41], 9);
    for (nfft, hop, detrend) in [(33, 10, Detrend::Constant), (16, 16, Detrend::None)] {
        for scale in [Scale::Db, Scale::Power, Scale::Magnitude] {
            let config = StftConfig {
                nfft,
                hop,
                window: Window::Hann,
                detrend,
                scale,
            };
            let got = stft_rows(&x, config, Stream::complex(1, Some(fs), None), 64, None);
            let want = stft_ref(&x, fs, config);
            let (got, want) = if scale == Scale::Db {
                // Back to powers, held to the same tolerance as `power`.
                let power = |db: f64| 10f64.powf(db / 10.0);
                (
                    got.iter().map(|&v| power(f64::from(v)) as f32).collect(),
                    want.iter().map(|&v| power(v)).collect(),
                )
            } else {
                (got, want)
            };
            assert_rows_close(&got, &want, nfft, REF_TOL, &format!("{nfft} {scale:?}"));
        }
    }
}

#[test]
fn centre_frequency_offsets_the_axis_from_the_signal_info() {
    let fx = fixture_json();
    let fs = fx["sample_rate"].as_f64().unwrap();
    let opts = sigstream::source::SourceOptions {
        channels: 2,
        sample_rate: Some(fs),
        ..sigstream::source::SourceOptions::default()
    };
    let source = sigstream::source::open(&fixtures().join("spectral_complex.cf32"), &opts).unwrap();
    let mut info = source.info().clone();
    assert!(info.complex && info.channels == 4 && info.signal_channels() == 2);
    // What the SigMF reader sets from `core:frequency`.
    let fc = 98.5e6;
    info.center_frequency = Some(fc);
    let stream = Stream::of(&info);
    assert_eq!(stream, Stream::complex(2, Some(fs), Some(fc)));
    let case = &fx["welch"]["hann256_density"];
    let psd = welch(&fixture_planes(), WelchConfig::new(256), stream, 1024, None);
    let want: Vec<f64> = f64s(&case["frequencies"]).iter().map(|f| f + fc).collect();
    assert_frequencies(&psd.frequencies, &want, "welch with a centre frequency");
    assert_eq!(psd.frequencies[0], fc - fs / 2.0);
    // The same values: only the axis moves.
    for (c, v) in case["values"].as_array().unwrap().iter().enumerate() {
        assert_bins_close(&psd.values[c], &f64s(v), SCIPY_WELCH_BIN_TOL, "with fc");
    }
    let axis = stream.axis(64);
    assert_eq!((axis.bins, axis.two_sided), (64, true));
    assert_eq!(axis.first, fc - fs / 2.0);
    assert_eq!(axis.last(), fc + fs / 2.0 - fs / 64.0);
    // Odd n: -(n-1)/2 .. (n-1)/2 bins around the centre.
    let axis = stream.axis(5);
    assert_eq!(axis.frequency(2), fc);
    // Real streams ignore a centre frequency; without a rate there are no
    // Hz to offset.
    let real = Stream {
        complex: false,
        ..stream
    };
    assert_eq!(real.axis(64).first, 0.0);
    let no_rate = Stream::complex(1, None, Some(fc));
    assert_eq!(no_rate.axis(4).first, -0.5);
    // A centre frequency that is not a number is refused.
    let bad = Stream::complex(1, Some(fs), Some(f64::NAN));
    assert!(Welch::for_stream(WelchConfig::new(16), bad, None).is_err());
}

#[test]
fn fft_of_complex_input_is_numpy_fft_in_and_out_of_core() {
    use sigstream::spectral::ooc_fft::{self, FftOptions};
    let fx = fixture_json();
    let input = fixtures().join("spectral_complex.cf32");
    let planes = fixture_planes();
    let dir = tempfile::tempdir().unwrap();
    let opts = sigstream::source::SourceOptions {
        channels: 2,
        ..sigstream::source::SourceOptions::default()
    };
    for channel in [0, 1] {
        // The f64 DFT of the f32 values.
        let n = planes[0].len();
        let z: Vec<(f64, f64)> = (0..n)
            .map(|t| {
                (
                    f64::from(planes[2 * channel][t]),
                    f64::from(planes[2 * channel + 1][t]),
                )
            })
            .collect();
        let want: Vec<(f64, f64)> = naive_dft(&z);
        for (force, max_buffer) in [(false, None), (true, Some(256)), (true, None)] {
            let out = dir.path().join(format!("f{channel}{force}.npy"));
            let options = FftOptions {
                channel: Some(channel),
                force_out_of_core: force,
                max_buffer,
                // Complex input gives all N bins whatever `full` says.
                full: false,
                ..FftOptions::default()
            };
            let stats = ooc_fft::fft_file(&input, &opts, &options, &out, &mut |_| {}).unwrap();
            assert!(stats.complex && !stats.packed);
            assert_eq!((stats.bins, stats.transform_len), (n as u64, n as u64));
            assert_eq!(stats.in_core, !force);
            let got = read_npy_c8(&out);
            let err = rel_l2(&got, &want);
            assert!(
                err <= FFT_L2_TOL,
                "channel {channel}, out of core {force}: relative L2 error {err:.2e}"
            );
            if channel == 1 {
                // numpy's own values (natural order, not shifted).
                let f = &fx["fft_ch1"];
                let peak = f["peak_bin"].as_u64().unwrap() as usize;
                assert!(peak > n / 2, "the -200 kHz tone is in the upper half");
                let mag = |v: &(f64, f64)| v.0.hypot(v.1);
                let top = (0..n).max_by(|&a, &b| mag(&got[a]).total_cmp(&mag(&got[b])));
                assert_eq!(top, Some(peak));
                for (k, v) in (peak - 2..).zip(f["around_peak"].as_array().unwrap()) {
                    let w = f64s(v);
                    let scale = mag(&(w[0], w[1])).max(mag(&got[peak]) * 1e-3);
                    let e = ((got[k].0 - w[0]).hypot(got[k].1 - w[1])) / scale;
                    assert!(e < 1e-4, "bin {k}: {:?} vs numpy {w:?}", got[k]);
                }
            }
        }
    }
    // A channel past the complex channels is refused.
    let err = ooc_fft::fft_file(
        &input,
        &opts,
        &FftOptions {
            channel: Some(2),
            ..FftOptions::default()
        },
        &dir.path().join("x.npy"),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("2 channels"), "{err}");
}

fn naive_dft(z: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let n = z.len();
    // The table of exp(-2πi m/n) makes the O(n²) loop cheap.
    let table: Vec<(f64, f64)> = (0..n)
        .map(|m| {
            let (s, c) = (-2.0 * PI * m as f64 / n as f64).sin_cos();
            (c, s)
        })
        .collect();
    (0..n)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &(a, b)) in z.iter().enumerate() {
                let (c, s) = table[(k * t) % n];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            (re, im)
        })
        .collect()
}

fn rel_l2(got: &[(f64, f64)], want: &[(f64, f64)]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in got.iter().zip(want) {
        num += (g.0 - w.0).powi(2) + (g.1 - w.1).powi(2);
        den += w.0 * w.0 + w.1 * w.1;
    }
    (num / den).sqrt()
}

/// The data of an npy file (version 1 header) as bytes, with its header.
fn read_npy(path: &Path) -> (String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + len]).into_owned();
    (header, bytes[10 + len..].to_vec())
}

fn read_npy_c8(path: &Path) -> Vec<(f64, f64)> {
    let (header, data) = read_npy(path);
    assert!(header.contains("'<c8'"), "{header}");
    data.chunks_exact(8)
        .map(|b| {
            (
                f64::from(f32::from_le_bytes(b[..4].try_into().unwrap())),
                f64::from(f32::from_le_bytes(b[4..].try_into().unwrap())),
            )
        })
        .collect()
}

fn read_npy_f32(path: &Path) -> (String, Vec<f32>) {
    let (header, data) = read_npy(path);
    assert!(header.contains("'<f4'"), "{header}");
    let values = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (header, values)
}

/// A complex64 npy of `channels` complex channels (`frames × channels`,
/// C order) from planes I0 Q0 I1 Q1 ...
fn write_npy_c8(path: &Path, planes: &[Vec<f32>]) {
    let (channels, frames) = (planes.len() / 2, planes[0].len());
    let shape = if channels == 1 {
        format!("({frames},)")
    } else {
        format!("({frames}, {channels})")
    };
    let dict = format!("{{'descr': '<c8', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    for t in 0..frames {
        for p in planes {
            bytes.extend_from_slice(&p[t].to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_matches_cpu_for_complex_input() {
    let Some(ctx) = common::gpu() else { return };
    let x = signal(5000, 2, &[-0.2, 0.31], 11);
    let stream = Stream::complex(2, Some(1e6), Some(2.4e9));
    // Overlapping, contiguous and gapped frames, detrended or not; the
    // complex FFT's shortest GPU length (4) too.
    for (nfft, hop) in [(64, 16), (128, 128), (64, 100), (4, 3)] {
        for detrend in [Detrend::Constant, Detrend::None] {
            let config = StftConfig {
                nfft,
                hop,
                window: Window::Hann,
                detrend,
                scale: Scale::Power,
            };
            let cpu = stft_rows(&x, config, stream, 777, None);
            let gpu = stft_rows(&x, config, stream, 777, Some(&ctx));
            let cpu64: Vec<f64> = cpu.iter().map(|&v| f64::from(v)).collect();
            assert_rows_close(
                &gpu,
                &cpu64,
                nfft,
                GPU_TOL,
                &format!("stft gpu vs cpu, nfft {nfft} hop {hop} {detrend:?}"),
            );
        }
    }
    let config = WelchConfig::new(256);
    let cpu = welch(&x, config, stream, 1000, None);
    let gpu = welch(&x, config, stream, 1000, Some(&ctx));
    assert_eq!(gpu.frequencies, cpu.frequencies);
    for c in 0..2 {
        let g: Vec<f32> = gpu.values[c].iter().map(|&v| v as f32).collect();
        assert_rows_close(&g, &cpu.values[c], 256, GPU_TOL, "welch gpu vs cpu");
        let want = &welch_ref(&x, 1e6, config)[c];
        assert_rows_close(&g, want, 256, REF_TOL, "welch gpu vs f64");
    }
    // Lengths the GPU FFT does not take are refused, as for real input.
    let err = Welch::for_stream(WelchConfig::new(100), stream, Some(&ctx)).unwrap_err();
    assert!(err.to_string().contains("power of two"), "{err}");
}

// ---- CLI ----

/// The CSV as its header and rows of numbers.
fn read_csv(path: &Path) -> (String, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_owned();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    (header, rows)
}

#[test]
fn cli_psd_of_raw_cf32_matches_scipy_at_any_chunk_size() {
    let fx = fixture_json();
    let case = &fx["welch"]["hann256_density"];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixtures().join("spectral_complex.cf32");
    let input = input.to_str().unwrap();
    let mut first: Option<Vec<Vec<f64>>> = None;
    for chunk in ["100", "1000", "4096"] {
        let (code, err) = sigstream(
            d,
            &[
                "psd",
                input,
                "--channels",
                "2",
                "--sample-rate",
                "2048000",
                "--nperseg",
                "256",
                "--chunk-size",
                chunk,
                "-o",
                "psd.csv",
                "--png",
                "psd.png",
                "--report",
                "r.json",
                "--backend",
                "cpu",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (header, rows) = read_csv(&d.join("psd.csv"));
        assert_eq!(
            header, "frequency,ch0,ch1",
            "one column per complex channel"
        );
        let freqs: Vec<f64> = rows.iter().map(|r| r[0]).collect();
        assert_frequencies(&freqs, &f64s(&case["frequencies"]), "csv");
        assert_eq!(freqs[0], -1_024_000.0, "-fs/2 first");
        for (c, want) in case["values"].as_array().unwrap().iter().enumerate() {
            let got: Vec<f64> = rows.iter().map(|r| r[1 + c]).collect();
            assert_bins_close(
                &got,
                &f64s(want),
                SCIPY_WELCH_BIN_TOL,
                &format!("csv ch{c}"),
            );
        }
        match &first {
            None => first = Some(rows),
            Some(f) => {
                for (a, b) in f.iter().flatten().zip(rows.iter().flatten()) {
                    assert!(
                        (a - b).abs() <= ORDER_TOL * a.abs(),
                        "chunk {chunk}: {a} vs {b}"
                    );
                }
            }
        }
        assert_eq!(png_size(&d.join("psd.png")), (1200, 600));
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
        let entry = &report["inputs"][0];
        assert_eq!(entry["two_sided"], true);
        assert_eq!(entry["bins"], 256);
        assert_eq!(entry["frequency_first"], -1_024_000.0);
        assert_eq!(entry["frequency_step"], 8000.0);
        assert_eq!(report["backend"], "cpu");
    }
}

#[test]
fn cli_spectrogram_and_fft_of_npy_complex64() {
    let fx = fixture_json();
    let case = &fx["spectrogram"]["hann64_hop16_power"];
    let samples = case["samples"].as_u64().unwrap() as usize;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let planes: Vec<Vec<f32>> = fixture_planes()
        .into_iter()
        .map(|p| p[..samples].to_vec())
        .collect();
    write_npy_c8(&d.join("two.npy"), &planes);
    write_npy_c8(&d.join("one.npy"), &planes[2..4]);
    let scipy = read_f64_file(&fixtures().join("spectral_complex_sxx_hann64_hop16_power.f64"));
    let frames = frame_count(samples as u64, 64, 16) as usize;
    for chunk in ["50", "1024"] {
        let (code, err) = sigstream(
            d,
            &[
                "spectrogram",
                "two.npy",
                "--sample-rate",
                "2048000",
                "--nfft",
                "64",
                "--hop",
                "16",
                "--scale",
                "power",
                "--chunk-size",
                chunk,
                "-o",
                "s.npy",
                "--png",
                "s.png",
                "--report",
                "r.json",
                "--backend",
                "cpu",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (header, values) = read_npy_f32(&d.join("s.npy"));
        assert!(header.contains(&format!("({frames}, 2, 64)")), "{header}");
        assert_rows_close(&values, &scipy, 64, REF_TOL, "cli spectrogram vs scipy");
        assert_eq!(png_size(&d.join("s.png")), (1200, 600));
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
        let entry = &report["inputs"][0];
        assert_eq!(entry["bins"], 64);
        assert_eq!(entry["two_sided"], true);
        assert_eq!(entry["frequency_first"], -1_024_000.0);
        assert_eq!(entry["frequency_step"], 32_000.0);
    }
    // One complex channel: (frames, bins), channel 1 of the scipy rows.
    let (code, err) = sigstream(
        d,
        &[
            "spectrogram",
            "one.npy",
            "--sample-rate",
            "2048000",
            "--nfft",
            "64",
            "--hop",
            "16",
            "--scale",
            "power",
            "-o",
            "one_s.npy",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (header, values) = read_npy_f32(&d.join("one_s.npy"));
    assert!(header.contains(&format!("({frames}, 64)")), "{header}");
    let ch1: Vec<f64> = scipy
        .chunks(64)
        .skip(1)
        .step_by(2)
        .flatten()
        .copied()
        .collect();
    assert_rows_close(&values, &ch1, 64, REF_TOL, "one channel");

    // fft of the one-channel npy: np.fft.fft, N bins, natural order.
    let (code, err) = sigstream(d, &["fft", "one.npy", "-o", "f.npy", "--report", "f.json"]);
    assert_eq!(code, 0, "{err}");
    let got = read_npy_c8(&d.join("f.npy"));
    let z: Vec<(f64, f64)> = (0..samples)
        .map(|t| (f64::from(planes[2][t]), f64::from(planes[3][t])))
        .collect();
    let err = rel_l2(&got, &naive_dft(&z));
    assert!(err <= FFT_L2_TOL, "cli fft: relative L2 error {err:.2e}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("f.json")).unwrap()).unwrap();
    assert_eq!(report["inputs"][0]["complex"], true);
    assert_eq!(report["inputs"][0]["bins"], samples);
    // Two complex channels: --channel counts complex channels.
    let (code, err) = sigstream(d, &["fft", "two.npy", "-o", "g.npy"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("sigstream: two.npy: 2 channels"), "{err}");
    let (code, err) = sigstream(d, &["fft", "two.npy", "--channel", "1", "-o", "g.npy"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        read_npy_c8(&d.join("g.npy")),
        got,
        "channel 1 of two is the one channel"
    );
}

#[test]
fn cli_complex_errors_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("short.cf32"), vec![0u8; 8 * 10]).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["psd", "short.cf32", "--nperseg", "16", "-o", "o.csv"],
            "sigstream: short.cf32: frame length 16",
        ),
        (
            &["spectrogram", "short.cf32", "--nfft", "16", "-o", "o.npy"],
            "sigstream: short.cf32: frame length 16",
        ),
        (
            &["fft", "short.cf32", "--channel", "1", "-o", "o.npy"],
            "sigstream: short.cf32: --channel 1: the input has 1 channel",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = sigstream(d, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn psd_png_draws_negative_frequencies_left_of_the_centre() {
    use sigstream::sink::plot::{PsdPlot, PsdScale, channel_style, psd_png};

    // A two-sided spectrum around a 98.5 MHz centre, 2.048 MHz wide, one
    // peak at fc − 500 kHz: its column must lie left of the middle, at a
    // quarter of the width from the left edge of the plot area.
    let dir = tempfile::tempdir().unwrap();
    let (fs, fc, n) = (2.048e6, 98.5e6, 256);
    let stream = Stream::complex(1, Some(fs), Some(fc));
    let frequencies = stream.axis(n).frequencies();
    let peak_bin = frequencies.iter().position(|&f| f == fc - 512e3).unwrap();
    let values = vec![
        (0..n)
            .map(|k| if k == peak_bin { 1.0 } else { 1e-6 })
            .collect::<Vec<f64>>(),
    ];
    let path = dir.path().join("psd.png");
    psd_png(
        &path,
        &frequencies,
        &values,
        &PsdPlot {
            size: (1000, 500),
            title: "two-sided".into(),
            sample_rate_known: true,
            density: true,
            scale: PsdScale::Db,
        },
    )
    .unwrap();
    let (w, _, px) = png_rgb(&path);
    let (colour, _) = channel_style(0);
    let line = [colour.0, colour.1, colour.2];
    // The line's topmost pixel (the peak) and its horizontal extent.
    let drawn: Vec<(u32, u32)> = px
        .iter()
        .enumerate()
        .filter(|(_, p)| **p == line)
        .map(|(i, _)| (i as u32 % w, i as u32 / w))
        .collect();
    let (left, right) = (
        drawn.iter().map(|d| d.0).min().unwrap(),
        drawn.iter().map(|d| d.0).max().unwrap(),
    );
    let top = drawn.iter().min_by_key(|d| d.1).unwrap();
    let at = f64::from(top.0 - left) / f64::from(right - left);
    // -512 kHz of ±1.024 MHz is a quarter of the way across; a pixel or two
    // of line width either side.
    const POSITION_TOL: f64 = 0.01;
    assert!(
        (at - 0.25).abs() < POSITION_TOL,
        "the peak is {at:.3} of the way across, not 0.25"
    );
}
