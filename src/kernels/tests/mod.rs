//! The GPU kernels against their CPU twins and against independent f64
//! references (naive DFT, rustfft in f64, direct convolution, window sums).
//!
//! Why inside the crate rather than in `tests/`: the twins are executable
//! specifications of the shaders, not part of the public API, so only the
//! crate's own tests can reach them. The helpers are the integration tests'
//! own (`tests/common`), and the files keep their `sigstream::` paths
//! through `extern crate self as sigstream` in `lib.rs`.

#![cfg(feature = "gpu")]

#[path = "../../../tests/common/mod.rs"]
mod common;
mod gpu_detect;
mod gpu_fft;
mod gpu_fir;
mod gpu_rfft;
