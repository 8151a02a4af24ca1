//! The detection options of `sigstream process`, end to end through the
//! CLI: noise levels (`--on-noise`, `--noise-chunks`,
//! `--noise-chunk-samples`, from files and from standard input), polarity,
//! dead time, network coincidence (`--coincidence-sum`,
//! `--coincidence-window`, `--weights`, `--network-events`), their
//! refusals, chunk-size invariance and the GPU backend's routing.
//!
//! The references are computed here, in `f64`, from the run's own outputs:
//! the MAD by a full sort (NumPy's median), the threshold trigger as a plain
//! loop over whole channels, ObsPy's `coincidence_trigger` as a plain loop
//! over all the triggers at once. The inputs are written by each test into
//! a temporary directory from a seeded generator.

#[path = "common/cli.rs"]
mod cli;
mod common;
#[path = "common/reference.rs"]
mod reference;

use std::path::Path;
use std::process::Output;

use cli::{assert_refused, sigstream, stderr, write_npy};
use common::Rng;
use reference::mad_by_sort;

/// Relative to the level: how far a noise level estimated after an IIR
/// filter may lie from the MAD of the streamed output at the same frames.
/// Each chunk is filtered from rest after a warm-up in which the IIR's
/// impulse response falls below 1e-7 of its peak (`src/pipeline/noise.rs`),
/// so each value differs from the streamed one by about 1e-7 of the
/// signal's scale (plus f32 rounding, also 1e-7); the median reference
/// moves by no more than its inputs, and a MAD by at most twice the largest
/// change of a value. 1e-5 leaves a factor of 20 or more over that, and is
/// 1000 times smaller than what leaving the filter out changes (checked).
const NOISE_REL_TOL: f64 = 1e-5;

/// How far the MAD of 4000 normal samples may lie from their σ, relative:
/// its standard error is about 1.17/√4000 ≈ 2 %; 15 % is beyond 7 of them.
/// (A sanity check of the generator, not of sigstream.)
const SIGMA_REL_TOL: f64 = 0.15;

/// Relative difference allowed between the GPU's and the CPU's filtered
/// samples (of the signal's scale): the moving average's sums in another
/// order, a few f32 roundings (tests/gpu_backend.rs allows the same).
#[cfg(feature = "gpu")]
const GPU_SIGNAL_REL_TOL: f64 = 1e-5;

// ------------------------------------------------------------- helpers

/// Reads a float32 .npy: its shape and data.
fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("a valid npy file");
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().expect("f32 data"))
}

/// Raw little-endian f32 bytes.
fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Reads raw little-endian f32 samples.
fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Channel `c` of interleaved frames.
fn channel(x: &[f32], channels: usize, c: usize) -> Vec<f32> {
    x.iter().skip(c).step_by(channels).copied().collect()
}

/// Gaussian noise of standard deviation `scales[c]` on channel `c`.
fn gaussian(seed: u64, frames: usize, scales: &[f64]) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x = Vec::with_capacity(frames * scales.len());
    for _ in 0..frames {
        for s in scales {
            x.push((rng.normal() * s) as f32);
        }
    }
    x
}

/// Runs `sigstream args` in `dir` and requires success.
fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = sigstream(dir, args);
    assert!(
        out.status.success(),
        "sigstream {args:?} failed: {}",
        stderr(&out)
    );
    out
}

/// Runs `sigstream args` in `dir` with `stdin` (raw f32) written into a
/// pipe, which cannot seek, from a thread (a child that stops reading early
/// cannot block us); without it, stdin is empty.
fn sigstream_fed(dir: &Path, args: &[&str], stdin: Option<&Vec<f32>>) -> Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sigstream starts");
    let bytes = stdin.map_or_else(Vec::new, |x| f32_bytes(x));
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("sigstream runs");
    feeder.join().expect("the feeder does not panic");
    out
}

/// The documented chunk starts (`NoiseChunks::positions`): none for 0
/// frames, `[0]` when the recording fits one chunk, else
/// `K = min(chunks, ⌊N/L⌋)` starts `⌊i·(N − L)/(K − 1)⌋` (`[0]` for K = 1).
fn documented_positions(n: u64, chunks: u64, l: u64) -> Vec<u64> {
    if n == 0 {
        return vec![];
    }
    if n <= l {
        return vec![0];
    }
    let k = chunks.min(n / l);
    if k == 1 {
        return vec![0];
    }
    (0..k).map(|i| i * (n - l) / (k - 1)).collect()
}

/// The values of channel `c` of `y` in the chunks at `positions`.
fn chunk_values(y: &[f32], channels: usize, c: usize, positions: &[u64], l: usize) -> Vec<f32> {
    let ch = channel(y, channels, c);
    positions
        .iter()
        .flat_map(|&p| ch[p as usize..p as usize + l].iter().copied())
        .collect()
}

/// The numbers of the one array `"key": [...]` in a JSON text, parsed as
/// Rust parses floats (correctly rounded; serde_json's default parser may
/// be one ULP off, and these are compared exactly).
fn exact_array(json: &str, key: &str) -> Vec<f64> {
    let open = format!("\"{key}\": [");
    assert_eq!(json.matches(&open).count(), 1, "one {open} in the report");
    let from = json.find(&open).unwrap() + open.len();
    let to = from + json[from..].find(']').unwrap();
    json[from..to]
        .split(',')
        .map(|s| s.trim().parse::<f64>().unwrap())
        .collect()
}

