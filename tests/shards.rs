//! Shards (`sigstream process --range START:END`): a file cut anywhere into
//! shards gives, merged, the whole run's filtered output byte for byte (each
//! shard writes its slice into one shared output) and its events row for
//! row (each shard's events file, in shard order), for every filter and
//! detector a shard accepts; and what a shard cannot do is refused.
//!
//! The reference is the same binary run over the whole file, which
//! `tests/iir.rs`, `tests/detect.rs` and the others check against scipy and
//! ObsPy; here the property is that cutting changes nothing at all.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/mod.rs"]
mod common;

use std::path::Path;

use cli::{assert_refused, sigstream, stderr, write_npy};

const FRAMES: usize = 300_000;
const CHANNELS: usize = 3;

fn run(dir: &Path, args: &[&str]) {
    let out = sigstream(dir, args);
    assert!(
        out.status.success(),
        "sigstream {args:?} failed: {}",
        stderr(&out)
    );
}

/// Noise with bursts on every channel, spikes of both signs, and one loud
/// stretch of 20,000 samples on channel 0 across the middle, so that some
/// cuts fall where the nearest sync point is far away.
fn signal() -> Vec<f32> {
    let mut x = common::bursts(FRAMES, CHANNELS, 11);
    let mut rng = common::Rng::new(5);
    for _ in 0..400 {
        let at = rng.range(0, FRAMES - 8);
        let ch = rng.range(0, CHANNELS);
        let amp = if rng.uniform() < 0.5 { -30.0 } else { 25.0 };
        for k in 0..6 {
            x[(at + k) * CHANNELS + ch] += amp * (1.0 - k as f32 / 6.0);
        }
    }
    for f in 50_000..70_000 {
        x[f * CHANNELS] += 40.0;
    }
    x
}

/// Cuts: a 1-sample shard, shards inside the loud stretch and at its
/// edges, and one ending at the file's end.
fn cuts() -> Vec<(u64, u64)> {
    let points = [
        0u64, 1, 2, 777, 49_990, 50_003, 60_000, 60_001, 70_100, 140_000, 262_100, 262_200,
        281_000, 299_999,
    ];
    let mut v: Vec<(u64, u64)> = points.windows(2).map(|w| (w[0], w[1])).collect();
    v.push((299_999, FRAMES as u64));
    // The shards tile the file.
    assert!(v.windows(2).all(|w| w[0].1 == w[1].0) && v[0].0 == 0);
    v
}

