//! Throughput benchmarks: FIR methods (and their crossover), detectors, and
//! the whole pipeline on a file in the page cache, and the complex stages
//! (mixer, decimator).
//!
//! `cargo bench --bench throughput` runs them all; a filter such as
//! `cargo bench --bench throughput -- fir_crossover` runs one group.
//! Throughput is reported in input bytes per second (f32, except the
//! int16 `channels` group).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::io::Write;

use common::Rng;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sigstream::backend::cpu::fir::{Fir, FirMethod, best_nfft};
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::{DetectorSpec, Polarity};
use sigstream::filter::{ConvMode, FilterSpec, FirDesign};
use sigstream::pipeline::{Sinks, StreamConfig, StreamProcessor};
use sigstream::source::{Dtype, SourceOptions};

fn noise(n: usize) -> Vec<f32> {
    let mut rng = Rng::new(7);
    (0..n / 2 + 1)
        .flat_map(|_| {
            let (a, b) = rng.normal_pair();
            [a, b]
        })
        .take(n)
        .collect()
}

/// Direct vs overlap-save per kernel length, one thread, 2^18-sample pushes:
/// where the curves cross sets `DIRECT_MAX_TAPS`.
fn fir_crossover(c: &mut Criterion) {
    let n = 1 << 18;
    let x = noise(n);
    let mut g = c.benchmark_group("fir_crossover");
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.sample_size(20);
    for taps in [4, 6, 8, 12, 16, 24, 32, 48] {
        let k = noise(taps);
        for method in [
            FirMethod::Direct,
            FirMethod::OverlapSave {
                nfft: best_nfft(taps),
            },
        ] {
            let name = if method == FirMethod::Direct {
                "direct"
            } else {
                "fft"
            };
            let mut fir = Fir::new(&k, n, method, None).expect("a FIR plan");
            let mut out = vec![0.0; fir.max_output()];
            g.bench_with_input(BenchmarkId::new(name, taps), &taps, |b, _| {
                b.iter(|| black_box(fir.push(&x, &mut out)))
            });
        }
    }
    g.finish();
}

/// The FIR stage alone at the kernel sizes of the issue, 1 thread and all cores.
fn fir(c: &mut Criterion) {
    let n = 1 << 20;
    let x = noise(n);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("fir");
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.sample_size(20);
    for taps in [3, 65, 1025] {
        let k = noise(taps);
        for threads in [1, cores] {
            let pool = (threads > 1).then(|| {
                std::sync::Arc::new(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap(),
                )
            });
            let mut fir = Fir::new(&k, n, FirMethod::choose(taps), pool).expect("a FIR plan");
            let mut out = vec![0.0; fir.max_output()];
            g.bench_with_input(
                BenchmarkId::new(format!("{threads}t"), taps),
                &taps,
                |b, _| b.iter(|| black_box(fir.push(&x, &mut out))),
            );
        }
    }
    g.finish();
}

/// The detectors alone, one channel.
fn detect(c: &mut Criterion) {
    let n = 1 << 20;
    let x = noise(n);
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.sample_size(20);
    let specs = [
        (
            "threshold",
            DetectorSpec::Threshold {
                on: 8.0,
                off: 8.0,
                max_len: None,
                dead: None,
                polarity: Polarity::Both,
            },
        ),
        (
            "classic_sta_lta",
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
            "recursive_sta_lta",
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
        let mut det = spec.build();
        let mut events = Vec::with_capacity(1024);
        let mut offset = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                det.process(&x, offset, &mut events);
                offset += n as u64;
                events.clear();
            })
        });
    }
    g.finish();
}

