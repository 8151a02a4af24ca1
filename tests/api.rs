//! The public API with every bad value a caller can give: each entry point
//! returns an `Error` (and says what is wrong), never a panic. A panic here
//! fails the test as surely as a wrong answer.

use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::{DetectorKind, DetectorOptions, DetectorSpec, Polarity, WindowLen};
use sigstream::filter::{ConvMode, FilterSpec, FirDesign};
use sigstream::pipeline::{MemorySource, Sinks, StreamConfig, StreamProcessor, chunked_convolve};
use sigstream::source::{Dtype, SourceOptions};
use sigstream::spectral::{Detrend, Scale, Scaling, Stft, StftConfig, Welch, WelchConfig, Window};
use sigstream::{Error, backend::cpu::CpuProcessor};

/// Asserts a usage error whose message says `phrase`.
fn assert_usage<T: std::fmt::Debug>(r: sigstream::Result<T>, phrase: &str, what: &str) {
    match r {
        Err(e @ Error::Usage { .. }) => {
            assert!(e.to_string().contains(phrase), "{what}: {e}")
        }
        other => panic!("{what}: expected a usage error saying {phrase:?}, got {other:?}"),
    }
}

fn threshold(on: f64, off: f64) -> DetectorSpec {
    DetectorSpec::Threshold {
        on,
        off,
        max_len: None,
        dead: None,
        polarity: Polarity::Both,
    }
}

/// Runs `job` over a short in-memory signal.
fn run(job: Job, config: StreamConfig) -> sigstream::Result<sigstream::pipeline::Stats> {
    let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin()).collect();
    let mut source = MemorySource::new(&x, 1, None)?;
    let mut events = Vec::new();
    StreamProcessor::new(config, job).process_source(
        &mut source,
        Sinks {
            events: Some(&mut events),
            ..Sinks::default()
        },
    )
}

#[test]
fn bad_jobs_are_errors() {
    let config = StreamConfig::default();
    let with_kernel = |k: Vec<f32>| Job {
        kernel: Some(k),
        ..Job::default()
    };
    assert_usage(
        run(with_kernel(vec![]), config.clone()),
        "no taps",
        "empty kernel",
    );
    assert_usage(
        run(with_kernel(vec![1.0, f32::NAN]), config.clone()),
        "tap 1 is NaN",
        "NaN tap",
    );
    assert_usage(
        run(with_kernel(vec![f32::INFINITY]), config.clone()),
        "finite",
        "infinite tap",
    );
    let with_detector = |d: DetectorSpec| Job {
        detector: Some(DetectorChoice::Builtin(d)),
        ..Job::default()
    };
    let sta_lta = |nsta, nlta| DetectorSpec::ClassicStaLta {
        nsta,
        nlta,
        on: 3.0,
        off: 1.0,
        max_len: None,
        dead: None,
    };
    assert_usage(
        run(with_detector(sta_lta(0, 10)), config.clone()),
        "--sta",
        "nsta 0",
    );
    assert_usage(
        run(with_detector(sta_lta(10, 10)), config.clone()),
        "--lta",
        "nlta = nsta",
    );
    assert_usage(
        run(with_detector(threshold(f64::NAN, 1.0)), config.clone()),
        "--on",
        "NaN on",
    );
    assert_usage(
        run(with_detector(threshold(1.0, f64::INFINITY)), config.clone()),
        "--off",
        "infinite off",
    );
    let recursive = DetectorSpec::RecursiveStaLta {
        nsta: 5,
        nlta: 50,
        on: 2.0,
        off: 1.0,
        max_len: Some(0),
        dead: None,
    };
    assert_usage(
        run(with_detector(recursive), config.clone()),
        "--max-len",
        "max_len 0",
    );
    // A chunk of 0 frames.
    let zero_chunk = StreamConfig {
        chunk_size: Some(0),
        ..StreamConfig::default()
    };
    assert_usage(run(Job::default(), zero_chunk), "chunk", "chunk 0");
    // Planning a processor directly validates too.
    assert_usage(
        CpuProcessor::new(&with_kernel(vec![]), 1, 100, 1).map(|_| ()),
        "no taps",
        "CpuProcessor empty kernel",
    );
    assert_usage(
        CpuProcessor::new(&Job::default(), 0, 100, 1).map(|_| ()),
        "channels",
        "CpuProcessor 0 channels",
    );
}

