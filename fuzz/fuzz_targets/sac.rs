//! SAC inputs: the fixed 632-byte header in either byte order (`NVHDR`,
//! `NPTS`, `DELTA`, `IFTYPE`, `LEVEN`, the reference time and `B`, the
//! name strings), the layout checks against the file's size, and the
//! conversion of every sample, through both readers (the stream reader
//! recognises SAC by its header alone), which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::source::SourceOptions;
use sigstream_fuzz::{check_file_and_stream, scratch_path, write_scratch};

fuzz_target!(|bytes: &[u8]| {
    let path = scratch_path("sac", "sac");
    write_scratch(&path, bytes);
    check_file_and_stream(&path, bytes, &SourceOptions::default(), bytes.len() / 2);
});
