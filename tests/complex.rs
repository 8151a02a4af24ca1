//! Complex (I/Q) signals through the engine, against references computed
//! here in `f64` (the mixer from the exact rational phase, direct complex
//! convolution) and against `scipy.signal.resample_poly` (fixtures written
//! by `tests/fixtures/make_complex.py`): every complex input type, the
//! shift, real and complex kernels, decimation (complex and real),
//! detection on `|y|`, complex outputs, independence from the chunk size,
//! the GPU backend against the CPU, and the refusals.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::{Path, PathBuf};

use num_complex::Complex;
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::{DetectorSpec, Event, Polarity};
use sigstream::filter::mix::Mixer;
use sigstream::pipeline::{Sinks, StreamConfig, StreamProcessor};
use sigstream::pool::Block;
use sigstream::source::{self, Dtype, Endian, SourceOptions};

use cli::{assert_refused, sigstream, stderr};

/// Output against an `f64` reference, relative to the reference's largest
/// magnitude: f32 samples, f32 outputs and an f32 FFT (overlap-save) each
/// carry a few 1e-7 relative error; 1e-5 (the figure for
/// resample_poly) catches any wrong tap, phase or alignment, which are
/// errors of order 1.
const REF_TOL: f64 = 1e-5;

/// The mixer alone: one f64 rotation of each f32 sample, rounded to f32
/// once: within a few f32 ulps of the magnitude.
const MIX_TOL: f64 = 1e-6;

/// GPU (WGSL overlap-save, f32) against the CPU (rustfft, f32): two FFT
/// algorithms, each within a few 1e-7 of the truth.
#[cfg(feature = "gpu")]
const GPU_TOL: f64 = 1e-5;

/// The fixtures' folder.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/complex")
}

/// A complex64 `.npy` read back: its shape and values.
fn read_c64(path: &Path) -> (Vec<u64>, Vec<Complex<f32>>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<Complex<f32>>().unwrap())
}

/// A complex128 `.npy` (the scipy references).
fn read_c128(path: &Path) -> Vec<Complex<f64>> {
    let bytes = std::fs::read(path).unwrap();
    npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<Complex<f64>>()
        .unwrap()
}

/// A float `.npy` of any width, as f64.
fn read_real(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    match npy.dtype() {
        npyz::DType::Plain(t) if t.size_field() == 8 => npy.into_vec::<f64>().unwrap(),
        _ => npy
            .into_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect(),
    }
}

/// The fixture recording `x.cf32` (48 kHz).
fn fixture_signal() -> Vec<Complex<f32>> {
    let bytes = std::fs::read(fixtures().join("x.cf32")).unwrap();
    bytemuck::cast_slice::<u8, f32>(&bytes)
        .chunks_exact(2)
        .map(|p| Complex::new(p[0], p[1]))
        .collect()
}