/// End to end on a 256 MiB f32 file in the page cache (the README's 2 GB
/// figures come from `sigstream process --report`, see README).
fn pipeline(c: &mut Criterion) {
    let n: usize = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signal.f32");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let x = noise(1 << 20);
        for _ in 0..n >> 20 {
            f.write_all(bytemuck::cast_slice(&x)).unwrap();
        }
    }
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.sample_size(10);
    let jobs = [
        (
            "ma3_threshold",
            vec![1.0 / 3.0; 3],
            DetectorSpec::Threshold {
                on: 8.0,
                off: 8.0,
                max_len: None,
                dead: None,
                polarity: Polarity::Both,
            },
        ),
        (
            "fir1025_sta_lta",
            noise(1025),
            DetectorSpec::ClassicStaLta {
                nsta: 50,
                nlta: 1000,
                on: 4.0,
                off: 1.5,
                max_len: None,
                dead: None,
            },
        ),
    ];
    for (name, kernel, spec) in jobs {
        let job = Job {
            kernel: Some(kernel),
            conv_mode: ConvMode::Same,
            detector: Some(DetectorChoice::Builtin(spec)),
            ..Job::default()
        };
        let processor = StreamProcessor::new(StreamConfig::default(), job);
        g.bench_function(name, |b| {
            b.iter(|| {
                processor
                    .process_file(&path, &SourceOptions::default(), Sinks::default())
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// Many channels against one, same bytes: 32 MB of int16 read as 385
/// interleaved channels (a Neuropixels probe) and as one channel, through
/// the job (301-tap band-pass 300–6000 Hz at 30 kHz, threshold
/// detector) with the default memory budget. The ratio of the two
/// throughputs is what `scripts/bench-channels` reports end to end.
fn channels(c: &mut Criterion) {
    const PROBE: usize = 385;
    let frames = 41_560; // 385 × 41,560 × 2 bytes ≈ 32 MB
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.i16");
    let x = noise(PROBE * frames);
    {
        let bytes: Vec<u8> = x
            .iter()
            .flat_map(|v| ((v * 2.0).round() as i16).to_le_bytes())
            .collect();
        std::fs::write(&path, bytes).unwrap();
    }
    let kernel = FilterSpec::Bandpass {
        low: 300.0,
        high: 6000.0,
        fir: FirDesign::taps(301),
    }
    .taps(Some(30_000.0))
    .unwrap();
    let job = Job {
        kernel: Some(kernel),
        conv_mode: ConvMode::Same,
        detector: Some(DetectorChoice::Builtin(DetectorSpec::Threshold {
            on: 5.0,
            off: 5.0,
            max_len: None,
            dead: None,
            polarity: Polarity::Both,
        })),
        ..Job::default()
    };
    let processor = StreamProcessor::new(StreamConfig::default(), job);
    let mut g = c.benchmark_group("channels");
    g.throughput(Throughput::Bytes(2 * (PROBE * frames) as u64));
    g.sample_size(10);
    for channels in [1, PROBE] {
        let opts = SourceOptions {
            dtype: Some(Dtype::I16),
            channels,
            ..SourceOptions::default()
        };
        g.bench_function(
            BenchmarkId::new("i16_bandpass301_threshold", channels),
            |b| {
                b.iter(|| {
                    processor
                        .process_file(&path, &opts, Sinks::default())
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

/// The stages of complex signals, one thread, 2^18 samples per push: the
/// mixer (`--shift`, one complex channel: two planes) and the decimator
/// (`--decimate N`, one plane), in input bytes (f32) per second.
fn complex(c: &mut Criterion) {
    use sigstream::filter::mix::Mixer;
    use sigstream::filter::resample::{Decimator, max_outputs};
    let n = 1 << 18;
    let x = noise(n);
    let mut g = c.benchmark_group("complex");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(8 * n as u64));
    let mixer = Mixer::new(12_345.6, 1e6).expect("a mixer");
    let (mut re, mut im) = (x.clone(), x.clone());
    let mut start = 0u64;
    g.bench_function("mix", |b| {
        b.iter(|| {
            mixer.mix(start, &mut re, &mut im);
            start += n as u64;
        })
    });
    g.throughput(Throughput::Bytes(4 * n as u64));
    for factor in [2usize, 8, 64] {
        let mut d = Decimator::new(Decimator::reversed_taps(factor), factor, n);
        let mut out = vec![0.0; max_outputs(n, factor)];
        g.bench_with_input(BenchmarkId::new("decimate", factor), &factor, |b, _| {
            b.iter(|| black_box(d.push(&x, &mut out)))
        });
    }
    g.finish();
}

/// The IIR kernel alone (`SosBank::process_block`, a Butterworth order-4
/// band-pass: 4 sections) on blocks of 2^16 frames, 1, 8 and 64 channels,
/// one thread and two: what bounds `sosfilt` (the recursion's latency for
/// one channel, SIMD lanes for eight, threads beyond).
fn iir(c: &mut Criterion) {
    use sigstream::filter::iir::design::{Band, Family, iirfilter};
    use sigstream::filter::iir::{Sos, SosBank};
    use sigstream::pool::Block;
    let sos = Sos::new(
        iirfilter(Family::Butter, 4, Band::Bandpass(10.0, 100.0), 1000.0).expect("a design"),
    )
    .expect("valid sections");
    let n = 1 << 16;
    let mut g = c.benchmark_group("iir");
    g.sample_size(20);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("two threads");
    for channels in [1usize, 8, 16, 64] {
        let x = noise(n * channels);
        let mut input = Block::new(channels, n);
        for c in 0..channels {
            input
                .channel_capacity_mut(c)
                .copy_from_slice(&x[c * n..(c + 1) * n]);
        }
        input.set_frames(n);
        let mut output = Block::new(channels, n);
        let mut bank = SosBank::new(sos.clone(), channels);
        g.throughput(Throughput::Bytes(4 * (n * channels) as u64));
        g.bench_with_input(
            BenchmarkId::new("sosfilt_1thread", channels),
            &channels,
            |b, _| b.iter(|| bank.process_block(&input, &mut output, None)),
        );
        g.bench_with_input(
            BenchmarkId::new("sosfilt_2threads", channels),
            &channels,
            |b, _| b.iter(|| bank.process_block(&input, &mut output, Some(&pool))),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion draws them with system fonts, and panics on a
    // machine that has none (a fresh server); the figures are the numbers.
    config = Criterion::default().without_plots();
    targets = fir_crossover, fir, detect, pipeline, channels, complex, iir
}
criterion_main!(benches);
