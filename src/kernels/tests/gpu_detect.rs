//! GPU detection ([`GpuDetect`]) against the CPU detectors, the CPU twins of
//! its kernels and an f64 reference window sum.
//!
//! Runs on any adapter, lavapipe included (skipped without one unless
//! `REQUIRE_GPU=1`); every signal is at most 10^5 samples so the software
//! rasteriser stays quick.

use super::common;

use std::sync::Arc;

use common::noisy_signal;

use sigstream::backend::gpu::detect::GpuDetect;
use sigstream::backend::gpu::{GpuContext, STEP_PARAMS_SIZE, StepParams};
use sigstream::detect::{DetectorSpec, Event, Polarity};
use sigstream::kernels;

/// Peak values: the CPU's cft is f64, the GPU's f32 with sums formed in a
/// different order (pyramid segments, scans of affine maps); a few f32 ulps
/// (6e-8 each) per operation over O(log n) operations, and the recursive
/// detector's f32 recurrence (rounding that decays with (1−c)^k, about
/// sqrt(nlta) units), stay within 1e-5 (the bound tests/gpu_backend.rs uses
/// too), while a formula slip would be off by whole percent.
const PEAK_REL_TOL: f64 = 1e-5;

/// Shader vs CPU twin: same operations in the same order; only fused
/// multiply-adds or a different division rounding in the driver could
/// differ, by an ulp or two.
const TWIN_REL_TOL: f32 = 1e-6;

/// Pyramid window sums vs exact f64 sums of the same f32 squares: each
/// f32 addition of non-negative terms adds at most half an ulp (6e-8)
/// relative, over at most ~2·log2(nlta) + 1 additions and one f32 squaring;
/// 2e-6 is a loose bound for nlta up to 2^16. A prefix-sum difference after
/// the loud burst below would be off by orders of magnitude.
const PYRAMID_REL_TOL: f64 = 2e-6;

fn specs() -> Vec<DetectorSpec> {
    vec![
        DetectorSpec::Threshold {
            on: 12.0,
            off: 3.0,
            max_len: None,
            dead: None,
            polarity: Polarity::Both,
        },
        DetectorSpec::ClassicStaLta {
            nsta: 20,
            nlta: 200,
            on: 3.0,
            off: 1.5,
            max_len: Some(300),
            dead: None,
        },
        DetectorSpec::RecursiveStaLta {
            nsta: 20,
            nlta: 200,
            on: 2.5,
            off: 1.2,
            max_len: None,
            dead: None,
        },
    ]
}

/// Everything a test needs to drive one [`GpuDetect`] step by step, as the
/// pipeline would: y and the step uniform written per step (`ctx.write`,
/// fine in tests), two candidate slots used in turn.
struct Harness {
    ctx: Arc<GpuContext>,
    det: GpuDetect,
    step: wgpu::Buffer,
    y: wgpu::Buffer,
    readback: wgpu::Buffer,
    chunk: usize,
    channels: usize,
    base: u64,
    steps: usize,
    last_readback: Vec<u8>,
}

impl Harness {
    fn new(ctx: &Arc<GpuContext>, spec: &DetectorSpec, channels: usize, chunk: usize) -> Self {
        let step = ctx
            .uniform("step", &StepParams::default())
            .expect("uniform");
        assert_eq!(STEP_PARAMS_SIZE, 32);
        // A stride larger than the chunk, to check the kernels use it.
        let stride = chunk + 3;
        let y = ctx.storage("y", (channels * stride * 4) as u64);
        let det = GpuDetect::new(ctx, spec, channels, chunk, &step, &y, stride, 2).expect("plan");
        let readback = ctx.storage("readback", det.readback_size());
        Harness {
            ctx: ctx.clone(),
            det,
            step,
            y,
            readback,
            chunk,
            channels,
            base: 0,
            steps: 0,
            last_readback: Vec::new(),
        }
    }

