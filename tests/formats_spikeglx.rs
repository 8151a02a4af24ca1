//! SpikeGLX recordings (tests/fixtures/spikeglx/, made by
//! tests/fixtures/make_spikeglx.py): channels, rate and names from the
//! `.meta`, and with `--normalize` the microvolts SpikeInterface's reader
//! (neo's SpikeGLXRawIO) gives (tests/fixtures/spikeglx.json); broken
//! metadata is refused with a message naming the `.meta`.

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};

use cli::{assert_refused, sigstream};
use serde_json::Value;
use sigstream::pool::Block;
use sigstream::source::{self, Format, SourceOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every sample of every channel of `path`.
fn read(path: &Path, normalize: bool) -> (source::SignalInfo, Vec<Vec<f32>>) {
    let opts = SourceOptions {
        normalize,
        ..SourceOptions::default()
    };
    let mut src = source::open(path, &opts).unwrap();
    let info = src.info().clone();
    let mut block = Block::new(info.channels, 1000);
    let mut all = vec![Vec::new(); info.channels];
    while src.read_block(&mut block).unwrap() > 0 {
        for (c, ch) in all.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
    (info, all)
}

#[test]
fn neuropixels_streams_read_in_microvolts_as_spikeinterface_reads_them() {
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("spikeglx.json")).unwrap()).unwrap();
    for (file, stream, prefix) in [
        ("spikeglx/rec_g0_t0.imec0.ap.bin", "imec0.ap", "AP"),
        ("spikeglx/rec_g0_t0.imec0.lf.bin", "imec0.lf", "LF"),
    ] {
        let w = &want[stream];
        let (info, x) = read(&fixture(file), true);
        assert_eq!(info.format, Format::SpikeGlx);
        assert_eq!(info.channels, 5, "4 neural channels and the sync word");
        let names: Vec<String> = (0..4).map(|c| format!("{prefix}{c}")).collect();
        assert_eq!(info.channel_names[..4], names[..]);
        assert_eq!(info.channel_names[4], "SY0");
        assert_eq!(info.sample_rate, w["rate"].as_f64());
        let n = w["shape"][0].as_u64().unwrap() as usize;
        let (_, raw) = read(&fixture(file), false);
        for c in 0..4 {
            assert_eq!(x[c].len(), n);
            // count × gain in f32 against neo's f64: one f32 rounding.
            let tol = |v: f64| v.abs() * 2f64.powi(-23);
            for (k, row) in w["first"].as_array().unwrap().iter().enumerate() {
                let v = row[c].as_f64().unwrap();
                assert!(
                    (f64::from(x[c][k]) - v).abs() <= tol(v),
                    "{stream} ch {c} sample {k}"
                );
            }
            let sum: f64 = x[c].iter().map(|&v| f64::from(v)).sum();
            let mag: f64 = x[c].iter().map(|&v| f64::from(v).abs()).sum();
            let v = w["sum"][c].as_f64().unwrap();
            assert!(
                (sum - v).abs() <= mag * 2f64.powi(-22),
                "{stream} ch {c}: sum {sum} vs {v}"
            );
            // Without --normalize: the counts themselves.
            let g = w["gain"][c].as_f64().unwrap();
            assert_eq!((f64::from(raw[c][0]) * g) as f32, x[c][0]);
        }
        // The sync word is left as it is.
        assert_eq!(x[4], raw[4]);
        assert!(raw[4].iter().all(|&v| v == 0.0 || v == 64.0));
    }
}

#[test]
fn broken_metadata_is_refused_naming_the_meta() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let bin = std::fs::read(fixture("spikeglx/rec_g0_t0.imec0.ap.bin")).unwrap();
    let meta = std::fs::read_to_string(fixture("spikeglx/rec_g0_t0.imec0.ap.meta")).unwrap();
    let case = |name: &str, bin: &[u8], meta: &str| -> (String, String) {
        let b = dir.join(format!("{name}.bin"));
        let m = dir.join(format!("{name}.meta"));
        std::fs::write(&b, bin).unwrap();
        std::fs::write(&m, meta).unwrap();
        (b.to_str().unwrap().into(), m.to_str().unwrap().into())
    };
    // The meta with the line of `key` replaced by `line` (or dropped).
    let with = |key: &str, line: Option<&str>| -> String {
        meta.lines()
            .filter_map(|l| match l.starts_with(&format!("{key}=")) {
                true => line.map(|r| format!("{r}\n")),
                false => Some(format!("{l}\n")),
            })
            .collect()
    };
    let (b, m) = case("nocount", &bin, &with("nSavedChans", None));
    assert_refused(
        &sigstream(dir, &["info", &b]),
        &m,
        "no nSavedChans",
        "no channel count",
    );
    let bad_rate = with("imSampRate", Some("imSampRate=fast"));
    let (b, m) = case("badrate", &bin, &bad_rate);
    assert_refused(
        &sigstream(dir, &["info", &b]),
        &m,
        "imSampRate=fast is not a number",
        "rate",
    );
    let (b, _) = case("partial", &bin[..bin.len() - 3], &meta);
    assert_refused(
        &sigstream(dir, &["info", &b]),
        &b,
        "not a whole number",
        "a partial frame",
    );
    let (b, m) = case("noimro", &bin, &with("~imroTbl", None));
    assert_refused(
        &sigstream(dir, &["info", &b, "--normalize"]),
        &m,
        "~imroTbl",
        "microvolts without gains",
    );
    // Without --normalize the gains are not needed.
    let out = sigstream(dir, &["info", &b]);
    assert_eq!(out.status.code(), Some(0));
}
