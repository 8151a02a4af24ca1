//! FLAC inputs: symphonia's probe, STREAMINFO, frame headers, subframes
//! and CRCs, through our wrapper (the shift back to the stored width, the
//! total-length checks), read as a file and as a stream, which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::source::SourceOptions;
use sigstream_fuzz::{check_file_and_stream, scratch_path, write_scratch};

fuzz_target!(|bytes: &[u8]| {
    let path = scratch_path("flac", "flac");
    write_scratch(&path, bytes);
    check_file_and_stream(&path, bytes, &SourceOptions::default(), bytes.len() / 3);
});
