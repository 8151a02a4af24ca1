//! IIR filters, zero-phase filtering and common references, end to end
//! through the CLI, against what scipy and ObsPy make of the same input.
//!
//! The expected outputs in `tests/fixtures/iir/` were computed in `f64` by
//! `scipy.signal.sosfilt`/`sosfiltfilt`, ObsPy's `Trace.filter` and numpy
//! (`python3 tests/fixtures/make_iir_filter.py`; its docstring lists each
//! case), so these tests need no Python.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/reference.rs"]
mod reference;

use std::path::{Path, PathBuf};

use cli::{assert_refused, sigstream, stderr};

/// Relative to the signal's scale (the reference's largest magnitude): the
/// issue's bound for IIR outputs. What we lose against scipy's all-`f64`
/// computation is one `f32` rounding of the input to the output (and, for
/// zero-phase, of the intermediate between the passes): about 1e-7.
const IIR_REL_TOL: f64 = 1e-5;

/// Chunk sizes every case runs with: one frame at a time would take long
/// through the CLI, so a small odd size, one that splits the pads, and one
/// larger than the input.
const CHUNKS: [&str; 3] = ["7", "1000", "4096"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("a valid npy file");
    assert_eq!(npy.order(), npyz::Order::C, "{}: C order", path.display());
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().expect("f32 data"))
}

/// Largest |got − want| relative to the largest |want|.
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths");
    let scale = want.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let err = got.iter().zip(want).fold(0.0f64, |m, (&g, &w)| {
        m.max((f64::from(g) - f64::from(w)).abs())
    });
    err / scale
}

#[test]
fn every_case_equals_scipy_and_obspy_for_any_chunk_size() {
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/iir/cases.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let what = case["what"].as_str().unwrap();
        let (shape, want) = read_npy(&root().join(format!("tests/fixtures/iir/{name}.npy")));
        let mut first: Option<Vec<f32>> = None;
        for chunk in CHUNKS {
            let out = dir.path().join(format!("{name}-{chunk}.npy"));
            let mut args = vec![
                "process".to_string(),
                "tests/fixtures/iir/x.npy".into(),
                "--sample-rate".into(),
                "100".into(),
                "--chunk-size".into(),
                chunk.into(),
                "-q".into(),
                "-o".into(),
                out.to_string_lossy().into_owned(),
            ];
            args.extend(
                case["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string()),
            );
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = sigstream(&root(), &argv);
            assert!(run.status.success(), "{name}: {}", stderr(&run));
            let (got_shape, got) = read_npy(&out);
            assert_eq!(got_shape, shape, "{name}: shape");
            let err = rel_err(&got, &want);
            assert!(err < IIR_REL_TOL, "{name} ({what}), chunk {chunk}: {err:e}");
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{name}: chunk {chunk} differs from chunk {} bit for bit",
                    CHUNKS[0]
                ),
            }
        }
    }
}

#[test]
fn events_after_zero_phase_are_those_of_its_output() {
    // Detection streams over the backward pass's result: the events equal
    // those of the zero-phase output detected on its own.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let zp = ["--iir", "butter", "--bandpass", "1:20", "--zero-phase"];
    let det = ["--detect", "threshold", "--on", "12", "--off", "4"];
    let mut args = vec![
        "process",
        "tests/fixtures/iir/x.npy",
        "--sample-rate",
        "100",
        "-q",
    ];
    args.extend(zp);
    args.extend(det);
    let out = format!("{d}/y.npy");
    let ev = format!("{d}/a.csv");
    args.extend(["-o", &out, "--events", &ev]);
    let run = sigstream(&root(), &args);
    assert!(run.status.success(), "{}", stderr(&run));
    let ev2 = format!("{d}/b.csv");
    let mut again = vec![
        "process",
        &out,
        "--sample-rate",
        "100",
        "-q",
        "--events",
        &ev2,
    ];
    again.extend(det);
    let run = sigstream(&root(), &again);
    assert!(run.status.success(), "{}", stderr(&run));
    let a = std::fs::read_to_string(&ev).unwrap();
    assert!(a.lines().count() > 2, "some events: {a}");
    assert_eq!(a, std::fs::read_to_string(&ev2).unwrap());
    // The scratch file has no name: nothing is left beside the outputs.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.csv", "b.csv", "y.npy"]);
}

