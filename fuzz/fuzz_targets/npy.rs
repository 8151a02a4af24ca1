//! `.npy` inputs: the header parser (`source::npy`, through `npyz`), the
//! layout checks against the file's size, and the conversion of every
//! sample, through both readers (memory-mapped file and stream), which must
//! agree; then the same bytes as a `--kernel` file (`filter::load_kernel`,
//! which reads `.npy` and text kernels) and as an `--sos` file
//! (`filter::iir::Sos::load`: an (n, 6) array of checked sections).
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
    if let Ok(sos) = sigstream::filter::iir::Sos::load(&path) {
        assert!(!sos.is_empty(), "Sos::load returned no sections");
        for s in sos.sections() {
            assert!(s.iter().all(|v| v.is_finite()), "a non-finite coefficient");
            assert_eq!(s[3], 1.0, "a0 is 1");
        }
        assert!(sos.padlen() >= 3, "padlen of at least one tap");
    }
});
