//! The chunk engine end to end, in memory: filtered output against an f64
//! direct convolution with numpy.convolve's modes, and the core promise that
//! results do not depend on the chunk size, the thread count or how the
//! channels are laid out: the same output bits and the same event list.

mod common;

use common::Rng;
use proptest::prelude::*;
use sigstream::backend::cpu::fir::FirMethod;
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::{Detector, DetectorSpec, Event, Polarity};
use sigstream::filter::ConvMode;
use sigstream::pipeline::{MemorySource, Sinks, StreamConfig, StreamProcessor, chunked_convolve};
use sigstream::sink::VecSink;

/// Noise with a few loud bursts, interleaved, so the detectors have events
/// to find in every channel.
fn signal(frames: usize, channels: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x = vec![0.0f32; frames * channels];
    for (i, v) in x.iter_mut().enumerate() {
        let frame = i / channels;
        let loud = (frame / 97 + i % channels) % 7 == 3;
        *v = rng.normal_pair().0 * if loud { 12.0 } else { 1.0 };
    }
    x
}

/// numpy.convolve(x, k, mode) in f64, written from the definition: full
/// output `Σ_j k[j]·x[n−j]`, `same` = full[(m−1)/2 ..][..n], `valid` =
/// full[m−1 .. n].
fn reference(x: &[f64], k: &[f64], mode: ConvMode) -> Vec<f64> {
    let (n, m) = (x.len(), k.len());
    let full: Vec<f64> = (0..n + m - 1)
        .map(|i| {
            (0..m)
                .filter(|&j| i >= j && i - j < n)
                .map(|j| k[j] * x[i - j])
                .sum()
        })
        .collect();
    match mode {
        ConvMode::Full => full,
        ConvMode::Same => full[(m - 1) / 2..(m - 1) / 2 + n].to_vec(),
        ConvMode::Valid => full[m - 1..n].to_vec(),
    }
}

/// Runs `job` over interleaved `x` and returns (interleaved output, events).
fn run(
    x: &[f32],
    channels: usize,
    job: &Job,
    chunk: usize,
    threads: usize,
) -> (Vec<f32>, Vec<Event>) {
    let config = StreamConfig {
        chunk_size: Some(chunk),
        threads,
        queue_depth: 2,
        ..StreamConfig::default()
    };
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut source = MemorySource::new(x, channels, None).unwrap();
    let stats = StreamProcessor::new(config, job.clone())
        .process_source(
            &mut source,
            Sinks {
                signal: Some(Box::new(VecSink { out: &mut out })),
                events: Some(&mut events),
                snippets: None,
                progress: None,
            },
        )
        .expect("in-memory processing cannot fail");
    assert_eq!(stats.events, events.len() as u64);
    assert_eq!(stats.samples, (x.len() / channels) as u64);
    (out, events)
}

/// f32 filtering against f64: each output's rounding error is bounded by a
/// few units of 2^-24 times Σ|k_j·x_{n−j}| for the direct method, and by
/// O(log2 nfft)·2^-24·‖k‖₁·max|x| for FFT overlap-save. 1e-5 of
/// ‖k‖₁·max|x| covers both with a wide margin and still catches any wrong
/// tap, shift or dropped sample (those err by ~|k_j|·|x|).
const REL_TOL: f64 = 1e-5;

