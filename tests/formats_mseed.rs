//! miniSEED files written by libmseed (the `pymseed` package: versions 2
//! and 3) and by ObsPy (version 2), read by sigstream: samples, rates,
//! start times and ids equal what libmseed and ObsPy read back
//! (tests/fixtures/mseed.json, made by tests/fixtures/make_mseed.py);
//! events equal ObsPy's FIR + classic_sta_lta + trigger_onset index for
//! index, with ObsPy's UTC times, on a day file and per segment of a file
//! with a gap; gaps are split, filled or interpolated without shifting a
//! sample; corrupt and lying files are refused with a message.

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};

use cli::{assert_refused, sigstream, stderr};
use serde_json::Value;
use sigstream::pool::Block;
use sigstream::source::mseed::Gaps;
use sigstream::source::{self, Format, Input, SignalInfo, SourceOptions};
use sigstream::time::UtcTime;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("mseed.json")).unwrap()).unwrap()
}

fn opts(select: &[&str], gaps: Gaps) -> SourceOptions {
    SourceOptions {
        select: select.iter().map(|s| s.to_string()).collect(),
        gaps,
        ..SourceOptions::default()
    }
}

/// Every sample of every channel of a source, read in blocks of 777 (not a
/// divisor of any record's sample count).
fn read_all(mut src: Box<dyn source::ChunkSource>) -> (SignalInfo, Vec<Vec<f32>>) {
    let info = src.info().clone();
    let mut block = Block::new(info.channels, 777);
    let mut all = vec![Vec::new(); info.channels];
    while src.read_block(&mut block).unwrap() > 0 {
        for (c, ch) in all.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
    (info, all)
}

/// The spans of a miniSEED file, each read whole.
fn spans(path: &Path, o: &SourceOptions) -> Vec<(SignalInfo, Vec<Vec<f32>>)> {
    let Input::Segmented(rec) = source::open_input(path, o).unwrap() else {
        panic!("{} is miniSEED", path.display());
    };
    (0..rec.spans())
        .map(|i| read_all(Box::new(rec.span_source(i))))
        .collect()
}

/// The reference's checksums of `x`: length, sum, position-weighted sum
/// (weights i % 1000 + 1), first and last five samples. Integers below
/// 2^24 and these sums are exact in f64, and the float files' samples are
/// compared as f32 (what sigstream computes in), so equality is exact.
fn assert_samples(x: &[f32], want: &Value, what: &str) {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let float = |v: &Value| v.as_f64().unwrap();
    assert_eq!(
        x.len() as u64,
        want["npts"].as_u64().unwrap(),
        "{what}: npts"
    );
    let f32s = |vals: &Value| -> Vec<f64> {
        vals.as_array()
            .unwrap()
            .iter()
            .map(|v| f64::from(float(v) as f32))
            .collect()
    };
    assert_eq!(x[..5].to_vec(), f32s(&want["first"]), "{what}: first");
    assert_eq!(
        x[x.len() - 5..].to_vec(),
        f32s(&want["last"]),
        "{what}: last"
    );
    let sum: f64 = x.iter().sum();
    let wsum: f64 = x
        .iter()
        .enumerate()
        .map(|(i, v)| (i % 1000 + 1) as f64 * v)
        .sum();
    // Float files: the reference sums f64 samples, sigstream holds them as
    // f32, and the sums run in another order: allow f32 rounding of each
    // sample (2^-24 relative) over the sum of magnitudes.
    let scale: f64 = x.iter().map(|v| v.abs()).sum::<f64>() * 1000.0;
    let tol = scale * 2f64.powi(-23);
    assert!(
        (sum - float(&want["sum"])).abs() <= tol,
        "{what}: sum {sum}"
    );
    assert!(
        (wsum - float(&want["wsum"])).abs() <= tol,
        "{what}: wsum {wsum}"
    );
}

/// `FDSN:XX_LIB_00_H_H_Z` as `XX.LIB.00.HHZ` (libmseed's `ms_sid2nslc`).
fn nslc(id: &str) -> String {
    let Some(sid) = id.strip_prefix("FDSN:") else {
        return id.to_string();
    };
    let p: Vec<&str> = sid.split('_').collect();
    format!("{}.{}.{}.{}{}{}", p[0], p[1], p[2], p[3], p[4], p[5])
}

#[test]
fn libmseed_and_obspy_written_files_read_as_they_read_them() {
    let want = reference();
    for name in [
        "v3_steim2.mseed",
        "v3_steim1.mseed",
        "v3_float64.mseed",
        "v3_int16.mseed",
        "v2_steim1.mseed",
        "obspy_steim2_be.mseed",
        "obspy_int32_be.mseed",
        "obspy_float32_le.mseed",
        "day.mseed",
    ] {
        let w = &want[name][0];
        let src = source::open(&fixture(name), &SourceOptions::default()).unwrap();
        let (info, x) = read_all(src);
        assert_eq!(info.format, Format::Mseed, "{name}");
        assert_eq!(info.channels, 1);
        assert_eq!(
            info.channel_names,
            [nslc(w["id"].as_str().unwrap())],
            "{name}"
        );
        assert_eq!(info.sample_rate, w["sampling_rate"].as_f64(), "{name}");
        // libmseed prints nanoseconds, ObsPy microseconds: compare instants.
        let start = UtcTime::parse(w["starttime"].as_str().unwrap()).unwrap();
        assert_eq!(info.start_time, Some(start), "{name}");
        assert_eq!(info.frames, Some(x[0].len() as u64), "{name}");
        assert_samples(&x[0], w, name);
    }
}

#[test]
fn one_channel_with_a_gap_is_read_as_obspys_traces() {
    let want = reference();
    let traces = want["gappy.mseed"].as_array().unwrap();
    let got = spans(
        &fixture("gappy.mseed"),
        &opts(&["xx.gap.*.bhz"], Gaps::Split),
    );
    assert_eq!(got.len(), 2, "two segments");
    for (k, (info, x)) in got.iter().enumerate() {
        let w = &traces[k];
        assert_eq!(w["id"], "XX.GAP.00.BHZ");
        assert_eq!(
            info.start_time.unwrap().to_string(),
            w["starttime"].as_str().unwrap()
        );
        assert_eq!(info.segment, Some(k));
        assert_samples(&x[0], w, &format!("segment {k}"));
    }
}

#[test]
fn several_channels_are_aligned_on_one_grid_and_split_where_all_have_data() {
    let want = reference();
    let traces = want["gappy.mseed"].as_array().unwrap();
    let one = |id: &str| spans(&fixture("gappy.mseed"), &opts(&[id], Gaps::Split));
    let z = one("*BHZ");
    let n = one("*BHN");
    let got = spans(&fixture("gappy.mseed"), &opts(&["*.BH?"], Gaps::Split));
    // BHN and BHE start 10 ms (0.2 samples) after BHZ: the same grid
    // position. BHZ's second segment starts 746.3 samples after its first
    // ends: position 8746. The channels share [0, 8000) and [8746, 15746).
    assert_eq!(got.len(), 2);
    let (i0, x0) = &got[0];
    let (i1, x1) = &got[1];
    assert_eq!(
        i0.channel_names,
        ["XX.GAP.00.BHZ", "XX.GAP.00.BHN", "XX.GAP.00.BHE"]
    );
    assert_eq!(i0.frames, Some(8000));
    assert_eq!(i1.frames, Some(7000));
    // Each span is timed by its first channel's own samples.
    assert_eq!(
        i1.start_time.unwrap().to_string(),
        traces[1]["starttime"].as_str().unwrap()
    );
    assert_eq!(x0[0], z[0].1[0]);
    assert_eq!(x1[0], z[1].1[0]);
    assert_eq!(x0[1], n[0].1[0][..8000]);
    assert_eq!(x1[1], n[0].1[0][8746..15746]);
}

#[test]
fn gaps_are_filled_or_interpolated_without_shifting_a_sample() {
    let path = fixture("gappy.mseed");
    let seg = spans(&path, &opts(&["*BHZ"], Gaps::Split));
    let (z1, z2) = (&seg[0].1[0], &seg[1].1[0]);
    let n = spans(&path, &opts(&["*BHN"], Gaps::Split));
    // One channel: from its first sample to its last.
    let filled = spans(&path, &opts(&["*BHZ"], Gaps::Fill(-7.0)));
    assert_eq!(filled.len(), 1);
    let x = &filled[0].1[0];
    assert_eq!(x.len(), 8746 + 7000);
    assert_eq!(x[..8000], z1[..]);
    assert!(x[8000..8746].iter().all(|&v| v == -7.0));
    assert_eq!(x[8746..], z2[..]);
    // Three channels: to the end of the longest, BHZ's tail filled too.
    let all = spans(&path, &opts(&["*.BH?"], Gaps::Fill(0.0)));
    assert_eq!(all.len(), 1);
    let (info, x) = &all[0];
    assert_eq!(info.frames, Some(17000));
    assert_eq!(info.segment, None);
    assert_eq!(x[0][8746..15746], z2[..]);
    assert!(x[0][15746..].iter().all(|&v| v == 0.0));
    assert_eq!(x[1], n[0].1[0]);
    // Interpolation: a straight line from the last sample before the hole
    // (position 7999) to the first after it (8746), in f64; the tail holds
    // the last sample.
    let lin = spans(&path, &opts(&["*.BH?"], Gaps::Interpolate));
    let x = &lin[0].1[0];
    let (a, b) = (f64::from(z1[7999]), f64::from(z2[0]));
    for (p, &v) in x.iter().enumerate().take(8746).skip(8000) {
        let t = (p - 7999) as f64 / (8746 - 7999) as f64;
        let want = (a + (b - a) * t) as f32;
        assert_eq!(v, want, "position {p}");
    }
    assert_eq!(x[8746..15746], z2[..]);
    assert!(x[15746..].iter().all(|&v| v == z2[6999]));
}

/// The events CSV's rows as (start, end, start_time, end_time, segment).
fn events(csv: &str) -> Vec<(u64, u64, String, String, String)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| {
            let r: Vec<&str> = l.split(',').collect();
            (
                r[col("start")].parse().unwrap(),
                r[col("end")].parse().unwrap(),
                r[col("start_time")].to_string(),
                r[col("end_time")].to_string(),
                r[col("segment")].to_string(),
            )
        })
        .collect()
}

