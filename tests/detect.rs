//! Detection against independent whole-array references of ObsPy's code.
//!
//! The references below are straight transcriptions, in `f64`, of ObsPy's
//! `classic_sta_lta_py` (cumulative sums), `stalta.c` (running sums),
//! `recstalta.c` and `trigger_onset` (the deque algorithm, `>=` levels, the
//! `len(charfct)` sentinel), written without looking at the streaming code.
//! The detectors must give the same events; and the same events, bit for
//! bit, whatever the chunking.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;

mod common;

use common::{Rng, noisy_signal};
use proptest::prelude::*;
use sigstream::detect::{BLOCK, DetectorSpec, Event, Polarity, Trigger};

// ---------------------------------------------------------------------------
// Allocation counting (per thread, so parallel tests do not interfere).

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// only addition is a thread-local counter with a const initialiser, which
// never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` via `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: `ptr` came from `System`, the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// ---------------------------------------------------------------------------
// Seeded signals.

// ---------------------------------------------------------------------------
// References (whole array, f64, transcribed from ObsPy).

/// `classic_sta_lta_py` as trigger.py writes it, with the samples taken as
/// f64 before squaring (as the C wrapper `classic_sta_lta` converts them).
fn classic_cumsum(a: &[f32], nsta: usize, nlta: usize) -> Vec<f64> {
    let n = a.len();
    // sta = np.cumsum(a ** 2, dtype=np.float64)
    let mut sta = Vec::with_capacity(n);
    let mut acc = 0.0f64;
    for &x in a {
        acc += f64::from(x) * f64::from(x);
        sta.push(acc);
    }
    // lta = sta.copy()
    let mut lta = sta.clone();
    // sta[nsta:] = sta[nsta:] - sta[:-nsta]; sta /= nsta
    let cs = sta.clone();
    for i in nsta..n {
        sta[i] = cs[i] - cs[i - nsta];
    }
    for v in &mut sta {
        *v /= nsta as f64;
    }
    // lta[nlta:] = lta[nlta:] - lta[:-nlta]; lta /= nlta
    for i in nlta..n {
        lta[i] = cs[i] - cs[i - nlta];
    }
    for v in &mut lta {
        *v /= nlta as f64;
    }
    // sta[:nlta - 1] = 0
    for v in sta.iter_mut().take(nlta - 1) {
        *v = 0.0;
    }
    // lta[lta < dtiny] = dtiny
    for v in &mut lta {
        if *v < f64::MIN_POSITIVE {
            *v = f64::MIN_POSITIVE;
        }
    }
    sta.iter().zip(&lta).map(|(s, l)| s / l).collect()
}

/// `stalta.c` (OPTIMIZED_VERSION). ObsPy refuses `n < nlta`; we return
/// zeros there, which is what the streaming detector gives.
#[expect(
    clippy::needless_range_loop,
    reason = "a line-by-line transcription of stalta.c reads best with its indices"
)]
fn classic_c(data: &[f32], nsta: usize, nlta: usize) -> Vec<f64> {
    let n = data.len();
    let mut charfct = vec![0.0; n];
    if n < nlta {
        return charfct;
    }
    let sq = |i: usize| f64::from(data[i]).powi(2);
    let frac = nlta as f64 / nsta as f64;
    let mut sta = 0.0f64;
    for i in 0..nsta {
        sta += sq(i);
        charfct[i] = 0.0;
    }
    let mut lta = sta;
    for i in nsta..nlta {
        let buf = sq(i);
        lta += buf;
        sta += buf - sq(i - nsta);
        charfct[i] = 0.0;
    }
    charfct[nlta - 1] = sta / lta * frac;
    for i in nlta..n {
        let buf = sq(i);
        sta += buf - sq(i - nsta);
        lta += buf - sq(i - nlta);
        charfct[i] = sta / lta * frac;
    }
    charfct
}

