//! FLAC files written by libsndfile (tests/fixtures/make_flac.py), read by
//! sigstream from a file and from a stream: the integer samples exactly
//! as libsndfile reads them back (tests/fixtures/flac.json), and with
//! `--normalize` the same divided by 2^(bits−1); broken files are refused.

#[path = "common/cli.rs"]
mod cli;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use cli::{assert_refused, sigstream};
use serde_json::Value;
use sigstream::pool::Block;
use sigstream::source::{self, ChunkSource, Format, SourceOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every sample of `src`, read `capacity` frames at a time.
fn read_all(mut src: Box<dyn ChunkSource>, capacity: usize) -> Vec<Vec<f32>> {
    let channels = src.info().channels;
    let mut block = Block::new(channels, capacity);
    let mut all = vec![Vec::new(); channels];
    while src.read_block(&mut block).unwrap() > 0 {
        for (c, ch) in all.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
    all
}

#[test]
fn libsndfile_written_flac_reads_as_libsndfile_reads_it() {
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("flac.json")).unwrap()).unwrap();
    for name in ["s16_stereo.flac", "s24_mono.flac"] {
        let w = &want[name];
        let bits = w["bits"].as_i64().unwrap() as i32;
        for normalize in [false, true] {
            let opts = SourceOptions {
                normalize,
                ..SourceOptions::default()
            };
            let file = source::open(&fixture(name), &opts).unwrap();
            let info = file.info().clone();
            assert_eq!(info.format, Format::Flac);
            assert_eq!(info.channels as u64, w["channels"].as_u64().unwrap());
            assert_eq!(info.sample_rate, w["rate"].as_f64());
            assert_eq!(info.frames, w["frames"].as_u64());
            let x = read_all(file, 1000);
            // The same bytes as a stream, in blocks of 333 frames.
            let bytes = std::fs::read(fixture(name)).unwrap();
            let stream = source::from_reader(name, Cursor::new(bytes), &opts).unwrap();
            assert_eq!(read_all(stream, 333), x, "{name}: file and stream agree");
            // Integers (and integers over 2^(bits-1), exact in f32 for
            // 24 bits or fewer): compared exactly.
            let scale = if normalize {
                0.5f64.powi(bits - 1)
            } else {
                1.0
            };
            for (c, ch) in x.iter().enumerate() {
                assert_eq!(ch.len() as u64, w["frames"].as_u64().unwrap());
                for (k, row) in w["first"].as_array().unwrap().iter().enumerate() {
                    let v = row[c].as_f64().unwrap() * scale;
                    assert_eq!(f64::from(ch[k]), v, "{name} ch {c} sample {k}");
                }
                let sum: f64 = ch.iter().map(|&v| f64::from(v)).sum();
                let wsum: f64 = ch
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i % 1000 + 1) as f64 * f64::from(v))
                    .sum();
                assert_eq!(sum, w["sum"][c].as_f64().unwrap() * scale, "{name} sum");
                assert_eq!(wsum, w["wsum"][c].as_f64().unwrap() * scale, "{name} wsum");
            }
        }
    }
}

#[test]
fn broken_flac_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let good = std::fs::read(fixture("s16_stereo.flac")).unwrap();
    let cut = dir.join("cut.flac");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let p = cut.to_str().unwrap();
    assert_refused(
        &sigstream(dir, &["process", p, "--moving-average", "3", "-o", "y.npy"]),
        p,
        "FLAC",
        "a file cut in half",
    );
    assert!(!dir.join("y.npy").exists(), "no output");
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xFF;
    let bad = dir.join("flipped.flac");
    std::fs::write(&bad, &flipped).unwrap();
    let p = bad.to_str().unwrap();
    assert_refused(
        &sigstream(dir, &["process", p, "--moving-average", "3", "-o", "y.npy"]),
        p,
        "FLAC",
        "a corrupt frame (CRC)",
    );
    let fake = dir.join("fake.flac");
    std::fs::write(&fake, b"RIFF....not flac at all").unwrap();
    let p = fake.to_str().unwrap();
    assert_refused(
        &sigstream(dir, &["info", p]),
        p,
        "not FLAC",
        "a .flac without the magic",
    );
}
