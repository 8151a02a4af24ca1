//! The GPU backend against the CPU backend, through the whole engine, on the
//! same inputs: identical event lists and filtered output within a named
//! tolerance, for several chunk sizes, channel counts, conv modes, filters
//! and detectors. Runs on any adapter (Mesa's lavapipe in CI), so the data
//! is kept small.

#![cfg(feature = "gpu")]

mod common;

use std::sync::Arc;

use sigstream::backend::gpu::GpuBackend;
use sigstream::backend::{Backend, DetectorChoice, Job};
use sigstream::detect::{Detector, DetectorSpec, Event, Polarity};
use sigstream::filter::{ConvMode, FilterSpec, FirDesign};
use sigstream::pipeline::{MemorySource, Sinks, StreamConfig, StreamProcessor};
use sigstream::sink::VecSink;

/// Filtered output, GPU vs CPU, relative to ‖k‖₁·max|x|: both are f32
/// computations of the same sums in different orders (direct sums or FFTs
/// of different sizes), each within a few ulps·log2(nfft) of the exact
/// value; 1e-5 is the bound and still catches a wrong tap, shift or
/// dropped sample (those err by ~|k_j|·|x|).
const SIGNAL_REL_TOL: f64 = 1e-5;

/// Events' peak values: the GPU's characteristic function is f32, the
/// CPU's f64 from the same f32 samples; an f32 STA/LTA ratio of window sums
/// of ≤ 2000 squares is within ~1e-6 relative.
const PEAK_REL_TOL: f64 = 1e-5;

fn run(
    backend: Arc<dyn Backend>,
    x: &[f32],
    channels: usize,
    job: &Job,
    chunk: Option<usize>,
    signal: bool,
) -> (Vec<f32>, Vec<Event>) {
    let config = StreamConfig {
        chunk_size: chunk,
        threads: 2,
        queue_depth: 2,
        ..StreamConfig::default()
    };
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut source = MemorySource::new(x, channels, None).unwrap();
    let sink: Option<Box<dyn sigstream::sink::SignalSink + '_>> = if signal {
        Some(Box::new(VecSink { out: &mut out }))
    } else {
        None
    };
    let stats = StreamProcessor::new(config, job.clone())
        .with_backend(backend)
        .process_source(
            &mut source,
            Sinks {
                signal: sink,
                events: Some(&mut events),
                snippets: None,
                progress: None,
            },
        )
        .expect("processing in memory cannot fail");
    assert_eq!(stats.events, events.len() as u64);
    (out, events)
}

fn cpu() -> Arc<dyn Backend> {
    Arc::new(sigstream::backend::cpu::CpuBackend)
}

fn assert_same_events(cpu: &[Event], gpu: &[Event], what: &str) {
    assert!(!cpu.is_empty(), "{what}: the test data must produce events");
    let key = |e: &Event| (e.channel, e.start, e.end, e.peak_index);
    if let Some(i) = (0..cpu.len().min(gpu.len())).find(|&i| key(&cpu[i]) != key(&gpu[i])) {
        panic!(
            "{what}: first differing event #{i}: cpu {:?} gpu {:?}",
            cpu[i], gpu[i]
        );
    }
    assert_eq!(cpu.len(), gpu.len(), "{what}: event counts differ");
    for (a, b) in cpu.iter().zip(gpu) {
        let rel = (a.peak_value - b.peak_value).abs() / a.peak_value.abs().max(f64::MIN_POSITIVE);
        assert!(
            rel <= PEAK_REL_TOL,
            "{what}: peak {} vs {} (rel {rel:e})",
            a.peak_value,
            b.peak_value
        );
    }
}

fn assert_close(cpu: &[f32], gpu: &[f32], scale: f64, what: &str) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: output lengths differ");
    for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        let d = (f64::from(*a) - f64::from(*b)).abs();
        assert!(
            d <= SIGNAL_REL_TOL * scale,
            "{what}: first difference beyond tolerance at {i}: cpu {a} gpu {b}"
        );
    }
}

/// `chunk`: `None` for the one the memory budget plans.
fn compare(gpu: &Arc<dyn Backend>, x: &[f32], channels: usize, job: &Job, chunk: Option<usize>) {
    let what = format!(
        "{channels} ch, chunk {chunk:?}, {} taps, {:?}, {:?}",
        job.taps(),
        job.conv_mode,
        job.detector
    );
    let (y_cpu, ev_cpu) = run(cpu(), x, channels, job, chunk, true);
    let (y_gpu, ev_gpu) = run(gpu.clone(), x, channels, job, chunk, true);
    let k1: f64 = job
        .kernel
        .as_ref()
        .map_or(1.0, |k| k.iter().map(|v| f64::from(v.abs())).sum());
    let xmax = x.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
    assert_close(&y_cpu, &y_gpu, k1 * xmax, &what);
    if job.detector.is_some() {
        assert_same_events(&ev_cpu, &ev_gpu, &what);
        // Without a signal sink the GPU reads back only event candidates.
        let (y, ev_only) = run(gpu.clone(), x, channels, job, chunk, false);
        assert!(y.is_empty());
        assert_same_events(&ev_cpu, &ev_only, &format!("{what}, events only"));
    }
}