    /// Runs one step over `data[c][base .. base + n]` and stitches it.
    fn step(&mut self, data: &[Vec<f32>], n: usize, events: &mut Vec<Event>) {
        assert!(n <= self.chunk);
        let stride = self.chunk + 3;
        for (c, x) in data.iter().enumerate() {
            let b = self.base as usize;
            self.ctx
                .write(&self.y, (c * stride * 4) as u64, &x[b..b + n]);
        }
        let warm_up =
            u32::try_from(self.det.warm_up().saturating_sub(self.base)).unwrap_or(u32::MAX);
        let params = StepParams {
            frames: n as u32,
            drop: 0,
            out_frames: n as u32,
            warm_up,
            base_lo: self.base as u32,
            base_hi: (self.base >> 32) as u32,
            pad: [0; 2],
        };
        self.ctx.write(&self.step, 0, &[params]);
        let slot = self.steps % 2;
        let mut enc = self.ctx.encoder("step");
        self.det.encode(&mut enc, slot, n);
        self.det.encode_readback(&mut enc, slot, &self.readback, 0);
        self.ctx.run(enc).expect("run");
        let bytes: Vec<u8> = self
            .ctx
            .read(&self.readback, 0, self.det.readback_size() as usize)
            .expect("read");
        self.det
            .stitch(&bytes, slot, self.base, n, events)
            .expect("stitch");
        self.base += n as u64;
        self.steps += 1;
        self.last_readback = bytes;
    }

    /// The cft of the last step, `chunk` values per channel.
    fn cft(&self) -> Vec<f32> {
        self.ctx
            .read(self.det.cft_buffer(), 0, self.channels * self.chunk)
            .expect("read cft")
    }

    /// The last step's candidates per channel from its readback (only the
    /// fast region), sorted by index.
    fn candidates(&self) -> Vec<Vec<(u32, u32)>> {
        let b = &self.last_readback;
        let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let fast = self.det.fast();
        let at = (self.channels * 4).next_multiple_of(8);
        (0..self.channels)
            .map(|c| {
                let n = (word(c * 4) as usize).min(fast);
                let mut v: Vec<_> = (0..n)
                    .map(|j| {
                        let p = at + (c * fast + j) * 8;
                        (word(p), word(p + 4))
                    })
                    .collect();
                v.sort_unstable();
                v
            })
            .collect()
    }
}

/// GPU events of `data` (one Vec per channel) fed in steps of `sizes`
/// (cycled, clamped to the chunk and the data), sorted by channel and start.
fn gpu_events(
    ctx: &Arc<GpuContext>,
    spec: &DetectorSpec,
    data: &[Vec<f32>],
    sizes: &[usize],
    chunk: usize,
) -> Vec<Event> {
    let mut h = Harness::new(ctx, spec, data.len(), chunk);
    let n = data[0].len();
    let mut events = Vec::new();
    for &s in sizes.iter().cycle() {
        let left = n - h.base as usize;
        if left == 0 {
            break;
        }
        h.step(data, s.min(chunk).min(left), &mut events);
    }
    h.det.finish(&mut events);
    events.sort_by_key(|e| (e.channel, e.start));
    events
}

fn cpu_events(spec: &DetectorSpec, data: &[Vec<f32>]) -> Vec<Event> {
    let mut events = Vec::new();
    for (c, x) in data.iter().enumerate() {
        let mut d = spec.build_for_channel(c);
        d.process(x, 0, &mut events);
        d.finish(&mut events);
    }
    events.sort_by_key(|e| (e.channel, e.start));
    events
}

fn assert_same_events(got: &[Event], want: &[Event], what: &str) {
    let spans = |e: &[Event]| -> Vec<_> {
        e.iter()
            .map(|e| (e.channel, e.start, e.end, e.peak_index))
            .collect()
    };
    assert_eq!(spans(got), spans(want), "{what}: events differ");
    for (g, w) in got.iter().zip(want) {
        let scale = w.peak_value.abs().max(f64::MIN_POSITIVE);
        assert!(
            (g.peak_value - w.peak_value).abs() <= PEAK_REL_TOL * scale
                || (g.peak_value.is_infinite() && g.peak_value == w.peak_value),
            "{what}: peak at {} is {} on the GPU, {} on the CPU",
            w.peak_index,
            g.peak_value,
            w.peak_value
        );
    }
}

