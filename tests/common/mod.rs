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