/// `recstalta.c`, with the warm-up zeros applied whatever the length (see
/// the module docs of `sigstream::detect`).
fn recursive_c(a: &[f32], nsta: usize, nlta: usize) -> Vec<f64> {
    let ndat = a.len();
    let csta = 1.0 / nsta as f64;
    let clta = 1.0 / nlta as f64;
    let mut sta = 0.0f64;
    let mut lta = 0.0f64;
    let mut charfct = vec![0.0; ndat];
    for i in 1..ndat {
        let sq = f64::from(a[i]).powi(2);
        sta = csta * sq + (1.0 - csta) * sta;
        lta = clta * sq + (1.0 - clta) * lta;
        charfct[i] = sta / lta;
    }
    for v in charfct.iter_mut().take(nlta) {
        *v = 0.0;
    }
    charfct
}

/// `trigger_onset` (current ObsPy: `>=`, `of.append(len(charfct))`), without
/// `max_len_delete`. Two documented departures: ends are clamped to the last
/// sample (ObsPy may report `len(charfct)`), and no `IndexError` when no
/// value reaches `off`.
fn trigger_onset(
    charfct: &[f64],
    thres1: f64,
    thres2: f64,
    max_len: Option<u64>,
) -> Vec<(u64, u64)> {
    let n = charfct.len() as i64;
    let max_len = max_len.map_or(i64::MAX, |m| m as i64);
    let ind1: Vec<i64> = (0..n).filter(|&i| charfct[i as usize] >= thres1).collect();
    if ind1.is_empty() {
        return Vec::new();
    }
    let ind2: Vec<i64> = (0..n).filter(|&i| charfct[i as usize] >= thres2).collect();
    let mut on: VecDeque<i64> = VecDeque::from([ind1[0]]);
    let mut of: VecDeque<i64> = VecDeque::from([-1]);
    if let Some(&last) = ind2.last() {
        for w in ind2.windows(2) {
            if w[1] - w[0] > 1 {
                of.push_back(w[0]);
            }
        }
        of.push_back(last);
    }
    for w in ind1.windows(2) {
        if w[1] - w[0] > 1 {
            on.push_back(w[1]);
        }
    }
    if let Some(&last) = ind2.last() {
        of.push_back(last);
    }
    of.push_back(n);
    let mut pick = Vec::new();
    while on.back() > of.front() {
        while on[0] <= of[0] {
            on.pop_front();
        }
        while of[0] < on[0] {
            of.pop_front();
        }
        if of[0] - on[0] > max_len {
            of.push_front(on[0] + max_len);
        }
        pick.push((on[0] as u64, of[0].min(n - 1) as u64));
    }
    pick
}