#[test]
fn events_match_the_cpu_detectors_for_any_step_sizes() {
    let Some(ctx) = common::gpu() else { return };
    let n = 12_000;
    let one = vec![noisy_signal(1, n, 12)];
    let three: Vec<_> = (0..3).map(|c| noisy_signal(10 + c, n, 10)).collect();
    for spec in specs() {
        for data in [&one, &three] {
            let want = cpu_events(&spec, data);
            assert!(want.len() >= 5, "{spec:?}: test signal should trigger");
            // Whole chunks, steps shorter than nlta, ragged steps.
            for (sizes, chunk) in [
                (vec![4096], 4096),
                (vec![150, 37, 199, 1], 256),
                (vec![2500, 1100, 7], 2600),
            ] {
                let got = gpu_events(&ctx, &spec, data, &sizes, chunk);
                let what = format!("{spec:?}, {} channels, steps {sizes:?}", data.len());
                assert_same_events(&got, &want, &what);
            }
        }
    }
}

/// The twins' state for one detector, stepped alongside the GPU.
enum Twin {
    Threshold(kernels::detect_threshold::Params),
    Classic {
        p: kernels::detect_classic::Params,
        hist: Vec<f32>,
        pyr: Vec<f32>,
    },
    Recursive {
        p: kernels::detect_recursive::Params,
        tiles: Vec<kernels::detect_recursive::Map>,
        state: Vec<kernels::detect_recursive::State>,
        starts: Vec<kernels::detect_recursive::State>,
    },
}

impl Twin {
    fn new(spec: &DetectorSpec, channels: usize, chunk: usize, stride: usize) -> Self {
        use kernels::detect_recursive as r;
        match *spec {
            DetectorSpec::Threshold { .. } => Twin::Threshold(kernels::detect_threshold::Params {
                y_stride: stride,
                chunk,
            }),
            DetectorSpec::ClassicStaLta { nsta, nlta, .. } => {
                let p = kernels::detect_classic::Params::new(nsta, nlta, chunk, stride);
                Twin::Classic {
                    hist: vec![0.0; channels * (nlta - 1)],
                    pyr: vec![0.0; channels * p.pstride],
                    p,
                }
            }
            DetectorSpec::RecursiveStaLta { nsta, nlta, .. } => {
                let p = r::Params {
                    y_stride: stride,
                    chunk,
                    max_tiles: chunk.div_ceil(r::TILE),
                    nlta,
                    csta: (1.0 / nsta as f64) as f32,
                    clta: (1.0 / nlta as f64) as f32,
                };
                let zero = r::State {
                    sta: 0.0,
                    lta: 0.0,
                    bad: 0,
                    started: 0,
                };
                Twin::Recursive {
                    tiles: vec![r::IDENTITY; channels * p.max_tiles],
                    state: vec![zero; channels],
                    starts: vec![zero; channels * p.max_tiles],
                    p,
                }
            }
        }
    }

    fn step(&mut self, channels: usize, step: &StepParams, y: &[f32], cft: &mut [f32]) {
        use kernels::detect_recursive as r;
        match self {
            Twin::Threshold(p) => kernels::detect_threshold::main(p, channels, step, y, cft),
            Twin::Classic { p, hist, pyr } => {
                kernels::detect_classic::run_step(p, channels, step, y, hist, pyr, cft);
            }
            Twin::Recursive {
                p,
                tiles,
                state,
                starts,
            } => {
                r::tile_maps(p, channels, step, y, tiles);
                r::carry(p, channels, step, tiles, state, starts);
                r::values(p, channels, step, y, starts, cft);
            }
        }
    }
}

