//! The demonstration: a synthetic recording with known events.
//!
//! Why it exists: `sigstream demo` is the seed's demonstration made honest.
//! It writes Gaussian noise with bursts at known places to a temporary file,
//! processes it through the same mmap path as any file (3-tap moving average
//! and classic STA/LTA), and checks the events found against the ones
//! injected, one to one.

use std::io::{BufWriter, Write};
use std::path::Path;

use sigstream::detect::{DetectorSpec, Event};
use sigstream::error::{Error, Result};

/// Samples in one injected burst.
pub const BURST_LEN: u64 = 400;
/// Noise standard deviation.
pub const NOISE_SIGMA: f32 = 1.0;
/// Burst standard deviation: 10× the noise, 20 dB.
pub const BURST_SIGMA: f32 = 10.0;
/// Quiet samples before a burst so the LTA window sees only noise, and after
/// it so the trigger falls back before the next one.
pub const GAP: u64 = 3000;

/// The detector the demo runs: STA 100 samples, LTA 1000, on 4, off 1.5.
/// In pure noise the ratio of 100 smoothed squared samples (about 47
/// degrees of freedom) to their long-term mean exceeds 4 with a probability
/// far below 1e-20 per sample; a burst 20 dB up crosses 4 within about 10
/// samples and, even at its end when the LTA has risen to ~13× the noise
/// power, stays above 1.5 (a shorter STA, 50, split 47 of 4000 simulated
/// bursts in two; 100 split none).
pub fn detector() -> DetectorSpec {
    DetectorSpec::ClassicStaLta {
        nsta: 100,
        nlta: 1000,
        on: 4.0,
        off: 1.5,
        max_len: None,
        dead: None,
    }
}

/// A small, fast, seeded generator (xorshift64*), so the demo and the tests
/// need no random crate and give the same signal everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 2^64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Two standard normal samples (Box–Muller).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        let r = (-2.0 * u.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * v;
        ((r * t.cos()) as f32, (r * t.sin()) as f32)
    }
}

/// Start positions of `events` bursts in `samples` samples: one per equal
/// slot, at a random place inside it that leaves [`GAP`] quiet samples on
/// both sides.
pub fn event_positions(samples: u64, events: usize, seed: u64) -> Result<Vec<u64>> {
    if events == 0 {
        return Ok(Vec::new());
    }
    let slot = samples / events as u64;
    let need = 2 * GAP + BURST_LEN;
    if slot < need {
        return Err(Error::usage(format!(
            "demo: {events} events need at least {} samples ({need} per event)",
            need * events as u64
        )));
    }
    let mut rng = Rng::new(seed ^ 0xE7E7);
    Ok((0..events as u64)
        .map(|k| k * slot + GAP + rng.next_u64() % (slot - need + 1))
        .collect())
}

/// Writes the synthetic recording (f32 little-endian, one channel) to `path`.
pub fn write_signal(path: &Path, samples: u64, positions: &[u64], seed: u64) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng::new(seed);
    let mut next = positions.iter().copied().peekable();
    let mut buf = [0u8; 8];
    let mut i = 0;
    while i < samples {
        let (a, b) = rng.normal_pair();
        for (k, v) in [a, b].into_iter().enumerate() {
            let idx = i + k as u64;
            while next.peek().is_some_and(|&p| p + BURST_LEN <= idx) {
                next.next();
            }
            let sigma = match next.peek() {
                Some(&p) if idx >= p => BURST_SIGMA,
                _ => NOISE_SIGMA,
            };
            buf[4 * k..4 * k + 4].copy_from_slice(&(v * sigma).to_le_bytes());
        }
        let n = if samples - i >= 2 { 8 } else { 4 };
        out.write_all(&buf[..n]).map_err(|e| Error::io(path, e))?;
        i += 2;
    }
    out.flush().map_err(|e| Error::io(path, e))
}

/// How the events found compare with those injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Injected bursts with exactly one event starting inside them.
    pub recovered: usize,
    /// Injected bursts with no event starting inside them.
    pub missed: usize,
    /// Events that start inside no burst, or a second one in the same burst.
    pub spurious: usize,
}

/// The demo's filter: a centred 3-tap moving average.
pub const KERNEL: [f32; 3] = [1.0 / 3.0; 3];

/// How far before a burst its first sample reaches the filtered signal: the
/// centred kernel's half-width (output `i` sees input `i + 1`).
pub const LEAD: u64 = (KERNEL.len() as u64 - 1) / 2;

/// Matches events to injected bursts: an event belongs to a burst when its
/// onset lies inside `[position − LEAD, position + BURST_LEN)`.
pub fn check(positions: &[u64], events: &[Event]) -> Check {
    let mut hits = vec![0usize; positions.len()];
    let mut spurious = 0;
    for e in events {
        let k = positions.partition_point(|&p| p <= e.start + LEAD);
        match k.checked_sub(1) {
            Some(k) if e.start < positions[k] + BURST_LEN => hits[k] += 1,
            _ => spurious += 1,
        }
    }
    Check {
        recovered: hits.iter().filter(|&&h| h == 1).count(),
        missed: hits.iter().filter(|&&h| h == 0).count(),
        spurious: spurious
            + hits
                .iter()
                .filter(|&&h| h > 1)
                .map(|h| h - 1)
                .sum::<usize>(),
    }
}
