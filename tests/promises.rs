//! The promises a new user relies on without reading the manual: an unknown
//! format is refused, `-` means standard output, two outputs never share a
//! path, and `--backend auto` costs nothing where no GPU can exist.

#[path = "common/cli.rs"]
mod cli;

use std::path::Path;

use cli::{assert_refused, sigstream, stderr};

use sigstream::backend::{gpu_device_nodes_in, hardware_gpu_possible};

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn signal(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = (i as f32 * 0.37).sin();
            if i % 1000 < 40 { 8.0 * x } else { x }
        })
        .collect()
}

#[test]
fn an_unknown_format_is_refused_by_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut record = b"000001D MXX  ELL10HHZ".to_vec();
    record.resize(4096, 7);
    std::fs::write(d.join("rec.dat"), &record).unwrap();
    let runs: [&[&str]; 6] = [
        &["info", "rec.dat"],
        &["process", "rec.dat", "--moving-average", "3", "-o", "o.f32"],
        &["fft", "rec.dat", "-o", "o.npy"],
        &["spectrogram", "rec.dat", "--nfft", "64", "-o", "o.npy"],
        &["psd", "rec.dat", "--nperseg", "64", "-o", "o.csv"],
        &["bench", "rec.dat", "--moving-average", "3"],
    ];
    for args in runs {
        let out = sigstream(d, args);
        assert_refused(&out, "", "--dtype", &args.join(" "));
        assert!(stderr(&out).contains("rec.dat"), "{}", stderr(&out));
        for name in ["o.f32", "o.npy", "o.csv"] {
            assert!(!d.join(name).exists(), "{}: wrote {name}", args.join(" "));
        }
    }
    // Named, the same bytes are read as the user says.
    let out = sigstream(d, &["info", "rec.dat", "--dtype", "i16", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"][0]["samples"], 2048);
    assert_eq!(v["inputs"][0]["dtype"], "i16");
}

#[test]
fn dash_writes_one_output_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &signal(20_000));
    let job = [
        "--moving-average",
        "3",
        "--detect",
        "threshold",
        "--on",
        "4",
        "-q",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["process", "x.f32"];
        args.extend(job);
        args.extend(extra);
        let out = sigstream(d, &args);
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        out
    };
    // The files, as the reference.
    run(&["-o", "y.f32", "--events", "ev.csv", "--report", "r.json"]);
    let signal_bytes = std::fs::read(d.join("y.f32")).unwrap();
    let csv = std::fs::read(d.join("ev.csv")).unwrap();
    assert!(csv.len() > 60, "the signal has events");

    let out = run(&["-o", "-"]);
    assert_eq!(out.stdout, signal_bytes, "-o - is the raw f32 signal");
    let out = run(&["--events", "-", "-o", "y2.f32"]);
    assert_eq!(out.stdout, csv, "--events - is the CSV, and nothing else");
    assert_eq!(std::fs::read(d.join("y2.f32")).unwrap(), signal_bytes);
    let out = run(&["--report", "-", "--events", "ev2.csv"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--report - is JSON only ({e})"));
    assert_eq!(report["inputs"][0]["outputs"]["events"], "ev2.csv");
    assert!(!d.join("-").exists(), "no file named '-'");

    // psd's CSV too.
    let out = sigstream(d, &["psd", "x.f32", "--nperseg", "256", "-o", "-", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("frequency,ch0\n"), "{text}");
    assert_eq!(text.lines().count(), 1 + 129);
}

#[test]
fn outputs_never_share_a_path_or_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &signal(5_000));
    let base = ["process", "x.f32", "--detect", "threshold", "--on", "4"];
    let cases: [(&[&str], &str); 5] = [
        (&["-o", "-", "--events", "-"], "standard output"),
        (&["--events", "-", "--report", "-"], "standard output"),
        (&["-o", "same.x", "--events", "same.x"], "both write same.x"),
        (&["-o", "r.npy", "--report", "r.npy"], "both write r.npy"),
        (
            &["--events", "e.csv", "--report", "e.csv"],
            "both write e.csv",
        ),
    ];
    for (extra, phrase) in cases {
        let mut args = base.to_vec();
        args.extend(extra);
        let out = sigstream(d, &args);
        assert_refused(&out, "", phrase, &extra.join(" "));
        assert!(out.stdout.is_empty(), "{extra:?}: nothing on stdout");
    }
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["x.f32"], "nothing written");
    // In batch mode too: two inputs whose outputs would land on one report.
    write_f32(&d.join("y.f32"), &signal(5_000));
    let out = sigstream(
        d,
        &[
            "process",
            "x.f32",
            "y.f32",
            "--output-dir",
            "out",
            "--events",
            "ev.csv",
            "--report",
            "out/x.ev.csv",
        ],
    );
    assert_refused(&out, "", "both write out/x.ev.csv", "batch collision");
    // Where standard output cannot take the output, the message says so.
    let out = sigstream(d, &["fft", "x.f32", "-o", "-"]);
    assert_refused(&out, "", "standard output", "fft -o -");
    let out = sigstream(d, &["spectrogram", "x.f32", "--nfft", "64", "-o", "-"]);
    assert_refused(&out, "", "standard output", "spectrogram -o -");
}

