//! Peak memory does not grow with the file, nor with the channel count: the
//! process's real peak RSS (VmHWM, file-backed pages included), as the
//! report gives it, for a 64 MiB and a 512 MiB input, for a 7-day and a
//! 63-day miniSEED file, for a complex job (shift, filter, decimation,
//! detection on |y|), and for a 385-channel
//! int16 probe with the default memory budget and a tighter one.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The bound on the growth of peak RSS from a 64 MB to a 512 MB
/// input. Anything proportional to the file (a whole-file mapping, a
/// growing buffer) would add hundreds of MiB.
const MAX_GROWTH_MIB: f64 = 2.0;

/// Writes `mib` MiB of f32 noise (a 1 MiB block of varied values, repeated).
fn write_signal(path: &Path, mib: usize) {
    let block: Vec<f32> = (0..1 << 18)
        .map(|i| ((i as f32) * 0.618_034).sin() * if i % 50_000 < 300 { 30.0 } else { 1.0 })
        .collect();
    let bytes: &[u8] = bytemuck::cast_slice(&block);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..mib {
        f.write_all(bytes).unwrap();
    }
    f.flush().unwrap();
}

/// Peak RSS in MiB of one `sigstream process` run.
fn peak_rss(input: &Path, dir: &Path, extra: &[&str]) -> f64 {
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .arg("process")
        .arg(input)
        .args(extra)
        .arg("--report")
        .arg(&report)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    v["peak_rss_mb"].as_f64().unwrap()
}

/// Peak RSS in MiB for `small` (the higher of two runs) and for `large`.
///
/// A run's peak can come out lower than the job's true peak when a pool
/// thread happens to get no work and never touches its buffers (seen as
/// 22.2 against 24.4 MiB with the other tests running beside it), so the
/// small input's figure is the higher of two runs: what is bounded is the
/// growth from it to the large input's.
fn peaks(small: &Path, large: &Path, dir: &Path, extra: &[&str]) -> (f64, f64) {
    let a = peak_rss(small, dir, extra).max(peak_rss(small, dir, extra));
    (a, peak_rss(large, dir, extra))
}

#[test]
fn peak_rss_stays_flat_as_the_input_grows() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.f32");
    let large = dir.path().join("large.f32");
    write_signal(&small, 64);
    write_signal(&large, 512);
    let jobs: [&[&str]; 2] = [
        &[
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "10",
        ],
        &[
            "--lowpass",
            "10",
            "--sample-rate",
            "100",
            "--taps",
            "1025",
            "--detect",
            "sta-lta",
            "--sta",
            "50",
            "--lta",
            "1000",
            "--on",
            "4",
            "--off",
            "1.5",
            "--events",
        ],
    ];
    for job in jobs {
        let mut args: Vec<String> = job.iter().map(|s| s.to_string()).collect();
        if args.last().is_some_and(|a| a == "--events") {
            args.push(dir.path().join("events.csv").display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (a, b) = peaks(&small, &large, dir.path(), &args);
        assert!(
            b - a < MAX_GROWTH_MIB,
            "{job:?}: peak RSS {a:.2} MiB for 64 MiB but {b:.2} MiB for 512 MiB"
        );
    }
}

/// A complex job (shift, complex-input low-pass, decimation, detection on
/// |y|, complex output) keeps the same flat memory: its stages hold a few
/// blocks and 20N samples of decimator history per plane, never anything
/// that grows with the file.
#[test]
fn complex_chain_peak_rss_stays_flat_as_the_input_grows() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.cf32");
    let large = dir.path().join("large.cf32");
    write_signal(&small, 64);
    write_signal(&large, 512);
    let out = dir.path().join("out.npy");
    let args = [
        "--sample-rate",
        "48000",
        "--shift",
        "1000",
        "--lowpass",
        "5000",
        "--taps",
        "255",
        "--decimate",
        "4",
        "--detect",
        "threshold",
        "--on",
        "10",
        "-o",
        out.to_str().unwrap(),
    ];
    let (a, b) = peaks(&small, &large, dir.path(), &args);
    assert!(
        b - a < MAX_GROWTH_MIB,
        "peak RSS {a:.2} MiB for 64 MiB but {b:.2} MiB for 512 MiB"
    );
}