fn gpu_backend() -> Option<Arc<dyn Backend>> {
    common::gpu().map(|ctx| Arc::new(GpuBackend::with_context(ctx)) as Arc<dyn Backend>)
}

fn job(kernel: Option<Vec<f32>>, mode: ConvMode, detector: Option<DetectorSpec>) -> Job {
    Job {
        kernel,
        conv_mode: mode,
        detector: detector.map(DetectorChoice::Builtin),
        ..Job::default()
    }
}

fn lowpass(taps: usize) -> Vec<f32> {
    FilterSpec::Lowpass {
        cutoff: 50.0,
        fir: FirDesign::taps(taps),
    }
    .taps(Some(1000.0))
    .expect("a valid design")
}

#[test]
fn moving_average_and_threshold_match_the_cpu() {
    let Some(gpu) = gpu_backend() else { return };
    let x = common::bursts(30_000, 1, 1);
    let det = DetectorSpec::Threshold {
        on: 20.0,
        off: 8.0,
        max_len: None,
        dead: None,
        polarity: Polarity::Both,
    };
    for chunk in [777, 4096, 40_000] {
        compare(
            &gpu,
            &x,
            1,
            &job(Some(vec![1.0 / 3.0; 3]), ConvMode::Same, Some(det.clone())),
            Some(chunk),
        );
    }
}

#[test]
fn classic_sta_lta_matches_the_cpu_on_three_channels() {
    let Some(gpu) = gpu_backend() else { return };
    let x = common::bursts(20_000, 3, 2);
    let det = DetectorSpec::ClassicStaLta {
        nsta: 40,
        nlta: 400,
        on: 3.0,
        off: 1.5,
        max_len: None,
        dead: None,
    };
    for (chunk, mode) in [
        (1000, ConvMode::Full),
        (333, ConvMode::Valid),
        (8192, ConvMode::Same),
    ] {
        compare(
            &gpu,
            &x,
            3,
            &job(Some(lowpass(65)), mode, Some(det.clone())),
            Some(chunk),
        );
    }
}

#[test]
fn recursive_sta_lta_matches_the_cpu() {
    let Some(gpu) = gpu_backend() else { return };
    let x = common::bursts(20_000, 2, 3);
    let det = DetectorSpec::RecursiveStaLta {
        nsta: 40,
        nlta: 400,
        on: 3.0,
        off: 1.5,
        max_len: Some(300),
        dead: None,
    };
    for chunk in [500, 5000] {
        compare(
            &gpu,
            &x,
            2,
            &job(
                Some(vec![0.25, 0.5, 0.25]),
                ConvMode::Same,
                Some(det.clone()),
            ),
            Some(chunk),
        );
    }
    // Without a filter the detector sees the raw samples.
    compare(
        &gpu,
        &x,
        2,
        &job(None, ConvMode::Full, Some(det)),
        Some(4096),
    );
}

#[test]
fn long_kernels_match_the_cpu_in_every_mode() {
    let Some(gpu) = gpu_backend() else { return };
    let x = common::bursts(12_000, 1, 4);
    for mode in [ConvMode::Full, ConvMode::Same, ConvMode::Valid] {
        compare(
            &gpu,
            &x,
            1,
            &job(Some(lowpass(1025)), mode, None),
            Some(3000),
        );
    }
}

/// The chunk the memory budget plans (no `--chunk-size`), for many
/// channels: the GPU processor is planned for it and agrees with the CPU,
/// which plans its own (smaller: it counts no device buffers) chunk.
#[test]
fn the_planned_chunk_works_for_many_channels() {
    let Some(gpu) = gpu_backend() else { return };
    let x = common::bursts(20_000, 96, 6);
    // The low-pass keeps a tenth of the band: bursts of σ = 12 come out
    // near σ = 4.
    let det = DetectorSpec::Threshold {
        on: 12.0,
        off: 6.0,
        max_len: None,
        dead: None,
        polarity: Polarity::Both,
    };
    compare(
        &gpu,
        &x,
        96,
        &job(Some(lowpass(101)), ConvMode::Same, Some(det)),
        None,
    );
}