/// The report's first input.
fn input_entry(report: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(report).unwrap();
    v["inputs"][0].clone()
}

/// One channel event as the events CSV has it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ev {
    channel: usize,
    start: u64,
    end: u64,
    peak_index: u64,
    peak_value: f64,
}

/// The events of an events CSV (its first five columns), sorted by
/// channel, then start.
fn parse_events(text: &str) -> Vec<Ev> {
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    assert!(
        header.starts_with("channel,start,end,peak_index,peak_value"),
        "events CSV header: {header}"
    );
    let mut all: Vec<Ev> = lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Ev {
                channel: f[0].parse().unwrap(),
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
                peak_index: f[3].parse().unwrap(),
                peak_value: f[4].parse().unwrap(),
            }
        })
        .collect();
    all.sort_by_key(|e| (e.channel, e.start));
    all
}

fn events_in(path: &Path) -> Vec<Ev> {
    parse_events(&std::fs::read_to_string(path).unwrap())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pol {
    Pos,
    Neg,
    Both,
}

/// The threshold detector as a plain loop over one whole channel: cft = y,
/// −y or |y| in f64; an onset is the first index with cft >= on; the
/// event ends at the last index of the run with cft >= off from there
/// (off <= on here); with a dead time, a later onset before start + dead
/// merges into the event (which then ends where that onset's run ends),
/// and one at start + dead or later starts a new event; the peak is the
/// first maximum of cft over [start, end].
fn reference_events(y: &[f32], channel: usize, on: f64, off: f64, pol: Pol, dead: u64) -> Vec<Ev> {
    assert!(off <= on, "this reference covers off <= on");
    let cft: Vec<f64> = y
        .iter()
        .map(|&v| match pol {
            Pol::Pos => f64::from(v),
            Pol::Neg => -f64::from(v),
            Pol::Both => f64::from(v).abs(),
        })
        .collect();
    let run_end = |i: usize| {
        let mut e = i;
        while e + 1 < cft.len() && cft[e + 1] >= off {
            e += 1;
        }
        e
    };
    let mut events = Vec::new();
    let mut i = 0;
    while i < cft.len() {
        if cft[i] < on {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = run_end(i);
        // Later onsets inside the dead window join the event.
        let mut j = end + 1;
        while j < cft.len() && (j as u64) < start as u64 + dead {
            if cft[j] >= on {
                end = run_end(j);
                j = end + 1;
            } else {
                j += 1;
            }
        }
        let mut peak = start;
        for k in start..=end {
            if cft[k] > cft[peak] {
                peak = k;
            }
        }
        events.push(Ev {
            channel,
            start: start as u64,
            end: end as u64,
            peak_index: peak as u64,
            peak_value: cft[peak],
        });
        i = end + 1;
    }
    events
}

/// Asserts two event lists are equal, naming the first difference.
fn assert_same_events(got: &[Ev], want: &[Ev], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first differing event #{i}: got {:?}, want {:?}",
            got[i], want[i]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: event counts");
}

/// Unit-σ noise scaled per channel, with negative spikes (the shape of an
/// extracellular spike: a sharp trough and a slow positive rebound) and a
/// few positive ones of the same size, at random places.
fn spiky(seed: u64, frames: usize, scales: &[f64]) -> Vec<f32> {
    let mut x = gaussian(seed, frames, scales);
    let mut rng = Rng::new(seed ^ 0x5eed);
    let shape = [-0.3, -1.0, -0.7, -0.2, 0.15, 0.25, 0.2, 0.1];
    let channels = scales.len();
    for (c, &s) in scales.iter().enumerate() {
        for k in 0..60 {
            let at = rng.range(0, frames - shape.len());
            let amp = s * (12.0 + 10.0 * rng.uniform()) * if k % 6 == 5 { -1.0 } else { 1.0 };
            for (i, v) in shape.iter().enumerate() {
                x[(at + i) * channels + c] += (amp * v) as f32;
            }
        }
    }
    x
}

// ----------------------------------------------------- 1. noise, no filter

#[test]
fn noise_levels_are_the_mad_of_the_output_at_the_documented_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, scales) = (120_000, [1.0, 2.5, 6.0]);
    let x = gaussian(1, frames, &scales);
    write_npy(&d.join("x.npy"), frames, 3, &x);
    ok(
        d,
        &[
            "process",
            "x.npy",
            "--detect",
            "threshold",
            "--on-noise",
            "5",
            "--noise-chunks",
            "4",
            "--noise-chunk-samples",
            "1000",
            "--report",
            "r.json",
            "-o",
            "y.npy",
            "-q",
        ],
    );
    let report = std::fs::read_to_string(d.join("r.json")).unwrap();
    let entry = input_entry(&report);
    let noise = &entry["noise"];
    let positions: Vec<u64> = serde_json::from_value(noise["positions"].clone()).unwrap();
    // ⌊i · 119000 / 3⌋.
    assert_eq!(positions, [0, 39_666, 79_333, 119_000]);
    assert_eq!(positions, documented_positions(120_000, 4, 1000));
    assert_eq!(noise["chunk_samples"], 1000);
    assert_eq!(noise["from_start"], false);
    assert_eq!(noise["warmup"], 0, "no filter, no warm-up");
    let (shape, y) = read_npy(&d.join("y.npy"));
    assert_eq!(shape, [frames as u64, 3]);
    assert!(
        y.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()),
        "without a filter the output is the input"
    );
    let levels = exact_array(&report, "levels");
    assert_eq!(levels.len(), 3);
    for (c, &level) in levels.iter().enumerate() {
        let want = mad_by_sort(&chunk_values(&y, 3, c, &positions, 1000));
        assert_eq!(level, want, "channel {c}: noise level vs MAD of its chunks");
        let rel = (level / scales[c] - 1.0).abs();
        assert!(
            rel < SIGMA_REL_TOL,
            "channel {c}: {level} for σ {}",
            scales[c]
        );
    }
    // The detector's levels are 5 × (and the off levels, by default, too).
    let on = exact_array(&report, "on");
    let off = exact_array(&report, "off");
    for c in 0..3 {
        assert_eq!(on[c], 5.0 * levels[c], "channel {c}: on");
        assert_eq!(off[c], 5.0 * levels[c], "channel {c}: off");
    }
    assert_eq!(entry["detector"]["on_noise"], 5.0);

    // A recording that cannot hold all the chunks asked for: ⌊10500/1000⌋
    // = 10 of them, ⌊i · 9500 / 9⌋ apart.
    let short = &x[..10_500 * 3];
    write_npy(&d.join("s.npy"), 10_500, 3, short);
    ok(
        d,
        &[
            "process",
            "s.npy",
            "--detect",
            "threshold",
            "--on-noise",
            "4",
            "--noise-chunk-samples",
            "1000",
            "--report",
            "s.json",
            "-q",
        ],
    );
    let report = std::fs::read_to_string(d.join("s.json")).unwrap();
    let positions: Vec<u64> =
        serde_json::from_value(input_entry(&report)["noise"]["positions"].clone()).unwrap();
    assert_eq!(positions, documented_positions(10_500, 20, 1000));
    assert_eq!(positions.len(), 10);
    assert_eq!(positions[1], 1055);
    let levels = exact_array(&report, "levels");
    for (c, &level) in levels.iter().enumerate() {
        let want = mad_by_sort(&chunk_values(short, 3, c, &positions, 1000));
        assert_eq!(level, want, "short recording, channel {c}");
    }
}