/// Events from a whole cft: `trigger_onset`, then the first maximum.
fn reference_events(cft: &[f64], on: f64, off: f64, max_len: Option<u64>) -> Vec<Event> {
    trigger_onset(cft, on, off, max_len)
        .into_iter()
        .map(|(start, end)| {
            let mut peak_index = start;
            for i in start..=end {
                if cft[i as usize] > cft[peak_index as usize] {
                    peak_index = i;
                }
            }
            Event {
                channel: 0,
                start,
                end,
                peak_index,
                peak_value: cft[peak_index as usize],
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Helpers.

/// Runs `spec` over `x` cut into chunks of `sizes` (cycled), first sample at
/// absolute index `offset`.
fn run_chunked(spec: &DetectorSpec, x: &[f32], sizes: &[usize], offset: u64) -> Vec<Event> {
    let mut detector = spec.build();
    let mut events = Vec::new();
    let mut pos = 0;
    for &size in sizes.iter().cycle() {
        if pos >= x.len() {
            break;
        }
        let size = size.clamp(1, x.len() - pos);
        detector.process(&x[pos..pos + size], offset + pos as u64, &mut events);
        pos += size;
    }
    detector.finish(&mut events);
    events
}

fn run(spec: &DetectorSpec, x: &[f32]) -> Vec<Event> {
    run_chunked(spec, x, &[x.len().max(1)], 0)
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

fn spans(events: &[Event]) -> Vec<(u64, u64, u64)> {
    events
        .iter()
        .map(|e| (e.start, e.end, e.peak_index))
        .collect()
}

/// Same indices exactly; peak values within `rel_tol` (relative).
fn assert_events_close(got: &[Event], want: &[Event], rel_tol: f64, what: &str) {
    assert_eq!(spans(got), spans(want), "{what}: event indices differ");
    for (g, w) in got.iter().zip(want) {
        let scale = w.peak_value.abs().max(f64::MIN_POSITIVE);
        assert!(
            (g.peak_value - w.peak_value).abs() <= rel_tol * scale,
            "{what}: peak at {} is {} here, {} in the reference",
            w.peak_index,
            g.peak_value,
            w.peak_value
        );
    }
}

/// The cumsum reference forms each window sum as the difference of two
/// prefix sums that grow to about n * mean(a²); with n <= 2e4 samples and
/// bursts up to x30 (a² up to ~1e4 over a few hundred samples) the prefix
/// sums stay below ~1e7, so each window sum carries an absolute error of a
/// few 1e7 * 1.1e-16 ~ 1e-9 against window sums of at least ~nsta * 0.1.
/// Our running sums are closer to exact; 1e-7 relative covers the
/// reference's error with a wide margin while still catching any formula
/// slip (which would be off by whole percent).
const CUMSUM_REL_TOL: f64 = 1e-7;

// ---------------------------------------------------------------------------
// Agreement with the references.

#[test]
fn threshold_matches_trigger_onset_reference() {
    for seed in 0..20u64 {
        let x = noisy_signal(seed, 5000, 6);
        let cft: Vec<f64> = x.iter().map(|v| f64::from(v.abs())).collect();
        for &(on, off, max_len) in &[
            (10.0, 2.0, None),
            (10.0, 2.0, Some(25)),
            (4.0, 4.0, None),
            (5.0, 12.0, None),
            (5.0, 12.0, Some(40)),
        ] {
            let spec = DetectorSpec::Threshold {
                on,
                off,
                max_len,
                dead: None,
                polarity: Polarity::Both,
            };
            let got = run(&spec, &x);
            let want = reference_events(&cft, on, off, max_len);
            assert_eq!(
                exact(&got),
                exact(&want),
                "seed {seed}, on {on}, off {off}, max_len {max_len:?}"
            );
        }
    }
}

#[test]
fn classic_matches_obspy_cumsum_reference() {
    let mut total = 0;
    for seed in 0..12u64 {
        let x = noisy_signal(100 + seed, 20_000, 10);
        for &(nsta, nlta, on, off, max_len) in &[
            (10, 100, 3.0, 1.5, None),
            (25, 400, 4.0, 1.0, Some(300)),
            (5, 2000, 2.5, 0.8, None),
            (50, 1000, 3.0, 3.5, None),
        ] {
            let spec = DetectorSpec::ClassicStaLta {
                nsta,
                nlta,
                on,
                off,
                max_len,
                dead: None,
            };
            let got = run(&spec, &x);
            let want = reference_events(&classic_cumsum(&x, nsta, nlta), on, off, max_len);
            assert_events_close(
                &got,
                &want,
                CUMSUM_REL_TOL,
                &format!("seed {seed}, {spec:?}"),
            );
            total += got.len();
        }
    }
    assert!(
        total > 100,
        "the signals should trigger plenty ({total} events)"
    );
}

#[test]
fn classic_is_stalta_c_bit_for_bit_before_the_first_resync() {
    // The sums are recomputed from the history every nlta + BLOCK samples;
    // until then the arithmetic is stalta.c's, operation for operation.
    let (nsta, nlta) = (20, 300);
    let n = nlta + BLOCK - 1;
    let mut total = 0;
    for seed in 0..10u64 {
        let x = noisy_signal(200 + seed, n, 5);
        let spec = DetectorSpec::ClassicStaLta {
            nsta,
            nlta,
            on: 3.0,
            off: 1.2,
            max_len: None,
            dead: None,
        };
        let got = run_chunked(&spec, &x, &[777, 1, 3000], 0);
        let want = reference_events(&classic_c(&x, nsta, nlta), 3.0, 1.2, None);
        assert_eq!(exact(&got), exact(&want), "seed {seed}");
        total += got.len();
    }
    assert!(total > 10, "the signals should trigger ({total} events)");
}

#[test]
fn classic_stays_close_to_stalta_c_after_resyncs() {
    let (nsta, nlta) = (10, 150);
    let x = noisy_signal(300, 60_000, 30);
    let spec = DetectorSpec::ClassicStaLta {
        nsta,
        nlta,
        on: 3.0,
        off: 1.5,
        max_len: None,
        dead: None,
    };
    let got = run(&spec, &x);
    let want = reference_events(&classic_c(&x, nsta, nlta), 3.0, 1.5, None);
    assert!(want.len() > 10);
    assert_events_close(&got, &want, CUMSUM_REL_TOL, "classic vs stalta.c");
}

#[test]
fn recursive_is_recstalta_c_bit_for_bit() {
    let mut total = 0;
    for seed in 0..12u64 {
        let x = noisy_signal(400 + seed, 20_000, 10);
        for &(nsta, nlta, on, off, max_len) in &[
            (10, 100, 2.5, 1.0, None),
            (30, 1000, 3.0, 1.5, Some(200)),
            (5, 50, 2.0, 2.5, None),
        ] {
            let spec = DetectorSpec::RecursiveStaLta {
                nsta,
                nlta,
                on,
                off,
                max_len,
                dead: None,
            };
            let got = run(&spec, &x);
            let want = reference_events(&recursive_c(&x, nsta, nlta), on, off, max_len);
            assert_eq!(exact(&got), exact(&want), "seed {seed}, {spec:?}");
            total += got.len();
        }
    }
    assert!(
        total > 100,
        "the signals should trigger plenty ({total} events)"
    );
}

#[test]
fn trigger_matches_trigger_onset_on_quantised_cft() {
    // Small integer values make equality with the levels common, so `>=`
    // versus `>` and every off-by-one in the run logic shows.
    let mut rng = Rng(7);
    let mut events = Vec::new();
    for case in 0..4000 {
        let n = rng.range(1, 120);
        let cft: Vec<f64> = (0..n)
            .map(|_| {
                if rng.range(0, 40) == 0 {
                    f64::NAN
                } else {
                    rng.range(0, 5) as f64
                }
            })
            .collect();
        let on = rng.range(0, 5) as f64 + if rng.range(0, 2) == 0 { 0.5 } else { 0.0 };
        let off = rng.range(0, 5) as f64 + if rng.range(0, 2) == 0 { 0.5 } else { 0.0 };
        let max_len = [None, Some(1), Some(2), Some(3), Some(7)][rng.range(0, 5)];
        let want = reference_events(&cft, on, off, max_len);

        // Random pieces, and one value at a time.
        let mut trigger = Trigger::new(on, off, max_len);
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
            "case {case}: {cft:?} on {on} off {off} max_len {max_len:?}"
        );

        let mut one = Trigger::new(on, off, max_len);
        events.clear();
        for (i, &c) in cft.iter().enumerate() {
            one.push_one(c, i as u64, &mut events);
        }
        one.finish(&mut events);
        assert_eq!(exact(&events), exact(&want), "case {case}, one at a time");
    }
}

// ---------------------------------------------------------------------------
// Chunk invariance.

fn spec_for(kind: usize, max_len: Option<u64>) -> DetectorSpec {
    match kind {
        0 => DetectorSpec::Threshold {
            on: 12.0,
            off: 3.0,
            max_len,
            dead: None,
            polarity: Polarity::Both,
        },
        1 => DetectorSpec::ClassicStaLta {
            nsta: 20,
            nlta: 200,
            on: 3.0,
            off: 1.5,
            max_len,
            dead: None,
        },
        2 => DetectorSpec::RecursiveStaLta {
            nsta: 20,
            nlta: 200,
            on: 2.5,
            off: 1.2,
            max_len,
            dead: None,
        },
        // off > on, long windows.
        _ => DetectorSpec::ClassicStaLta {
            nsta: 7,
            nlta: 1500,
            on: 2.0,
            off: 3.0,
            max_len,
            dead: None,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunking_does_not_change_events(
        seed in any::<u64>(),
        n in 1usize..24_000,
        kind in 0usize..4,
        max_len in prop_oneof![Just(None), (1u64..500).prop_map(Some)],
        sizes in prop::collection::vec(
            prop_oneof![1usize..4, 1usize..700, 1usize..24_000], 1..40),
        bad in prop::collection::vec((0usize..24_000, 0usize..3), 0..3),
        offset in prop_oneof![Just(0u64), 0u64..1_000_000_000_000],
    ) {
        let mut x = noisy_signal(seed, n, n / 1500 + 1);
        for &(at, what) in &bad {
            if at < n {
                x[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][what];
            }
        }
        let spec = spec_for(kind, max_len);
        let whole = run_chunked(&spec, &x, &[n], offset);
        let chunked = run_chunked(&spec, &x, &sizes, offset);
        prop_assert_eq!(exact(&chunked), exact(&whole));
    }
}

#[test]
fn chunks_of_one_sample_give_the_same_events() {
    let x = noisy_signal(9, 12_000, 10);
    for kind in 0..4 {
        for max_len in [None, Some(50)] {
            let spec = spec_for(kind, max_len);
            let whole = run(&spec, &x);
            assert!(!whole.is_empty(), "{spec:?} should trigger");
            assert_eq!(
                exact(&run_chunked(&spec, &x, &[1], 0)),
                exact(&whole),
                "{spec:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Edge cases.

fn threshold_events(x: &[f32], on: f64, off: f64, max_len: Option<u64>) -> Vec<(u64, u64, u64)> {
    spans(&run(
        &DetectorSpec::Threshold {
            on,
            off,
            max_len,
            dead: None,
            polarity: Polarity::Both,
        },
        x,
    ))
}

#[test]
fn threshold_event_at_index_zero_and_event_open_at_the_end() {
    let x = [5.0, -5.0, 0.0, 0.0, 2.0, 6.0, -7.0];
    let events = run(
        &DetectorSpec::Threshold {
            on: 4.0,
            off: 1.0,
            max_len: None,
            dead: None,
            polarity: Polarity::Both,
        },
        &x,
    );
    assert_eq!(spans(&events), [(0, 1, 0), (5, 6, 6)]);
    assert_eq!(events[1].peak_value, 7.0);
    // The same, fed one sample at a time.
    let chunked = run_chunked(
        &DetectorSpec::Threshold {
            on: 4.0,
            off: 1.0,
            max_len: None,
            dead: None,
            polarity: Polarity::Both,
        },
        &x,
        &[1],
        0,
    );
    assert_eq!(exact(&chunked), exact(&events));
}

#[test]
fn levels_are_inclusive() {
    // cft == on starts an event, cft == off keeps it going.
    assert_eq!(
        threshold_events(&[0.0, 4.0, 1.0, 1.0, 0.5], 4.0, 1.0, None),
        [(1, 3, 1)]
    );
}

#[test]
fn peak_is_the_first_maximum() {
    assert_eq!(
        threshold_events(&[0.0, 5.0, 9.0, 3.0, 9.0, 0.0], 4.0, 1.0, None),
        [(1, 4, 2)]
    );
}

#[test]
fn off_above_on_follows_obspy() {
    // on = 1, off = 2: the event opened at 1 (>= on, < off) lasts until the
    // end of the next run >= off (5..=6); the onset candidate at 5 is
    // swallowed; the event at 8 never reaches off, so it ends at the last
    // sample (ObsPy: len(charfct) = 10).
    let x = [0.0, 1.5, 1.5, 0.0, 0.0, 3.0, 3.0, 0.0, 1.5, 0.0];
    let want = [(1, 6, 5), (8, 9, 8)];
    assert_eq!(threshold_events(&x, 1.0, 2.0, None), want);
    let cft: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(spans(&reference_events(&cft, 1.0, 2.0, None)), want);
    // With max_len 3 the first event is cut at 4; 5 is a new run start.
    assert_eq!(
        threshold_events(&x, 1.0, 2.0, Some(3)),
        [(1, 4, 1), (5, 6, 5), (8, 9, 8)]
    );
}

#[test]
fn max_len_cuts_and_the_next_event_needs_a_new_run_start() {
    let mut x = [5.0f32; 20];
    assert_eq!(threshold_events(&x, 4.0, 1.0, Some(5)), [(0, 5, 0)]);
    // A dip below on (still above off) at 7 makes 8 a run start.
    x[7] = 2.0;
    assert_eq!(
        threshold_events(&x, 4.0, 1.0, Some(5)),
        [(0, 5, 0), (8, 13, 8)]
    );
    // A run start exactly at the cut is swallowed (ObsPy drops onsets <= the
    // cut end), and the run goes on above on: no second event.
    assert_eq!(
        threshold_events(&[5.0, 5.0, 2.0, 5.0, 5.0, 5.0], 4.0, 1.0, Some(3)),
        [(0, 3, 0)]
    );
    // max_len 1: events of two samples.
    assert_eq!(
        threshold_events(&[5.0, 5.0, 5.0, 0.0, 5.0], 4.0, 1.0, Some(1)),
        [(0, 1, 0), (4, 4, 4)]
    );
}

#[test]
fn signal_shorter_than_nlta_gives_no_events() {
    let x = noisy_signal(11, 150, 1);
    for spec in [
        DetectorSpec::ClassicStaLta {
            nsta: 10,
            nlta: 200,
            on: 1.5,
            off: 0.5,
            max_len: None,
            dead: None,
        },
        DetectorSpec::RecursiveStaLta {
            nsta: 10,
            nlta: 200,
            on: 1.5,
            off: 0.5,
            max_len: None,
            dead: None,
        },
    ] {
        assert!(run(&spec, &x).is_empty(), "{spec:?}");
        assert!(run_chunked(&spec, &x, &[7], 0).is_empty(), "{spec:?}");
        assert!(run(&spec, &[]).is_empty(), "{spec:?}");
    }
}

#[test]
fn classic_first_value_is_at_nlta_minus_one() {
    // Quiet, then loud from sample nlta - 1: the first ratio (index
    // nlta - 1) already triggers; recursive STA/LTA zeroes one more sample.
    let (nsta, nlta) = (4, 40);
    let mut x = vec![0.01f32; 100];
    for v in &mut x[nlta - 1..nlta + 5] {
        *v = 10.0;
    }
    let classic = run(
        &DetectorSpec::ClassicStaLta {
            nsta,
            nlta,
            on: 2.0,
            off: 1.0,
            max_len: None,
            dead: None,
        },
        &x,
    );
    assert_eq!(classic[0].start, (nlta - 1) as u64);
    let recursive = run(
        &DetectorSpec::RecursiveStaLta {
            nsta,
            nlta,
            on: 2.0,
            off: 1.0,
            max_len: None,
            dead: None,
        },
        &x,
    );
    assert_eq!(recursive[0].start, nlta as u64);
}

#[test]
fn non_finite_samples_do_not_stop_detection() {
    // A burst before, one non-finite sample, a burst well after it: with
    // the bad sample the events are those of the same signal with a 0 there
    // (which it enters the sums as), as long as no event is near it.
    let (nsta, nlta) = (10, 300);
    let n = 6000;
    let mut rng = Rng(12);
    let mut clean: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    for v in &mut clean[1000..1100] {
        *v *= 20.0;
    }
    for v in &mut clean[3000..3100] {
        *v *= 20.0;
    }
    let bad_at = 2000;
    clean[bad_at] = 0.0;
    for spec in [
        DetectorSpec::ClassicStaLta {
            nsta,
            nlta,
            on: 4.0,
            off: 1.5,
            max_len: None,
            dead: None,
        },
        DetectorSpec::RecursiveStaLta {
            nsta,
            nlta,
            on: 4.0,
            off: 1.5,
            max_len: None,
            dead: None,
        },
    ] {
        let want = run(&spec, &clean);
        assert!(
            want.iter().any(|e| e.start > 3000),
            "{spec:?} finds the second burst"
        );
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = clean.clone();
            x[bad_at] = bad;
            assert_eq!(exact(&run(&spec, &x)), exact(&want), "{spec:?} with {bad}");
            assert_eq!(
                exact(&run_chunked(&spec, &x, &[333], 0)),
                exact(&want),
                "{spec:?} with {bad}"
            );
        }
    }
}

#[test]
fn non_finite_samples_blind_the_sta_lta_for_nlta_samples() {
    // Loud burst right after a NaN, inside the long window: no trigger.
    let (nsta, nlta) = (10, 300);
    let mut rng = Rng(13);
    let mut x: Vec<f32> = (0..3000).map(|_| rng.normal() as f32).collect();
    x[1000] = f32::NAN;
    for v in &mut x[1100..1150] {
        *v *= 50.0;
    }
    for spec in [
        DetectorSpec::ClassicStaLta {
            nsta,
            nlta,
            on: 4.0,
            off: 1.5,
            max_len: None,
            dead: None,
        },
        DetectorSpec::RecursiveStaLta {
            nsta,
            nlta,
            on: 4.0,
            off: 1.5,
            max_len: None,
            dead: None,
        },
    ] {
        assert!(
            run(&spec, &x)
                .iter()
                .all(|e| e.start < 1000 || e.start >= 1300),
            "{spec:?}"
        );
    }
}

#[test]
fn all_non_finite_input_does_not_panic() {
    for x in [
        vec![f32::NAN; 10_000],
        vec![f32::INFINITY; 10_000],
        vec![0.0f32; 10_000],
    ] {
        for kind in 0..4 {
            let spec = spec_for(kind, Some(10));
            let events = run_chunked(&spec, &x, &[1, 4095, 4097], 0);
            // Only +-Inf through the threshold detector can trigger.
            assert!(
                events
                    .iter()
                    .all(|e| kind == 0 && e.peak_value.is_infinite()),
                "{spec:?}"
            );
        }
    }
    // NaN and Inf never count as a peak unless they are the onset value.
    let events = run(
        &DetectorSpec::Threshold {
            on: 1.0,
            off: 0.5,
            max_len: None,
            dead: None,
            polarity: Polarity::Both,
        },
        &[2.0, f32::NAN, 3.0],
    );
    assert_eq!(spans(&events), [(0, 0, 0), (2, 2, 2)]);
}

#[test]
fn offsets_and_channels_label_events() {
    let x = noisy_signal(14, 8000, 6);
    let spec = spec_for(1, None);
    let base = run(&spec, &x);
    assert!(!base.is_empty());
    let shifted = run_chunked(&spec, &x, &[1000], 5_000_000_000);
    assert_eq!(base.len(), shifted.len());
    for (b, s) in base.iter().zip(&shifted) {
        assert_eq!(
            (
                b.start + 5_000_000_000,
                b.end + 5_000_000_000,
                b.peak_index + 5_000_000_000
            ),
            (s.start, s.end, s.peak_index)
        );
        assert_eq!(b.peak_value.to_bits(), s.peak_value.to_bits());
    }
    let mut detector = spec.build_for_channel(3);
    let mut events = Vec::new();
    detector.process(&x, 0, &mut events);
    detector.finish(&mut events);
    assert!(events.iter().all(|e| e.channel == 3));
}

#[test]
fn process_does_not_allocate() {
    let x = noisy_signal(15, 50_000, 20);
    for kind in 0..4 {
        let spec = spec_for(kind, Some(100));
        let mut detector = spec.build();
        let mut events = Vec::with_capacity(10_000);
        let before = allocations();
        for (i, chunk) in x.chunks(3001).enumerate() {
            detector.process(chunk, (i * 3001) as u64, &mut events);
        }
        detector.process(&x[..1], x.len() as u64, &mut events);
        detector.finish(&mut events);
        assert_eq!(allocations(), before, "{spec:?} allocated in process");
        assert!(!events.is_empty());
    }
    // The same with a dead time and a polarity.
    let specs = [
        DetectorSpec::Threshold {
            on: 12.0,
            off: 3.0,
            max_len: Some(100),
            dead: Some(500),
            polarity: Polarity::Neg,
        },
        DetectorSpec::RecursiveStaLta {
            nsta: 20,
            nlta: 200,
            on: 2.5,
            off: 1.2,
            max_len: None,
            dead: Some(3000),
        },
    ];
    for spec in specs {
        let mut detector = spec.build();
        let mut events = Vec::with_capacity(10_000);
        let before = allocations();
        for (i, chunk) in x.chunks(777).enumerate() {
            detector.process(chunk, (i * 777) as u64, &mut events);
        }
        detector.finish(&mut events);
        assert_eq!(allocations(), before, "{spec:?} allocated in process");
        assert!(!events.is_empty());
    }
}

#[test]
fn validate_names_the_option() {
    let cases = [
        (
            DetectorSpec::ClassicStaLta {
                nsta: 0,
                nlta: 10,
                on: 1.0,
                off: 0.5,
                max_len: None,
                dead: None,
            },
            "--sta",
        ),
        (
            DetectorSpec::RecursiveStaLta {
                nsta: 10,
                nlta: 10,
                on: 1.0,
                off: 0.5,
                max_len: None,
                dead: None,
            },
            "--lta",
        ),
        (
            DetectorSpec::ClassicStaLta {
                nsta: 10,
                nlta: 5,
                on: 1.0,
                off: 0.5,
                max_len: None,
                dead: None,
            },
            "--lta",
        ),
        (
            DetectorSpec::Threshold {
                on: f64::NAN,
                off: 0.5,
                max_len: None,
                dead: None,
                polarity: Polarity::Both,
            },
            "--on",
        ),
        (
            DetectorSpec::Threshold {
                on: 1.0,
                off: f64::INFINITY,
                max_len: None,
                dead: None,
                polarity: Polarity::Both,
            },
            "--off",
        ),
        (
            DetectorSpec::Threshold {
                on: 1.0,
                off: 0.5,
                max_len: Some(0),
                dead: None,
                polarity: Polarity::Both,
            },
            "--max-len",
        ),
    ];
    for (spec, option) in cases {
        let msg = spec.validate().expect_err("invalid");
        assert!(msg.contains(option), "{msg:?} should name {option}");
    }
    // off > on is allowed, as in ObsPy.
    assert!(
        DetectorSpec::Threshold {
            on: 1.0,
            off: 2.0,
            max_len: Some(1),
            dead: None,
            polarity: Polarity::Both,
        }
        .validate()
        .is_ok()
    );
    assert!(
        DetectorSpec::ClassicStaLta {
            nsta: 1,
            nlta: 2,
            on: 1.0,
            off: 0.5,
            max_len: None,
            dead: None,
        }
        .validate()
        .is_ok()
    );
}

#[test]
#[should_panic(expected = "--lta")]
fn build_refuses_invalid_parameters() {
    let _ = DetectorSpec::ClassicStaLta {
        nsta: 10,
        nlta: 10,
        on: 1.0,
        off: 0.5,
        max_len: None,
        dead: None,
    }
    .build();
}
