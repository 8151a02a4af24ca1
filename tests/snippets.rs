//! Snippets (`--snippets FILE.npy --snippet-samples PRE:POST
//! [--snippet-channels own|all]`), end to end through the CLI.
//!
//! The reference for every snippet is the run's own output signal (`-o`),
//! sliced at `[peak − PRE, peak + POST)` here, with zeros outside the
//! signal: a snippet must equal it bit for bit (both are the same `f32`
//! samples, copied), whatever the chunk size, with the event's
//! `snippet_padded` flag set exactly when the window leaves the signal. The
//! output signal itself is checked against scipy/ObsPy elsewhere
//! (`tests/iir.rs`, `tests/cli.rs`). Rows come in the events CSV's order.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::Path;
use std::process::Output;

use cli::{assert_refused, sigstream, stderr, write_npy};
use common::Rng;
use num_complex::Complex;

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = sigstream(dir, args);
    assert!(
        out.status.success(),
        "sigstream {args:?} failed: {}",
        stderr(&out)
    );
    out
}

/// An .npy read back: its shape, its descr, and its values as `f32`
/// (re, im pairs for complex64).
fn read_npy(path: &Path) -> (Vec<u64>, String, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("a valid npy file");
    let shape = npy.shape().to_vec();
    let descr = npy.dtype().descr();
    let values = if descr.contains("c8") {
        npy.into_vec::<Complex<f32>>()
            .unwrap()
            .into_iter()
            .flat_map(|z| [z.re, z.im])
            .collect()
    } else {
        npy.into_vec::<f32>().unwrap()
    };
    (shape, descr, values)
}

/// One row of the events CSV: channel, peak index, the snippet flag.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    channel: usize,
    start: u64,
    peak: u64,
    padded: bool,
}

fn events_in(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c, s, p, f) = (
        col("channel"),
        col("start"),
        col("peak_index"),
        col("snippet_padded"),
    );
    assert_eq!(f, header.len() - 1, "the flag is the last column");
    lines
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            Row {
                channel: v[c].parse().unwrap(),
                start: v[s].parse().unwrap(),
                peak: v[p].parse().unwrap(),
                padded: match v[f] {
                    "0" => false,
                    "1" => true,
                    other => panic!("flag {other:?}"),
                },
            }
        })
        .collect()
}

/// The window `[peak − pre, peak + post)` of `y` (frames × planes,
/// interleaved; `per` planes per channel: 2 for I/Q), of `channel` or of
/// every channel, zero outside the signal; and whether it left it.
fn slice(
    y: &[f32],
    planes: usize,
    per: usize,
    channel: Option<usize>,
    peak: u64,
    (pre, post): (usize, usize),
) -> (Vec<f32>, bool) {
    let frames = (y.len() / planes) as i64;
    let lanes: Vec<usize> = match channel {
        Some(c) => vec![c],
        None => (0..planes / per).collect(),
    };
    let mut row = Vec::new();
    let mut padded = false;
    for j in 0..(pre + post) as i64 {
        let t = peak as i64 - pre as i64 + j;
        for &l in &lanes {
            for q in 0..per {
                if (0..frames).contains(&t) {
                    row.push(y[t as usize * planes + l * per + q]);
                } else {
                    padded = true;
                    row.push(0.0);
                }
            }
        }
    }
    (row, padded)
}