fn with_non_finite(mut x: Vec<f32>, at: &[(usize, f32)]) -> Vec<f32> {
    for &(i, v) in at {
        x[i] = v;
    }
    x
}

#[test]
fn kernels_match_their_cpu_twins() {
    let Some(ctx) = common::gpu() else { return };
    let n = 6000;
    let chunk = 1500;
    let stride = chunk + 3;
    let data = vec![
        with_non_finite(
            noisy_signal(3, n, 6),
            &[(900, f32::NAN), (3100, f32::INFINITY)],
        ),
        with_non_finite(
            noisy_signal(4, n, 6),
            &[(0, f32::NEG_INFINITY), (1499, f32::NAN)],
        ),
    ];
    for spec in specs() {
        let mut h = Harness::new(&ctx, &spec, data.len(), chunk);
        let mut twin = Twin::new(&spec, data.len(), chunk, stride);
        let low = match spec {
            DetectorSpec::Threshold { on, off, .. }
            | DetectorSpec::ClassicStaLta { on, off, .. }
            | DetectorSpec::RecursiveStaLta { on, off, .. } => on.min(off) as f32,
        };
        let cp = kernels::detect_compact::Params {
            chunk,
            fast: h.det.fast(),
            channels: data.len(),
            low,
        };
        let mut events = Vec::new();
        for &size in [700, 150, 1500, 37, 1500, 1500, 613].iter() {
            let base = h.base as usize;
            let mut y = vec![0.0f32; data.len() * stride];
            for (c, x) in data.iter().enumerate() {
                y[c * stride..c * stride + size].copy_from_slice(&x[base..base + size]);
            }
            let warm_up = u32::try_from(h.det.warm_up().saturating_sub(h.base)).unwrap_or(u32::MAX);
            let params = StepParams {
                frames: size as u32,
                out_frames: size as u32,
                warm_up,
                base_lo: base as u32,
                ..StepParams::default()
            };
            h.step(&data, size, &mut events);
            let gpu = h.cft();
            let mut cpu = vec![0.0f32; data.len() * chunk];
            twin.step(data.len(), &params, &y, &mut cpu);
            for c in 0..data.len() {
                for i in 0..size {
                    let (g, t) = (gpu[c * chunk + i], cpu[c * chunk + i]);
                    assert!(
                        (g.is_nan() && t.is_nan())
                            || g == t
                            || (g - t).abs() <= TWIN_REL_TOL * t.abs(),
                        "{spec:?}: channel {c}, output {} of the stream: GPU {g}, twin {t}",
                        base + i
                    );
                }
            }
            // Compaction twin over the GPU's own cft: the same candidates.
            let mut counts = vec![0u32; data.len()];
            let mut cands = vec![[0u32; 2]; data.len() * chunk];
            kernels::detect_compact::main(&cp, &params, &gpu, &mut counts, &mut cands);
            let got = h.candidates();
            for (c, g) in got.iter().enumerate() {
                let want: Vec<(u32, u32)> = (0..(counts[c] as usize).min(cp.fast))
                    .map(|j| {
                        let [i, v] = cands[kernels::detect_compact::slot(&cp, c, j)];
                        (i, v)
                    })
                    .collect();
                assert_eq!(g, &want, "{spec:?}: candidates of channel {c}");
            }
        }
    }
}