/// `sigstream process` with the reference's detection on `input`.
fn detect(dir: &Path, input: &Path, extra: &[&str]) -> String {
    let d = &reference()["detect"];
    let s = |k: &str| d[k].to_string();
    let (taps, cutoff, nsta, nlta, on, off) = (
        s("taps"),
        s("cutoff"),
        s("nsta"),
        s("nlta"),
        s("on"),
        s("off"),
    );
    let mut args = vec![
        "process",
        input.to_str().unwrap(),
        "--lowpass",
        &cutoff,
        "--taps",
        &taps,
        "--detect",
        "sta-lta",
        "--sta",
        &nsta,
        "--lta",
        &nlta,
        "--on",
        &on,
        "--off",
        &off,
        "--events",
        "ev.csv",
        "-q",
    ];
    args.extend_from_slice(extra);
    let out = sigstream(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::read_to_string(dir.join("ev.csv")).unwrap()
}

/// The reference events of one trace as rows of [`events`].
fn obspy_events(list: &Value, segment: usize) -> Vec<(u64, u64, String, String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["on"].as_u64().unwrap(),
                e["off"].as_u64().unwrap(),
                e["on_time"].as_str().unwrap().to_string(),
                e["off_time"].as_str().unwrap().to_string(),
                segment.to_string(),
            )
        })
        .collect()
}

