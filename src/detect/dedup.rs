//! Spatial de-duplication (`--dedup-window`, `--dedup-radius`): one spike
//! seen on neighbouring channels is reported once, on the channel where its
//! peak is largest.
//!
//! Why: a spike on a dense probe reaches several neighbouring sites, and a
//! per-channel detector reports it on each; spike sorters want it once.
//! The rule is SpikeInterface's `detect_peaks(method='locally_exclusive')`
//! on the per-channel events: an event is dropped when an event on another
//! channel within `radius` channels has its peak within `window` samples
//! of this one's and a larger `peak_value` (an equal one on a lower
//! channel breaks the tie, so of two equal peaks one is kept). Channels
//! have no positions here, so neighbours are channels whose indices differ
//! by at most `radius` (the nearest sites on a probe numbered along its
//! shank, as Neuropixels probes are). As in SpikeInterface, every event
//! competes, dropped or not.
//!
//! It streams: events come in order of start (then channel), and an event
//! is decided once nothing that could compete with it can still come,
//! i.e. once the events released reach past its peak plus the window
//! (a competitor starts no later than its own peak, at most `window` after
//! this one's). Decisions come out in the order the events came in, so the
//! events CSV keeps its order. Events are held only for that long: those
//! within a window of the undecided ones.

use std::collections::VecDeque;

use crate::detect::Event;
use crate::error::{Error, Result};

/// Which events compete: peaks within `window` samples on channels within
/// `radius` of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DedupSpec {
    /// Samples between two peaks that make them one spike (at most).
    pub window: u64,
    /// Channels on either side that count as neighbours (at least 1).
    pub radius: usize,
}

impl DedupSpec {
    /// Checks the radius.
    ///
    /// # Errors
    /// [`Error::Usage`] naming `--dedup-radius` for 0.
    pub fn new(window: u64, radius: usize) -> Result<Self> {
        if radius == 0 {
            return Err(Error::usage(
                "--dedup-radius 0: de-duplication compares neighbouring channels, give 1 or more",
            ));
        }
        Ok(DedupSpec { window, radius })
    }

    /// Whether `g` suppresses `e`: another channel within the radius, a peak
    /// within the window, and a larger peak value (or an equal one on a
    /// lower channel).
    pub fn beats(&self, g: &Event, e: &Event) -> bool {
        g.channel != e.channel
            && g.channel.abs_diff(e.channel) <= self.radius
            && g.peak_index.abs_diff(e.peak_index) <= self.window
            && (g.peak_value > e.peak_value
                || (g.peak_value == e.peak_value && g.channel < e.channel))
    }
}

/// The streaming stage. See the module docs.
#[derive(Debug)]
pub struct Dedup {
    spec: DedupSpec,
    /// Released events in the order they came, the first `decided` of them
    /// decided (kept only to compete with the others).
    events: VecDeque<Event>,
    decided: usize,
    /// Events dropped so far.
    dropped: u64,
}