/// A loud burst (x10^4) followed by quiet: the classic cft after the burst
/// has left the windows must match window sums computed directly in f64 from
/// the same samples (a prefix-sum difference in f32 would be all rounding).
#[test]
fn classic_cft_has_no_cancellation_after_a_loud_burst() {
    let Some(ctx) = common::gpu() else { return };
    let (nsta, nlta) = (30, 1000);
    let spec = DetectorSpec::ClassicStaLta {
        nsta,
        nlta,
        on: 3.0,
        off: 1.5,
        max_len: None,
        dead: None,
    };
    let n = 20_000;
    let mut x = noisy_signal(7, n, 0);
    for v in &mut x[5000..5600] {
        *v *= 1e4;
    }
    for v in &mut x[9000..] {
        *v *= 1e-3;
    }
    let chunk = 2048;
    let mut h = Harness::new(&ctx, &spec, 1, chunk);
    let mut events = Vec::new();
    let data = vec![x.clone()];
    let sq: Vec<f64> = x.iter().map(|&v| f64::from(v) * f64::from(v)).collect();
    let window =
        |end: usize, len: usize| -> f64 { sq[(end + 1).saturating_sub(len)..=end].iter().sum() };
    let mut worst = 0.0f64;
    while (h.base as usize) < n {
        let base = h.base as usize;
        let size = chunk.min(n - base);
        h.step(&data, size, &mut events);
        let cft = h.cft();
        for (i, &got) in cft[..size].iter().enumerate() {
            let at = base + i;
            if at < nlta - 1 {
                assert_eq!(got, 0.0, "warm-up at {at}");
                continue;
            }
            let want = window(at, nsta) / window(at, nlta) * (nlta as f64 / nsta as f64);
            let rel = (f64::from(got) - want).abs() / want;
            worst = worst.max(rel);
            assert!(
                rel <= PYRAMID_REL_TOL,
                "output {at}: GPU {got} vs f64 {want} (relative error {rel:e})"
            );
        }
    }
    eprintln!("worst relative error of the classic cft: {worst:e}");
}

/// NaN and ±Inf samples: no crash, the CPU's NaN stretches, and the same
/// events as the CPU detectors, including events right after the stretch.
#[test]
fn non_finite_samples_give_the_cpu_events() {
    let Some(ctx) = common::gpu() else { return };
    let n = 15_000;
    let bad = [
        (10, f32::NAN),
        (2000, f32::INFINITY),
        (2001, f32::NEG_INFINITY),
        (6100, f32::NAN),
        (11_999, f32::INFINITY),
    ];
    let data = vec![
        with_non_finite(noisy_signal(21, n, 14), &bad),
        noisy_signal(22, n, 14),
    ];
    for spec in specs() {
        let want = cpu_events(&spec, &data);
        for (sizes, chunk) in [(vec![1000, 333], 1000), (vec![4096], 4096)] {
            let got = gpu_events(&ctx, &spec, &data, &sizes, chunk);
            assert_same_events(&got, &want, &format!("{spec:?} with non-finite samples"));
        }
    }
}

/// With `on <= 0` every finite sample is a candidate, far more than the
/// fast readback holds: the rest are read from the GPU, and the events are
/// still the CPU's.
#[test]
fn candidates_beyond_the_fast_readback_are_read_back() {
    let Some(ctx) = common::gpu() else { return };
    let n = 20_000;
    let data: Vec<_> = (0..3).map(|c| noisy_signal(30 + c, n, 8)).collect();
    let specs = [
        // The threshold's levels must be positive; 1e-30 is below every
        // (non-zero) sample of the noise, so every sample is a candidate.
        DetectorSpec::Threshold {
            on: 1e-30,
            off: 2.0,
            max_len: Some(500),
            dead: None,
            polarity: Polarity::Both,
        },
        DetectorSpec::RecursiveStaLta {
            nsta: 10,
            nlta: 100,
            on: -1.0,
            off: 1.1,
            max_len: Some(1000),
            dead: None,
        },
        DetectorSpec::ClassicStaLta {
            nsta: 10,
            nlta: 100,
            on: 4.0,
            off: 0.0,
            max_len: None,
            dead: None,
        },
    ];
    for spec in specs {
        let want = cpu_events(&spec, &data);
        let chunk = 8192;
        let h = Harness::new(&ctx, &spec, 3, chunk);
        assert!(
            h.det.fast() < chunk,
            "the test must overflow the fast region"
        );
        let got = gpu_events(&ctx, &spec, &data, &[chunk, 5000], chunk);
        assert_same_events(&got, &want, &format!("{spec:?} (every sample a candidate)"));
    }
}
