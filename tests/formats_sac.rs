//! SAC files written by ObsPy (tests/fixtures/make_sac.py), read by
//! sigstream: samples, rate, start time and id equal what ObsPy reads back
//! (tests/fixtures/sac.json), in both byte orders, from a file and from a
//! stream; bad SAC files are refused with a message.

#[path = "common/cli.rs"]
mod cli;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli::{sigstream, stderr};
use sigstream::pool::Block;
use sigstream::source::{self, SourceOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sac.json")).unwrap()).unwrap()
}

/// Every sample of `path`, read in blocks of 100.
fn read_all(path: &Path) -> (sigstream::source::SignalInfo, Vec<f32>) {
    let mut src = source::open(path, &SourceOptions::default()).unwrap();
    let info = src.info().clone();
    let mut block = Block::new(1, 100);
    let mut all = Vec::new();
    while src.read_block(&mut block).unwrap() > 0 {
        all.extend_from_slice(block.channel(0));
    }
    (info, all)
}

#[test]
fn obspy_written_sac_reads_as_obspy_reads_it() {
    let want = reference();
    for name in ["le.sac", "be.sac"] {
        let w = &want[name];
        let (info, x) = read_all(&fixture(name));
        assert_eq!(info.format, sigstream::source::Format::Sac);
        assert_eq!(x.len() as u64, w["npts"].as_u64().unwrap(), "{name}");
        assert_eq!(info.frames, Some(x.len() as u64));
        assert_eq!(info.sample_rate, w["sampling_rate"].as_f64(), "{name}");
        assert_eq!(
            info.start_time.unwrap().to_string(),
            w["starttime"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(info.channel_names, [w["id"].as_str().unwrap()], "{name}");
        let first: Vec<f64> = x[..5].iter().map(|&v| f64::from(v)).collect();
        let want_first: Vec<f64> = w["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(first, want_first, "{name}: the samples, exactly");
        let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
        // Summed in f64 in the same order as numpy's pairwise sum only to
        // rounding: 1e-9 of the sum of |x| (n·ε_f64 for n ≤ 3000).
        let scale: f64 = x.iter().map(|&v| f64::from(v).abs()).sum();
        assert!(
            (sum - w["sum"].as_f64().unwrap()).abs() <= 1e-9 * scale,
            "{name}: sum {sum}"
        );
    }
}

#[test]
fn sac_on_standard_input_is_recognised_by_its_header() {
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(d.path())
        .args(["info", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("be.sac")).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"][0]["format"], "sac");
    assert_eq!(v["inputs"][0]["start_time"], "1999-12-31T23:59:59.990000Z");
}

#[test]
fn events_on_sac_carry_the_channel_id_and_utc_times() {
    let d = tempfile::tempdir().unwrap();
    let out = sigstream(
        d.path(),
        &[
            "process",
            fixture("le.sac").to_str().unwrap(),
            "--detect",
            "threshold",
            "--on",
            "2500",
            "--events",
            "ev.csv",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = std::fs::read_to_string(d.path().join("ev.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "channel,start,end,peak_index,peak_value,channel_index,start_s,end_s,peak_s,\
             start_time,end_time,peak_time"
        )
    );
    let row: Vec<&str> = lines
        .next()
        .expect("an event above 2.5 sigma")
        .split(',')
        .collect();
    assert_eq!(row[0], "XX.STA1.00.HHZ");
    assert_eq!(row[5], "0");
    let start: u64 = row[1].parse().unwrap();
    assert_eq!(row[6].parse::<f64>().unwrap(), start as f64 / 100.0);
    // 2024-02-29T23:59:58.123 + start / 100 s, printed by hand here.
    let ms = 123 + start * 10;
    let (sec, ms) = (58 + ms / 1000, ms % 1000);
    let want = if sec < 60 {
        format!("2024-02-29T23:59:{sec:02}.{ms:03}000Z")
    } else {
        format!("2024-03-01T00:00:{:02}.{ms:03}000Z", sec - 60)
    };
    assert_eq!(row[9], want);
}

#[test]
fn bad_sac_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(fixture("le.sac")).unwrap();
    // Cut short: NPTS says 3000 samples.
    std::fs::write(d.join("short.sac"), &good[..632 + 400]).unwrap();
    // Header only half there.
    std::fs::write(d.join("tiny.sac"), &good[..300]).unwrap();
    // Not SAC at all, but named so.
    std::fs::write(d.join("zeros.sac"), vec![0u8; 1000]).unwrap();
    // A spectral file (IFTYPE = IAMPH, 3).
    let mut spectral = good.clone();
    spectral[85 * 4..86 * 4].copy_from_slice(&3i32.to_le_bytes());
    std::fs::write(d.join("amph.sac"), &spectral).unwrap();
    for (name, phrase) in [
        ("short.sac", "truncated SAC file: NPTS says 3000 samples"),
        ("tiny.sac", "the header alone takes 632"),
        ("zeros.sac", "NVHDR"),
        ("amph.sac", "not a time series"),
    ] {
        let out = sigstream(d, &["info", name]);
        cli::assert_refused(&out, name, phrase, name);
    }
    // The same bytes declared raw are raw, whatever their header says.
    let out = sigstream(
        d,
        &[
            "info",
            fixture("le.sac").to_str().unwrap(),
            "--dtype",
            "i32",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"][0]["format"], "raw");
}
