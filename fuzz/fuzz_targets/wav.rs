//! WAV inputs: the RIFF/RF64/BW64 chunk walker (`source::wav`: `fmt `,
//! `ds64`, `data`, odd-sized chunks with and without their pad byte,
//! WAVE_FORMAT_EXTENSIBLE, sizes of 0xFFFFFFFF), the layout checks against
//! the file's size, and the conversion of every sample (8/16/24/32-bit PCM,
//! 32/64-bit float), through both readers, which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::source::SourceOptions;
use sigstream_fuzz::{check_file_and_stream, scratch_path, write_scratch};

fuzz_target!(|bytes: &[u8]| {
    let path = scratch_path("wav", "wav");
    write_scratch(&path, bytes);
    // `normalize` changes the conversion of integer samples; take it from
    // the input so both loops are fuzzed.
    let opts = SourceOptions {
        normalize: bytes.len() % 2 == 1,
        ..SourceOptions::default()
    };
    check_file_and_stream(&path, bytes, &opts, bytes.len() / 2);
});
