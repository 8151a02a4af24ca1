//! Spatial de-duplication (`--dedup-window S | --dedup-samples N`,
//! `--dedup-radius R`), end to end through the CLI.
//!
//! The reference is the rule applied here to all the events of the same
//! run without de-duplication, at once: an event is dropped when an event
//! on another channel within R channels peaks within N samples of it with
//! a larger `peak_value`, or an equal one on a lower channel
//! (SpikeInterface's `locally_exclusive` on the per-channel events). The
//! streamed result must keep exactly those, in the same order, with their
//! own snippets, for any chunk size.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::Path;
use std::process::Output;

use cli::{assert_refused, sigstream, stderr, write_npy};
use common::Rng;

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = sigstream(dir, args);
    assert!(
        out.status.success(),
        "sigstream {args:?} failed: {}",
        stderr(&out)
    );
    out
}

/// channel, start, peak index, peak value of each row of an events CSV.
fn events_in(path: &Path) -> Vec<(usize, u64, u64, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[3].parse().unwrap(),
                v[4].parse().unwrap(),
            )
        })
        .collect()
}

fn snippets_in(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<f32>()
        .unwrap()
}

/// Spikes spread over 3–5 neighbouring channels (largest on a random one
/// of them, smaller around it, troughs up to 4 samples apart), on noise.
fn spread_spikes(seed: u64, frames: usize, channels: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x: Vec<f32> = (0..frames * channels)
        .map(|_| rng.normal() as f32)
        .collect();
    for _ in 0..frames / 150 {
        let t = rng.range(10, frames - 20);
        let main = rng.range(0, channels);
        let amp = 20.0 + 30.0 * rng.uniform() as f32;
        for d in -2i64..=2 {
            let c = main as i64 + d;
            if !(0..channels as i64).contains(&c) {
                continue;
            }
            let gain = [0.3, 0.7, 1.0, 0.6, 0.35][(d + 2) as usize];
            let lag = rng.range(0, 5);
            for (k, v) in [-0.3f32, -1.0, -0.6, 0.2].iter().enumerate() {
                x[(t + lag + k) * channels + c as usize] += amp * gain * v;
            }
        }
    }
    x
}

#[test]
fn the_streamed_result_is_the_rule_over_all_events_for_any_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, channels) = (30_000, 12);
    write_npy(
        &d.join("x.npy"),
        frames,
        channels,
        &spread_spikes(4, frames, channels),
    );
    let detect = [
        "process",
        "x.npy",
        "--detect",
        "threshold",
        "--polarity",
        "neg",
        "--on",
        "8",
        "--dead-samples",
        "10",
        "--snippet-samples",
        "4:6",
        "-q",
    ];
    let mut all_args = detect.to_vec();
    all_args.extend(["--events", "all.csv", "--snippets", "all.npy"]);
    ok(d, &all_args);
    let all = events_in(&d.join("all.csv"));
    let all_snips = snippets_in(&d.join("all.npy"));
    assert!(all.len() > 300, "{} events", all.len());
    for (window, radius) in [(3u64, 1usize), (6, 2), (0, 3)] {
        // The rule over all events at once.
        let beats = |g: &(usize, u64, u64, f64), e: &(usize, u64, u64, f64)| {
            g.0 != e.0
                && g.0.abs_diff(e.0) <= radius
                && g.2.abs_diff(e.2) <= window
                && (g.3 > e.3 || (g.3 == e.3 && g.0 < e.0))
        };
        let kept: Vec<usize> = (0..all.len())
            .filter(|&i| !all.iter().any(|g| beats(g, &all[i])))
            .collect();
        assert!(
            kept.len() < all.len() && !kept.is_empty(),
            "{window} {radius}"
        );
        let want: Vec<_> = kept.iter().map(|&i| all[i]).collect();
        let want_snips: Vec<f32> = kept
            .iter()
            .flat_map(|&i| all_snips[i * 10..(i + 1) * 10].iter().copied())
            .collect();
        for chunk in ["37", "4096"] {
            let (ev, sn, rp) = (
                format!("d{window}-{radius}-{chunk}.csv"),
                format!("d{window}-{radius}-{chunk}.npy"),
                format!("r{window}-{radius}-{chunk}.json"),
            );
            let (w, r) = (window.to_string(), radius.to_string());
            let mut args = detect.to_vec();
            args.extend([
                "--dedup-samples",
                &w,
                "--dedup-radius",
                &r,
                "--events",
                &ev,
                "--snippets",
                &sn,
                "--report",
                &rp,
                "--chunk-size",
                chunk,
            ]);
            ok(d, &args);
            assert_eq!(
                events_in(&d.join(&ev)),
                want,
                "window {window} radius {radius} chunk {chunk}"
            );
            assert!(
                snippets_in(&d.join(&sn)) == want_snips,
                "their own snippets"
            );
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(d.join(&rp)).unwrap()).unwrap();
            let entry = &report["inputs"][0];
            assert_eq!(entry["events"], want.len());
            assert_eq!(entry["dedup"]["dropped"], all.len() - want.len());
            assert_eq!(entry["dedup"]["window"], window);
            assert_eq!(entry["dedup"]["radius"], radius);
        }
    }
}

#[test]
fn dedup_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("x.npy"), 200, 3, &spread_spikes(1, 200, 3));
    write_npy(&d.join("one.npy"), 200, 1, &spread_spikes(1, 200, 1));
    let base = ["process", "x.npy", "--detect", "threshold", "--on", "10"];
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["process", "x.npy", "--dedup-samples", "5"],
            "",
            "needs --detect",
        ),
        (&["--dedup-radius", "2"], "", "give --dedup-window"),
        (
            &["--dedup-samples", "5", "--dedup-radius", "0"],
            "x.npy",
            "--dedup-radius 0",
        ),
        (&["--dedup-window", "-1"], "x.npy", "0 or more seconds"),
        (&["--dedup-window", "0.001"], "x.npy", "no sample rate"),
        (
            &["--dedup-window", "0.001", "--dedup-samples", "3"],
            "",
            "cannot be used with",
        ),
        (
            &[
                "process",
                "one.npy",
                "--detect",
                "threshold",
                "--on",
                "10",
                "--dedup-samples",
                "3",
            ],
            "one.npy",
            "at least two channels",
        ),
    ];
    for (extra, subject, phrase) in cases {
        let args: Vec<&str> = if extra.first() == Some(&"process") {
            extra.to_vec()
        } else {
            base.iter().chain(extra.iter()).copied().collect()
        };
        let out = sigstream(d, &args);
        if phrase == &"cannot be used with" {
            // clap's own conflict message, exit 2.
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(stderr(&out).contains(phrase), "{}", stderr(&out));
            continue;
        }
        assert_refused(&out, subject, phrase, &format!("{args:?}"));
    }
}
