//! Helpers shared by the integration tests: the GPU context (skipped, or
//! failed under `REQUIRE_GPU=1`, when there is no adapter).

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;

use sigstream::backend::gpu::{GpuContext, GpuOptions};

/// A GPU context on any adapter, software ones included (the tests run on
/// Mesa's lavapipe in CI). `None` when there is none, unless `REQUIRE_GPU=1`,
/// which turns a missing adapter into a test failure.
pub fn gpu() -> Option<Arc<GpuContext>> {
    let options = GpuOptions {
        adapter: std::env::var("SIGSTREAM_TEST_ADAPTER").ok(),
        allow_software: true,
    };
    match GpuContext::new(&options) {
        Ok(ctx) => Some(ctx),
        Err(e) if require_gpu() => panic!("REQUIRE_GPU=1 but {e}"),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// Whether `REQUIRE_GPU=1` is set.
pub fn require_gpu() -> bool {
    std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// Noise with loud bursts, interleaved over `channels`, so the detectors have
/// events to find in every channel.
pub fn bursts(frames: usize, channels: usize, seed: u64) -> Vec<f32> {
    let mut rng = sigstream::demo::Rng::new(seed);
    let mut x = vec![0.0f32; frames * channels];
    for (i, v) in x.iter_mut().enumerate() {
        let frame = i / channels;
        let loud = (frame / 397 + i % channels) % 11 == 3;
        *v = rng.normal_pair().0 * if loud { 12.0 } else { 1.0 };
    }
    x
}