#[test]
fn bad_iir_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x = root().join("tests/fixtures/iir/x.npy");
    let x = x.to_string_lossy();
    let base = ["process", &*x, "--sample-rate", "100"];
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--iir", "butter", "--order", "0", "--lowpass", "5"],
            "--order 0",
            "order 0",
        ),
        (
            &["--iir", "butter", "--order", "21", "--lowpass", "5"],
            "--order 21",
            "order 21",
        ),
        (
            &["--iir", "butter", "--lowpass", "50"],
            "Nyquist",
            "corner at Nyquist",
        ),
        (
            &["--iir", "cheby1", "--bandpass", "10:60"],
            "Nyquist",
            "corner above Nyquist",
        ),
        (&["--iir", "butter"], "needs its band", "no band"),
        (
            &["--lowpass", "5", "--zero-phase"],
            "--zero-phase runs IIR filters",
            "zero-phase FIR",
        ),
        (
            &["--iir", "butter", "--lowpass", "5", "--pad", "none"],
            "--pad applies to --zero-phase only",
            "pad without zero-phase",
        ),
        (
            &["--bandstop", "5:10"],
            "--bandstop designs IIR filters only",
            "FIR bandstop",
        ),
        (
            &["--sos", "tests/fixtures/iir/x.npy"],
            "shape (n, 6)",
            "sos of the wrong shape",
        ),
    ];
    for (extra, phrase, what) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out_path = dir.path().join("o.npy");
        let o = out_path.to_string_lossy().into_owned();
        args.extend(["-o", &o]);
        let run = sigstream(&root(), &args);
        assert_eq!(run.status.code(), Some(2), "{what}: {}", stderr(&run));
        assert!(stderr(&run).contains(phrase), "{what}: {}", stderr(&run));
        assert!(!out_path.exists(), "{what}: no output");
    }
    // Zero-phase on standard input: refused, naming it.
    let run = sigstream(
        &root(),
        &[
            "process",
            "-",
            "--dtype",
            "f32",
            "--sample-rate",
            "100",
            "--iir",
            "butter",
            "--lowpass",
            "5",
            "--zero-phase",
        ],
    );
    assert_refused(&run, "-", "not standard input", "zero-phase on stdin");
    // A one-channel common reference: refused with the reason.
    let one = dir.path().join("one.f32");
    std::fs::write(&one, [0u8; 400]).unwrap();
    let run = sigstream(
        &root(),
        &[
            "process",
            &one.to_string_lossy(),
            "--dtype",
            "f32",
            "--reference",
            "median",
        ],
    );
    assert_refused(
        &run,
        "",
        "at least two channels",
        "reference on one channel",
    );
    // Shorter than sosfiltfilt's padlen: refused, as scipy does.
    let short = dir.path().join("short.f32");
    std::fs::write(&short, [0u8; 4 * 20]).unwrap();
    let run = sigstream(
        &root(),
        &[
            "process",
            &short.to_string_lossy(),
            "--dtype",
            "f32",
            "--sample-rate",
            "100",
            "--iir",
            "butter",
            "--bandpass",
            "1:20",
            "--zero-phase",
        ],
    );
    assert_refused(
        &run,
        &short.to_string_lossy(),
        "needs more than padlen = 27",
        "shorter than padlen",
    );
}

/// The streaming zero phase and the scratch-file passes are two ways to the
/// same `sosfiltfilt`: on 385 channels of the spike band-pass (a settling
/// length of 2,476 samples), the default 24 MiB leaves too short a block,
/// so the run goes through the scratch file; 64 MiB lets it stream. The
/// outputs agree within one `f32` rounding of the scale (the stream's
/// restarts change its `f64` values by 10^−20 of it), and the report says
/// which way each went. (Each way's agreement with scipy is held by the
/// cases above and by the zero-phase module's unit tests.)
#[test]
fn zero_phase_streams_or_spools_to_the_same_result() {
    /// One `f32` rounding of the scale, with room for the two ways' own
    /// roundings of the intermediate.
    const SAME_TOL: f64 = 4.0 * f32::EPSILON as f64;
    let dir = tempfile::tempdir().unwrap();
    let (channels, frames) = (385usize, 12_000usize);
    let input = dir.path().join("probe.i16");
    let mut bytes = Vec::with_capacity(channels * frames * 2);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in 0..frames {
        for c in 0..channels {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let noise = (rng % 61) as f64 - 30.0;
            let tone = 200.0 * (i as f64 * 0.05 + c as f64).sin();
            bytes.extend_from_slice(&((noise + tone) as i16).to_le_bytes());
        }
    }
    std::fs::write(&input, bytes).unwrap();
    let run = |limit: Option<&str>, name: &str| {
        let out = dir.path().join(format!("{name}.npy"));
        let report = dir.path().join(format!("{name}.json"));
        let mut args = vec![
            "process",
            input.to_str().unwrap(),
            "--dtype",
            "i16",
            "--channels",
            "385",
            "--sample-rate",
            "30000",
            "--iir",
            "butter",
            "--order",
            "5",
            "--bandpass",
            "300:6000",
            "--zero-phase",
            "-q",
            "-o",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ];
        if let Some(l) = limit {
            args.extend(["--memory-limit", l]);
        }
        let status = sigstream(&root(), &args);
        assert!(status.status.success(), "{name}: {}", stderr(&status));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        (read_npy(&out).1, r["inputs"][0]["filter"].clone())
    };
    let (spooled, how) = run(None, "scratch");
    assert!(how["stream_block"].is_null(), "default limit: {how}");
    assert!(how["scratch_bytes"].as_u64().unwrap() > 0, "{how}");
    let (streamed, how) = run(Some("64"), "stream");
    assert_eq!(how["scratch_bytes"], 0, "{how}");
    let warm = how["stream_warm"].as_u64().unwrap();
    let block = how["stream_block"].as_u64().unwrap();
    assert!(block.is_power_of_two() && block >= warm / 2, "{how}");
    assert!(
        (frames as u64) > block + warm,
        "the stream restarts at least once: {how}"
    );
    let err = rel_err(&streamed, &spooled);
    assert!(err < SAME_TOL, "stream against scratch: {err:e}");
}