#[test]
fn bad_sources_and_arrays_are_errors() {
    let x = [1.0f32; 10];
    assert_usage(
        MemorySource::new(&x, 0, None).map(|_| ()),
        "channels",
        "0 channels",
    );
    assert_usage(
        MemorySource::new(&x, 3, None).map(|_| ()),
        "whole number",
        "10 / 3",
    );
    assert_usage(
        MemorySource::new(&x, 1, Some(f64::NAN)).map(|_| ()),
        "sample rate",
        "NaN rate",
    );
    assert_usage(
        chunked_convolve(&x, &[], ConvMode::Same, 4),
        "no taps",
        "empty kernel",
    );
    assert_usage(
        chunked_convolve(&x, &[1.0], ConvMode::Same, 0),
        "chunk",
        "chunk 0",
    );
    let opts = SourceOptions {
        channels: 0,
        ..SourceOptions::raw(Dtype::F32)
    };
    assert_usage(opts.validate(), "--channels", "options with 0 channels");
    let opts = SourceOptions {
        sample_rate: Some(-5.0),
        ..SourceOptions::raw(Dtype::F32)
    };
    assert_usage(opts.validate(), "--sample-rate", "negative rate");
}

#[test]
fn bad_detector_options_and_filters_are_errors() {
    let opts = DetectorOptions {
        on: None,
        off: None,
        sta: None,
        lta: None,
        max_len: None,
        polarity: None,
        dead: None,
    };
    assert_usage(
        DetectorSpec::from_options(DetectorKind::Threshold, &opts, None),
        "--on",
        "no on level",
    );
    let secs = DetectorOptions {
        on: Some(3.0),
        sta: Some(WindowLen::Seconds(0.5)),
        lta: Some(WindowLen::Seconds(10.0)),
        ..opts
    };
    assert_usage(
        DetectorSpec::from_options(DetectorKind::ClassicStaLta, &secs, None),
        "sample rate",
        "seconds without a rate",
    );
    let bad_secs = DetectorOptions {
        sta: Some(WindowLen::Seconds(f64::NAN)),
        ..secs
    };
    assert_usage(
        DetectorSpec::from_options(DetectorKind::RecursiveStaLta, &bad_secs, Some(100.0)),
        "--sta-seconds",
        "NaN seconds",
    );
    // The good one converts seconds with the rate.
    let spec = DetectorSpec::from_options(DetectorKind::ClassicStaLta, &secs, Some(100.0)).unwrap();
    assert_eq!(
        spec,
        DetectorSpec::ClassicStaLta {
            nsta: 50,
            nlta: 1000,
            on: 3.0,
            off: 3.0,
            max_len: None,
            dead: None,
        }
    );
    assert_usage(
        FilterSpec::Lowpass {
            cutoff: 60.0,
            fir: FirDesign::taps(11),
        }
        .design(Some(100.0))
        .map(|_| ()),
        "Nyquist",
        "cutoff above Nyquist",
    );
    assert_usage(
        FilterSpec::Lowpass {
            cutoff: 10.0,
            fir: FirDesign {
                transition: Some(f64::NAN),
                ..FirDesign::default()
            },
        }
        .validate(),
        "--transition",
        "NaN transition band",
    );
    assert_usage(
        FilterSpec::Highpass {
            cutoff: 10.0,
            fir: FirDesign {
                attenuation: Some(f64::INFINITY),
                ..FirDesign::default()
            },
        }
        .validate(),
        "--attenuation",
        "infinite attenuation",
    );
    assert_usage(
        FilterSpec::Bandpass {
            low: 1.0,
            high: 2.0,
            fir: FirDesign {
                transition: Some(1e-300),
                ..FirDesign::default()
            },
        }
        .num_taps(Some(100.0))
        .map(|_| ()),
        "--transition",
        "a transition band needing more taps than a design may have",
    );
    assert_usage(
        FilterSpec::MovingAverage(0).validate(),
        "moving",
        "moving average 0",
    );
    assert_usage(
        FilterSpec::parse_band("5-20"),
        "LO:HI",
        "band without colon",
    );
}

#[test]
fn bad_spectral_configs_are_errors() {
    let stft = |nfft, hop| StftConfig {
        nfft,
        hop,
        window: Window::Hann,
        detrend: Detrend::None,
        scale: Scale::Db,
    };
    assert_usage(
        Stft::new(stft(0, 1), 1, None, None).map(|_| ()),
        "--nfft",
        "nfft 0",
    );
    assert_usage(
        Stft::new(stft(64, 0), 1, None, None).map(|_| ()),
        "--hop",
        "hop 0",
    );
    assert_usage(
        Stft::new(stft(64, 16), 0, None, None).map(|_| ()),
        "channels",
        "0 channels",
    );
    assert_usage(
        Stft::new(stft(64, 16), 1, Some(0.0), None).map(|_| ()),
        "sample rate",
        "rate 0",
    );
    let welch = |nperseg, noverlap| WelchConfig {
        nperseg,
        noverlap,
        window: Window::Hann,
        detrend: Detrend::Constant,
        scaling: Scaling::Density,
    };
    assert_usage(
        Welch::new(welch(0, 0), 1, None, None).map(|_| ()),
        "--nperseg",
        "nperseg 0",
    );
    assert_usage(
        Welch::new(welch(64, 64), 1, None, None).map(|_| ()),
        "--overlap",
        "overlap = nperseg",
    );
    assert_usage(
        Welch::new(welch(64, 32), 0, None, None).map(|_| ()),
        "channels",
        "0 channels",
    );
}