/// Checks every snippet of a run against the output sliced; returns the
/// events.
fn check_snippets(
    dir: &Path,
    (y, planes, per): (&str, usize, usize),
    snippets: &str,
    events: &str,
    window: (usize, usize),
    all: bool,
) -> Vec<Row> {
    let (_, _, y) = read_npy(&dir.join(y));
    let (shape, descr, s) = read_npy(&dir.join(snippets));
    let rows = events_in(&dir.join(events));
    let lanes = planes / per;
    let columns = if all { lanes } else { 1 };
    assert_eq!(
        shape,
        [
            rows.len() as u64,
            (window.0 + window.1) as u64,
            columns as u64
        ],
        "(events, PRE+POST, channels)"
    );
    assert_eq!(descr.contains("c8"), per == 2, "{descr}");
    let len = (window.0 + window.1) * columns * per;
    assert_eq!(s.len(), rows.len() * len);
    for (i, r) in rows.iter().enumerate() {
        let (want, padded) = slice(&y, planes, per, (!all).then_some(r.channel), r.peak, window);
        assert!(
            s[i * len..(i + 1) * len] == want[..],
            "snippet {i} ({r:?}) differs from the output sliced"
        );
        assert_eq!(r.padded, padded, "flag of {r:?}");
    }
    rows
}

/// `channels` channels of unit noise with negative spikes (a 12-sample
/// shape, −40 at its trough) at random times, and spikes whose troughs lie
/// 3 samples from the start and 4 from the end; returns the interleaved
/// signal.
fn spiky(seed: u64, frames: usize, channels: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x: Vec<f32> = (0..frames * channels)
        .map(|_| rng.normal() as f32)
        .collect();
    let shape = [
        -2.0, -8.0, -20.0, -40.0, -30.0, -10.0, 5.0, 8.0, 6.0, 3.0, 1.0, 0.5,
    ];
    let mut put = |t: usize, c: usize| {
        for (k, v) in shape.iter().enumerate() {
            if t + k < frames {
                x[(t + k) * channels + c] += v;
            }
        }
    };
    for _ in 0..frames / 400 {
        let (t, c) = (rng.range(0, frames - 12), rng.range(0, channels));
        put(t, c);
    }
    put(0, 0);
    put(frames - 7, channels - 1);
    x
}

#[test]
fn snippets_equal_the_output_sliced_at_chunk_and_file_edges_for_any_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, channels) = (30_000, 6);
    write_npy(
        &d.join("x.npy"),
        frames,
        channels,
        &spiky(5, frames, channels),
    );
    let window = (20, 40);
    for which in ["own", "all"] {
        let mut first: Option<(Vec<u8>, Vec<u8>)> = None;
        for chunk in ["64", "1013", ""] {
            let (y, s, e) = (
                format!("y{chunk}.npy"),
                format!("s{which}{chunk}.npy"),
                format!("e{which}{chunk}.csv"),
            );
            let mut args = vec![
                "process",
                "x.npy",
                "--sample-rate",
                "30000",
                "--iir",
                "butter",
                "--bandpass",
                "300:6000",
                "--reference",
                "median",
                "--detect",
                "threshold",
                "--polarity",
                "neg",
                "--on-noise",
                "5",
                "--dead-samples",
                "30",
                "--snippets",
                &s,
                "--snippet-samples",
                "20:40",
                "--snippet-channels",
                which,
                "--events",
                &e,
                "-o",
                &y,
                "-q",
            ];
            if !chunk.is_empty() {
                args.extend(["--chunk-size", chunk]);
            }
            ok(d, &args);
            let rows = check_snippets(d, (&y, channels, 1), &s, &e, window, which == "all");
            assert!(rows.len() > 50, "{which}: {} events", rows.len());
            // Both file edges were reached, and (with 64-frame chunks)
            // windows across chunk edges are whole.
            assert!(rows.iter().any(|r| r.padded && r.peak < 20), "{rows:?}");
            assert!(
                rows.iter().any(|r| r.padded && r.peak + 40 > frames as u64),
                "{rows:?}"
            );
            assert!(rows.iter().filter(|r| !r.padded).count() > 50);
            // In the events' order: start, then channel.
            assert!(
                rows.windows(2)
                    .all(|w| (w[0].start, w[0].channel) < (w[1].start, w[1].channel))
            );
            let files = (
                std::fs::read(d.join(&s)).unwrap(),
                std::fs::read(d.join(&e)).unwrap(),
            );
            match &first {
                None => first = Some(files),
                Some(f) => assert!(*f == files, "{which}: chunk {chunk} changed the outputs"),
            }
        }
    }
}

