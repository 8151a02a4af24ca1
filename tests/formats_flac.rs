//! FLAC files written by libsndfile (tests/fixtures/make_flac.py), read by
//! sigstream from a file and from a stream: the integer samples exactly
//! as libsndfile reads them back (tests/fixtures/flac.json), and with
//! `--normalize` the same divided by 2^(bits−1); broken files are refused.

#[path = "common/cli.rs"]
mod cli;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use cli::{assert_refused, sigstream, sigstream_bounded, stderr};
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

/// The metadata blocks of a FLAC file: (type, body), and where the audio
/// frames start.
fn metadata_blocks(b: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
    assert_eq!(&b[..4], b"fLaC");
    let mut at = 4;
    let mut blocks = Vec::new();
    loop {
        let last = b[at] & 0x80 != 0;
        let kind = b[at] & 0x7f;
        let len = u32::from_be_bytes([0, b[at + 1], b[at + 2], b[at + 3]]) as usize;
        blocks.push((kind, b[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
        if last {
            return (blocks, at);
        }
    }
}

#[test]
fn a_tag_that_claims_gigabytes_is_never_read() {
    // Found by fuzzing (fuzz/regressions/flac-vorbis-comment-4gib):
    // symphonia allocated a Vorbis comment's declared length before checking
    // it. A well-formed 8-byte VORBIS_COMMENT block whose vendor string
    // claims 4 GiB − 1: sigstream skips the block, so the file reads, within
    // a 3 GiB address space.
    let d = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("s16_stereo.flac")).unwrap();
    let (blocks, frames) = metadata_blocks(&good);
    let info = &blocks.iter().find(|(k, _)| *k == 0).unwrap().1;
    let mut b = b"fLaC".to_vec();
    b.extend_from_slice(&[0, 0, 0, 34]);
    b.extend_from_slice(info);
    let comment = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];
    b.extend_from_slice(&[0x80 | 4, 0, 0, comment.len() as u8]);
    b.extend_from_slice(&comment);
    b.extend_from_slice(&good[frames..]);
    let path = d.path().join("tagged.flac");
    std::fs::write(&path, &b).unwrap();
    let out = sigstream_bounded(d.path(), &["info", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"][0]["samples"], 5000);
    let src = source::open(&path, &SourceOptions::default()).unwrap();
    let plain = source::open(&fixture("s16_stereo.flac"), &SourceOptions::default()).unwrap();
    assert_eq!(read_all(src, 700), read_all(plain, 700), "the same samples");
}