// ------------------------------------------ 2. noise after IIR + reference

#[test]
fn noise_after_an_iir_and_a_median_reference_is_the_mad_of_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, scales) = (120_000, [1.0, 2.0, 3.0, 5.0]);
    let x = gaussian(2, frames, &scales);
    write_npy(&d.join("x.npy"), frames, 4, &x);
    ok(
        d,
        &[
            "process",
            "x.npy",
            "--sample-rate",
            "30000",
            "--iir",
            "butter",
            "--order",
            "4",
            "--bandpass",
            "300:6000",
            "--reference",
            "median",
            "--detect",
            "threshold",
            "--on-noise",
            "5",
            "--noise-chunks",
            "4",
            "--noise-chunk-samples",
            "1000",
            "--report",
            "r.json",
            "-o",
            "y.npy",
            "-q",
        ],
    );
    let report = std::fs::read_to_string(d.join("r.json")).unwrap();
    let noise = input_entry(&report)["noise"].clone();
    let positions: Vec<u64> = serde_json::from_value(noise["positions"].clone()).unwrap();
    assert_eq!(positions, documented_positions(120_000, 4, 1000));
    assert!(noise["warmup"].as_u64().unwrap() > 0, "an IIR is warmed up");
    let (_, y) = read_npy(&d.join("y.npy"));
    let levels = exact_array(&report, "levels");
    for (c, &level) in levels.iter().enumerate() {
        let want = mad_by_sort(&chunk_values(&y, 4, c, &positions, 1000));
        let rel = (level - want).abs() / want;
        assert!(
            rel <= NOISE_REL_TOL,
            "channel {c}: level {level} vs MAD {want} of the output (rel {rel:e})"
        );
        // The tolerance is far finer than what the filter and the
        // reference change.
        let raw = mad_by_sort(&chunk_values(&x, 4, c, &positions, 1000));
        assert!(
            (level - raw).abs() / raw > 1000.0 * NOISE_REL_TOL,
            "channel {c}: the level is that of the filtered signal ({level} vs raw {raw})"
        );
    }
}

// ----------------------------------------------------- 3. noise from stdin