#[test]
fn events_on_a_day_file_equal_obspys_index_for_index_with_its_utc_times() {
    let d = tempfile::tempdir().unwrap();
    let csv = detect(d.path(), &fixture("day.mseed"), &[]);
    let want = obspy_events(&reference()["day_events"], 0);
    assert!(want.len() > 10, "the day file has quakes");
    assert_eq!(events(&csv), want);
    assert!(csv.lines().nth(1).unwrap().starts_with("XX.DAY.00.HHZ,"));
}

#[test]
fn a_file_with_a_gap_gives_per_segment_events_timed_from_each_segments_start() {
    let d = tempfile::tempdir().unwrap();
    let csv = detect(
        d.path(),
        &fixture("gappy.mseed"),
        &["--select", "XX.GAP.00.BHZ"],
    );
    let r = reference();
    let per_trace = r["gappy_events_BHZ"].as_array().unwrap();
    let mut want = obspy_events(&per_trace[0], 0);
    want.extend(obspy_events(&per_trace[1], 1));
    assert_eq!(events(&csv), want);
}

#[test]
fn the_filtered_segments_are_written_one_after_the_other() {
    let d = tempfile::tempdir().unwrap();
    let out = sigstream(
        d.path(),
        &[
            "process",
            fixture("gappy.mseed").to_str().unwrap(),
            "--select",
            "*BHZ",
            "-o",
            "y.f32",
            "--report",
            "r.json",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bytes = std::fs::read(d.path().join("y.f32")).unwrap();
    let y: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let seg = spans(&fixture("gappy.mseed"), &opts(&["*BHZ"], Gaps::Split));
    let mut want = seg[0].1[0].clone();
    want.extend_from_slice(&seg[1].1[0]);
    assert_eq!(y, want, "no filter: the samples, segment after segment");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("r.json")).unwrap()).unwrap();
    let segments = report["inputs"][0]["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[1]["samples"], 7000);
    assert_eq!(segments[1]["start"], "2024-06-01T00:07:17.315000Z");
}

#[test]
fn info_lists_channels_segments_and_gaps() {
    let d = tempfile::tempdir().unwrap();
    let out = sigstream(
        d.path(),
        &["info", fixture("gappy.mseed").to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let input = &v["inputs"][0];
    assert_eq!(input["format"], "mseed");
    let chans = input["mseed"]["channels"].as_array().unwrap();
    let r = reference();
    let traces = r["gappy.mseed"].as_array().unwrap();
    let ids: Vec<&str> = chans.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["XX.GAP.00.BHZ", "XX.GAP.00.BHN", "XX.GAP.00.BHE"]);
    assert_eq!(chans[0]["gaps"], 1);
    assert_eq!(chans[1]["gaps"], 0);
    assert_eq!(chans[0]["samples"], 15000);
    assert_eq!(chans[0]["sample_rate"], 20.0);
    for (k, s) in chans[0]["segments"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["start"], traces[k]["starttime"]);
        assert_eq!(s["end"], traces[k]["endtime"]);
        assert_eq!(s["samples"], traces[k]["npts"]);
    }
    assert_eq!(chans[1]["end"], traces[2]["endtime"]);
    let text = sigstream(
        d.path(),
        &["info", fixture("gappy.mseed").to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("XX.GAP.00.BHZ"), "{text}");
    assert!(text.contains("1 gap"), "{text}");
    assert!(text.contains("2 spans"), "{text}");
}

/// A copy of fixture `name` in `dir`, changed by `edit` (a new file each
/// call).
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut b = std::fs::read(fixture(name)).unwrap();
    edit(&mut b);
    let p = dir.join(format!("bad{k}-{name}"));
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn corrupt_truncated_and_lying_files_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // ObsPy's 512-byte version 2 records: 48-byte fixed header, blockette
    // 1000 at 48 (record length exponent at 54), 1001 at 56, data at 64.
    // (file, phrase, whether `info` sees it: it reads the headers, not
    // the samples).
    let cases: Vec<(PathBuf, &str, bool)> = vec![
        (
            // The reverse integration constant (frame 0, word 2) of record 1.
            edited(dir, "obspy_steim2_be.mseed", |b| b[64 + 11] ^= 1),
            "corrupt Steim data",
            false,
        ),
        (
            // Record 1 claims 2^20 bytes.
            edited(dir, "obspy_steim2_be.mseed", |b| b[54] = 20),
            "declares 1048576 bytes",
            true,
        ),
        (
            // A Steim-2 word with the invalid sub-code 11 under code 3:
            // word 3 of frame 0 gets code 3 in the nibbles (bits 25-24).
            edited(dir, "obspy_steim2_be.mseed", |b| {
                b[64] |= 0x03;
                b[64 + 12] |= 0xC0;
            }),
            "corrupt Steim-2 frame 0, word 3",
            false,
        ),
        (
            edited(dir, "obspy_int32_be.mseed", |b| b.truncate(1000)),
            "the file holds only 488",
            true,
        ),
        (
            edited(dir, "obspy_int32_be.mseed", |b| {
                b.extend_from_slice(&[b'x'; 100])
            }),
            "not a miniSEED record",
            true,
        ),
        (
            // One data byte of a version 3 record.
            edited(dir, "v3_steim2.mseed", |b| {
                let n = b.len();
                b[n - 5] ^= 0x10;
            }),
            "CRC-32C mismatch",
            true,
        ),
        (
            // The data encoding of record 1 (blockette 1000, byte 52).
            edited(dir, "obspy_int32_be.mseed", |b| b[52] = 99),
            "unknown data encoding 99",
            true,
        ),
    ];
    for (path, phrase, in_headers) in &cases {
        let p = path.to_str().unwrap();
        let mut runs = vec![vec!["process", p, "-o", "y.npy"]];
        if *in_headers {
            runs.push(vec!["info", p]);
        }
        for args in runs {
            let out = sigstream(dir, &args);
            assert_refused(&out, p, phrase, &format!("{args:?}"));
            assert!(!dir.join("y.npy").exists(), "no output");
        }
    }
    let gappy = fixture("gappy.mseed");
    let g = gappy.to_str().unwrap();
    let out = sigstream(dir, &["info", g, "--select", "XX.NONE.*"]);
    assert_refused(
        &out,
        g,
        "no channel matches --select XX.NONE.*",
        "selection",
    );
    let out = sigstream(
        dir,
        &[
            "psd",
            g,
            "--select",
            "*BHZ",
            "--nperseg",
            "256",
            "-o",
            "p.csv",
        ],
    );
    assert_refused(
        &out,
        g,
        "--gaps fill=0 or --gaps interpolate",
        "psd of two segments",
    );
    let out = sigstream(dir, &["info", g, "--gaps", "fill=nan"]);
    assert_refused(
        &out,
        "",
        "--gaps fill=nan",
        "a fill value that is not a number",
    );
    let out = sigstream(dir, &["info", g, "--start-time", "2024-01-01T00:00:00Z"]);
    assert_refused(&out, g, "carries its own times", "--start-time on miniSEED");
}

#[test]
fn channels_of_different_rates_need_a_selection() {
    let d = tempfile::tempdir().unwrap();
    // Two files of different rates, one after the other, make one file of
    // two channels (records are self-contained).
    let mut b = std::fs::read(fixture("obspy_int32_be.mseed")).unwrap();
    b.extend(std::fs::read(fixture("v2_steim1.mseed")).unwrap());
    let p = d.path().join("two-rates.mseed");
    std::fs::write(&p, b).unwrap();
    let ps = p.to_str().unwrap();
    let out = sigstream(d.path(), &["info", ps]);
    assert_refused(&out, ps, "need one rate", "two rates");
    let out = sigstream(d.path(), &["info", ps, "--select", "XX.LIB.*", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"][0]["channel_names"][0], "XX.LIB.00.HHZ");
    assert_eq!(
        v["inputs"][0]["mseed"]["channels"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn mseed_on_standard_input_is_refused_with_a_reason() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .args(["info", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(fixture("obspy_steim2_be.mseed")).unwrap();
    // The child may stop reading once it has seen the header.
    let _ = child.stdin.take().unwrap().write_all(&bytes);
    let out = child.wait_with_output().unwrap();
    assert_refused(&out, "-", "regular file", "miniSEED from a pipe");
}
