//! [`Trigger::push_below`] against its definition: pushing `len` NaN values.
//!
//! The GPU detection path replays the trigger from candidates and gaps, so
//! `push_below` must be exactly a run of NaNs, whatever the state the gap
//! finds the trigger in (idle, open above `off`, open below `off`, a
//! `max_len` cut before, inside or after the gap, an ended event waiting in
//! its dead window, which closes before, inside or after the gap).

use proptest::prelude::*;
use sigstream::detect::{Event, Trigger};

/// One piece of input: values, or a gap of `n` below-everything values.
#[derive(Debug, Clone)]
enum Piece {
    Values(Vec<f64>),
    Gap(u64),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        prop::collection::vec(
            prop_oneof![Just(f64::NAN), (0u8..8).prop_map(f64::from)],
            1..12
        )
        .prop_map(Piece::Values),
        (1u64..30).prop_map(Piece::Gap),
    ]
}

fn run(
    pieces: &[Piece],
    on: f64,
    off: f64,
    max_len: Option<u64>,
    dead: u64,
    gaps: bool,
) -> Vec<Event> {
    let mut trigger = Trigger::new(on, off, max_len).with_dead(dead);
    let mut events = Vec::new();
    let mut at = 0u64;
    for p in pieces {
        match p {
            Piece::Values(v) => {
                trigger.push(v, at, &mut events);
                at += v.len() as u64;
            }
            Piece::Gap(n) if gaps => {
                trigger.push_below(at, *n, &mut events);
                at += n;
            }
            Piece::Gap(n) => {
                let nans = vec![f64::NAN; *n as usize];
                trigger.push(&nans, at, &mut events);
                at += n;
            }
        }
    }
    trigger.finish(&mut events);
    events
}

fn bits(events: &[Event]) -> Vec<(u64, u64, u64, u64)> {
    events
        .iter()
        .map(|e| (e.start, e.end, e.peak_index, e.peak_value.to_bits()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_gap_is_a_run_of_nans(
        pieces in prop::collection::vec(piece(), 0..20),
        on in 0u8..8,
        off in 0u8..8,
        max_len in prop_oneof![Just(None), (1u64..40).prop_map(Some)],
        dead in prop_oneof![Just(0u64), 1u64..60],
    ) {
        let (on, off) = (f64::from(on), f64::from(off));
        let want = run(&pieces, on, off, max_len, dead, false);
        let got = run(&pieces, on, off, max_len, dead, true);
        prop_assert_eq!(bits(&got), bits(&want));
    }
}

#[test]
fn gap_of_zero_is_nothing() {
    let mut trigger = Trigger::new(1.0, 1.0, None);
    let mut events = Vec::new();
    trigger.push(&[2.0], 0, &mut events);
    trigger.push_below(1, 0, &mut events);
    assert!(trigger.is_open());
    trigger.push_below(1, 5, &mut events);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].start, events[0].end), (0, 0));
}