#[test]
fn noise_from_stdin_comes_from_the_first_frames_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, scales) = (50_000, [1.0, 3.0, 2.0]);
    let x = spiky(3, frames, &scales);
    std::fs::write(d.join("x.f32"), f32_bytes(&x)).unwrap();
    let common = [
        "--dtype",
        "f32",
        "--channels",
        "3",
        "--sample-rate",
        "30000",
        "--reference",
        "median",
        "--detect",
        "threshold",
        "--polarity",
        "neg",
        "--on-noise",
        "4",
        "--noise-chunks",
        "4",
        "--noise-chunk-samples",
        "1000",
        "-q",
    ];
    let run = |input: &str, tag: &str, extra: &[&str]| {
        let (y, ev, r) = (
            format!("y-{tag}.f32"),
            format!("ev-{tag}.csv"),
            format!("r-{tag}.json"),
        );
        let mut args = vec!["process", input, "-o", &y, "--events", &ev, "--report", &r];
        args.extend_from_slice(&common);
        args.extend_from_slice(extra);
        let out = sigstream_fed(d, &args, (input == "-").then_some(&x));
        assert!(out.status.success(), "{tag}: {}", stderr(&out));
    };
    run("x.f32", "file", &[]);
    // The default noise block (4096 frames) and a chunk size that does not
    // divide the 4000 frames measured: both read past them while spooling.
    for (tag, extra) in [
        ("stdin", &[][..]),
        ("stdin-1500", &["--chunk-size", "1500"][..]),
    ] {
        run("-", tag, extra);
        let report = std::fs::read_to_string(d.join(format!("r-{tag}.json"))).unwrap();
        let entry = input_entry(&report);
        assert_eq!(entry["noise"]["from_start"], true, "{tag}");
        let positions: Vec<u64> =
            serde_json::from_value(entry["noise"]["positions"].clone()).unwrap();
        assert_eq!(positions, [0, 1000, 2000, 3000], "{tag}: contiguous from 0");
        assert_eq!(entry["samples"], frames, "{tag}: every frame once");
        let y = read_f32(&d.join(format!("y-{tag}.f32")));
        let y_file = read_f32(&d.join("y-file.f32"));
        assert_eq!(y.len(), frames * 3, "{tag}: output frames");
        assert!(
            y.iter()
                .zip(&y_file)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{tag}: the output equals the file input's bit for bit"
        );
        let levels = exact_array(&report, "levels");
        let mut want = Vec::new();
        for (c, &level) in levels.iter().enumerate() {
            let first = &channel(&y, 3, c)[..4000];
            assert_eq!(
                level,
                mad_by_sort(first),
                "{tag}: channel {c}: MAD of the first 4000 frames"
            );
            want.extend(reference_events(
                &channel(&y, 3, c),
                c,
                4.0 * level,
                4.0 * level,
                Pol::Neg,
                0,
            ));
        }
        let got = events_in(&d.join(format!("ev-{tag}.csv")));
        assert!(got.len() >= 100, "{tag}: the spikes are found");
        assert_same_events(&got, &want, tag);
    }
    // The same explicit level gives the same events from a file and a pipe.
    let explicit = |input: &str, tag: &str| {
        let ev = format!("ev-{tag}.csv");
        let mut args = vec!["process", input, "--events", &ev];
        // The input and filter options, then an explicit level.
        args.extend_from_slice(&common[..8]);
        args.extend_from_slice(&["--detect", "threshold", "--on", "6", "-q"]);
        let out = sigstream_fed(d, &args, (input == "-").then_some(&x));
        assert!(out.status.success(), "{tag}: {}", stderr(&out));
        events_in(&d.join(ev))
    };
    let a = explicit("x.f32", "explicit-file");
    let b = explicit("-", "explicit-stdin");
    assert!(!a.is_empty());
    assert_same_events(&b, &a, "explicit --on, stdin vs file");
}

// ------------------------- 4. and 9. per-channel levels, chunk invariance

/// The spike-detection run of tests 4 and 9: band-pass, median reference,
/// negative spikes at 5 × each channel's noise, 30 samples of dead time;
/// `chunk` is the `--chunk-size` (none: the planned one). Returns the
/// output, its events and the report.
fn spike_run(d: &Path, chunk: Option<&str>) -> (Vec<f32>, Vec<Ev>, String) {
    let tag = chunk.unwrap_or("planned");
    let (y, ev, r) = (
        format!("y-{tag}.npy"),
        format!("ev-{tag}.csv"),
        format!("r-{tag}.json"),
    );
    let mut args = vec![
        "process",
        "x.npy",
        "--sample-rate",
        "30000",
        "--iir",
        "butter",
        "--order",
        "4",
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
        "--noise-chunks",
        "8",
        "--noise-chunk-samples",
        "2000",
        "--dead-samples",
        "30",
        "-o",
        &y,
        "--events",
        &ev,
        "--report",
        &r,
        "-q",
    ];
    if let Some(n) = chunk {
        args.extend_from_slice(&["--chunk-size", n]);
    }
    ok(d, &args);
    (
        read_npy(&d.join(&y)).1,
        events_in(&d.join(&ev)),
        std::fs::read_to_string(d.join(&r)).unwrap(),
    )
}

const SPIKE_SCALES: [f64; 4] = [1.0, 2.0, 3.0, 5.0];

fn spike_input(d: &Path) {
    let x = spiky(4, 120_000, &SPIKE_SCALES);
    write_npy(&d.join("x.npy"), 120_000, 4, &x);
}

