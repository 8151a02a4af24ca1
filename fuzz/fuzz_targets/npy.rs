//! `.npy` inputs: the header parser (`source::npy`, through `npyz`), the
//! layout checks against the file's size, and the conversion of every
//! sample, through both readers (memory-mapped file and stream), which must
//! agree; then the same bytes as a `--kernel` file (`filter::load_kernel`,
//! which reads `.npy` and text kernels).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::source::SourceOptions;
use sigstream_fuzz::{check_file_and_stream, scratch_path, write_scratch};

fuzz_target!(|bytes: &[u8]| {
    let path = scratch_path("npy", "npy");
    write_scratch(&path, bytes);
    check_file_and_stream(&path, bytes, &SourceOptions::default(), bytes.len());
    if let Ok(taps) = sigstream::filter::load_kernel(&path) {
        assert!(!taps.is_empty(), "load_kernel returned no taps");
    }
});