/// After `--zero-phase`, each channel's noise is the MAD of the zero-phase
/// output itself at the reported chunks (read through a second stream,
/// sought to each chunk): computed here from the `-o` output.
#[test]
fn noise_after_zero_phase_is_that_of_its_output() {
    /// The noise stream forgets its start to 1e-7 of the scale (its
    /// warm-up), then one `f32` rounding: the MAD moves by as much.
    const NOISE_REL_TOL: f64 = 1e-6;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("zp.npy");
    let report = dir.path().join("r.json");
    let run = sigstream(
        &root(),
        &[
            "process",
            "tests/fixtures/iir/x.npy",
            "--sample-rate",
            "100",
            "--iir",
            "butter",
            "--order",
            "4",
            "--bandpass",
            "1:20",
            "--zero-phase",
            "--detect",
            "threshold",
            "--on-noise",
            "4",
            "--noise-chunks",
            "3",
            "--noise-chunk-samples",
            "500",
            "-q",
            "-o",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let input = &r["inputs"][0];
    assert!(
        input["filter"]["stream_block"].is_u64(),
        "streamed: {input}"
    );
    let noise = &input["noise"];
    let positions: Vec<usize> = noise["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(positions, [0, 1250, 2500], "{noise}");
    assert!(
        noise["warmup"].as_u64().unwrap() > 0,
        "the stream's warm-up: {noise}"
    );
    let (shape, y) = read_npy(&out);
    let channels = shape[1] as usize;
    for c in 0..channels {
        let values: Vec<f32> = positions
            .iter()
            .flat_map(|&p| (p..p + 500).map(|i| y[i * channels + c]))
            .collect();
        let want = reference::mad_by_sort(&values);
        let got = noise["levels"][c].as_f64().unwrap();
        let err = (got - want).abs() / want;
        assert!(
            err < NOISE_REL_TOL,
            "channel {c}: {got} against {want} ({err:e})"
        );
    }
}

/// The IIR and the common reference write into the output block unless a
/// decimator follows them (then into a stage of their own): both ways give
/// the same values. Filtering and referencing in one run, then decimating
/// that output in a second, equals doing all three in one run, bit for
/// bit (each stage is exact across chunks, so the order of the blocks'
/// hand-overs cannot show).
#[test]
fn filtering_and_referencing_then_decimating_equals_both_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (channels, frames) = (6usize, 9_001usize);
    let input = dir.path().join("in.f32");
    let mut bytes = Vec::with_capacity(channels * frames * 4);
    for i in 0..frames {
        for c in 0..channels {
            // A scrambled pattern in [-1, 1): each frame's channels in
            // another order, so that the median moves between them.
            let noise = ((i * 7_919 + c * 104_729) % 1000) as f32 / 500.0 - 1.0;
            let common = (i as f32 * 0.01).sin() * 5.0;
            let own = (i as f32 * 0.3 + c as f32).sin();
            bytes.extend_from_slice(&(noise + common + own).to_le_bytes());
        }
    }
    std::fs::write(&input, bytes).unwrap();
    let base = [
        "--dtype",
        "f32",
        "--channels",
        "6",
        "--sample-rate",
        "1000",
        "-q",
        "--chunk-size",
        "1000",
    ];
    let run = |from: &Path, extra: &[&str], out: &str| -> Vec<f32> {
        let out = dir.path().join(out);
        let mut args = vec!["process", from.to_str().unwrap()];
        args.extend(base);
        args.extend(extra);
        args.extend(["-o", out.to_str().unwrap()]);
        let status = sigstream(&root(), &args);
        assert!(status.status.success(), "{extra:?}: {}", stderr(&status));
        std::fs::read(&out)
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let stages = [
        "--iir",
        "butter",
        "--order",
        "3",
        "--lowpass",
        "100",
        "--reference",
        "median",
    ];
    for (what, stages) in [
        ("iir + reference", &stages[..]),
        ("reference", &stages[6..]),
    ] {
        let mid = run(&input, stages, "mid.f32");
        assert_eq!(mid.len(), channels * frames, "{what}");
        let two = run(&dir.path().join("mid.f32"), &["--decimate", "4"], "two.f32");
        let mut both = stages.to_vec();
        both.extend(["--decimate", "4"]);
        let one = run(&input, &both, "one.f32");
        assert!(!one.is_empty(), "{what}");
        assert_eq!(one.len(), two.len(), "{what}");
        let differ = one
            .iter()
            .zip(&two)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{what}: values differing");
    }
}