#[test]
fn noise_levels_detect_as_explicit_per_channel_levels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    spike_input(d);
    let (y, events, report) = spike_run(d, None);
    let levels = exact_array(&report, "levels");
    let on = exact_array(&report, "on");
    let mut want = Vec::new();
    for c in 0..4 {
        assert_eq!(on[c], 5.0 * levels[c]);
        let yc = channel(&y, 4, c);
        want.extend(reference_events(&yc, c, on[c], on[c], Pol::Neg, 30));
        // The channel alone, with its level given: the same events.
        write_npy(&d.join(format!("y{c}.npy")), yc.len(), 1, &yc);
        let (input, ev, level) = (
            format!("y{c}.npy"),
            format!("alone{c}.csv"),
            on[c].to_string(),
        );
        ok(
            d,
            &[
                "process",
                &input,
                "--detect",
                "threshold",
                "--on",
                &level,
                "--polarity",
                "neg",
                "--dead-samples",
                "30",
                "--events",
                &ev,
                "-q",
            ],
        );
        let alone: Vec<Ev> = events_in(&d.join(&ev))
            .into_iter()
            .map(|e| Ev { channel: c, ..e })
            .collect();
        let mine: Vec<Ev> = events.iter().filter(|e| e.channel == c).copied().collect();
        assert!(mine.len() >= 20, "channel {c}: its spikes are found");
        assert_same_events(&mine, &alone, &format!("channel {c} vs --on {level}"));
    }
    assert_same_events(&events, &want, "events vs the reference detector");
    // The levels differ enough between channels that one level for all
    // would not do (the test could fail).
    assert!(levels[3] > 2.0 * levels[0], "levels {levels:?}");
}

#[test]
fn the_spike_run_is_the_same_for_any_chunk_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    spike_input(d);
    let (y, events, report) = spike_run(d, None);
    assert!(!events.is_empty());
    for chunk in ["97", "1000"] {
        let (y2, events2, report2) = spike_run(d, Some(chunk));
        assert_eq!(y2.len(), y.len(), "chunk {chunk}: output length");
        if let Some(i) = (0..y.len()).find(|&i| y[i].to_bits() != y2[i].to_bits()) {
            panic!(
                "chunk {chunk}: output differs at {i}: {} vs {}",
                y2[i], y[i]
            );
        }
        assert_same_events(&events2, &events, &format!("chunk {chunk}"));
        assert_eq!(
            exact_array(&report2, "levels"),
            exact_array(&report, "levels"),
            "chunk {chunk}: noise levels"
        );
    }
}

// ------------------------------------------------------------ 5. polarity

#[test]
fn polarity_picks_positive_negative_or_both_excursions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut x = vec![0.0f32; 1000 * 2];
    let mut put = |c: usize, at: usize, v: &[f32]| {
        for (i, &s) in v.iter().enumerate() {
            x[(at + i) * 2 + c] = s;
        }
    };
    put(0, 100, &[2.0, 7.0, 4.0, 6.0, 0.5]);
    put(0, 300, &[-1.0, -8.0, -9.0, -2.0, -0.5]);
    put(1, 500, &[-6.0]);
    put(1, 700, &[5.0, 5.0, 3.0]);
    put(0, 900, &[12.0, -12.0]);
    write_npy(&d.join("x.npy"), 1000, 2, &x);
    let ev = |channel, start, end, peak_index, peak_value| Ev {
        channel,
        start,
        end,
        peak_index,
        peak_value,
    };
    // on 5, off 1: onset at the first sample >= 5, end at the last >= 1.
    let cases = [
        (
            "pos",
            vec![
                ev(0, 101, 103, 101, 7.0),
                ev(0, 900, 900, 900, 12.0),
                ev(1, 700, 702, 700, 5.0),
            ],
        ),
        (
            "neg",
            vec![
                ev(0, 301, 303, 302, 9.0),
                ev(0, 901, 901, 901, 12.0),
                ev(1, 500, 500, 500, 6.0),
            ],
        ),
        (
            "both",
            vec![
                ev(0, 101, 103, 101, 7.0),
                ev(0, 301, 303, 302, 9.0),
                ev(0, 900, 901, 900, 12.0),
                ev(1, 500, 500, 500, 6.0),
                ev(1, 700, 702, 700, 5.0),
            ],
        ),
    ];
    for (polarity, want) in cases {
        let csv = format!("{polarity}.csv");
        ok(
            d,
            &[
                "process",
                "x.npy",
                "--detect",
                "threshold",
                "--on",
                "5",
                "--off",
                "1",
                "--polarity",
                polarity,
                "--events",
                &csv,
                "-q",
            ],
        );
        assert_same_events(&events_in(&d.join(&csv)), &want, polarity);
        // And the reference detector agrees on the hand-made signal.
        let pol = match polarity {
            "pos" => Pol::Pos,
            "neg" => Pol::Neg,
            _ => Pol::Both,
        };
        let mut reference = reference_events(&channel(&x, 2, 0), 0, 5.0, 1.0, pol, 0);
        reference.extend(reference_events(&channel(&x, 2, 1), 1, 5.0, 1.0, pol, 0));
        assert_same_events(&reference, &want, &format!("{polarity}: reference"));
    }
    for on in [["--on", "-3"], ["--on=-3", "--polarity=both"]] {
        let mut args = vec![
            "process",
            "x.npy",
            "--detect",
            "threshold",
            "--events",
            "n.csv",
        ];
        args.extend_from_slice(&on);
        let out = sigstream(d, &args);
        assert_refused(&out, "", "--polarity neg", &format!("{on:?}"));
        assert!(!d.join("n.csv").exists());
    }
}