/// Runs `opts` over the whole file and over the shards of [`cuts`], and
/// checks the merged results equal the whole run's: the shared output byte
/// for byte, and the shards' events, sorted as the whole run sorts them,
/// row for row. Returns the whole run's event count.
fn shards_equal_whole(dir: &Path, name: &str, opts: &[&str]) -> usize {
    let whole_out = format!("{name}-whole.npy");
    let whole_events = format!("{name}-whole.csv");
    // With a snippet window: each run its snippets file, the shards'
    // concatenated in shard order.
    let snippets = opts.contains(&"--snippet-samples");
    let whole_snippets = format!("{name}-whole-snippets.npy");
    let mut args = vec![
        "process",
        "in.npy",
        "--output",
        &whole_out,
        "--events",
        &whole_events,
    ];
    if snippets {
        args.extend_from_slice(&["--snippets", &whole_snippets]);
    }
    args.extend_from_slice(opts);
    run(dir, &args);
    let shared = format!("{name}-shards.npy");
    let mut header = String::new();
    // Each event's row, with its snippet's bytes (empty without).
    let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, (a, b)) in cuts().into_iter().enumerate() {
        let range = format!("{a}:{b}");
        let events = format!("{name}-{k}.csv");
        let snippet_file = format!("{name}-{k}-snippets.npy");
        let mut args = vec![
            "process", "in.npy", "--output", &shared, "--events", &events, "--range", &range,
        ];
        if snippets {
            args.extend_from_slice(&["--snippets", &snippet_file]);
        }
        args.extend_from_slice(opts);
        run(dir, &args);
        let text = std::fs::read_to_string(dir.join(&events)).unwrap();
        let mut lines = text.lines();
        header = lines.next().unwrap().to_owned();
        let lines: Vec<String> = lines.map(str::to_owned).collect();
        let cut: Vec<Vec<u8>> = if snippets {
            // The shard's snippets, one per row of its events, in order.
            let bytes = std::fs::read(dir.join(&snippet_file)).unwrap();
            let data = npy_data(&bytes);
            let row = data.len().checked_div(lines.len()).unwrap_or(0);
            assert_eq!(
                row * lines.len(),
                data.len(),
                "{name} shard {k}: a snippet per event"
            );
            data.chunks(row.max(1)).map(<[u8]>::to_vec).collect()
        } else {
            vec![Vec::new(); lines.len()]
        };
        rows.extend(lines.into_iter().zip(cut));
    }
    // The merge: the shards' rows (and their snippets with them) in the
    // whole run's order, by (start, channel, end), which no two events
    // share. Sync points are per channel, so neighbouring shards' events
    // may interleave near their boundary.
    let key = |(row, _): &(String, Vec<u8>)| {
        let v: Vec<u64> = row.split(',').take(3).map(|f| f.parse().unwrap()).collect();
        (v[1], v[0], v[2])
    };
    rows.sort_by_key(key);
    let mut merged = header + "\n";
    let mut shard_snippets = Vec::new();
    for (r, snippet) in rows {
        merged.push_str(&r);
        merged.push('\n');
        shard_snippets.extend_from_slice(&snippet);
    }
    let whole = std::fs::read(dir.join(&whole_out)).unwrap();
    let sharded = std::fs::read(dir.join(&shared)).unwrap();
    assert_eq!(whole.len(), sharded.len(), "{name}: output sizes");
    let frame = |i: usize| (i - 128) / (4 * CHANNELS);
    let differ: Vec<usize> = whole
        .iter()
        .zip(&sharded)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| frame(i))
        .collect();
    if let (Some(first), Some(last)) = (differ.first(), differ.last()) {
        panic!(
            "{name}: outputs differ in {} bytes, frames {first} to {last}",
            differ.len()
        );
    }
    let want = std::fs::read_to_string(dir.join(&whole_events)).unwrap();
    if want != merged {
        let first = want
            .lines()
            .zip(merged.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(merged.lines().count()));
        panic!(
            "{name}: events differ first at row {first}: whole {:?}, shards {:?} ({} against {} rows)",
            want.lines().nth(first),
            merged.lines().nth(first),
            want.lines().count(),
            merged.lines().count()
        );
    }
    if snippets {
        let whole = std::fs::read(dir.join(&whole_snippets)).unwrap();
        let whole = npy_data(&whole);
        assert!(!whole.is_empty(), "{name}: no snippets");
        if whole != shard_snippets.as_slice() {
            let row = whole.len() / (want.lines().count() - 1);
            let first = whole
                .iter()
                .zip(&shard_snippets)
                .position(|(a, b)| a != b)
                .unwrap_or(whole.len().min(shard_snippets.len()));
            panic!(
                "{name}: snippets differ first in row {} ({} against {} bytes)",
                first / row,
                whole.len(),
                shard_snippets.len()
            );
        }
    }
    want.lines().count() - 1
}

/// The data of an `.npy` file's bytes (after its header).
fn npy_data(bytes: &[u8]) -> &[u8] {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "an .npy file");
    let (at, len) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        _ => (
            12,
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
        ),
    };
    &bytes[at + len..]
}

#[test]
fn shards_merge_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    write_npy(&dir.path().join("in.npy"), FRAMES, CHANNELS, &signal());
    // Each pipeline's options, as on the command line.
    let cases = [
        // Overlap-save FIR (301 taps), negative spikes with a dead time.
        (
            "fir-fft",
            "--sample-rate 10000 --lowpass 2000 --taps 301 --detect threshold --on 6 --off 2 \
             --polarity neg --dead-samples 40",
        ),
        // Direct FIR, classic STA/LTA (its resync schedule).
        (
            "classic",
            "--moving-average 5 --detect sta-lta --sta 20 --lta 400 --on 2.5 --off 1.2 \
             --dead-samples 300",
        ),
        // Recursive STA/LTA: its halo is 50 long windows.
        (
            "recursive",
            "--sample-rate 10000 --lowpass 3000 --detect recursive-sta-lta --sta 10 --lta 200 \
             --on 3 --off 1.5 --max-len 500",
        ),
        // The spike pipeline: IIR, median reference, per-channel MAD noise
        // levels, negative threshold, dead time.
        (
            "spikes",
            "--sample-rate 30000 --iir butter --bandpass 300:6000 --reference median \
             --detect threshold --on-noise 5 --polarity neg --dead-samples 30",
        ),
        // The spike pipeline with each spike's waveform: snippets whose
        // windows reach back before a shard's start and past its end.
        (
            "spikes-snippets",
            "--sample-rate 30000 --iir butter --bandpass 300:6000 --reference median \
             --detect threshold --on-noise 5 --polarity neg --dead-samples 30 \
             --snippet-samples 30:60",
        ),
        // All channels around each event, after a classic STA/LTA, whose
        // events last long (the window's end far past the onset).
        (
            "classic-snippets",
            "--moving-average 5 --detect sta-lta --sta 20 --lta 400 --on 2.5 --off 1.2 \
             --dead-samples 300 --snippet-samples 500:700 --snippet-channels all",
        ),
        // A short filter and detector with a long window, read in small
        // chunks: the shard's halo is the window's PRE, and it reads on for
        // its POST after the last sync point.
        (
            "short-snippets",
            "--moving-average 3 --detect threshold --on 6 --off 2 --polarity neg \
             --dead-samples 5 --snippet-samples 400:300 --chunk-size 64",
        ),
        // A low corner: a long IIR warm-up, restarts every 262,144 samples.
        (
            "iir-slow",
            "--sample-rate 100 --iir cheby1 --order 6 --highpass 0.5 --detect threshold --on 20",
        ),
        // Zero phase (sosfiltfilt, odd pads): the spike pipeline with the
        // filter streamed forwards and backwards, restarts every 65,536
        // samples forwards and every block backwards.
        (
            "zero-phase",
            "--sample-rate 30000 --iir butter --bandpass 300:6000 --zero-phase \
             --reference median --detect threshold --on-noise 5 --polarity neg --dead-samples 30",
        ),
        // ObsPy's zerophase=True (no pads), a slower filter: its last
        // block filtered backwards from the file's end.
        (
            "zero-phase-obspy",
            "--sample-rate 1000 --iir butter --order 4 --bandpass 5:100 --zero-phase --pad none \
             --detect sta-lta --sta 20 --lta 400 --on 2.5 --off 1.2 --dead-samples 300",
        ),
        // The filtered output alone: no detection, the shard stops after its
        // slice and the FIR's lookahead.
        (
            "no-detect",
            "--sample-rate 10000 --highpass 100 --taps 1001",
        ),
    ];
    for (name, opts) in cases {
        let opts: Vec<&str> = opts.split_whitespace().collect();
        let events = shards_equal_whole(dir.path(), name, &opts);
        if name != "no-detect" {
            // Trivially equal empty event lists would prove nothing.
            assert!(events > 20, "{name}: only {events} events");
        }
    }
}

