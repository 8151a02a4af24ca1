//! The detectors' options beyond ObsPy's `trigger_onset` (polarity, dead
//! time, per-channel specs), the noise levels and the network coincidence,
//! against independent references:
//!
//! * dead time: a whole-array transcription of the rules in the module docs
//!   of `sigstream::detect`, driven by run starts (not by samples, as the
//!   streaming trigger is), written from the docs;
//! * noise: NumPy's values (the script is quoted), and a full-sort median;
//! * coincidence: ObsPy's `coincidence_trigger` itself, through the fixture
//!   `tests/fixtures/coincidence.json` (`tests/fixtures/make_coincidence.py`).

mod common;
#[path = "common/reference.rs"]
mod reference;

use std::sync::Arc;

use common::{Rng, noisy_signal};
use proptest::prelude::*;
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::coincidence::{Coincidence, NetworkEvent};
use sigstream::detect::noise::{NoiseChunks, mad, mad_with};
use sigstream::detect::{
    DetectorKind, DetectorOptions, DetectorSpec, Event, Polarity, Trigger, WindowLen,
};
use sigstream::pipeline::{MemorySource, Sinks, StreamConfig, StreamProcessor};

// ---------------------------------------------------------------------------
// Helpers.

fn threshold(
    on: f64,
    off: f64,
    max_len: Option<u64>,
    dead: Option<u64>,
    p: Polarity,
) -> DetectorSpec {
    DetectorSpec::Threshold {
        on,
        off,
        max_len,
        dead,
        polarity: p,
    }
}

/// Runs `spec` over `x` in chunks of `size` samples.
fn run_chunked(spec: &DetectorSpec, x: &[f32], size: usize) -> Vec<Event> {
    let mut detector = spec.build();
    let mut events = Vec::new();
    for (i, chunk) in x.chunks(size.max(1)).enumerate() {
        detector.process(chunk, (i * size) as u64, &mut events);
    }
    detector.finish(&mut events);
    events
}

fn run(spec: &DetectorSpec, x: &[f32]) -> Vec<Event> {
    run_chunked(spec, x, x.len().max(1))
}

fn spans(events: &[Event]) -> Vec<(u64, u64, u64)> {
    events
        .iter()
        .map(|e| (e.start, e.end, e.peak_index))
        .collect()
}