// ----------------------------------------------------------- 6. dead time

#[test]
fn dead_time_merges_crossings_closer_than_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut x = vec![0.0f32; 1000];
    // Single-sample crossings 5 samples apart, then one alone.
    let heights = [3.0, 4.0, 9.0, 5.0, 3.0, 8.0, 4.0, 3.0, 6.0, 7.0];
    for (i, h) in heights.iter().enumerate() {
        x[100 + 5 * i] = *h;
    }
    x[500] = -3.0;
    write_npy(&d.join("x.npy"), 1000, 1, &x);
    let run = |extra: &[&str], csv: &str| -> String {
        let mut args = vec![
            "process",
            "x.npy",
            "--sample-rate",
            "10000",
            "--detect",
            "threshold",
            "--on",
            "2",
            "--events",
            csv,
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(d, &args);
        std::fs::read_to_string(d.join(csv)).unwrap()
    };
    let none = parse_events(&run(&[], "none.csv"));
    assert_eq!(
        none.len(),
        11,
        "without dead time each crossing is an event"
    );
    let text = run(&["--dead-samples", "20"], "dead.csv");
    let got = parse_events(&text);
    let ev = |start, end, peak_index, peak_value| Ev {
        channel: 0,
        start,
        end,
        peak_index,
        peak_value,
    };
    // Onsets at 105, 110, 115 fall in [100, 120) and merge; 120 starts
    // the next event (at exactly start + dead), and so on.
    let want = [
        ev(100, 115, 110, 9.0),
        ev(120, 135, 125, 8.0),
        ev(140, 145, 145, 7.0),
        ev(500, 500, 500, 3.0),
    ];
    assert_same_events(&got, &want, "--dead-samples 20");
    assert_same_events(
        &reference_events(&x, 0, 2.0, 2.0, Pol::Both, 20),
        &want,
        "reference",
    );
    for w in got.windows(2) {
        assert!(w[1].start >= w[0].start + 20, "{w:?}: onsets 20 apart");
    }
    for e in &got {
        let span = &x[e.start as usize..=e.end as usize];
        let top = span.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
        assert_eq!(e.peak_value, top, "{e:?}: the peak is the span's extremum");
    }
    // 0.002 s at 10 kHz is 20 samples: the same file, byte for byte.
    assert_eq!(run(&["--dead-time", "0.002"], "seconds.csv"), text);
}

// --------------------------------------------------------- 7. coincidence

/// A network event as the network events CSV has it.
#[derive(Debug, Clone, PartialEq)]
struct Net {
    start: u64,
    end: u64,
    channels: Vec<usize>,
    sum: f64,
    peak_index: u64,
    peak_value: f64,
}

/// ObsPy's `coincidence_trigger` over all the triggers at once: sort by
/// (start, end, channel); each trigger in turn heads a group, to which the
/// later triggers are added in order (a channel already in is skipped; the
/// first other one starting after off + ext ends the group; off = max(off,
/// its end)); a group is dropped if its sum of weights is below `thr` or
/// its off is not after the last kept group's. The peak is the member's
/// with the largest peak_value (the first in joining order).
fn coincidence_reference(triggers: &[Ev], weights: &[f64], thr: f64, ext: u64) -> Vec<Net> {
    let mut t = triggers.to_vec();
    t.sort_by_key(|e| (e.start, e.end, e.channel));
    let mut out = Vec::new();
    let mut last_off: Option<u64> = None;
    for (i, head) in t.iter().enumerate() {
        let mut members = vec![*head];
        let mut off = head.end;
        let mut sum = weights[head.channel];
        for later in &t[i + 1..] {
            if members.iter().any(|m| m.channel == later.channel) {
                continue;
            }
            if later.start > off + ext {
                break;
            }
            members.push(*later);
            sum += weights[later.channel];
            off = off.max(later.end);
        }
        if sum < thr || last_off.is_some_and(|l| off <= l) {
            continue;
        }
        last_off = Some(off);
        let mut peak = members[0];
        for m in &members {
            if m.peak_value > peak.peak_value {
                peak = *m;
            }
        }
        out.push(Net {
            start: head.start,
            end: off,
            channels: members.iter().map(|m| m.channel).collect(),
            sum,
            peak_index: peak.peak_index,
            peak_value: peak.peak_value,
        });
    }
    out
}

/// The rows of a network events CSV of a run at `fs` Hz, checking the
/// header and the derived columns.
fn parse_network(text: &str, fs: f64) -> Vec<Net> {
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "start,end,duration,channels,coincidence_sum,peak_index,peak_value,start_s,end_s,duration_s,peak_s"
        )
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 11, "{line}");
            let int = |s: &str| s.parse::<u64>().unwrap();
            let num = |s: &str| s.parse::<f64>().unwrap();
            let n = Net {
                start: int(f[0]),
                end: int(f[1]),
                channels: f[3].split(';').map(|c| c.parse().unwrap()).collect(),
                sum: num(f[4]),
                peak_index: int(f[5]),
                peak_value: num(f[6]),
            };
            assert_eq!(int(f[2]), n.end - n.start, "{line}: duration");
            assert_eq!(num(f[7]), n.start as f64 / fs, "{line}: start_s");
            assert_eq!(num(f[8]), n.end as f64 / fs, "{line}: end_s");
            assert_eq!(
                num(f[9]),
                (n.end - n.start) as f64 / fs,
                "{line}: duration_s"
            );
            assert_eq!(num(f[10]), n.peak_index as f64 / fs, "{line}: peak_s");
            n
        })
        .collect()
}

