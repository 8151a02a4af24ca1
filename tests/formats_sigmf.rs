//! SigMF recordings (tests/fixtures/sigmf/, written by the `sigmf` Python
//! package through tests/fixtures/make_sigmf.py): every sample, the rate,
//! centre frequency, start time and annotations as sigmf-python reads them
//! back (tests/fixtures/sigmf/sigmf.json), whichever file is named; and the
//! broken recordings that must be refused with exit code 2 and a message.

#[path = "common/cli.rs"]
mod cli;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use cli::{assert_refused, sigstream};
use serde_json::Value;
use sigstream::pool::Block;
use sigstream::source::{self, Format, SignalInfo, SourceOptions};
use sigstream::time::UtcTime;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sigmf")
        .join(name)
}

/// What sigmf-python read back from each recording.
fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sigmf.json")).unwrap()).unwrap()
}

/// Every sample of every plane of `path`, read `capacity` frames at a time.
fn read(path: &Path, opts: &SourceOptions, capacity: usize) -> (SignalInfo, Vec<Vec<f32>>) {
    let mut src = source::open(path, opts).unwrap();
    let info = src.info().clone();
    let mut block = Block::new(info.channels, capacity);
    let mut all = vec![Vec::new(); info.channels];
    while src.read_block(&mut block).unwrap() > 0 {
        for (c, ch) in all.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
    (info, all)
}

/// The fixture's checksum of a plane: sum of (i + 1) × the f32 bits of
/// value i, wrapping at 2^64 (make_sigmf.py's `checksum`).
fn checksum(plane: &[f32]) -> u64 {
    plane.iter().enumerate().fold(0u64, |sum, (i, v)| {
        sum.wrapping_add((i as u64 + 1).wrapping_mul(u64::from(v.to_bits())))
    })
}

/// Checks `planes` bit for bit against sigmf's description of them.
fn assert_planes(name: &str, planes: &[Vec<f32>], want: &Value) {
    let want = want.as_array().unwrap();
    assert_eq!(planes.len(), want.len(), "{name}: planes");
    for (p, (got, w)) in planes.iter().zip(want).enumerate() {
        let values = |key: &str| -> Vec<f32> {
            // The values are f32 printed as f64: converting back is exact.
            w[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        assert_eq!(
            got[..4],
            values("first")[..],
            "{name} plane {p}: first values"
        );
        assert_eq!(
            got[got.len() - 4..],
            values("last")[..],
            "{name} plane {p}: last values"
        );
        assert_eq!(
            checksum(got),
            w["checksum"].as_u64().unwrap(),
            "{name} plane {p}: some sample differs from sigmf's"
        );
    }
}

const NAMES: [&str; 8] = [
    "cf32_le", "ci16_le", "cu8", "cf32_2ch", "rf32_le", "ci16_be", "cf32_be", "ncd",
];

#[test]
fn recordings_read_as_sigmf_python_reads_them() {
    let all = reference();
    for name in NAMES {
        let w = &all[name];
        let meta = fixture(&format!("{name}.sigmf-meta"));
        let (info, planes) = read(&meta, &SourceOptions::default(), 37);
        let datatype = w["datatype"].as_str().unwrap();
        let complex = datatype.starts_with('c');
        let channels = w["num_channels"].as_u64().unwrap() as usize;
        assert_eq!(info.format, Format::Sigmf, "{name}");
        assert_eq!(info.complex, complex, "{name}");
        assert_eq!(info.signal_channels(), channels, "{name}");
        assert_eq!(
            info.channels,
            channels * if complex { 2 } else { 1 },
            "{name}"
        );
        assert_eq!(
            datatype.trim_end_matches("_le").trim_end_matches("_be"),
            format!("{}{}", if complex { "" } else { "r" }, info.sample_type()),
            "{name}: sample type"
        );
        assert_eq!(info.frames, w["sample_count"].as_u64(), "{name}: samples");
        assert_eq!(info.sample_rate, w["sample_rate"].as_f64(), "{name}: rate");
        assert_eq!(
            info.path.file_name().unwrap().to_str(),
            w["data_file"].as_str(),
            "{name}: the input is the data file"
        );
        let first = &w["captures"][0];
        assert_eq!(
            info.center_frequency,
            first["core:frequency"].as_f64(),
            "{name}: centre frequency"
        );
        assert_eq!(
            info.start_time,
            first["core:datetime"]
                .as_str()
                .map(|t| UtcTime::parse(t).unwrap()),
            "{name}: start time"
        );
        assert_planes(name, &planes, &w["planes"]);
        if let Some(scaled) = w.get("scaled_planes") {
            // sigmf's autoscale is sigstream's --normalize: integers to
            // [-1, 1), unsigned ones centred first.
            let opts = SourceOptions {
                normalize: true,
                ..SourceOptions::default()
            };
            let (_, planes) = read(&meta, &opts, 1000);
            assert_planes(&format!("{name} (normalized)"), &planes, scaled);
        }
    }
}

/// An annotation as compared: start, count, lower and upper edges, label.
type Row = (u64, Option<u64>, Option<f64>, Option<f64>, String);

#[test]
fn annotations_and_later_captures_are_listed() {
    let all = reference();
    for name in NAMES {
        let w = &all[name];
        let (info, _) = read(
            &fixture(&format!("{name}.sigmf-meta")),
            &SourceOptions::default(),
            64,
        );
        let offset = w["offset"].as_u64().unwrap();
        let mut want: Vec<Row> = w["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let text = a["core:label"].as_str().or(a["core:comment"].as_str());
                (
                    // SigMF indices are absolute; sigstream counts from the
                    // data file's first sample.
                    a["core:sample_start"].as_u64().unwrap() - offset,
                    a["core:sample_count"].as_u64(),
                    a["core:freq_lower_edge"].as_f64(),
                    a["core:freq_upper_edge"].as_f64(),
                    text.unwrap_or_default().to_string(),
                )
            })
            .collect();
        // Each capture after the first, as an annotation up to the next.
        let captures = w["captures"].as_array().unwrap();
        for (i, c) in captures.iter().enumerate().skip(1) {
            let start = c["core:sample_start"].as_u64().unwrap();
            let next = captures
                .get(i + 1)
                .map(|n| n["core:sample_start"].as_u64().unwrap());
            let mut label = format!("capture {}:", i + 1);
            if let Some(f) = c["core:frequency"].as_f64() {
                label += &format!(" {f} Hz");
            }
            if let Some(t) = c["core:datetime"].as_str() {
                label += &format!(" {}", UtcTime::parse(t).unwrap());
            }
            want.push((start - offset, next.map(|n| n - start), None, None, label));
        }
        want.sort_by_key(|a| a.0);
        let got: Vec<_> = info
            .annotations
            .iter()
            .map(|a| {
                (
                    a.sample_start,
                    a.sample_count,
                    a.freq_lower_edge,
                    a.freq_upper_edge,
                    a.label.clone(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
    let (info, _) = read(
        &fixture("ci16_le.sigmf-meta"),
        &SourceOptions::default(),
        64,
    );
    assert_eq!(
        info.annotations[0].label, "capture 2: 434000000 Hz 2024-01-01T00:00:00.100000Z",
        "the retuning shows"
    );
}

#[test]
fn either_file_or_the_base_name_opens_the_recording() {
    let opts = SourceOptions::default();
    let (info, planes) = read(&fixture("cf32_le.sigmf-meta"), &opts, 1000);
    for other in ["cf32_le.sigmf-data", "cf32_le"] {
        let (i, p) = read(&fixture(other), &opts, 7);
        assert_eq!(i.path, info.path, "{other}");
        assert_eq!(i.frames, info.frames, "{other}");
        assert_eq!(i.start_time, info.start_time, "{other}");
        assert_eq!(i.annotations, info.annotations, "{other}");
        assert_eq!(p, planes, "{other}");
    }
    let dir = fixture("");
    for named in ["cf32_le.sigmf-meta", "cf32_le.sigmf-data", "cf32_le"] {
        let out = sigstream(&dir, &["info", named]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{named}: {}", cli::stderr(&out));
        for line in [
            "format:      sigmf",
            "cf32 (complex I/Q)",
            "start time:  2024-03-01T12:00:00.250000Z",
            "centre freq: 915000000 Hz",
            "annotations: 3",
            "914900000 – 915100000 Hz  burst",
        ] {
            assert!(text.contains(line), "{named}: {line:?} in\n{text}");
        }
    }
    let out = sigstream(&dir, &["info", "--json", "cu8"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &v["inputs"][0];
    assert_eq!(entry["format"], "sigmf");
    assert_eq!(entry["annotations"][0]["label"], "pulse");
    assert_eq!(entry["annotations"][0]["sample_start"], 100);
}

#[test]
fn options_override_the_meta_and_dtype_reads_the_data_as_raw() {
    let t = UtcTime::parse("2000-01-01T00:00:00Z").unwrap();
    let opts = SourceOptions {
        sample_rate: Some(5.0),
        start_time: Some(t),
        ..SourceOptions::default()
    };
    let (info, _) = read(&fixture("cf32_le.sigmf-meta"), &opts, 64);
    assert_eq!(info.sample_rate, Some(5.0));
    assert_eq!(info.start_time, Some(t));
    // --dtype names the data file's samples itself: raw, no meta.
    let raw = SourceOptions::raw(source::Dtype::F32);
    let (info, _) = read(&fixture("cf32_le.sigmf-data"), &raw, 64);
    assert_eq!(info.format, Format::Raw);
    assert_eq!(info.frames, Some(400), "200 I/Q pairs as 400 f32 values");
    // ... but not the meta's.
    let e = source::open(&fixture("cf32_le.sigmf-meta"), &raw).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--dtype"), "{e}");
}

#[test]
fn a_stream_cannot_be_sigmf() {
    let data = std::fs::read(fixture("cf32_le.sigmf-data")).unwrap();
    for name in ["x.sigmf-data", "x.sigmf-meta", "x.sigmf"] {
        let e = source::from_reader(
            Path::new(name),
            Cursor::new(data.clone()),
            &SourceOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{name}");
        assert!(e.to_string().starts_with(name), "{name}: {e}");
    }
}

#[test]
fn broken_recordings_are_refused_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let good = std::fs::read_to_string(fixture("cf32_le.sigmf-meta")).unwrap();
    let data = std::fs::read(fixture("cf32_le.sigmf-data")).unwrap();
    // Writes the recording `name` (its data only when given) and returns the meta's name.
    let case = |name: &str, meta: &str, data: Option<&[u8]>| -> String {
        std::fs::write(dir.join(format!("{name}.sigmf-meta")), meta).unwrap();
        if let Some(bytes) = data {
            std::fs::write(dir.join(format!("{name}.sigmf-data")), bytes).unwrap();
        }
        format!("{name}.sigmf-meta")
    };
    let swap = |from: &str, to: &str| -> String {
        assert!(good.contains(from), "the fixture has {from}");
        good.replace(from, to)
    };
    let refused = |meta: &str, subject: &str, phrase: &str, what: &str| {
        assert_refused(&sigstream(dir, &["info", meta]), subject, phrase, what);
    };

    let m = case("json", &good.replacen('}', "},", 1), Some(&data));
    refused(&m, &m, "not valid JSON", "a stray comma");
    refused(&m, &m, "line ", "the JSON error says where");

    let m = case(
        "nodtype",
        &swap("\"core:datatype\"", "\"core:dtype\""),
        Some(&data),
    );
    refused(&m, &m, "no global core:datatype", "no datatype");

    let m = case("unknown", &swap("\"cf32_le\"", "\"cf16_le\""), Some(&data));
    refused(
        &m,
        &m,
        "\"cf16_le\" is not a SigMF datatype",
        "an unknown datatype",
    );
    refused(
        &m,
        &m,
        "(c|r)(f32|f64|i32|i16|u32|u16|i8|u8)(_le|_be)?",
        "the grammar listed",
    );

    let m = case("u32", &swap("\"cf32_le\"", "\"cu32_le\""), Some(&data));
    refused(&m, &m, "unsigned 32-bit samples are not supported", "u32");

    let m = case("nodata", &good, None);
    refused(&m, &m, "nodata.sigmf-data is missing", "no data file");

    // 3 f32 values: one I/Q pair and an I without its Q.
    let m = case("odd", &good, Some(&data[..12]));
    refused(
        &m,
        "odd.sigmf-data",
        "an odd count, so the last I has no Q",
        "odd value count",
    );
    // A cf32 2-channel frame is 16 bytes: 8 is one channel's sample only.
    let two = swap("\"core:num_channels\": 1", "\"core:num_channels\": 2");
    let m = case("partial", &two, Some(&data[..24]));
    refused(
        &m,
        "partial.sigmf-data",
        "not a whole number of complex cf32 samples",
        "partial frame",
    );

    let m = case("empty", &good, Some(&[]));
    refused(&m, "empty.sigmf-data", "empty: no samples", "no samples");

    for (name, rate) in [
        ("negrate", "-1000000.0"),
        ("zerorate", "0"),
        ("hugerate", "1e30"),
    ] {
        let m = case(name, &swap("1000000.0", rate), Some(&data));
        refused(&m, &m, "not a sample rate", rate);
    }

    let m = case(
        "badtime",
        &swap("2024-03-01T12:00:00.250000Z", "2024-13-01T12:00:00Z"),
        Some(&data),
    );
    refused(&m, &m, "captures[0] core:datetime", "month 13");
    let m = case(
        "notime",
        &swap("2024-03-01T12:00:00.250000Z", "yesterday"),
        Some(&data),
    );
    refused(&m, &m, "is not a UTC time", "not a time");

    let m = case(
        "metaonly",
        &swap(
            "\"global\": {",
            "\"global\": {\"core:metadata_only\": true,",
        ),
        Some(&data),
    );
    refused(&m, &m, "core:metadata_only", "metadata only");

    let m = case(
        "header",
        &swap(
            "\"core:sample_start\": 0\n",
            "\"core:sample_start\": 0\n}, {\"core:sample_start\": 100, \"core:header_bytes\": 8\n",
        ),
        Some(&data),
    );
    refused(
        &m,
        &m,
        "captures[1]: core:header_bytes 8",
        "a header between captures",
    );

    let m = case(
        "order",
        &swap("\"core:sample_start\": 80", "\"core:sample_start\": 1"),
        Some(&data),
    );
    let out = sigstream(dir, &["info", &m]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "annotations in any order: {}",
        cli::stderr(&out)
    );

    let m = case(
        "escape",
        &swap(
            "\"global\": {",
            "\"global\": {\"core:dataset\": \"../x.bin\",",
        ),
        Some(&data),
    );
    refused(
        &m,
        &m,
        "must be a file name in the meta's directory",
        "a dataset outside",
    );

    // The data file without its meta, and archives.
    std::fs::write(dir.join("alone.sigmf-data"), &data).unwrap();
    refused(
        "alone.sigmf-data",
        "alone.sigmf-data",
        "without its metadata",
        "no meta",
    );
    std::fs::write(dir.join("rec.sigmf"), &data).unwrap();
    refused(
        "rec.sigmf",
        "rec.sigmf",
        "extract it first (tar xf rec.sigmf)",
        "an archive",
    );

    // A meta too large to be one is refused before it is read.
    let big = dir.join("big.sigmf-meta");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(source::sigmf::MAX_META_BYTES + 1)
        .unwrap();
    refused(
        "big.sigmf-meta",
        "big.sigmf-meta",
        "larger than the 64 MiB",
        "a huge meta",
    );
}