#[test]
fn events_longer_than_the_ring_keep_the_window_of_their_final_peak() {
    // Bursts of 3000 samples whose envelope peaks in the middle, read in
    // 64-frame chunks with a 10:10 window: each event is open across ~47
    // chunks and its running peak moves every chunk until the middle.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, channels) = (40_000, 2);
    let mut x = vec![0.0f32; frames * channels];
    for (c, starts) in [(0usize, [1000usize, 20_000]), (1, [5000, 36_500])] {
        for s in starts {
            for k in 0..3000 {
                let env = 1.0 - ((k as f32 - 1500.0) / 1500.0).abs();
                x[(s + k) * channels + c] = 2.0 + 10.0 * env + 0.1 * ((k * 7 % 13) as f32);
            }
        }
    }
    write_npy(&d.join("x.npy"), frames, channels, &x);
    let mut first = None;
    for chunk in ["64", "4096"] {
        let (y, s, e) = (
            format!("y{chunk}.npy"),
            format!("s{chunk}.npy"),
            format!("e{chunk}.csv"),
        );
        ok(
            d,
            &[
                "process",
                "x.npy",
                "--detect",
                "threshold",
                "--on",
                "1",
                "--snippets",
                &s,
                "--snippet-samples",
                "10:10",
                "--events",
                &e,
                "-o",
                &y,
                "--chunk-size",
                chunk,
                "-q",
            ],
        );
        let rows = check_snippets(d, (&y, channels, 1), &s, &e, (10, 10), false);
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(rows.iter().all(|r| r.peak > r.start + 1000), "{rows:?}");
        let bytes = std::fs::read(d.join(&s)).unwrap();
        match &first {
            None => first = Some(bytes),
            Some(f) => assert!(*f == bytes, "chunk {chunk}"),
        }
    }
}

#[test]
fn complex_signals_give_complex64_snippets_and_decimated_ones_count_output_samples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let frames = 8000;
    let mut rng = Rng::new(9);
    let z: Vec<Complex<f32>> = (0..frames * 2)
        .map(|i| {
            let (re, im) = rng.normal_pair();
            let burst = if (i / 2) % 997 < 3 { 30.0 } else { 0.0 };
            Complex::new(re + burst, im - burst)
        })
        .collect();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[frames as u64, 2])
            .writer(std::fs::File::create(d.join("z.npy")).unwrap())
            .begin_nd()
            .unwrap();
        w.extend(z.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    for which in ["own", "all"] {
        let (s, e) = (format!("s{which}.npy"), format!("e{which}.csv"));
        ok(
            d,
            &[
                "process",
                "z.npy",
                "--moving-average",
                "3",
                "--detect",
                "threshold",
                "--on",
                "20",
                "--snippets",
                &s,
                "--snippet-samples",
                "5:7",
                "--snippet-channels",
                which,
                "--events",
                &e,
                "-o",
                "zy.npy",
                "--chunk-size",
                "100",
                "-q",
            ],
        );
        let rows = check_snippets(d, ("zy.npy", 4, 2), &s, &e, (5, 7), which == "all");
        assert!(rows.len() >= 12, "{rows:?}");
    }
    // Decimated: windows count output samples.
    let x: Vec<f32> = spiky(3, 20_000, 3);
    write_npy(&d.join("x.npy"), 20_000, 3, &x);
    ok(
        d,
        &[
            "process",
            "x.npy",
            "--decimate",
            "2",
            "--detect",
            "threshold",
            "--polarity",
            "neg",
            "--on",
            "15",
            "--snippets",
            "sd.npy",
            "--snippet-samples",
            "8:8",
            "--events",
            "ed.csv",
            "-o",
            "yd.npy",
            "--chunk-size",
            "333",
            "-q",
        ],
    );
    let rows = check_snippets(d, ("yd.npy", 3, 1), "sd.npy", "ed.csv", (8, 8), false);
    assert!(!rows.is_empty());
}

