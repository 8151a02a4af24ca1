//! Helpers shared by the integration tests: the GPU context (skipped, or
//! failed under `REQUIRE_GPU=1`, when there is no adapter).

#![allow(dead_code, reason = "each test file uses a different subset")]

#[cfg(feature = "gpu")]
use std::sync::Arc;

#[cfg(feature = "gpu")]
use sigstream::backend::gpu::{GpuContext, GpuOptions};

/// A GPU context on any adapter, software ones included (the tests run on
/// Mesa's lavapipe in CI). `None` when there is none, unless `REQUIRE_GPU=1`,
/// which turns a missing adapter into a test failure.
#[cfg(feature = "gpu")]
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
    let mut rng = Rng::new(seed);
    let mut x = vec![0.0f32; frames * channels];
    for (i, v) in x.iter_mut().enumerate() {
        let frame = i / channels;
        let loud = (frame / 397 + i % channels) % 11 == 3;
        *v = rng.normal_pair().0 * if loud { 12.0 } else { 1.0 };
    }
    x
}

/// SplitMix64: tiny, seeded, good enough for test signals.
pub struct Rng(pub u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Two independent standard normal samples (Box-Muller), as f32.
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        let r = (-2.0 * u.ln()).sqrt();
        let t = std::f64::consts::TAU * v;
        ((r * t.cos()) as f32, (r * t.sin()) as f32)
    }
}

/// Unit-variance noise with `bursts` louder stretches (x3 .. x30, 30 .. 400
/// samples long) at random places.
pub fn noisy_signal(seed: u64, n: usize, bursts: usize) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut gain = vec![1.0f64; n];
    for _ in 0..bursts {
        if n < 2 {
            break;
        }
        let start = rng.range(0, n);
        let len = rng.range(30, 400);
        let amp = 3.0 + 27.0 * rng.uniform();
        for g in gain.iter_mut().skip(start).take(len) {
            *g = amp;
        }
    }
    gain.iter().map(|g| (g * rng.normal()) as f32).collect()
}
