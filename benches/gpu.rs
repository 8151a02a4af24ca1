//! CPU against GPU, per stage and end to end.
//!
//! `cargo bench --bench gpu` (any adapter, software ones included; set
//! `SIGSTREAM_BENCH_ADAPTER=NAME` to pick one). Kernel groups time the
//! kernels alone on device-resident data (encode, submit, wait); the
//! `gpu_transfer` group times upload and readback apart; `gpu_e2e` runs the
//! whole engine over an in-memory signal on each backend. Throughput is in
//! bytes of f32 input (complex: 8 bytes per value).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use sigstream::backend::cpu::fir::{Fir, FirMethod};
use sigstream::backend::gpu::detect::GpuDetect;
use sigstream::backend::gpu::fft::GpuFft;
use sigstream::backend::gpu::fir::{GpuFir, GpuFirMethod};
use sigstream::backend::gpu::{GpuBackend, GpuContext, GpuOptions, STEP_PARAMS_SIZE, StepParams};
use sigstream::backend::{Backend, DetectorChoice, Job};
use sigstream::detect::{DetectorSpec, Polarity};
use sigstream::filter::ConvMode;
use sigstream::pipeline::{MemorySource, Sinks, StreamConfig, StreamProcessor};

fn context() -> Option<Arc<GpuContext>> {
    let options = GpuOptions {
        adapter: std::env::var("SIGSTREAM_BENCH_ADAPTER").ok(),
        allow_software: true,
    };
    match GpuContext::new(&options) {
        Ok(ctx) => {
            eprintln!("GPU benches on {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            eprintln!("no GPU benches: {e}");
            None
        }
    }
}

/// Values per measured call: large enough that submit/wait overheads are
/// small next to the kernels on a real GPU.
fn total() -> usize {
    std::env::var("SIGSTREAM_BENCH_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 22)
}

fn signal(n: usize) -> Vec<f32> {
    let mut rng = common::Rng::new(7);
    (0..n).map(|_| rng.normal_pair().0).collect()
}

fn step_buffer(ctx: &GpuContext, frames: usize, warm_up: u32) -> wgpu::Buffer {
    let step = StepParams {
        frames: frames as u32,
        drop: 0,
        out_frames: frames as u32,
        warm_up,
        ..StepParams::default()
    };
    let buffer = ctx.buffer(
        "bench step",
        STEP_PARAMS_SIZE,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    ctx.write(&buffer, 0, &[step]);
    buffer
}

fn fft(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let mut group = c.benchmark_group("fft");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    let total = total();
    for log2 in [10, 12, 14, 16, 18, 20] {
        let n = 1usize << log2;
        let batch = (total / n).max(1);
        group.throughput(Throughput::Bytes((n * batch * 8) as u64));
        let data: Vec<[f32; 2]> = signal(2 * n * batch)
            .chunks_exact(2)
            .map(|p| [p[0], p[1]])
            .collect();
        let plan = GpuFft::new(&ctx, n, batch, false).expect("an FFT plan");
        let buffer = ctx.storage_init("bench fft", &data).expect("a buffer");
        let binding = plan.bind(&buffer);
        group.bench_with_input(BenchmarkId::new("gpu", n), &n, |b, _| {
            b.iter(|| {
                let mut encoder = ctx.encoder("bench fft");
                plan.encode(&mut encoder, &binding);
                ctx.run(encoder).expect("the FFT runs");
            });
        });
        let cpu_plan = FftPlanner::<f32>::new().plan_fft_forward(n);
        let mut cpu: Vec<Complex<f32>> = data.iter().map(|p| Complex::new(p[0], p[1])).collect();
        let mut scratch = vec![Complex::default(); cpu_plan.get_inplace_scratch_len()];
        group.bench_with_input(BenchmarkId::new("cpu_rustfft", n), &n, |b, _| {
            b.iter(|| cpu_plan.process_with_scratch(black_box(&mut cpu), &mut scratch));
        });
    }
    group.finish();
}

fn fir(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let mut group = c.benchmark_group("fir");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    let n = total();
    group.throughput(Throughput::Bytes((n * 4) as u64));
    let x = signal(n);
    for taps in [3usize, 65, 1025] {
        let kernel: Vec<f32> = (0..taps).map(|i| 1.0 / (1.0 + i as f32)).collect();
        let step = step_buffer(&ctx, n, 0);
        let input = ctx.storage_init("bench fir in", &x).expect("a buffer");
        let output = ctx.storage("bench fir out", (n * 4) as u64);
        let mut gpu =
            GpuFir::new(&ctx, &kernel, 1, n, &step, &input, &output, n, None).expect("a FIR plan");
        group.bench_with_input(
            BenchmarkId::new(
                match gpu.method() {
                    GpuFirMethod::Direct => "gpu_direct".to_owned(),
                    GpuFirMethod::OverlapSave { nfft } => format!("gpu_overlap_save_{nfft}"),
                },
                taps,
            ),
            &taps,
            |b, _| {
                b.iter(|| {
                    let mut encoder = ctx.encoder("bench fir");
                    gpu.encode(&mut encoder, n);
                    ctx.run(encoder).expect("the FIR runs");
                });
            },
        );
        let mut cpu = Fir::new(&kernel, n, FirMethod::choose(taps), None).expect("a FIR plan");
        let mut out = vec![0.0f32; cpu.max_output()];
        group.bench_with_input(BenchmarkId::new("cpu_1thread", taps), &taps, |b, _| {
            b.iter(|| black_box(cpu.push(black_box(&x), &mut out)));
        });
    }
    group.finish();
}

fn detect(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let mut group = c.benchmark_group("detect");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    let n = total();
    group.throughput(Throughput::Bytes((n * 4) as u64));
    let x = signal(n);
    let specs = [
        (
            "threshold",
            DetectorSpec::Threshold {
                on: 5.0,
                off: 2.0,
                max_len: None,
                dead: None,
                polarity: Polarity::Both,
            },
        ),
        (
            "classic",
            DetectorSpec::ClassicStaLta {
                nsta: 50,
                nlta: 1000,
                on: 4.0,
                off: 1.5,
                max_len: None,
                dead: None,
            },
        ),
        (
            "recursive",
            DetectorSpec::RecursiveStaLta {
                nsta: 50,
                nlta: 1000,
                on: 4.0,
                off: 1.5,
                max_len: None,
                dead: None,
            },
        ),
    ];
    for (name, spec) in specs {
        let step = step_buffer(&ctx, n, 0);
        let y = ctx.storage_init("bench y", &x).expect("a buffer");
        let mut gpu = GpuDetect::new(&ctx, &spec, 1, n, &step, &y, n, 1).expect("a plan");
        group.bench_function(BenchmarkId::new("gpu", name), |b| {
            b.iter(|| {
                let mut encoder = ctx.encoder("bench detect");
                gpu.encode(&mut encoder, 0, n);
                ctx.run(encoder).expect("detection runs");
            });
        });
        let mut cpu = spec.build();
        let mut events = Vec::new();
        let mut offset = 0u64;
        group.bench_function(BenchmarkId::new("cpu", name), |b| {
            b.iter(|| {
                cpu.process(black_box(&x), offset, &mut events);
                offset += n as u64;
                events.clear();
            });
        });
    }
    group.finish();
}

fn transfer(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let mut group = c.benchmark_group("gpu_transfer");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    let n = total();
    let bytes = (n * 4) as u64;
    group.throughput(Throughput::Bytes(bytes));
    let x = signal(n);
    let device = ctx.storage("bench device", bytes);
    let upload = ctx.buffer(
        "bench upload",
        bytes,
        wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
    );
    let readback = ctx.buffer(
        "bench readback",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let map = |buffer: &wgpu::Buffer, mode| {
        buffer
            .slice(..)
            .map_async(mode, |r| r.expect("mapping succeeds"));
        ctx.wait().expect("the map completes");
    };
    group.bench_function("upload", |b| {
        b.iter(|| {
            map(&upload, wgpu::MapMode::Write);
            {
                let mut view = upload.slice(..).get_mapped_range_mut().expect("mapped");
                view.slice(..).copy_from_slice(bytemuck::cast_slice(&x));
            }
            upload.unmap();
            let mut encoder = ctx.encoder("bench upload");
            encoder.copy_buffer_to_buffer(&upload, 0, &device, 0, bytes);
            ctx.run(encoder).expect("the copy runs");
        });
    });
    let mut host = vec![0.0f32; n];
    group.bench_function("readback", |b| {
        b.iter(|| {
            let mut encoder = ctx.encoder("bench readback");
            encoder.copy_buffer_to_buffer(&device, 0, &readback, 0, bytes);
            ctx.run(encoder).expect("the copy runs");
            map(&readback, wgpu::MapMode::Read);
            {
                let view = readback.slice(..).get_mapped_range().expect("mapped");
                host.copy_from_slice(bytemuck::cast_slice(&view));
            }
            readback.unmap();
        });
    });
    group.finish();
}

fn e2e(c: &mut Criterion) {
    let Some(ctx) = context() else { return };
    let mut group = c.benchmark_group("gpu_e2e");
    group
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    let n = total() * 4;
    group.throughput(Throughput::Bytes((n * 4) as u64));
    let x = signal(n);
    let backends: [(&str, Arc<dyn Backend>); 2] = [
        ("cpu", Arc::new(sigstream::backend::cpu::CpuBackend)),
        ("gpu", Arc::new(GpuBackend::with_context(ctx))),
    ];
    let jobs = [
        (
            "ma3_threshold",
            Job {
                kernel: Some(vec![1.0 / 3.0; 3]),
                conv_mode: ConvMode::Same,
                detector: Some(DetectorChoice::Builtin(DetectorSpec::Threshold {
                    on: 5.0,
                    off: 2.0,
                    max_len: None,
                    dead: None,
                    polarity: Polarity::Both,
                })),
                ..Job::default()
            },
        ),
        (
            "fir1025_stalta",
            Job {
                kernel: Some((0..1025).map(|i| 1.0 / (1.0 + i as f32)).collect()),
                conv_mode: ConvMode::Same,
                detector: Some(DetectorChoice::Builtin(DetectorSpec::ClassicStaLta {
                    nsta: 50,
                    nlta: 1000,
                    on: 4.0,
                    off: 1.5,
                    max_len: None,
                    dead: None,
                })),
                ..Job::default()
            },
        ),
    ];
    for (job_name, job) in &jobs {
        for (name, backend) in &backends {
            let processor = StreamProcessor::new(
                StreamConfig {
                    chunk_size: Some(1 << 20),
                    // 2^20 frames with every buffer is ~100 MiB.
                    memory_limit: 256 << 20,
                    ..StreamConfig::default()
                },
                job.clone(),
            )
            .with_backend(backend.clone());
            group.bench_function(BenchmarkId::new(*name, job_name), |b| {
                b.iter(|| {
                    let mut source = MemorySource::new(&x, 1, None).unwrap();
                    let mut events = Vec::new();
                    processor
                        .process_source(
                            &mut source,
                            Sinks {
                                events: Some(&mut events),
                                ..Sinks::default()
                            },
                        )
                        .expect("the run succeeds")
                });
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion draws them with system fonts, and panics on a
    // machine that has none (a fresh server); the figures are the numbers.
    config = Criterion::default().without_plots();
    targets = fft, fir, detect, transfer, e2e
}
criterion_main!(benches);