impl Dedup {
    /// An empty stage.
    pub fn new(spec: DedupSpec) -> Self {
        Dedup {
            spec,
            events: VecDeque::new(),
            decided: 0,
            dropped: 0,
        }
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next event, in order of start then channel.
    pub fn push(&mut self, e: Event) {
        debug_assert!(
            self.events
                .back()
                .is_none_or(|b| (b.start, b.channel) <= (e.start, e.channel)),
            "events in order"
        );
        self.events.push_back(e);
    }

    /// Decides, in order, the events no later event can compete with: every
    /// event that starts at `horizon` or later has been held back (`u64::MAX`
    /// at the end). Appends each decided event with whether it is kept.
    pub fn release(&mut self, horizon: u64, out: &mut Vec<(Event, bool)>) {
        let window = self.spec.window;
        while let Some(&e) = self.events.get(self.decided) {
            if horizon != u64::MAX && e.peak_index.saturating_add(window) >= horizon {
                break;
            }
            let reach = e.peak_index.saturating_add(window);
            let beaten = self
                .events
                .iter()
                .take_while(|g| g.start <= reach)
                .any(|g| self.spec.beats(g, &e));
            if beaten {
                self.dropped += 1;
            }
            out.push((e, !beaten));
            self.decided += 1;
        }
        // Forget decided events that can no longer compete: every event
        // still to decide, or to come, peaks at or after `first`.
        let first = self.events.get(self.decided).map_or(horizon, |e| e.start);
        while self.decided > 0
            && self
                .events
                .front()
                .is_some_and(|g| g.peak_index.saturating_add(window) < first)
        {
            self.events.pop_front();
            self.decided -= 1;
        }
    }
}

/// Which of `events` (all of a run's, in order of start then channel) the
/// de-duplication keeps: a run's events decided at once, as a driver does
/// with its shards' merged events. Every event competes, so the decisions
/// are a function of the whole set, whoever makes them.
pub fn keep(spec: DedupSpec, events: &[Event]) -> Vec<bool> {
    let mut stage = Dedup::new(spec);
    let mut out = Vec::with_capacity(events.len());
    let mut decided = Vec::new();
    for &e in events {
        stage.push(e);
        // Decide as they come, so that only a window's events are held.
        stage.release(e.start, &mut decided);
        out.extend(decided.drain(..).map(|(_, kept)| kept));
    }
    stage.release(u64::MAX, &mut decided);
    out.extend(decided.drain(..).map(|(_, kept)| kept));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(channel: usize, start: u64, peak: u64, value: f64) -> Event {
        Event {
            channel,
            start,
            end: peak + 2,
            peak_index: peak,
            peak_value: value,
        }
    }

    /// The rule over all events at once: the reference.
    fn all_at_once(spec: DedupSpec, events: &[Event]) -> Vec<bool> {
        events
            .iter()
            .map(|e| !events.iter().any(|g| spec.beats(g, e)))
            .collect()
    }

    #[test]
    fn a_spike_on_three_channels_is_kept_where_it_peaks() {
        let spec = DedupSpec::new(5, 1).unwrap();
        let events = [
            ev(3, 100, 101, 40.0),
            ev(4, 100, 102, 80.0),
            ev(5, 101, 101, 50.0),
            ev(6, 103, 104, 70.0), // 2 channels from 4: kept
            ev(4, 200, 201, 10.0), // far in time: kept
            ev(7, 200, 205, 10.0), // equal to its neighbour 6? no: 6 is far
            ev(8, 201, 206, 10.0), // equal to 7, a higher channel: dropped
        ];
        let mut d = Dedup::new(spec);
        let mut out = Vec::new();
        for e in events {
            d.push(e);
        }
        d.release(u64::MAX, &mut out);
        let kept: Vec<bool> = out.iter().map(|(_, k)| *k).collect();
        assert_eq!(kept, [false, true, false, true, true, true, false]);
        assert_eq!(kept, all_at_once(spec, &events));
        assert_eq!(d.dropped(), 3);
    }

    #[test]
    fn streaming_decisions_equal_the_rule_over_all_events() {
        // Random events in order, released at random horizons no later than
        // the next event's start (as the pipeline's ordering guarantees);
        // and all at once by `keep`, as a driver decides merged events.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % m
        };
        let mut dropped = 0;
        for round in 0..50 {
            let spec = DedupSpec::new(next(20), 1 + next(3) as usize).unwrap();
            let mut events: Vec<Event> = (0..300)
                .map(|_| {
                    let start = next(2000);
                    ev(next(12) as usize, start, start + next(30), next(6) as f64)
                })
                .collect();
            events.sort_by_key(|e| (e.start, e.channel));
            events.dedup_by_key(|e| (e.start, e.channel));
            let want = all_at_once(spec, &events);
            let mut d = Dedup::new(spec);
            let mut out = Vec::new();
            for (i, e) in events.iter().enumerate() {
                d.push(*e);
                let limit = events.get(i + 1).map_or(u64::MAX, |n| n.start);
                let horizon = if limit == u64::MAX {
                    u64::MAX
                } else {
                    limit - next(3).min(limit)
                };
                d.release(horizon.max(e.start), &mut out);
            }
            d.release(u64::MAX, &mut out);
            let got: Vec<bool> = out.iter().map(|(_, k)| *k).collect();
            let order: Vec<Event> = out.iter().map(|(e, _)| *e).collect();
            assert_eq!(order, events, "round {round}: same order");
            assert_eq!(got, want, "round {round}");
            assert_eq!(keep(spec, &events), want, "round {round}: keep");
            dropped += want.iter().filter(|k| !**k).count();
        }
        assert!(dropped > 100, "events dropped: {dropped}");
        assert!(keep(DedupSpec::new(3, 1).unwrap(), &[]).is_empty());
    }

    #[test]
    fn a_zero_radius_is_refused() {
        let msg = DedupSpec::new(10, 0).unwrap_err().to_string();
        assert!(msg.contains("--dedup-radius"), "{msg}");
    }
}