#[test]
fn network_events_are_obspys_coincidence_groups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, channels, fs) = (5000, 4, 1000.0);
    let mut x = vec![0.0f32; frames * channels];
    // (channel, start, length, amplitude): rectangular bursts, so each is
    // one trigger from its start to its last sample.
    let bursts = [
        // Three channels within 6 samples.
        (0, 1000, 20, 5.0),
        (1, 1003, 15, 7.0),
        (2, 1006, 10, 6.0),
        // One channel alone.
        (3, 1500, 10, 4.0),
        // Two channels (channel 1 joins: 2015 <= 2009 + 10; channel 2 comes
        // too late: 2040 > 2024 + 10): a group for weights only.
        (0, 2000, 10, 3.0),
        (1, 2015, 10, 4.0),
        (2, 2040, 10, 5.0),
        // A chain: each starts within 10 samples of the group's end.
        (3, 3000, 5, 2.0),
        (2, 3012, 5, 3.0),
        (1, 3025, 5, 9.0),
        // A retrigger of channel 0 inside a group: skipped there, it heads
        // a group of its own that ends where the first does (dropped).
        (0, 4000, 5, 3.0),
        (0, 4008, 5, 8.0),
        (1, 4010, 30, 4.0),
        (2, 4045, 10, 5.0),
    ];
    for (c, start, len, amp) in bursts {
        for i in start..start + len {
            x[i * channels + c] = amp;
        }
    }
    let noise = gaussian(7, frames, &[0.01; 4]);
    for (v, n) in x.iter_mut().zip(&noise) {
        *v += n;
    }
    write_npy(&d.join("x.npy"), frames, channels, &x);
    let run = |weights: Option<&str>, tag: &str| -> (Vec<Ev>, Vec<Net>, serde_json::Value) {
        let (ev, net, r) = (
            format!("ev-{tag}.csv"),
            format!("net-{tag}.csv"),
            format!("r-{tag}.json"),
        );
        let mut args = vec![
            "process",
            "x.npy",
            "--sample-rate",
            "1000",
            "--detect",
            "threshold",
            "--on",
            "1",
            "--coincidence-sum",
            "3",
            "--coincidence-window",
            "0.01",
            "--network-events",
            &net,
            "--events",
            &ev,
            "--report",
            &r,
            "-q",
        ];
        if let Some(w) = weights {
            args.extend_from_slice(&["--weights", w]);
        }
        ok(d, &args);
        let report = std::fs::read_to_string(d.join(&r)).unwrap();
        (
            events_in(&d.join(&ev)),
            parse_network(&std::fs::read_to_string(d.join(&net)).unwrap(), fs),
            input_entry(&report),
        )
    };
    for (weights, w, starts) in [
        (None, vec![1.0; 4], vec![1000, 3000, 4000]),
        (
            Some("1,2,1,0.5"),
            vec![1.0, 2.0, 1.0, 0.5],
            vec![1000, 2000, 3000, 4000],
        ),
    ] {
        let tag = weights.map_or("uniform", |_| "weighted");
        let (triggers, got, entry) = run(weights, tag);
        assert_eq!(triggers.len(), bursts.len(), "{tag}: one trigger per burst");
        let want = coincidence_reference(&triggers, &w, 3.0, 10);
        assert_eq!(got, want, "{tag}: network events vs the reference");
        let got_starts: Vec<u64> = got.iter().map(|n| n.start).collect();
        assert_eq!(got_starts, starts, "{tag}: the groups designed");
        assert_eq!(entry["network_events"], got.len(), "{tag}: report");
    }
    // The first group by hand: channels in joining order, the loudest
    // member's peak, the group's end the latest end.
    let (_, got, _) = run(None, "again");
    assert_eq!(got[0].channels, [0, 1, 2]);
    assert_eq!((got[0].end, got[0].sum), (1019, 3.0));
    assert_eq!(got[2].channels, [0, 1, 2], "the retrigger is skipped");
    assert_eq!(got[2].end, 4054);
}

// ------------------------------------------------------------ 8. refusals