/// Writes `values` as a complex64 `.npy` of shape (n,) or (n, channels).
fn write_c64(path: &Path, values: &[Complex<f32>], channels: usize) {
    let shape: Vec<u64> = if channels == 1 {
        vec![values.len() as u64]
    } else {
        vec![(values.len() / channels) as u64, channels as u64]
    };
    use npyz::WriterBuilder;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// Largest |a − b| over the largest |b|.
fn rel_err(a: &[Complex<f32>], b: &[Complex<f64>]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let scale = b.iter().map(|z| z.norm()).fold(0.0, f64::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (Complex::new(f64::from(x.re), f64::from(x.im)) - y).norm())
        .fold(0.0, f64::max)
        / scale
}

/// `numpy.convolve(x, h, mode)` in f64.
fn convolve(x: &[Complex<f64>], h: &[Complex<f64>], mode: &str) -> Vec<Complex<f64>> {
    let (n, m) = (x.len(), h.len());
    let mut full = vec![Complex::new(0.0, 0.0); n + m - 1];
    for (i, xi) in x.iter().enumerate() {
        for (j, hj) in h.iter().enumerate() {
            full[i + j] += xi * hj;
        }
    }
    match mode {
        "full" => full,
        "same" => full[(m - 1) / 2..(m - 1) / 2 + n].to_vec(),
        "valid" => full[m - 1..n].to_vec(),
        _ => unreachable!(),
    }
}

fn to_f64(x: &[Complex<f32>]) -> Vec<Complex<f64>> {
    x.iter()
        .map(|z| Complex::new(f64::from(z.re), f64::from(z.im)))
        .collect()
}

/// Runs `sigstream process x.cf32 --sample-rate 48000 ARGS -o OUT.npy`
/// (plus `extra` before it) and reads the complex output.
fn process_fixture(dir: &Path, args: &[&str]) -> Vec<Complex<f32>> {
    let x = fixtures().join("x.cf32");
    let out = dir.join("out.npy");
    let mut all = vec![
        "process",
        x.to_str().unwrap(),
        "--sample-rate",
        "48000",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let run = sigstream(dir, &all);
    assert!(run.status.success(), "{args:?}: {}", stderr(&run));
    let (shape, y) = read_c64(&out);
    assert_eq!(shape, vec![y.len() as u64], "a one-channel complex output");
    y
}

#[test]
fn every_complex_type_reads_as_i_and_q_planes() {
    let dir = tempfile::tempdir().unwrap();
    // Two channels, three frames: channel c, frame i = (10i + c) + i(−5i − c).
    let value = |i: usize, c: usize| ((10 * i + c) as f64, -((5 * i + c) as f64));
    let frames = 3;
    let pairs: Vec<(f64, f64)> = (0..frames)
        .flat_map(|i| (0..2).map(move |c| value(i, c)))
        .collect();
    let cases: [(&str, Dtype, Endian, Vec<u8>); 7] = [
        (
            "a.cf32",
            Dtype::F32,
            Endian::Little,
            pairs
                .iter()
                .flat_map(|&(r, i)| [(r as f32).to_le_bytes(), (i as f32).to_le_bytes()])
                .flatten()
                .collect(),
        ),
        (
            "a.cf64",
            Dtype::F64,
            Endian::Big,
            pairs
                .iter()
                .flat_map(|&(r, i)| [r.to_be_bytes(), i.to_be_bytes()])
                .flatten()
                .collect(),
        ),
        (
            "a.ci16",
            Dtype::I16,
            Endian::Little,
            pairs
                .iter()
                .flat_map(|&(r, i)| [(r as i16).to_le_bytes(), (i as i16).to_le_bytes()])
                .flatten()
                .collect(),
        ),
        (
            "a.ci16be",
            Dtype::I16,
            Endian::Big,
            pairs
                .iter()
                .flat_map(|&(r, i)| [(r as i16).to_be_bytes(), (i as i16).to_be_bytes()])
                .flatten()
                .collect(),
        ),
        (
            "a.ci32",
            Dtype::I32,
            Endian::Little,
            pairs
                .iter()
                .flat_map(|&(r, i)| [(r as i32).to_le_bytes(), (i as i32).to_le_bytes()])
                .flatten()
                .collect(),
        ),
        (
            "a.ci8",
            Dtype::I8,
            Endian::Little,
            pairs
                .iter()
                .flat_map(|&(r, i)| [r as i8 as u8, i as i8 as u8])
                .collect(),
        ),
        (
            // RTL-SDR's unsigned bytes: stored v + 128, read as the stored value.
            "a.cu8",
            Dtype::U8,
            Endian::Little,
            pairs
                .iter()
                .flat_map(|&(r, i)| [(r + 128.0) as u8, (i + 128.0) as u8])
                .collect(),
        ),
    ];
    for (name, dtype, endian, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let opts = SourceOptions {
            endian,
            channels: 2,
            ..SourceOptions::raw_complex(dtype)
        };
        let mut src = source::open(&path, &opts).unwrap();
        let info = src.info().clone();
        assert!(info.complex, "{name}");
        assert_eq!((info.channels, info.signal_channels()), (4, 2), "{name}");
        assert_eq!(info.frames, Some(frames as u64), "{name}");
        assert_eq!(info.sample_type(), format!("c{}", dtype.name()));
        let mut block = Block::new(4, 16);
        assert_eq!(src.read_block(&mut block).unwrap(), frames);
        let offset = if dtype == Dtype::U8 { 128.0 } else { 0.0 };
        for c in 0..2 {
            for i in 0..frames {
                let (re, im) = value(i, c);
                assert_eq!(
                    (
                        f64::from(block.channel(2 * c)[i]),
                        f64::from(block.channel(2 * c + 1)[i])
                    ),
                    (re + offset, im + offset),
                    "{name}: channel {c}, frame {i}"
                );
            }
        }
    }
    // The extension names the type: no --dtype needed.
    let run = sigstream(dir.path(), &["info", "--json", "a.cf32"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let entry = &v["inputs"][0];
    assert_eq!(entry["complex"], true, "{entry}");
    // Without --channels: one complex channel of 6 frames.
    assert_eq!(
        (entry["channels"].as_u64(), entry["samples"].as_u64()),
        (Some(1), Some(6)),
        "{entry}"
    );
    assert_eq!(entry["dtype"], "cf32", "{entry}");

    // npy complex64 of shape (n, 2): two complex channels.
    let values: Vec<Complex<f32>> = pairs
        .iter()
        .map(|&(r, i)| Complex::new(r as f32, i as f32))
        .collect();
    let npy = dir.path().join("c.npy");
    write_c64(&npy, &values, 2);
    let mut src = source::open(&npy, &SourceOptions::default()).unwrap();
    assert!(src.info().complex);
    assert_eq!(src.info().signal_channels(), 2);
    let mut block = Block::new(4, 16);
    assert_eq!(src.read_block(&mut block).unwrap(), frames);
    for c in 0..2 {
        for i in 0..frames {
            let z = values[2 * i + c];
            assert_eq!(
                (block.channel(2 * c)[i], block.channel(2 * c + 1)[i]),
                (z.re, z.im)
            );
        }
    }
}

#[test]
fn an_odd_number_of_values_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 5 float32 values: two I/Q pairs and a lone I.
    std::fs::write(dir.path().join("odd.cf32"), [0u8; 20]).unwrap();
    let run = sigstream(dir.path(), &["info", "odd.cf32"]);
    assert_refused(&run, "odd.cf32", "odd count", "cf32 with 5 values");
    let run = sigstream(
        dir.path(),
        &["process", "odd.cf32", "--shift", "1", "--sample-rate", "8"],
    );
    assert_refused(&run, "odd.cf32", "odd count", "process on it");
}

#[test]
fn the_shift_equals_the_mixer_from_the_exact_phase() {
    let dir = tempfile::tempdir().unwrap();
    let x = fixture_signal();
    for (hz, num) in [("3000", 3000i64), ("-7000", -7000), ("1234", 1234)] {
        let y = process_fixture(dir.path(), &["--shift", hz]);
        // e^(−2πi·f·n/fs), the phase reduced exactly in integers.
        let want: Vec<Complex<f64>> = x
            .iter()
            .enumerate()
            .map(|(n, z)| {
                let phase = (n as i64 * num).rem_euclid(48_000) as f64 / 48_000.0;
                Complex::new(f64::from(z.re), f64::from(z.im))
                    * Complex::from_polar(1.0, -2.0 * std::f64::consts::PI * phase)
            })
            .collect();
        let err = rel_err(&y, &want);
        assert!(err < MIX_TOL, "--shift {hz}: error {err:e}");
    }
    // The library's mixer knows its rate.
    let m = Mixer::new(3000.0, 48_000.0).unwrap();
    assert_eq!(m.cycles_per_sample(), 0.0625);
}

#[test]
fn complex_kernels_equal_direct_complex_convolution() {
    let dir = tempfile::tempdir().unwrap();
    let x = to_f64(&fixture_signal());
    let mut rng = common::Rng::new(7);
    // Short (direct) and long (overlap-save) kernels.
    for taps in [31usize, 601] {
        let h: Vec<Complex<f32>> = (0..taps)
            .map(|_| {
                let (a, b) = rng.normal_pair();
                Complex::new(a, b) / taps as f32
            })
            .collect();
        let kernel = dir.path().join(format!("h{taps}.npy"));
        write_c64(&kernel, &h, 1);
        for mode in ["full", "same", "valid"] {
            let y = process_fixture(
                dir.path(),
                &["--kernel", kernel.to_str().unwrap(), "--conv-mode", mode],
            );
            let want = convolve(&x, &to_f64(&h), mode);
            let err = rel_err(&y, &want);
            assert!(err < REF_TOL, "{taps} taps, {mode}: error {err:e}");
        }
    }
}

#[test]
fn a_real_kernel_filters_i_and_q_alike() {
    let dir = tempfile::tempdir().unwrap();
    let x = to_f64(&fixture_signal());
    let taps: Vec<f64> = (0..25).map(|i| ((i as f64) * 0.37).sin() / 10.0).collect();
    let text: Vec<String> = taps.iter().map(f64::to_string).collect();
    let kernel = dir.path().join("h.txt");
    std::fs::write(&kernel, text.join(" ")).unwrap();
    let y = process_fixture(dir.path(), &["--kernel", kernel.to_str().unwrap()]);
    // The taps as the engine takes them (f32).
    let h: Vec<Complex<f64>> = taps
        .iter()
        .map(|&t| Complex::new(f64::from(t as f32), 0.0))
        .collect();
    let err = rel_err(&y, &convolve(&x, &h, "same"));
    assert!(err < REF_TOL, "error {err:e}");
}

#[test]
fn decimation_equals_scipy_resample_poly() {
    let dir = tempfile::tempdir().unwrap();
    // Complex, by 3: 3001 samples give ceil(3001 / 3) = 1001.
    let want = read_c128(&fixtures().join("x_resample3.npy"));
    assert_eq!(want.len(), 1001);
    let whole = process_fixture(dir.path(), &["--decimate", "3"]);
    let err = rel_err(&whole, &want);
    assert!(err < REF_TOL, "complex, by 3: error {err:e}");
    for chunk in ["1", "100", "1000", "2999"] {
        let y = process_fixture(dir.path(), &["--decimate", "3", "--chunk-size", chunk]);
        assert_eq!(y, whole, "--chunk-size {chunk}: bit for bit");
    }

    // Real, by 7.
    let real = fixtures().join("real.f32");
    let out = dir.path().join("real.npy");
    let run = sigstream(
        dir.path(),
        &[
            "process",
            real.to_str().unwrap(),
            "--decimate",
            "7",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let y = read_real(&out);
    let want = read_real(&fixtures().join("real_resample7.npy"));
    assert_eq!(y.len(), want.len(), "ceil(2500 / 7)");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = y
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale;
    assert!(err < REF_TOL, "real, by 7: error {err:e}");
}

/// Every stage at once (shift, complex kernel, decimation, detection):
/// the signal and the events do not depend on the chunk size or the
/// threads, bit for bit.
#[test]
fn a_whole_complex_chain_does_not_depend_on_the_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::Rng::new(11);
    let h: Vec<Complex<f32>> = (0..129)
        .map(|_| {
            let (a, b) = rng.normal_pair();
            Complex::new(a, b) / 20.0
        })
        .collect();
    let kernel = dir.path().join("h.npy");
    write_c64(&kernel, &h, 1);
    let events = dir.path().join("events.csv");
    let stages = [
        "--kernel",
        kernel.to_str().unwrap(),
        "--shift",
        "2500.5",
        "--decimate",
        "4",
    ];
    // Levels between the quartiles of |y|, so that events come and go.
    let mut mags: Vec<f32> = process_fixture(dir.path(), &stages)
        .iter()
        .map(|z| z.norm())
        .collect();
    mags.sort_by(f32::total_cmp);
    let on = mags[mags.len() * 3 / 4].to_string();
    let off = mags[mags.len() / 2].to_string();
    let run = |extra: &[&str]| {
        let mut args = stages.to_vec();
        args.extend_from_slice(&[
            "--detect",
            "threshold",
            "--on",
            &on,
            "--off",
            &off,
            "--events",
            events.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        let y = process_fixture(dir.path(), &args);
        (y, std::fs::read_to_string(&events).unwrap())
    };
    let (y, ev) = run(&["--threads", "1"]);
    assert!(ev.lines().count() > 3, "the chain finds events: {ev}");
    for extra in [
        &["--chunk-size", "129", "--threads", "1"][..],
        &["--chunk-size", "1000", "--threads", "2"],
        &["--chunk-size", "4096", "--threads", "2"],
    ] {
        let (y2, ev2) = run(extra);
        assert_eq!(y2, y, "{extra:?}: signal");
        assert_eq!(ev2, ev, "{extra:?}: events");
    }
}

/// Two complex channels, each with bursts of its own: the threshold
/// detector sees `|y|`, and its events are those of the library's threshold
/// detector run on `|x|` computed here.
#[test]
fn detection_runs_on_the_magnitude_of_each_channel() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let mut rng = common::Rng::new(3);
    let mut x = vec![Complex::new(0.0f32, 0.0); 2 * n];
    for i in 0..n {
        for c in 0..2 {
            let (a, b) = rng.normal_pair();
            // A burst of magnitude 10 on a rotating phase, well clear of
            // the levels, so f32 rounding cannot move an event.
            let burst = (i + 700 * c) % 3000 < 40;
            let amp = if burst { 10.0 } else { 0.0 };
            let phase = 0.3 * i as f32;
            x[2 * i + c] = Complex::new(amp * phase.cos() + 0.1 * a, amp * phase.sin() + 0.1 * b);
        }
    }
    let input = dir.path().join("two.npy");
    write_c64(&input, &x, 2);
    let spec = DetectorSpec::Threshold {
        on: 5.0,
        off: 2.0,
        max_len: None,
        dead: None,
        polarity: Polarity::Both,
    };
    let job = Job {
        detector: Some(DetectorChoice::Builtin(spec.clone())),
        ..Job::default()
    };
    let mut events: Vec<Event> = Vec::new();
    StreamProcessor::new(StreamConfig::default(), job)
        .process_file(
            &input,
            &SourceOptions::default(),
            Sinks {
                events: Some(&mut events),
                ..Sinks::default()
            },
        )
        .unwrap();
    let mut want: Vec<Event> = Vec::new();
    for c in 0..2 {
        let mag: Vec<f32> = (0..n)
            .map(|i| {
                let z = x[2 * i + c];
                (f64::from(z.re).powi(2) + f64::from(z.im).powi(2)).sqrt() as f32
            })
            .collect();
        let mut det = spec.build();
        let mut ev = Vec::new();
        det.process(&mag, 0, &mut ev);
        det.finish(&mut ev);
        want.extend(ev.into_iter().map(|mut e| {
            e.channel = c;
            e
        }));
    }
    want.sort_by_key(|e| (e.start, e.channel, e.end));
    assert!(want.len() >= 12, "bursts on both channels: {}", want.len());
    assert_eq!(events, want);
}

#[test]
fn decimated_events_are_timed_at_the_output_rate() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.csv");
    process_fixture(
        dir.path(),
        &[
            "--decimate",
            "4",
            "--detect",
            "threshold",
            "--on",
            "1.2",
            "--events",
            events.to_str().unwrap(),
            "--start-time",
            "2026-01-01T00:00:00Z",
        ],
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut n = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let start: u64 = f[col("start")].parse().unwrap();
        let start_s: f64 = f[col("start_s")].parse().unwrap();
        // Output sample k of a decimation by 4 at 48 kHz is at k / 12 kHz.
        assert!((start_s - start as f64 / 12_000.0).abs() < 1e-9, "{line}");
        let micros = (start as f64 / 12_000.0 * 1e6).round() as u64;
        assert!(
            f[col("start_time")].starts_with(&format!("2026-01-01T00:00:00.{micros:06}")),
            "{line}"
        );
        n += 1;
    }
    assert!(n > 0, "events found: {text}");
}

#[test]
fn complex_outputs_are_complex64_npy_or_cf32_raw() {
    let dir = tempfile::tempdir().unwrap();
    let y = process_fixture(dir.path(), &["--shift", "100"]);
    let x = fixtures().join("x.cf32");
    let raw = dir.path().join("out.cf32");
    let run = sigstream(
        dir.path(),
        &[
            "process",
            x.to_str().unwrap(),
            "--sample-rate",
            "48000",
            "--shift",
            "100",
            "-q",
            "-o",
            raw.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(bytes, bytemuck::cast_slice::<Complex<f32>, u8>(&y));
    // WAV has no complex samples.
    let run = sigstream(
        dir.path(),
        &["process", x.to_str().unwrap(), "-q", "-o", "out.wav"],
    );
    assert_refused(&run, "out.wav", "no complex samples", "complex to WAV");
    assert!(!dir.path().join("out.wav").exists());
}

/// A factor of any size is refused, not overflowed: the job's history
/// (the report's `overlap`) saturates before the factor is checked.
#[test]
fn an_absurd_decimation_factor_saturates_and_is_refused() {
    let job = Job {
        decimate: Some(usize::MAX),
        ..Job::default()
    };
    assert_eq!(job.history(), usize::MAX);
    let err = job.validate().unwrap_err().to_string();
    assert!(err.contains("--decimate"), "{err}");
}

#[test]
fn complex_only_options_are_refused_on_real_signals_and_bad_factors_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let real = fixtures().join("real.f32");
    let real = real.to_str().unwrap();
    let x = fixtures().join("x.cf32");
    let x = x.to_str().unwrap();
    let h = dir.path().join("h.npy");
    write_c64(&h, &[Complex::new(1.0, 1.0); 3], 1);
    let h = h.to_str().unwrap();
    let run = sigstream(
        dir.path(),
        &["process", real, "--sample-rate", "100", "--shift", "10"],
    );
    assert_refused(
        &run,
        real,
        "complex (I/Q) signals only",
        "--shift on a real signal",
    );
    let run = sigstream(dir.path(), &["process", real, "--kernel", h]);
    assert_refused(
        &run,
        real,
        "complex (I/Q) signals only",
        "a complex kernel on a real signal",
    );
    let run = sigstream(dir.path(), &["process", x, "--shift", "10"]);
    assert_refused(&run, x, "needs a sample rate", "--shift without a rate");
    for bad in ["0", "2000000"] {
        let run = sigstream(dir.path(), &["process", x, "--decimate", bad]);
        assert_refused(&run, "--decimate", "between 1 and", "--decimate {bad}");
    }
    let run = sigstream(
        dir.path(),
        &["process", x, "--shift", "nan", "--sample-rate", "8"],
    );
    assert_refused(&run, "--shift", "number of Hz", "--shift nan");
}

/// The GPU backend runs the filters of a complex job (the stages around
/// them run on the CPU): its output equals the CPU backend's.
#[cfg(feature = "gpu")]
#[test]
fn the_gpu_backend_gives_the_cpu_results() {
    use sigstream::backend::Backend;
    use sigstream::backend::cpu::CpuBackend;
    use sigstream::backend::gpu::GpuBackend;
    use sigstream::sink::VecSink;
    use std::sync::Arc;
    let Some(ctx) = common::gpu() else {
        return;
    };
    let x = fixtures().join("x.cf32");
    let mut rng = common::Rng::new(5);
    let (re, im): (Vec<f32>, Vec<f32>) = (0..301)
        .map(|_| {
            let (a, b) = rng.normal_pair();
            (a / 30.0, b / 30.0)
        })
        .unzip();
    let job = Job {
        kernel: Some(re),
        kernel_imag: Some(im),
        shift: Some(Mixer::new(-7000.0, 48_000.0).unwrap()),
        decimate: Some(3),
        ..Job::default()
    };
    let opts = SourceOptions {
        sample_rate: Some(48_000.0),
        ..SourceOptions::raw_complex(Dtype::F32)
    };
    let run = |backend: Arc<dyn Backend>| {
        let mut out = Vec::new();
        StreamProcessor::new(
            StreamConfig {
                chunk_size: Some(1000),
                ..StreamConfig::default()
            },
            job.clone(),
        )
        .with_backend(backend)
        .process_file(
            &x,
            &opts,
            Sinks {
                signal: Some(Box::new(VecSink { out: &mut out })),
                ..Sinks::default()
            },
        )
        .unwrap();
        out
    };
    let cpu = run(Arc::new(CpuBackend));
    let gpu = run(Arc::new(GpuBackend::with_context(ctx)));
    assert_eq!(cpu.len(), gpu.len());
    assert_eq!(
        cpu.len(),
        2 * 1001,
        "interleaved I/Q, ceil(3001 / 3) frames"
    );
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = cpu
        .iter()
        .zip(&gpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
        / scale;
    assert!(f64::from(err) < GPU_TOL, "GPU against CPU: {err:e}");
}
