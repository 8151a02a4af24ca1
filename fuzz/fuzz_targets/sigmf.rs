//! SigMF metadata: the first 8 bytes (little-endian, zero-padded when
//! fewer) are the data file's length, the rest is the `.sigmf-meta` JSON.
//! `Meta::parse` (the datatype grammar, channels, rate, offsets, captures
//! and annotations with their caps) and `Meta::data_range` (header and
//! trailing bytes, whole frames) run on every input; when both accept it
//! and the length is small, the meta and a data file of that length are
//! written side by side and read to the end through `source::open`, as a
//! user's recording would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::source::{self, sigmf};
use sigstream_fuzz::{planned_capacity, print, read_all, scratch_path, write_scratch};

/// Largest data file written to disk and read (bigger lengths are only
/// checked arithmetically).
const MAX_READ_BYTES: u64 = 1 << 16;

fuzz_target!(|bytes: &[u8]| {
    let (len_bytes, json) = bytes.split_at(bytes.len().min(8));
    let mut len = [0u8; 8];
    len[..len_bytes.len()].copy_from_slice(len_bytes);
    let data_len = u64::from_le_bytes(len);
    let meta_path = scratch_path("sigmf", "sigmf-meta");
    let meta = match sigmf::Meta::parse(&meta_path, json) {
        Ok(m) => m,
        Err(e) => {
            if print() {
                eprintln!("meta refused: {e}");
            }
            assert_eq!(e.exit_code(), 2, "a bad meta is bad input: {e}");
            return;
        }
    };
    assert!(meta.channels >= 1);
    assert!(meta.frame_bytes() >= 1);
    assert!(meta.annotations.len() <= sigmf::MAX_ANNOTATIONS + 1);
    assert!(
        meta.annotations
            .windows(2)
            .all(|w| w[0].sample_start <= w[1].sample_start),
        "annotations in sample order"
    );
    let _ = meta.start_time(meta.sample_rate);
    let data_path = meta.data_path(&meta_path);
    let (offset, held) = match meta.data_range(&data_path, data_len) {
        Ok(r) => r,
        Err(e) => {
            if print() {
                eprintln!("data of {data_len} bytes refused: {e}");
            }
            assert_eq!(
                e.exit_code(),
                2,
                "a data file that does not fit is bad input: {e}"
            );
            return;
        }
    };
    let frame = meta.frame_bytes() as u64;
    assert!(held > 0 && held % frame == 0, "whole frames");
    assert!(offset.checked_add(held).is_some_and(|end| end <= data_len));
    if print() {
        eprintln!("meta: {meta:?}\ndata: {held} bytes at {offset}");
    }
    // Only the data file named after the meta: a fuzzed core:dataset may
    // name any file in the temporary directory.
    if data_len > MAX_READ_BYTES || meta.dataset.is_some() {
        return;
    }
    write_scratch(&meta_path, json);
    let data: Vec<u8> = (0..data_len as usize)
        .map(|i| json.get(i % json.len().max(1)).copied().unwrap_or(0))
        .collect();
    write_scratch(&data_path, &data);
    let mut src = source::open(&meta_path, &source::SourceOptions::default()).unwrap_or_else(|e| {
        panic!("the meta and its data were accepted, but open refuses them: {e}")
    });
    let info = src.info().clone();
    assert_eq!(info.channels, meta.planes());
    assert_eq!(info.frames, Some(held / frame));
    assert_eq!(info.data_offset, offset);
    if let Some(capacity) = planned_capacity(&info) {
        let planes = read_all(src.as_mut(), capacity).expect("the data file reads");
        assert_eq!(planes.len(), meta.planes());
    }
});