#[test]
fn a_shard_reports_its_range_and_halo() {
    let dir = tempfile::tempdir().unwrap();
    write_npy(&dir.path().join("in.npy"), FRAMES, CHANNELS, &signal());
    let out = sigstream(
        dir.path(),
        &[
            "process",
            "in.npy",
            "--output",
            "o.npy",
            "--range",
            "60000:70000",
            "--moving-average",
            "11",
            "--detect",
            "threshold",
            "--on",
            "10",
            "--report",
            "-",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &report["inputs"][0];
    assert_eq!(entry["range"]["start"], 60_000);
    assert_eq!(entry["range"]["end"], 70_000);
    // 10 taps of FIR history and the quiet sample of a sync point before it.
    assert_eq!(entry["range"]["read_start"], 60_000 - 10 - 1);
}

#[test]
fn what_a_shard_cannot_do_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("in.npy"), 1000, 2, &vec![0.5; 2000]);
    let base = ["process", "in.npy", "--output", "o.npy"];
    let refused = |extra: &str, subject: &str, phrase: &str| {
        let mut args = base.to_vec();
        args.extend(extra.split_whitespace());
        let out = sigstream(d, &args);
        assert_refused(&out, subject, phrase, &format!("{extra:?}"));
        assert!(!d.join("o.npy").exists(), "{extra:?}: no output");
    };
    refused("--range 0:1001", "in.npy", "the input has 1000 samples");
    for (extra, phrase) in [
        (
            "--iir cheby1 --order 6 --highpass 0.5 --sample-rate 100 --zero-phase --memory-limit 8",
            "--range with --zero-phase: the memory limit leaves the streaming filter too little room",
        ),
        ("--decimate 2", "--range with --decimate"),
        (
            "--detect threshold --on 1 --off 2",
            "--range with --off above --on",
        ),
        (
            "--moving-average 3 --conv-mode full",
            "--range with --conv-mode full or valid",
        ),
    ] {
        refused(&format!("--range 0:10 {extra}"), "", phrase);
    }
    for bad in ["5:5", "9:3", "x:3", "7"] {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--range", bad]);
        let out = sigstream(d, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--range {bad}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("--range"),
            "--range {bad}: {}",
            stderr(&out)
        );
    }
    // An existing file that is not this input's output is not written.
    std::fs::write(d.join("other.npy"), b"precious").unwrap();
    let out = sigstream(
        d,
        &[
            "process",
            "in.npy",
            "--output",
            "other.npy",
            "--range",
            "0:10",
        ],
    );
    assert_refused(
        &out,
        "other.npy",
        "is not this input's output",
        "foreign output",
    );
    assert_eq!(std::fs::read(d.join("other.npy")).unwrap(), b"precious");
}

#[test]
fn standard_input_cannot_be_cut() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(dir.path())
        .args([
            "process", "-", "--dtype", "f32", "--output", "o.f32", "--range", "0:10",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The refusal may come before the input is read.
    let _ = child.stdin.take().unwrap().write_all(&[0u8; 400]);
    let out = child.wait_with_output().unwrap();
    assert_refused(&out, "-", "a shard seeks to its start", "stdin");
}