#[test]
fn snippet_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("x.npy"), 100, 2, &spiky(1, 100, 2));
    let base = ["process", "x.npy", "--detect", "threshold", "--on", "10"];
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "process",
                "x.npy",
                "--snippets",
                "s.npy",
                "--snippet-samples",
                "1:1",
            ],
            "",
            "needs --detect",
        ),
        (&["--snippets", "s.npy"], "", "needs --snippet-samples"),
        (&["--snippet-samples", "1:2"], "", "give --snippets"),
        (&["--snippet-channels", "all"], "", "give --snippets"),
        (
            &["--snippets", "s.npy", "--snippet-samples", "0:0"],
            "",
            "at least one sample",
        ),
        (
            &["--snippets", "s.npy", "--snippet-samples", "5"],
            "",
            "expected PRE:POST",
        ),
        (
            &["--snippets", "s.npy", "--snippet-samples", "-1:5"],
            "",
            "expected PRE:POST",
        ),
        (
            &["--snippets", "-", "--snippet-samples", "1:1"],
            "",
            "not standard output",
        ),
        (
            &["--snippets", "s.npy", "--snippet-samples", "60:41"],
            "x.npy",
            "longer than the 100 samples",
        ),
        (
            &["--snippets", "x.npy", "--snippet-samples", "1:1"],
            "",
            "x.npy",
        ),
    ];
    for (extra, subject, phrase) in cases {
        let args: Vec<&str> = if extra.first() == Some(&"process") {
            extra.to_vec()
        } else {
            base.iter().chain(extra.iter()).copied().collect()
        };
        let out = sigstream(d, &args);
        assert_refused(&out, subject, phrase, &format!("{args:?}"));
    }
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x.npy"], "nothing written");
}

#[cfg(unix)]
#[test]
fn a_stream_shorter_than_the_window_is_refused_and_writes_nothing() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x: Vec<u8> = (0..50)
        .flat_map(|i| (if i == 20 { 50.0f32 } else { 0.0 }).to_le_bytes())
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(d)
        .args([
            "process",
            "-",
            "--dtype",
            "f32",
            "--channels",
            "1",
            "--detect",
            "threshold",
            "--on",
            "10",
            "--snippets",
            "s.npy",
            "--snippet-samples",
            "40:40",
            "--events",
            "e.csv",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&x).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_refused(&out, "-", "longer than the 50 samples", "short stream");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
}

#[cfg(feature = "gpu")]
#[test]
fn the_gpu_backend_cuts_the_same_snippets_from_its_filter_output() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, channels) = (20_000, 4);
    write_npy(
        &d.join("x.npy"),
        frames,
        channels,
        &spiky(8, frames, channels),
    );
    for backend in ["cpu", "gpu"] {
        let (y, s, e) = (
            format!("y{backend}.npy"),
            format!("s{backend}.npy"),
            format!("e{backend}.csv"),
        );
        ok(
            d,
            &[
                "process",
                "x.npy",
                "--backend",
                backend,
                "--moving-average",
                "3",
                "--detect",
                "threshold",
                "--polarity",
                "neg",
                "--on",
                "12",
                "--snippets",
                &s,
                "--snippet-samples",
                "16:16",
                "--snippet-channels",
                "all",
                "--events",
                &e,
                "-o",
                &y,
                "-q",
            ],
        );
        // On each backend, the snippets are its own output sliced.
        let rows = check_snippets(d, (&y, channels, 1), &s, &e, (16, 16), true);
        assert!(rows.len() > 20);
    }
    // And the two backends find the same events (thresholds far from any
    // filtered value's rounding difference: the spikes reach −40, the
    // noise ±5).
    let peaks = |b: &str| -> Vec<(usize, u64)> {
        events_in(&d.join(format!("e{b}.csv")))
            .iter()
            .map(|r| (r.channel, r.peak))
            .collect()
    };
    assert_eq!(peaks("cpu"), peaks("gpu"));
}