#[test]
fn bad_detection_options_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("x.npy"), 2000, 3, &gaussian(8, 2000, &[1.0; 3]));
    write_npy(&d.join("one.npy"), 2000, 1, &gaussian(9, 2000, &[1.0]));
    std::fs::write(d.join("x.cf32"), f32_bytes(&gaussian(10, 2000, &[1.0; 2]))).unwrap();
    let thr = ["--detect", "threshold"];
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec![
                "x.npy",
                "--detect",
                "sta-lta",
                "--sta",
                "10",
                "--lta",
                "100",
                "--on-noise",
                "5",
            ],
            "",
            "it needs --detect threshold",
        ),
        (
            vec!["x.npy", "--on-noise", "5"],
            "",
            "--on-noise needs --detect",
        ),
        (
            [&["x.npy"][..], &thr, &["--on-noise", "0"]].concat(),
            "",
            "--on-noise 0: a positive number",
        ),
        (
            [
                &["x.npy"][..],
                &thr,
                &["--on-noise", "5", "--noise-chunks", "0"],
            ]
            .concat(),
            "",
            "at least 1 chunk",
        ),
        (
            [
                &["x.npy"][..],
                &thr,
                &["--on", "3", "--coincidence-sum", "2"],
            ]
            .concat(),
            "",
            "give --network-events FILE",
        ),
        (
            [
                &["x.npy"][..],
                &thr,
                &["--on", "3", "--network-events", "net.csv"],
            ]
            .concat(),
            "",
            "--network-events needs --coincidence-sum",
        ),
        (
            [
                &["x.npy"][..],
                &thr,
                &[
                    "--on",
                    "3",
                    "--coincidence-sum",
                    "2",
                    "--network-events",
                    "net.csv",
                ],
                &["--weights", "1,1"],
            ]
            .concat(),
            "x.npy: ",
            "--weights gives 2 weights for 3 channels",
        ),
        (
            [
                &["one.npy"][..],
                &thr,
                &[
                    "--on",
                    "3",
                    "--coincidence-sum",
                    "1",
                    "--network-events",
                    "net.csv",
                ],
            ]
            .concat(),
            "one.npy: ",
            "at least two channels",
        ),
        (
            [
                &["x.npy"][..],
                &thr,
                &[
                    "--on",
                    "3",
                    "--coincidence-sum",
                    "2",
                    "--network-events",
                    "net.csv",
                ],
                &["--coincidence-window", "-1", "--sample-rate", "100"],
            ]
            .concat(),
            "",
            "--coincidence-window -1: 0 or more seconds",
        ),
        (
            [
                &["x.cf32", "--dtype", "cf32", "--channels", "2"][..],
                &thr,
                &["--on-noise", "5"],
            ]
            .concat(),
            "x.cf32: ",
            "this signal is complex",
        ),
        (
            vec![
                "x.npy",
                "--detect",
                "sta-lta",
                "--sta",
                "10",
                "--lta",
                "100",
                "--on",
                "3",
                "--polarity",
                "pos",
            ],
            "",
            "only the threshold detector takes a polarity",
        ),
    ];
    let inputs = ["one.npy", "x.cf32", "x.npy"];
    for (args, subject, phrase) in cases {
        // No --report: a failed input is recorded in it, by design.
        let mut all = vec!["process"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["-o", "y.npy", "--events", "ev.csv"]);
        let out = sigstream(d, &all);
        assert_refused(&out, subject, phrase, &format!("{args:?}"));
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, inputs, "{args:?}: no output, no temporary file");
    }
}

// ------------------------------------------------------------ 10. the GPU

#[cfg(feature = "gpu")]
#[test]
fn the_gpu_backend_hands_polarity_and_dead_time_to_the_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (frames, scales) = (40_000, [1.0, 2.0, 4.0]);
    let x = spiky(11, frames, &scales);
    write_npy(&d.join("x.npy"), frames, 3, &x);
    let run = |backend: &str| -> (Vec<f32>, Vec<Ev>, serde_json::Value) {
        let (y, ev, r) = (
            format!("y-{backend}.npy"),
            format!("ev-{backend}.csv"),
            format!("r-{backend}.json"),
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
                "--on",
                "6",
                "--off",
                "2",
                "--polarity",
                "neg",
                "--dead-samples",
                "5",
                "-o",
                &y,
                "--events",
                &ev,
                "--report",
                &r,
                "-q",
            ],
        );
        (
            read_npy(&d.join(&y)).1,
            events_in(&d.join(&ev)),
            input_entry(&std::fs::read_to_string(d.join(&r)).unwrap()),
        )
    };
    let (y_cpu, ev_cpu, _) = run("cpu");
    let (y_gpu, ev_gpu, entry) = run("gpu");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r-gpu.json")).unwrap()).unwrap();
    assert_eq!(report["backend"], "gpu");
    assert_eq!(entry["detector"]["polarity"], "neg");
    assert_eq!(entry["detector"]["dead"], 5);
    // The GPU's filter output, within rounding of the CPU's.
    let scale = x.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
    assert_eq!(y_gpu.len(), y_cpu.len());
    for (i, (g, c)) in y_gpu.iter().zip(&y_cpu).enumerate() {
        let diff = (f64::from(*g) - f64::from(*c)).abs();
        assert!(
            diff <= GPU_SIGNAL_REL_TOL * scale,
            "sample {i}: gpu {g} cpu {c}"
        );
    }
    // The detector ran, with its polarity and dead time, on that output.
    let mut want = Vec::new();
    for c in 0..3 {
        want.extend(reference_events(
            &channel(&y_gpu, 3, c),
            c,
            6.0,
            2.0,
            Pol::Neg,
            5,
        ));
    }
    assert!(want.len() >= 50);
    assert_same_events(&ev_gpu, &want, "gpu events vs the reference on its output");
    let key = |e: &Ev| (e.channel, e.start, e.end, e.peak_index);
    assert_eq!(
        ev_gpu.iter().map(key).collect::<Vec<_>>(),
        ev_cpu.iter().map(key).collect::<Vec<_>>(),
        "gpu and cpu events"
    );
}