/// A CPU-only build (`cargo build --no-default-features`) says so when the
/// GPU is asked for, before reading anything.
#[cfg(not(feature = "gpu"))]
#[test]
fn a_cpu_only_build_says_it_has_no_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &signal(1000));
    for backend in [&["--backend", "gpu"][..], &["--gpu-adapter", "nvidia"]] {
        let mut args = vec!["process", "x.f32", "--moving-average", "3", "-o", "y.f32"];
        args.extend(backend);
        let out = sigstream(d, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.starts_with("sigstream: gpu: "), "{err}");
        assert!(err.contains("built without the GPU backend"), "{err}");
        assert!(!d.join("y.f32").exists());
    }
    let out = sigstream(d, &["info", "--gpus", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["gpus"], serde_json::json!([]));
}

#[test]
fn gpu_device_nodes_are_what_makes_a_hardware_gpu_possible() {
    let dev = tempfile::tempdir().unwrap();
    let d = dev.path();
    assert!(!gpu_device_nodes_in(d), "an empty /dev");
    std::fs::create_dir(d.join("dri")).unwrap();
    std::fs::write(d.join("dri/card0"), b"").unwrap();
    std::fs::write(d.join("null"), b"").unwrap();
    assert!(
        !gpu_device_nodes_in(d),
        "a card node alone is no render node"
    );
    std::fs::write(d.join("dri/renderD128"), b"").unwrap();
    assert!(gpu_device_nodes_in(d), "a DRM render node");
    for node in ["nvidia0", "dxg"] {
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(node), b"").unwrap();
        assert!(gpu_device_nodes_in(other.path()), "{node}");
    }
}

/// Peak RSS the default backend may add over `--backend cpu` where no
/// hardware GPU can exist: allocator noise between two runs of the same job.
/// Probing adapters, in process or in a child, costs 50-60 MiB with Mesa's
/// software driver installed (as in CI).
const AUTO_EXTRA_MIB: f64 = 4.0;

#[test]
fn the_default_backend_costs_nothing_without_a_gpu_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &signal(100_000));
    let peak = |backend: &str| {
        let out = sigstream(
            d,
            &[
                "process",
                "x.f32",
                "--moving-average",
                "3",
                "--backend",
                backend,
                "--report",
                "-",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["peak_rss_mb"].as_f64().unwrap(), v["backend"].clone())
    };
    let (cpu, _) = peak("cpu");
    let (auto, backend) = peak("auto");
    if hardware_gpu_possible() {
        // A machine with a GPU device node: auto may open it, and its
        // figure then honestly includes the driver.
        assert!(backend == "cpu" || backend == "gpu", "{backend}");
    } else {
        assert_eq!(backend, "cpu");
        assert!(
            auto <= cpu + AUTO_EXTRA_MIB,
            "auto peaked at {auto:.1} MiB against {cpu:.1} MiB for cpu: it probed"
        );
    }
}