fn check_against_reference(x: &[f32], channels: usize, k: &[f32], mode: ConvMode, got: &[f32]) {
    let frames = x.len() / channels;
    let kd: Vec<f64> = k.iter().map(|&v| v as f64).collect();
    let scale = kd.iter().map(|v| v.abs()).sum::<f64>()
        * x.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
    let out_frames = got.len() / channels;
    for c in 0..channels {
        let xc: Vec<f64> = (0..frames).map(|i| x[i * channels + c] as f64).collect();
        let want = reference(&xc, &kd, mode);
        assert_eq!(want.len(), out_frames, "channel {c}: output length");
        for (i, w) in want.iter().enumerate() {
            let g = got[i * channels + c] as f64;
            assert!(
                (g - w).abs() <= REL_TOL * scale,
                "channel {c}, {mode:?}, {} taps: y[{i}] = {g}, reference {w}",
                k.len()
            );
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn mode_strategy() -> impl Strategy<Value = ConvMode> {
    prop_oneof![
        Just(ConvMode::Full),
        Just(ConvMode::Same),
        Just(ConvMode::Valid)
    ]
}

fn detector_strategy() -> impl Strategy<Value = Option<DetectorSpec>> {
    prop_oneof![
        Just(None),
        (2.0f64..6.0, 0.3f64..1.0, prop::option::of(5u64..80)).prop_map(|(on, f, max_len)| Some(
            DetectorSpec::Threshold {
                on,
                off: on * f,
                max_len,
                dead: None,
                polarity: Polarity::Both,
            }
        )),
        (2usize..20, 25usize..120, 2.0f64..5.0).prop_map(|(nsta, nlta, on)| Some(
            DetectorSpec::ClassicStaLta {
                nsta,
                nlta,
                on,
                off: 1.2,
                max_len: None,
                dead: None,
            }
        )),
        (2usize..20, 25usize..120, 2.0f64..5.0).prop_map(|(nsta, nlta, on)| Some(
            DetectorSpec::RecursiveStaLta {
                nsta,
                nlta,
                on,
                off: 1.2,
                max_len: Some(60),
                dead: None,
            }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any chunk size from 1 to the whole signal, 1 or 2 threads, 1–4
    /// channels, kernels on both sides of the direct/FFT crossover, every
    /// mode, every detector: the output matches the f64 reference and is
    /// bit-for-bit the same as processing the whole signal in one chunk, and
    /// so are the events.
    #[test]
    fn results_do_not_depend_on_chunk_size_or_threads(
        frames in 200usize..2500,
        channels in 1usize..5,
        taps in prop_oneof![1usize..12, 40usize..70, 150usize..200],
        mode in mode_strategy(),
        detector in detector_strategy(),
        chunk_frac in 0.0f64..1.0,
        threads in 1usize..3,
        seed in any::<u64>(),
    ) {
        let x = signal(frames, channels, seed);
        let k: Vec<f32> = signal(taps, 1, seed ^ 1).iter().map(|v| v * 0.1).collect();
        let job = Job {
            kernel: Some(k.clone()),
            conv_mode: mode,
            detector: detector.map(DetectorChoice::Builtin),
            ..Job::default()
        };
        let (whole, whole_events) = run(&x, channels, &job, frames, 1);
        check_against_reference(&x, channels, &k, mode, &whole);
        let chunk = 1 + (chunk_frac * (frames - 1) as f64) as usize;
        let (out, events) = run(&x, channels, &job, chunk, threads);
        prop_assert!(bits(&out) == bits(&whole), "output differs at chunk {chunk}, {threads} threads");
        prop_assert_eq!(&events, &whole_events, "events differ at chunk {}", chunk);
        for e in &events {
            prop_assert!(e.start <= e.peak_index && e.peak_index <= e.end && e.channel < channels);
        }
        for w in events.windows(2) {
            prop_assert!((w[0].start, w[0].channel) <= (w[1].start, w[1].channel), "events out of order");
        }
    }
}

/// Detection sees the filtered signal (or the raw one without a kernel): a
/// threshold detector on a pass-through job must find exactly the runs of
/// |x| >= on computed directly.
#[test]
fn detection_without_a_filter_sees_the_raw_samples() {
    let x = signal(5000, 1, 3);
    let on = 20.0;
    let job = Job {
        detector: Some(DetectorChoice::Builtin(DetectorSpec::Threshold {
            on,
            off: on,
            max_len: None,
            dead: None,
            polarity: Polarity::Both,
        })),
        ..Job::default()
    };
    let (out, events) = run(&x, 1, &job, 333, 1);
    assert_eq!(bits(&out), bits(&x), "pass-through output");
    let mut want = Vec::new();
    let mut i = 0;
    while i < x.len() {
        if x[i].abs() as f64 >= on {
            let start = i;
            while i + 1 < x.len() && x[i + 1].abs() as f64 >= on {
                i += 1;
            }
            want.push((start as u64, i as u64));
        }
        i += 1;
    }
    assert!(!want.is_empty(), "the test signal must cross the level");
    let got: Vec<(u64, u64)> = events.iter().map(|e| (e.start, e.end)).collect();
    assert_eq!(got, want);
}

/// The two FIR methods agree with each other and with the reference for a
/// long kernel over many blocks (the FFT grid is exercised across chunks).
#[test]
fn fft_and_direct_methods_agree_on_a_long_kernel() {
    let x = signal(40_000, 1, 11);
    let k: Vec<f32> = signal(1025, 1, 12).iter().map(|v| v * 0.01).collect();
    for method in [FirMethod::Direct, FirMethod::choose(1025)] {
        let job = Job {
            kernel: Some(k.clone()),
            conv_mode: ConvMode::Same,
            fir_method: Some(method),
            ..Job::default()
        };
        let (out, _) = run(&x, 1, &job, 7777, 2);
        check_against_reference(&x, 1, &k, ConvMode::Same, &out);
    }
    assert!(matches!(
        FirMethod::choose(1025),
        FirMethod::OverlapSave { .. }
    ));
}

/// The in-memory helper gives numpy.convolve's results (the seed's
/// `chunked_convolve`), for a kernel of the seed's example.
#[test]
fn chunked_convolve_matches_numpy_semantics() {
    let x = signal(10_000, 1, 5);
    let k = [0.25f32, 0.5, 0.25];
    for mode in [ConvMode::Full, ConvMode::Same, ConvMode::Valid] {
        let y = chunked_convolve(&x, &k, mode, 1000).unwrap();
        check_against_reference(&x, 1, &k, mode, &y);
    }
}

/// Integer and f64 arrays are converted to f32 a chunk at a time, as the
/// file readers convert: the result equals that of the converted array,
/// for any chunk size and with the chunk size left to the budget.
#[test]
fn arrays_of_other_types_convolve_as_their_f32_values() {
    let x: Vec<i16> = (0..20_000)
        .map(|i| ((i * 7919) % 4001 - 2000) as i16)
        .collect();
    let xf: Vec<f32> = x.iter().map(|&v| f32::from(v)).collect();
    let k = [0.25f32, 0.5, 0.25, -0.1];
    let want = chunked_convolve(&xf, &k, ConvMode::Same, 1000).unwrap();
    for chunk in [7, 1000, 20_000] {
        assert_eq!(
            chunked_convolve(&x, &k, ConvMode::Same, chunk).unwrap(),
            want
        );
    }
    let planned = sigstream::pipeline::convolve_array(&x, &k, ConvMode::Same, None).unwrap();
    assert_eq!(planned, want);
    let x64: Vec<f64> = xf.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(
        chunked_convolve(&x64, &k, ConvMode::Same, 999).unwrap(),
        want
    );
}

/// A user's own detector (the seed's `custom_detector(chunk, offset)`) sees
/// every sample once, in order, with the right absolute offsets, and its
/// events reach the sink.
#[test]
fn custom_detector_sees_contiguous_chunks() {
    struct EveryThousandth {
        next: u64,
    }
    impl Detector for EveryThousandth {
        fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
            assert_eq!(
                offset, self.next,
                "chunks must arrive in order without gaps"
            );
            for (i, v) in samples.iter().enumerate() {
                let idx = offset + i as u64;
                if idx.is_multiple_of(1000) {
                    events.push(Event {
                        channel: 0,
                        start: idx,
                        end: idx,
                        peak_index: idx,
                        peak_value: *v as f64,
                    });
                }
            }
            self.next += samples.len() as u64;
        }
        fn finish(&mut self, _: &mut Vec<Event>) {}
    }
    let x = signal(10_500, 2, 8);
    let job = Job {
        detector: Some(DetectorChoice::Custom(std::sync::Arc::new(|| {
            Box::new(EveryThousandth { next: 0 }) as Box<dyn Detector>
        }))),
        ..Job::default()
    };
    let (_, events) = run(&x, 2, &job, 777, 2);
    let got: Vec<(u64, usize)> = events.iter().map(|e| (e.start, e.channel)).collect();
    let want: Vec<(u64, usize)> = (0..11)
        .flat_map(|k| [(k * 1000, 0), (k * 1000, 1)])
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        events[2].peak_value,
        x[1000 * 2] as f64,
        "channel 0 of frame 1000"
    );
}

/// Runs `job` with snippets collected, and returns (output, events,
/// snippets).
fn run_cut(
    x: &[f32],
    channels: usize,
    job: &Job,
    chunk: usize,
    threads: usize,
) -> (Vec<f32>, Vec<Event>, Vec<f32>) {
    let config = StreamConfig {
        chunk_size: Some(chunk),
        threads,
        queue_depth: 2,
        ..StreamConfig::default()
    };
    let (mut out, mut events, mut snippets) = (Vec::new(), Vec::new(), Vec::new());
    let mut source = MemorySource::new(x, channels, None).unwrap();
    let stats = StreamProcessor::new(config, job.clone())
        .process_source(
            &mut source,
            Sinks {
                signal: Some(Box::new(VecSink { out: &mut out })),
                events: Some(&mut events),
                snippets: Some(&mut snippets),
                progress: None,
            },
        )
        .expect("in-memory processing cannot fail");
    assert_eq!(stats.events, events.len() as u64);
    (out, events, snippets)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Issue 11's stages together — an IIR design, a common reference, the
    /// threshold with a polarity and a dead time, snippets of the event's
    /// channel or of all, and de-duplication — give the same output bits,
    /// events and snippets for any chunk size and thread count as in one
    /// chunk (snippets are held back until complete, de-duplication until
    /// decided: both across chunk edges).
    #[test]
    fn issue_11_stages_do_not_depend_on_chunk_size_or_threads(
        frames in 300usize..3000,
        channels in 2usize..6,
        order in 1usize..6,
        median in any::<bool>(),
        polarity in prop_oneof![Just(Polarity::Pos), Just(Polarity::Neg), Just(Polarity::Both)],
        dead in prop_oneof![Just(None), (1u64..200).prop_map(Some)],
        (pre, post) in (0usize..40, 1usize..40),
        all in any::<bool>(),
        dedup in prop_oneof![Just(None), (0u64..20, 1usize..3).prop_map(Some)],
        chunk_frac in 0.0f64..1.0,
        threads in 1usize..3,
        seed in any::<u64>(),
    ) {
        use sigstream::detect::dedup::DedupSpec;
        use sigstream::detect::snippet::{SnippetChannels, SnippetSpec};
        use sigstream::filter::iir::{Sos, design};
        use sigstream::filter::reference::Reference;
        let x = signal(frames, channels, seed);
        let sections =
            design::iirfilter(design::Family::Butter, order, design::Band::Bandpass(2.0, 20.0), 100.0)
                .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let job = Job {
            iir: Some(Sos::new(sections).unwrap()),
            reference: Some(if median { Reference::Median } else { Reference::Mean }),
            detector: Some(DetectorChoice::Builtin(DetectorSpec::Threshold {
                on: 3.0,
                off: 1.0,
                max_len: None,
                dead,
                polarity,
            })),
            snippets: Some(
                SnippetSpec::new(
                    pre,
                    post,
                    if all { SnippetChannels::All } else { SnippetChannels::Own },
                    scratch.path().to_path_buf(),
                )
                .unwrap(),
            ),
            dedup: dedup.map(|(w, r)| DedupSpec::new(w, r).unwrap()),
            ..Job::default()
        };
        let (whole, whole_events, whole_snips) = run_cut(&x, channels, &job, frames, 1);
        prop_assert!(!whole_events.is_empty(), "the bursts cross the level");
        let columns = if all { channels } else { 1 };
        prop_assert_eq!(whole_snips.len(), whole_events.len() * (pre + post) * columns);
        let chunk = 1 + (chunk_frac * (frames - 1) as f64) as usize;
        let (out, events, snips) = run_cut(&x, channels, &job, chunk, threads);
        prop_assert!(bits(&out) == bits(&whole), "output differs at chunk {chunk}, {threads} threads");
        prop_assert_eq!(&events, &whole_events, "events differ at chunk {}", chunk);
        prop_assert!(bits(&snips) == bits(&whole_snips), "snippets differ at chunk {chunk}");
    }
}