/// Events as comparable tuples, the peak value as its bits.
fn exact(events: &[Event]) -> Vec<(usize, u64, u64, u64, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e.channel,
                e.start,
                e.end,
                e.peak_index,
                e.peak_value.to_bits(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reference: trigger_onset with a dead time, over the whole cft.

/// `v >= level`, false for NaN (NumPy's `np.where(charfct >= level)`).
fn at_least(v: f64, level: f64) -> bool {
    v >= level
}

/// The end of the first run `>= off` that ends at or after `t` (ObsPy's
/// pairing), or the last sample when there is none (our clamp of ObsPy's
/// `len(charfct)`).
fn off_end(cft: &[f64], off: f64, t: usize) -> usize {
    let n = cft.len();
    (t..n)
        .find(|&k| at_least(cft[k], off) && (k + 1 == n || !at_least(cft[k + 1], off)))
        .unwrap_or(n - 1)
}

/// Events of `cft` under the documented rules: ObsPy's onsets (run starts
/// `>= on` after the previous event's end), each paired with
/// [`off_end`] and cut `max_len` after it; with a dead time, a run start
/// before `s + dead` merges into the event begun at `s` while that event
/// has not reached its cut, and is dropped once it has. Peaks: the first
/// maximum over `[start, end]`.
fn reference(cft: &[f64], on: f64, off: f64, max_len: Option<u64>, dead: u64) -> Vec<Event> {
    struct Cur {
        start: usize,
        end: usize,
        cut: usize,
        cut_reached: bool,
    }
    let n = cft.len();
    let max_len = max_len.map_or(usize::MAX, |m| m as usize);
    let dead = dead as usize;
    let run_starts =
        (0..n).filter(|&i| at_least(cft[i], on) && (i == 0 || !at_least(cft[i - 1], on)));
    let mut done: Vec<(usize, usize)> = Vec::new();
    let mut cur: Option<Cur> = None;
    for t in run_starts {
        if let Some(c) = &mut cur {
            if t <= c.end {
                // Swallowed, as in trigger_onset.
                continue;
            }
            if t < c.start.saturating_add(dead) {
                if !c.cut_reached && t < c.cut {
                    let end = off_end(cft, off, t);
                    c.end = end.min(c.cut);
                    c.cut_reached = end >= c.cut;
                }
                // Merged, or dropped after the cut.
                continue;
            }
            done.push((c.start, c.end));
        }
        let end = off_end(cft, off, t);
        let cut = t.saturating_add(max_len);
        cur = Some(Cur {
            start: t,
            end: end.min(cut),
            cut,
            cut_reached: end >= cut,
        });
    }
    done.extend(cur.map(|c| (c.start, c.end)));
    done.into_iter()
        .map(|(start, end)| {
            let mut peak = start;
            for i in start..=end {
                if cft[i] > cft[peak] {
                    peak = i;
                }
            }
            Event {
                channel: 0,
                start: start as u64,
                end: end as u64,
                peak_index: peak as u64,
                peak_value: cft[peak],
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Polarity.

#[test]
fn polarity_chooses_the_excursions() {
    let x = [0.0, 5.0, 0.0, -6.0, -7.0, 0.0, 3.0, -2.0, 4.5, 0.0];
    let ev = |p| run(&threshold(4.0, 1.0, None, None, p), &x);
    // y: 5 at 1, 4.5 at 8.
    assert_eq!(spans(&ev(Polarity::Pos)), [(1, 1, 1), (8, 8, 8)]);
    // −y: 6, 7 at 3..=4; the peak value is the cft's, +7.
    let neg = ev(Polarity::Neg);
    assert_eq!(spans(&neg), [(3, 4, 4)]);
    assert_eq!(neg[0].peak_value, 7.0);
    // |y|: both, and 3 at 6 keeps nothing going (below on, after a 0).
    assert_eq!(
        spans(&ev(Polarity::Both)),
        [(1, 1, 1), (3, 4, 4), (8, 8, 8)]
    );
    // The default is Both.
    assert_eq!(Polarity::default(), Polarity::Both);
}

#[test]
fn polarity_matches_the_reference_on_noise() {
    for seed in 0..8u64 {
        let x = noisy_signal(500 + seed, 6000, 8);
        for (p, sign) in [(Polarity::Pos, 1.0), (Polarity::Neg, -1.0)] {
            let cft: Vec<f64> = x.iter().map(|&v| sign * f64::from(v)).collect();
            for max_len in [None, Some(7)] {
                let spec = threshold(6.0, 1.5, max_len, None, p);
                let want = reference(&cft, 6.0, 1.5, max_len, 0);
                assert!(!want.is_empty(), "seed {seed}: the signal should trigger");
                assert_eq!(exact(&run(&spec, &x)), exact(&want), "seed {seed} {p:?}");
            }
        }
    }
}

#[test]
fn negative_and_zero_levels_are_refused_for_the_threshold() {
    let msg = threshold(-5.0, 1.0, None, None, Polarity::Both)
        .validate()
        .expect_err("negative on");
    assert!(
        msg.contains("--on -5") && msg.contains("--polarity neg"),
        "{msg}"
    );
    let msg = threshold(0.0, 0.0, None, None, Polarity::Pos)
        .validate()
        .expect_err("zero on");
    assert!(msg.contains("--on 0"), "{msg}");
    let msg = threshold(1.0, -0.5, None, None, Polarity::Neg)
        .validate()
        .expect_err("negative off");
    assert!(msg.contains("--off -0.5"), "{msg}");
    assert!(
        threshold(1.0, 0.0, None, None, Polarity::Neg)
            .validate()
            .is_ok()
    );
}

#[test]
fn options_take_polarity_and_dead_time() {
    let base = DetectorOptions {
        on: Some(4.0),
        ..DetectorOptions::default()
    };
    let spec = DetectorSpec::from_options(
        DetectorKind::Threshold,
        &DetectorOptions {
            polarity: Some(Polarity::Neg),
            dead: Some(WindowLen::Seconds(0.0015)),
            ..base
        },
        Some(30_000.0),
    )
    .expect("valid");
    // 1.5 ms at 30 kHz is 45 samples.
    assert_eq!(spec, threshold(4.0, 4.0, None, Some(45), Polarity::Neg));
    // Samples as given; 0 is none.
    let spec = DetectorSpec::from_options(
        DetectorKind::Threshold,
        &DetectorOptions {
            dead: Some(WindowLen::Samples(0)),
            ..base
        },
        None,
    )
    .expect("valid");
    assert_eq!(spec.dead(), None);
    let usage = |r: sigstream::Result<DetectorSpec>, phrase: &str| match r {
        Err(e @ sigstream::Error::Usage { .. }) => {
            assert!(e.to_string().contains(phrase), "{e}")
        }
        other => panic!("expected a usage error saying {phrase:?}, got {other:?}"),
    };
    let sta_lta = DetectorOptions {
        sta: Some(WindowLen::Samples(10)),
        lta: Some(WindowLen::Samples(100)),
        ..base
    };
    usage(
        DetectorSpec::from_options(
            DetectorKind::ClassicStaLta,
            &DetectorOptions {
                polarity: Some(Polarity::Both),
                ..sta_lta
            },
            None,
        ),
        "--polarity",
    );
    usage(
        DetectorSpec::from_options(
            DetectorKind::RecursiveStaLta,
            &DetectorOptions {
                dead: Some(WindowLen::Seconds(1.0)),
                ..sta_lta
            },
            None,
        ),
        "sample rate",
    );
    usage(
        DetectorSpec::from_options(
            DetectorKind::Threshold,
            &DetectorOptions {
                dead: Some(WindowLen::Seconds(-1.0)),
                ..base
            },
            Some(100.0),
        ),
        "--dead-time",
    );
    usage(
        DetectorSpec::from_options(
            DetectorKind::Threshold,
            &DetectorOptions {
                on: Some(-3.0),
                ..base
            },
            None,
        ),
        "--polarity neg",
    );
    // Dead time on an STA/LTA detector.
    let spec = DetectorSpec::from_options(
        DetectorKind::ClassicStaLta,
        &DetectorOptions {
            dead: Some(WindowLen::Seconds(0.5)),
            ..sta_lta
        },
        Some(100.0),
    )
    .expect("valid");
    assert_eq!(spec.dead(), Some(50));
}

// ---------------------------------------------------------------------------
// Dead time.

#[test]
fn dead_time_merges_onsets_inside_the_window() {
    let x = [0.0, 5.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 7.0, 0.0];
    let ev = |dead| spans(&run(&threshold(4.0, 1.0, None, dead, Polarity::Both), &x));
    assert_eq!(ev(None), [(1, 1, 1), (4, 4, 4), (8, 8, 8)]);
    // Window [1, 5): the onset at 4 merges, its 6 is the peak; 8 is new.
    assert_eq!(ev(Some(4)), [(1, 4, 4), (8, 8, 8)]);
    // An onset at exactly s + dead starts a new event.
    assert_eq!(ev(Some(3)), [(1, 1, 1), (4, 4, 4), (8, 8, 8)]);
    // Window [1, 9): both merge.
    assert_eq!(ev(Some(8)), [(1, 8, 8)]);
    // Window [1, 8): 4 merges, 8 is exactly 1 + 7: new.
    assert_eq!(ev(Some(7)), [(1, 4, 4), (8, 8, 8)]);
}

#[test]
fn merged_peak_is_the_first_maximum_over_the_merged_span() {
    // off > on: the onset at 1 (3 >= on) pairs with the run >= off at 2;
    // 3.5 at 3 is above on but not a run start.
    let x = [0.0, 3.0, 5.0, 3.5, 0.0, 5.0, 0.0, 6.0, 0.0];
    let spec = |dead| threshold(2.5, 4.0, None, dead, Polarity::Both);
    assert_eq!(
        spans(&run(&spec(None), &x)),
        [(1, 2, 2), (5, 5, 5), (7, 7, 7)]
    );
    // Merged up to 5: the later 5.0 ties, the first maximum stays at 2.
    assert_eq!(spans(&run(&spec(Some(5)), &x)), [(1, 5, 2), (7, 7, 7)]);
    // Merged up to 7: the 6.0 of the last run is the peak.
    assert_eq!(spans(&run(&spec(Some(7)), &x)), [(1, 7, 7)]);
    let cft: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for dead in [5, 7] {
        assert_eq!(
            exact(&run(&spec(Some(dead)), &x)),
            exact(&reference(&cft, 2.5, 4.0, None, dead))
        );
    }
}

#[test]
fn dead_time_with_max_len() {
    let ev = |x: &[f32], max_len, dead| {
        spans(&run(&threshold(4.0, 1.0, max_len, dead, Polarity::Both), x))
    };
    // Cut at 2; the onset at 5 lies in the dead window [0, 10): dropped.
    let x = [5.0, 5.0, 5.0, 5.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0];
    assert_eq!(ev(&x, Some(2), None), [(0, 2, 0), (5, 5, 5), (11, 11, 11)]);
    assert_eq!(ev(&x, Some(2), Some(10)), [(0, 2, 0), (11, 11, 11)]);
    // The merged event keeps its onset's cut: ends at 0, the onset at 2
    // merges, the cut at 3 ends it; the run start at 5 is dropped.
    let x = [5.0, 0.0, 5.0, 5.0, 5.0, 0.0, 5.0, 0.0];
    assert_eq!(ev(&x, Some(3), Some(10)), [(0, 3, 0)]);
    // An event that ended before its cut and whose cut passes in the dead
    // window: an onset after the cut is dropped, not merged.
    let x = [5.0, 0.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(ev(&x, Some(3), Some(8)), [(0, 0, 0)]);
    // An onset exactly at the cut is dropped too (ObsPy drops onsets up to
    // and including a cut); one before it merges.
    assert_eq!(ev(&x, Some(5), Some(8)), [(0, 0, 0)]);
    assert_eq!(ev(&x, Some(6), Some(8)), [(0, 5, 5)]);
    // The window ends before the onset: a new event.
    assert_eq!(ev(&x, Some(3), Some(5)), [(0, 0, 0), (5, 5, 5)]);
}

#[test]
fn dead_time_matches_the_reference_on_quantised_cft() {
    // Small integer values make ties with the levels and with the window's
    // end common.
    let mut rng = Rng(21);
    let mut events = Vec::new();
    for case in 0..6000 {
        let n = rng.range(1, 90);
        let cft: Vec<f64> = (0..n)
            .map(|_| {
                if rng.range(0, 30) == 0 {
                    f64::NAN
                } else {
                    rng.range(0, 5) as f64
                }
            })
            .collect();
        let on = rng.range(0, 5) as f64 + if rng.range(0, 2) == 0 { 0.5 } else { 0.0 };
        let off = rng.range(0, 5) as f64 + if rng.range(0, 2) == 0 { 0.5 } else { 0.0 };
        let max_len = [None, Some(1), Some(2), Some(4), Some(9)][rng.range(0, 5)];
        let dead = rng.range(0, 14) as u64;
        let want = reference(&cft, on, off, max_len, dead);
        let mut trigger = Trigger::new(on, off, max_len).with_dead(dead);
        events.clear();
        let mut pos = 0;
        while pos < n {
            let len = rng.range(1, n - pos + 1);
            trigger.push(&cft[pos..pos + len], pos as u64, &mut events);
            pos += len;
        }
        trigger.finish(&mut events);
        assert_eq!(
            exact(&events),
            exact(&want),
            "case {case}: {cft:?} on {on} off {off} max_len {max_len:?} dead {dead}"
        );
    }
}

#[test]
fn dead_time_keeps_onsets_apart_on_noise() {
    for kind in 0..3 {
        let x = noisy_signal(40 + kind as u64, 30_000, 40);
        for dead in [1u64, 37, 400, 5000] {
            let spec = spec_for(kind, Some(dead), None);
            let events = run(&spec, &x);
            assert!(!events.is_empty(), "{spec:?}");
            for w in events.windows(2) {
                assert!(
                    w[1].start >= w[0].start + dead,
                    "{spec:?}: onsets {} and {}",
                    w[0].start,
                    w[1].start
                );
                assert!(w[1].start > w[0].end, "{spec:?}: overlapping events");
            }
        }
    }
}

#[test]
fn open_event_reports_its_start_and_running_peak() {
    let spec = threshold(4.0, 1.0, None, Some(6), Polarity::Both);
    let mut d = spec.build();
    let mut events = Vec::new();
    d.process(&[0.0, 5.0, 7.0, 0.0], 0, &mut events);
    // Ended at 2, but waiting in its dead window [1, 7).
    assert!(events.is_empty());
    assert_eq!(
        (d.open_event_start(), d.open_event_peak()),
        (Some(1), Some(2))
    );
    d.process(&[0.0, 0.0, 0.0, 0.0], 4, &mut events);
    assert_eq!(spans(&events), [(1, 2, 2)]);
    assert_eq!((d.open_event_start(), d.open_event_peak()), (None, None));
}

// ---------------------------------------------------------------------------
// Chunk invariance of the new options.

fn spec_for(kind: usize, dead: Option<u64>, max_len: Option<u64>) -> DetectorSpec {
    match kind {
        0 => threshold(6.0, 1.5, max_len, dead, Polarity::Neg),
        1 => DetectorSpec::ClassicStaLta {
            nsta: 10,
            nlta: 100,
            on: 3.0,
            off: 1.5,
            max_len,
            dead,
        },
        2 => DetectorSpec::RecursiveStaLta {
            nsta: 10,
            nlta: 100,
            on: 2.5,
            off: 1.2,
            max_len,
            dead,
        },
        _ => threshold(6.0, 1.5, max_len, dead, Polarity::Pos),
    }
}

#[test]
fn every_chunk_size_gives_the_same_events() {
    let n = 700;
    let mut x = noisy_signal(31, n, 6);
    x[333] = f32::NAN;
    for kind in 0..4 {
        for (dead, max_len) in [(Some(25), None), (Some(60), Some(12)), (Some(3), Some(40))] {
            let spec = spec_for(kind, dead, max_len);
            let whole = run(&spec, &x);
            assert!(!whole.is_empty(), "{spec:?} should trigger");
            for size in 1..=n {
                assert_eq!(
                    exact(&run_chunked(&spec, &x, size)),
                    exact(&whole),
                    "{spec:?}, chunks of {size}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chunking_does_not_change_events_with_dead_time(
        seed in any::<u64>(),
        n in 1usize..12_000,
        kind in 0usize..4,
        dead in prop_oneof![Just(None), (1u64..3000).prop_map(Some)],
        max_len in prop_oneof![Just(None), (1u64..500).prop_map(Some)],
        sizes in prop::collection::vec(prop_oneof![1usize..4, 1usize..700, 1usize..12_000], 1..30),
    ) {
        let x = noisy_signal(seed, n, n / 1000 + 1);
        let spec = spec_for(kind, dead, max_len);
        let whole = run(&spec, &x);
        let mut detector = spec.build();
        let mut events = Vec::new();
        let mut pos = 0;
        for &size in sizes.iter().cycle() {
            if pos >= n {
                break;
            }
            let size = size.min(n - pos);
            detector.process(&x[pos..pos + size], pos as u64, &mut events);
            pos += size;
        }
        detector.finish(&mut events);
        prop_assert_eq!(exact(&events), exact(&whole));
    }
}

// ---------------------------------------------------------------------------
// Per-channel detectors.

#[test]
fn with_levels_changes_only_the_levels() {
    let spec = DetectorSpec::ClassicStaLta {
        nsta: 5,
        nlta: 50,
        on: 3.0,
        off: 1.0,
        max_len: Some(9),
        dead: Some(4),
    };
    assert_eq!(
        spec.with_levels(7.0, 2.0),
        DetectorSpec::ClassicStaLta {
            nsta: 5,
            nlta: 50,
            on: 7.0,
            off: 2.0,
            max_len: Some(9),
            dead: Some(4),
        }
    );
    let t = threshold(1.0, 0.5, None, Some(3), Polarity::Neg).with_levels(4.0, 1.0);
    assert_eq!(t, threshold(4.0, 1.0, None, Some(3), Polarity::Neg));
}

#[test]
fn per_channel_levels_run_each_channel_with_its_own_detector() {
    let (frames, channels) = (20_000, 3);
    let planes: Vec<Vec<f32>> = (0..channels)
        .map(|c| noisy_signal(60 + c as u64, frames, 10))
        .collect();
    let mut interleaved = Vec::with_capacity(frames * channels);
    for i in 0..frames {
        interleaved.extend(planes.iter().map(|p| p[i]));
    }
    let base = threshold(1.0, 1.0, None, Some(30), Polarity::Neg);
    let specs: Vec<DetectorSpec> = [4.0, 6.0, 9.0]
        .iter()
        .map(|&on| base.with_levels(on, on / 3.0))
        .collect();
    let job = Job {
        detector: Some(DetectorChoice::PerChannel(Arc::from(specs.clone()))),
        ..Job::default()
    };
    let config = StreamConfig {
        chunk_size: Some(1234),
        threads: 2,
        ..StreamConfig::default()
    };
    let mut source = MemorySource::new(&interleaved, channels, None).expect("source");
    let mut got = Vec::new();
    StreamProcessor::new(config, job)
        .process_source(
            &mut source,
            Sinks {
                events: Some(&mut got),
                ..Sinks::default()
            },
        )
        .expect("runs");
    for (c, (spec, plane)) in specs.iter().zip(&planes).enumerate() {
        let want: Vec<Event> = run(spec, plane)
            .into_iter()
            .map(|e| Event { channel: c, ..e })
            .collect();
        assert!(!want.is_empty(), "channel {c} should trigger");
        let mine: Vec<Event> = got.iter().filter(|e| e.channel == c).copied().collect();
        assert_eq!(exact(&mine), exact(&want), "channel {c}");
    }
    // Events come out in order of start.
    assert!(got.windows(2).all(|w| w[0].start <= w[1].start));
}

#[test]
fn per_channel_list_must_fit_the_channels() {
    let specs: Arc<[DetectorSpec]> =
        Arc::from(vec![threshold(4.0, 1.0, None, None, Polarity::Both); 2]);
    let choice = DetectorChoice::PerChannel(specs);
    assert!(choice.check_channels(2).is_ok());
    let e = choice.check_channels(3).expect_err("3 channels, 2 specs");
    assert!(e.to_string().contains("2 given for 3"), "{e}");
    let x = vec![0.0f32; 300];
    let mut source = MemorySource::new(&x, 3, None).expect("source");
    let job = Job {
        detector: Some(choice),
        ..Job::default()
    };
    let r = StreamProcessor::new(StreamConfig::default(), job).process_source(
        &mut source,
        Sinks {
            events: Some(&mut Vec::new()),
            ..Sinks::default()
        },
    );
    assert!(matches!(r, Err(sigstream::Error::Usage { .. })), "{r:?}");
}

#[test]
fn gpu_support_is_the_plain_builtin_detectors() {
    let plain = threshold(4.0, 1.0, None, None, Polarity::Both);
    assert!(DetectorChoice::Builtin(plain.clone()).gpu_supported());
    assert!(
        !DetectorChoice::Builtin(threshold(4.0, 1.0, None, Some(5), Polarity::Both))
            .gpu_supported()
    );
    assert!(
        !DetectorChoice::Builtin(threshold(4.0, 1.0, None, None, Polarity::Neg)).gpu_supported()
    );
    // A dead time of 0 is none.
    assert!(
        DetectorChoice::Builtin(threshold(4.0, 1.0, None, Some(0), Polarity::Both)).gpu_supported()
    );
    assert!(!DetectorChoice::PerChannel(Arc::from(vec![plain])).gpu_supported());
}

// ---------------------------------------------------------------------------
// Noise levels.

#[test]
fn mad_matches_numpy() {
    // Printed by (numpy 1.x/2.x, f64 after f32 like our input):
    //   python3 -c "import numpy as np
    //   for v in [[3,-1.5,7.25,0,2],[1,2,4,8,16,32],[5,5,5,1,9,5,5],
    //             [-3.5,-1.25,-8,-0.5,-2,-6.75,-4,-1],
    //             [0.1,0.2,0.3,0.7,1.1,-0.4,2.9,0.05,0.3],[4.5],[1,2]]:
    //       a = np.float32(v).astype(np.float64); m = np.median(a)
    //       print(repr(np.median(np.abs(a - m)) / 0.6744897501960817))"
    let cases: [(&[f32], f64); 7] = [
        (&[3.0, -1.5, 7.25, 0.0, 2.0], 2.965204437011204),
        (&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 6.671709983275209),
        (&[5.0, 5.0, 5.0, 1.0, 9.0, 5.0, 5.0], 0.0),
        (
            &[-3.5, -1.25, -8.0, -0.5, -2.0, -6.75, -4.0, -1.0],
            2.409228605071603,
        ),
        (
            &[0.1, 0.2, 0.3, 0.7, 1.1, -0.4, 2.9, 0.05, 0.3],
            0.3706505711957715,
        ),
        (&[4.5], 0.0),
        (&[1.0, 2.0], 0.741301109252801),
    ];
    for (x, want) in cases {
        assert_eq!(mad(x), want, "{x:?}");
    }
}

#[test]
fn mad_matches_a_full_sort_and_ignores_non_finite_samples() {
    let mut rng = Rng(77);
    let mut scratch = Vec::new();
    for case in 0..300 {
        let n = rng.range(1, 400);
        let mut x: Vec<f32> = (0..n)
            .map(|_| {
                // Quantised values make ties common.
                if rng.range(0, 2) == 0 {
                    rng.range(0, 7) as f32 - 3.0
                } else {
                    (rng.normal() * 10.0) as f32
                }
            })
            .collect();
        let want = reference::mad_by_sort(&x);
        assert_eq!(
            mad_with(&x, &mut scratch).to_bits(),
            want.to_bits(),
            "case {case}"
        );
        // Non-finite samples are left out.
        for _ in 0..rng.range(0, 4) {
            let at = rng.range(0, n + 1);
            x.insert(
                at,
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][rng.range(0, 3)],
            );
        }
        assert_eq!(
            mad_with(&x, &mut scratch).to_bits(),
            want.to_bits(),
            "case {case}"
        );
    }
    assert!(mad(&[]).is_nan());
    assert!(mad(&[f32::NAN, f32::INFINITY]).is_nan());
    // Normal noise: MAD / MAD_SCALE estimates sigma.
    let x: Vec<f32> = (0..200_000).map(|_| (rng.normal() * 3.0) as f32).collect();
    // 2e5 samples: the MAD's relative standard error is about
    // 1.17 / sqrt(n) ~ 0.3 %; 2 % is a 7-sigma margin.
    const SIGMA_REL_TOL: f64 = 0.02;
    assert!((mad(&x) / 3.0 - 1.0).abs() < SIGMA_REL_TOL, "{}", mad(&x));
}

#[test]
fn noise_chunk_positions() {
    let d = NoiseChunks::default();
    assert_eq!((d.chunks, d.chunk_samples), (20, 10_000));
    let nc = |chunks, chunk_samples| NoiseChunks {
        chunks,
        chunk_samples,
    };
    // floor(i (N − L) / (K − 1)): first at 0, last ending at the end.
    assert_eq!(nc(4, 10).positions(100), [0, 30, 60, 90]);
    assert_eq!(nc(3, 10).positions(101), [0, 45, 91]);
    // Fewer chunks when they would overlap: floor(N / L) of them.
    assert_eq!(nc(20, 10).positions(35), [0, 12, 25]);
    assert_eq!(nc(20, 10).positions(10), [0]);
    // Shorter than one chunk: the whole recording, once.
    assert_eq!(nc(20, 10).positions(7), [0]);
    assert_eq!(nc(20, 10).chunk_len(7), 7);
    assert_eq!(nc(1, 10).positions(1000), [0]);
    assert!(nc(5, 10).positions(0).is_empty());
    // Huge recordings: no overflow, inside the file, never overlapping.
    let big = u64::MAX / 2;
    let p = d.positions(big);
    assert_eq!(p.len(), 20);
    assert_eq!(*p.last().expect("20"), big - 10_000);
    assert!(p.windows(2).all(|w| w[1] - w[0] >= 10_000));
    // Every layout: in order, inside, apart.
    for n in 0..300u64 {
        for k in 1..6 {
            for l in 1..40 {
                let c = nc(k, l);
                let p = c.positions(n);
                let len = c.chunk_len(n);
                assert!(p.len() <= k);
                assert!(p.iter().all(|&s| s + len <= n), "{c:?} {n}");
                assert!(p.windows(2).all(|w| w[1] >= w[0] + len), "{c:?} {n}");
                assert_eq!(p.is_empty(), n == 0);
            }
        }
    }
}

#[test]
fn noise_chunks_are_validated() {
    let nc = |chunks, chunk_samples| NoiseChunks {
        chunks,
        chunk_samples,
    };
    assert!(nc(20, 10_000).validate().is_ok());
    for bad in [nc(0, 10), nc(10, 0), nc(1 << 16, 1 << 16)] {
        assert!(
            matches!(bad.validate(), Err(sigstream::Error::Usage { .. })),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Coincidence.

fn fixture() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/coincidence.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().expect("integer")
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().expect("number")
}

/// Network events for `events` (in the fixture's order: start, then
/// channel) pushed one by one.
fn coincide(c: &mut Coincidence, events: &[Event]) -> Vec<NetworkEvent> {
    let mut out = Vec::new();
    for e in events {
        c.push(e, &mut out).expect("push");
    }
    c.finish(&mut out);
    out
}

#[test]
fn coincidence_matches_obspy() {
    let fx = fixture();
    let scenarios = fx["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 3);
    for sc in scenarios {
        let name = sc["name"].as_str().expect("name");
        let weights: Vec<f64> = sc["weights"].as_array().expect("w").iter().map(f).collect();
        let events: Vec<Event> = sc["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| Event {
                channel: u(&e["channel"]) as usize,
                start: u(&e["start"]),
                end: u(&e["end"]),
                peak_index: u(&e["peak_index"]),
                peak_value: f(&e["peak_value"]),
            })
            .collect();
        let expected = sc["expected"].as_array().expect("expected");
        assert!(!expected.is_empty(), "{name}");
        let mut c = Coincidence::new(
            weights,
            f(&sc["thr_coincidence_sum"]),
            u(&sc["trigger_off_extension"]),
            64,
        )
        .expect("valid");
        let got = coincide(&mut c, &events);
        let got_cmp: Vec<(u64, u64, Vec<usize>, u64)> = got
            .iter()
            .map(|n| {
                (
                    n.start,
                    n.end,
                    n.channels.clone(),
                    n.coincidence_sum.to_bits(),
                )
            })
            .collect();
        let want: Vec<(u64, u64, Vec<usize>, u64)> = expected
            .iter()
            .map(|n| {
                (
                    u(&n["start"]),
                    u(&n["end"]),
                    n["channels"]
                        .as_array()
                        .expect("channels")
                        .iter()
                        .map(|c| u(c) as usize)
                        .collect(),
                    f(&n["coincidence_sum"]).to_bits(),
                )
            })
            .collect();
        assert_eq!(got_cmp, want, "{name}");
        // The peak: the member event with the largest peak value. The
        // members: the group's head, then for each other channel its first
        // trigger after the head (ObsPy skips later retriggers).
        let key = |e: &Event| (e.start, e.end, e.channel);
        let mut sorted = events.clone();
        sorted.sort_by_key(key);
        for n in &got {
            let head = sorted
                .iter()
                .find(|e| e.start == n.start && e.channel == n.channels[0])
                .expect("head");
            let best = n
                .channels
                .iter()
                .map(|&c| {
                    sorted
                        .iter()
                        .find(|e| e.channel == c && key(e) >= key(head))
                        .expect("member")
                })
                .map(|e| e.peak_value)
                .fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(n.peak_value, best, "{name}: {n:?}");
            assert!((n.start..=n.end).contains(&n.peak_index), "{name}: {n:?}");
        }
        // Fed in any order among equal starts (here: channels reversed).
        let mut shuffled = events.clone();
        shuffled.sort_by_key(|e| (e.start, std::cmp::Reverse(e.channel)));
        c.finish(&mut Vec::new());
        assert_eq!(coincide(&mut c, &shuffled), got, "{name}, ties reversed");
    }
}

#[test]
fn coincidence_is_refused_when_it_cannot_work() {
    let usage = |r: sigstream::Result<Coincidence>, phrase: &str| match r {
        Err(e @ sigstream::Error::Usage { .. }) => {
            assert!(e.to_string().contains(phrase), "{e}")
        }
        other => panic!("expected a usage error saying {phrase:?}, got {other:?}"),
    };
    usage(Coincidence::uniform(1, 1.0, 0, 10), "at least two channels");
    usage(
        Coincidence::new(vec![1.0, f64::NAN], 1.0, 0, 10),
        "channel 1",
    );
    usage(Coincidence::new(vec![1.0, -1.0], 1.0, 0, 10), "channel 1");
    usage(Coincidence::uniform(2, 0.0, 0, 10), "above 0");
    usage(Coincidence::uniform(2, f64::INFINITY, 0, 10), "above 0");
    usage(Coincidence::uniform(2, 1.0, 0, 0), "at least 1");

    let ev = |channel, start, end| Event {
        channel,
        start,
        end,
        peak_index: start,
        peak_value: 1.0,
    };
    let mut c = Coincidence::uniform(4, 2.0, 0, 3).expect("valid");
    let mut out = Vec::new();
    assert!(c.push(&ev(4, 0, 1), &mut out).is_err(), "no such channel");
    c.push(&ev(0, 10, 20), &mut out).expect("push");
    assert!(c.push(&ev(1, 5, 6), &mut out).is_err(), "out of order");
    // A chain of overlapping triggers longer than the cap.
    c.push(&ev(1, 15, 30), &mut out).expect("push");
    c.push(&ev(2, 25, 40), &mut out).expect("push");
    let e = c.push(&ev(3, 35, 50), &mut out).expect_err("over the cap");
    assert!(e.to_string().contains("more than 3"), "{e}");
}

#[test]
fn coincidence_buffers_only_what_can_still_join() {
    // Isolated pairs far apart: the buffer never holds more than a pair
    // and the next trigger.
    let mut c = Coincidence::uniform(4, 2.0, 5, 3).expect("valid");
    let mut out = Vec::new();
    for k in 0..1000u64 {
        for ch in 0..2 {
            let e = Event {
                channel: ch + 2 * (k as usize % 2),
                start: k * 100 + ch as u64,
                end: k * 100 + 10,
                peak_index: k * 100 + 3,
                peak_value: (k % 7) as f64,
            };
            c.push(&e, &mut out).expect("bounded");
            assert!(c.pending() <= 3);
        }
    }
    c.finish(&mut out);
    assert_eq!(out.len(), 1000);
    assert!(
        out.iter()
            .all(|n| n.channels.len() == 2 && n.coincidence_sum == 2.0)
    );
}