#[test]
fn a_custom_detector_runs_on_the_read_back_signal() {
    let Some(gpu) = gpu_backend() else { return };
    /// Reports every chunk as an event: checks it sees contiguous chunks.
    struct Chunks(u64);
    impl Detector for Chunks {
        fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
            assert_eq!(offset, self.0, "chunks must be contiguous");
            self.0 += samples.len() as u64;
            events.push(Event {
                channel: 0,
                start: offset,
                end: self.0 - 1,
                peak_index: offset,
                peak_value: 0.0,
            });
        }
        fn finish(&mut self, _: &mut Vec<Event>) {}
    }
    let x = common::bursts(10_000, 1, 5);
    let job = Job {
        kernel: Some(vec![0.5, 0.5]),
        conv_mode: ConvMode::Full,
        detector: Some(DetectorChoice::Custom(Arc::new(|| {
            Box::new(Chunks(0)) as Box<dyn Detector>
        }))),
        ..Job::default()
    };
    let (_, events) = run(gpu, &x, 1, &job, Some(1500), false);
    let covered: u64 = events.iter().map(|e| e.end - e.start + 1).sum();
    assert_eq!(
        covered,
        10_000 + 1,
        "full mode: n + taps − 1 outputs, each seen once"
    );
}

#[test]
fn chunks_split_into_several_gpu_steps_give_the_same_results() {
    let Some(ctx) = common::gpu() else { return };
    // Steps of 1000 frames inside chunks of 4096: each process call submits
    // five steps (the last one short) and reads back all but the last.
    let split: Arc<dyn Backend> = Arc::new(GpuBackend::with_context(ctx).with_max_step(1000));
    let x = common::bursts(15_000, 2, 6);
    let det = DetectorSpec::ClassicStaLta {
        nsta: 40,
        nlta: 400,
        on: 3.0,
        off: 1.5,
        max_len: None,
        dead: None,
    };
    compare(
        &split,
        &x,
        2,
        &job(Some(lowpass(65)), ConvMode::Same, Some(det)),
        Some(4096),
    );
}

#[test]
fn a_device_lost_mid_run_fails_the_run_cleanly() {
    let Some(ctx) = common::gpu() else { return };
    /// Destroys the device (as a driver reset would lose it) when it sees
    /// its second chunk of filtered samples.
    struct Saboteur {
        ctx: Arc<sigstream::backend::gpu::GpuContext>,
        calls: usize,
    }
    impl Detector for Saboteur {
        fn process(&mut self, _: &[f32], _: u64, _: &mut Vec<Event>) {
            self.calls += 1;
            if self.calls == 2 {
                self.ctx.device.destroy();
            }
        }
        fn finish(&mut self, _: &mut Vec<Event>) {}
    }
    let for_detector = ctx.clone();
    let job = Job {
        kernel: Some(vec![0.5, 0.5]),
        detector: Some(DetectorChoice::Custom(Arc::new(move || {
            Box::new(Saboteur {
                ctx: for_detector.clone(),
                calls: 0,
            }) as Box<dyn Detector>
        }))),
        ..Job::default()
    };
    let x = common::bursts(20_000, 1, 7);
    let mut source = MemorySource::new(&x, 1, None).unwrap();
    let mut out = Vec::new();
    let result = StreamProcessor::new(
        StreamConfig {
            chunk_size: Some(1000),
            threads: 1,
            queue_depth: 2,
            ..StreamConfig::default()
        },
        job,
    )
    .with_backend(Arc::new(GpuBackend::with_context(ctx)))
    .process_source(
        &mut source,
        Sinks {
            signal: Some(Box::new(VecSink { out: &mut out })),
            ..Sinks::default()
        },
    );
    match result {
        Err(e @ sigstream::Error::Gpu { .. }) => {
            assert_eq!(e.exit_code(), 1);
            let msg = e.to_string();
            assert!(msg.starts_with("gpu: "), "{msg}");
            assert!(
                msg.contains("device lost"),
                "the message names the cause: {msg}"
            );
        }
        Err(e) => panic!("expected a GPU error, got {e:?}"),
        Ok(stats) => panic!("the run succeeded after the device was destroyed: {stats:?}"),
    }
}

#[test]
fn detectors_the_kernels_lack_are_refused_with_the_reason() {
    let Some(gpu) = gpu_backend() else { return };
    let threshold = |dead, polarity| DetectorSpec::Threshold {
        on: 4.0,
        off: 1.0,
        max_len: None,
        dead,
        polarity,
    };
    for choice in [
        DetectorChoice::Builtin(threshold(Some(30), Polarity::Both)),
        DetectorChoice::Builtin(threshold(None, Polarity::Neg)),
        DetectorChoice::PerChannel(Arc::from(vec![threshold(None, Polarity::Both); 2])),
    ] {
        assert!(!choice.gpu_supported());
        let job = Job {
            detector: Some(choice.clone()),
            ..Job::default()
        };
        match gpu.plan(&job, 2, 4096, 1) {
            Err(e @ sigstream::Error::Usage { .. }) => assert!(
                e.to_string().contains("runs on the CPU backend only"),
                "{choice:?}: {e}"
            ),
            Err(e) => panic!("{choice:?}: expected a usage error, got {e}"),
            Ok(_) => panic!("{choice:?}: the GPU backend planned it"),
        }
    }
}