/// A miniSEED file of `days` contiguous days: the ObsPy-written day file
/// (20 Hz Steim-2, big-endian version 2 records) repeated, each copy's
/// record start days (BTIME day of year, bytes 22-23) moved on by its
/// index, so that the copies make one segment.
fn write_mseed_days(path: &Path, days: u16) {
    let day = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/day.mseed"))
        .unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for k in 0..days {
        let mut copy = day.clone();
        for rec in copy.chunks_mut(4096) {
            let doy = u16::from_be_bytes([rec[22], rec[23]]) + k;
            rec[22..24].copy_from_slice(&doy.to_be_bytes());
        }
        f.write_all(&copy).unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn mseed_peak_rss_stays_flat_as_the_file_grows() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.mseed");
    let large = dir.path().join("large.mseed");
    write_mseed_days(&small, 7);
    write_mseed_days(&large, 63);
    let events = dir.path().join("events.csv");
    let args = [
        "--lowpass",
        "4",
        "--taps",
        "101",
        "--detect",
        "sta-lta",
        "--sta",
        "20",
        "--lta",
        "400",
        "--on",
        "3.5",
        "--off",
        "1",
        "--events",
        events.to_str().unwrap(),
    ];
    let (a, b) = peaks(&small, &large, dir.path(), &args);
    // One segment each: 12 and 109 million samples decoded as they stream.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["inputs"][0]["samples"], 63 * 1_728_000);
    assert_eq!(report["inputs"][0]["segments"].as_array().unwrap().len(), 1);
    assert!(
        b - a < MAX_GROWTH_MIB,
        "miniSEED: peak RSS {a:.2} MiB for 7 days but {b:.2} MiB for 63"
    );
}

/// The bound on a 385-channel probe with the default options: the
/// whole process, file pages included, within 32 MiB (it took 1.8 GB when
/// the chunk was 2^18 frames whatever the channel count).
const PROBE_MAX_MIB: f64 = 32.0;

/// How far the measured peak may exceed `--memory-limit`: the planner's
/// estimate of the process's own memory (`BASELINE_BYTES`) is a measured
/// figure, not a bound, so allow 1 MiB of slack over it.
const LIMIT_SLACK_MIB: f64 = 1.0;

/// Writes `frames` frames of `channels` interleaved int16 channels: noise
/// of a few units with a spike of 60 every 1000 frames on one channel.
fn write_probe(path: &Path, channels: usize, frames: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut s = 0x9e37_79b9_u32;
    for i in 0..frames {
        for c in 0..channels {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let v = if i % 1000 == 0 && c == (i / 1000) % channels {
                60
            } else {
                (s % 7) as i16 - 3
            };
            f.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    f.flush().unwrap();
}

/// The job on a 385-channel int16 probe.
const PROBE_JOB: [&str; 13] = [
    "--dtype",
    "i16",
    "--channels",
    "385",
    "--sample-rate",
    "30000",
    "--bandpass",
    "300:6000",
    "--taps",
    "301",
    "--detect",
    "threshold",
    "--on",
];

/// Runs `sigstream process` and returns its report, or its stderr on failure.
fn report(input: &Path, dir: &Path, extra: &[&str]) -> Result<serde_json::Value, String> {
    let path = dir.join("probe-report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .arg("process")
        .arg(input)
        .args(PROBE_JOB)
        .arg("5")
        .args(extra)
        .args(["--backend", "cpu", "--quiet", "--report"])
        .arg(&path)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // The input's entry, with the run's peak beside its own keys.
    let peak = report["peak_rss_mb"].clone();
    let mut entry = report["inputs"][0].take();
    entry["peak_rss_mb"] = peak;
    Ok(entry)
}

#[test]
fn a_385_channel_probe_stays_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.i16");
    // 15 MB: dozens of chunks at the default budget, so the steady state
    // (every buffer touched) is reached.
    write_probe(&probe, 385, 20_000);

    let defaults = report(&probe, dir.path(), &[]).unwrap();
    let peak = defaults["peak_rss_mb"].as_f64().unwrap();
    let chunk = defaults["chunk_size"].as_u64().unwrap();
    assert!(
        peak <= PROBE_MAX_MIB,
        "385 channels with the defaults: peak RSS {peak:.1} MiB"
    );
    assert!(
        defaults["chunks"].as_u64().unwrap() >= 10,
        "the test needs many chunks: {defaults}"
    );
    assert_eq!(defaults["samples"].as_u64(), Some(20_000));

    // A tighter budget gives a smaller chunk and a smaller peak, within it.
    let tight = report(&probe, dir.path(), &["--memory-limit", "20"]).unwrap();
    let tight_peak = tight["peak_rss_mb"].as_f64().unwrap();
    assert!(
        tight_peak <= 20.0 + LIMIT_SLACK_MIB,
        "--memory-limit 20: peak RSS {tight_peak:.1} MiB"
    );
    assert!(tight["chunk_size"].as_u64().unwrap() < chunk);
    assert_eq!(
        tight["events"], defaults["events"],
        "the chunk does not change the events"
    );

    // A budget that cannot hold the channels' state is refused up front.
    // (12 MiB: above what the process and the kernel need by themselves,
    // which 8 MiB is not, and a refusal of its own.)
    let err = report(&probe, dir.path(), &["--memory-limit", "12"]).unwrap_err();
    assert!(
        err.contains("--memory-limit 12 MiB is too small for 385 channels"),
        "{err}"
    );
    // So is an explicit chunk that does not fit: the old default.
    let err = report(&probe, dir.path(), &["--chunk-size", "262144"]).unwrap_err();
    assert!(
        err.contains("--chunk-size 262144") && err.contains("at most"),
        "{err}"
    );
}

/// Snippets of all 385 channels around every event keep the probe's bound:
/// the ring and the waiting snippets are planned within the budget (the
/// chunk shrinks to make room), and the file they go to is not held.
#[test]
fn snippets_of_all_385_channels_stay_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.i16");
    write_probe(&probe, 385, 20_000);
    let plain = report(&probe, dir.path(), &[]).unwrap();
    let snippets = dir.path().join("s.npy");
    let cut = report(
        &probe,
        dir.path(),
        &[
            "--snippets",
            snippets.to_str().unwrap(),
            "--snippet-samples",
            "30:60",
            "--snippet-channels",
            "all",
        ],
    )
    .unwrap();
    let peak = cut["peak_rss_mb"].as_f64().unwrap();
    assert!(
        peak <= PROBE_MAX_MIB,
        "385 channels with snippets of all of them: peak RSS {peak:.1} MiB"
    );
    let events = cut["events"].as_u64().unwrap();
    assert_eq!(cut["events"], plain["events"], "{cut}");
    assert!(
        events >= 15,
        "the probe has a spike every 1000 frames: {events}"
    );
    // 90 samples × 385 channels × 4 bytes per event, and the header.
    let size = std::fs::metadata(&snippets).unwrap().len();
    assert_eq!(size, 128 + events * 90 * 385 * 4);
}

/// Zero phase keeps the default budget, as the streaming pass does: its
/// passes' buffers are counted, and freed before the streaming pass plans
/// its own. (Before the CLI pinned glibc's mmap threshold, the freed pass
/// buffers stayed resident and an 8-channel run peaked at 26.4 MiB.)
#[test]
fn zero_phase_stays_within_the_default_budget_and_flat() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.f32");
    let large = dir.path().join("large.f32");
    write_signal(&small, 64);
    write_signal(&large, 512);
    let events = dir.path().join("events.csv");
    let args = [
        "--channels",
        "8",
        "--sample-rate",
        "1000",
        "--iir",
        "butter",
        "--bandpass",
        "10:100",
        "--zero-phase",
        "--detect",
        "threshold",
        "--on",
        "1e30",
        "--events",
        events.to_str().unwrap(),
    ];
    let (a, b) = peaks(&small, &large, dir.path(), &args);
    assert!(
        b - a < MAX_GROWTH_MIB,
        "peak RSS {a:.2} MiB for 64 MiB but {b:.2} MiB for 512 MiB"
    );
    let budget = (sigstream::pipeline::DEFAULT_MEMORY_LIMIT >> 20) as f64;
    assert!(
        b <= budget + LIMIT_SLACK_MIB,
        "peak RSS {b:.2} MiB over the default {budget} MiB budget"
    );
}

/// The noise estimate's buffers are checked against the limit before they
/// are allocated: one channel's values of 20 × 10^8 samples do not fit.
#[test]
fn a_noise_estimate_larger_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.f32");
    write_signal(&input, 1);
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .arg("process")
        .arg(&input)
        .args([
            "--channels",
            "2",
            "--detect",
            "threshold",
            "--on-noise",
            "5",
            "--noise-chunk-samples",
            "100000000",
            "--memory-limit",
            "64",
            "-q",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the noise estimate"), "{err}");
}
