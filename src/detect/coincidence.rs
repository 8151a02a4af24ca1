//! Network coincidence: ObsPy's `coincidence_trigger` over per-channel
//! events, streamed.
//!
//! Why this module exists: on a network of stations (or the channels of a
//! probe), a single channel's trigger is often noise; an event seen on
//! several channels at once is not. ObsPy's `coincidence_trigger`
//! (`obspy/signal/trigger.py`) groups the channels' triggers that overlap in
//! time and keeps the groups whose summed channel weights reach a
//! threshold. It needs every trigger at once; [`Coincidence`] gives the same
//! list from events fed in order of start, buffering only the triggers that
//! can still join a group that is not decided yet.
//!
//! ObsPy's algorithm, which [`Coincidence`] reproduces exactly (the event
//! templates and similarity options aside): sort the triggers as tuples
//! `(on, off, trace id, …)`; take each trigger in turn (every one, not only
//! those that start a group) and walk the triggers after it in that order,
//! skipping one whose trace is already in the group (a retrigger), stopping
//! at the first other one with `on > off + trigger_off_extension`, and
//! otherwise adding it: its weight to the coincidence sum, and
//! `off = max(off, its off)`. The group is dropped if its sum is below
//! `thr_coincidence_sum`, or if its `off` is not after the `off` of the last
//! group kept (ObsPy: "a subset of the previous … a bit sloppy"); otherwise
//! it is kept. A trigger that was skipped as a retrigger may thus start a
//! group of its own that reaches further and is kept as well.
//!
//! How our events map onto ObsPy's triggers: ObsPy's single-station
//! triggers come from `trigger_onset` as sample indices `(on, off)`, `off`
//! being the last sample of the event (inclusive), which it turns into times
//! `starttime + index / fs`. Our [`Event`]'s `start` and `end` are those
//! same indices, so a [`NetworkEvent`]'s `start` is ObsPy's `time`
//! (`starttime + start / fs`), its `end` the group's `off`
//! (`duration = (end − start) / fs`), and `trigger_off_extension` is given
//! in samples (`round(seconds · fs)`). Channel indices stand for ObsPy's
//! trace ids: ties in `(on, off)` are ordered by channel, as ObsPy orders
//! them by id. Differences, all at the edges:
//!
//! * an event still open at the end of the data ends at the last sample
//!   here, at `len(data)` in ObsPy's `trigger_onset`;
//! * ObsPy starts its "last off time" at the epoch (0.0 s), so it drops
//!   groups that end at or before 1970-01-01; here the first group is
//!   always eligible;
//! * ObsPy compares times in floating point, so with a sample rate whose
//!   period is not a power of two, `on == off + extension` can go either
//!   way there; here it joins (as the exact comparison says).

use std::collections::VecDeque;

use super::Event;
use crate::error::Error;

/// The default for [`Coincidence::new`]'s `max_pending`: 100 000 triggers
/// (about 4 MB) waiting to be grouped.
pub const DEFAULT_MAX_PENDING: usize = 100_000;

/// One network event: a group of channel triggers that coincide.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkEvent {
    /// Onset of the group's first trigger (ObsPy's `time`).
    pub start: u64,
    /// Last sample of the group: the largest `end` of its triggers (ObsPy's
    /// `time + duration`).
    pub end: u64,
    /// The channels in the group, in the order they joined (ObsPy's
    /// `stations` / `trace_ids`).
    pub channels: Vec<usize>,
    /// The sum of the channels' weights, added in that order (ObsPy's
    /// `coincidence_sum`).
    pub coincidence_sum: f64,
    /// The peak of the member event with the largest `peak_value` (the
    /// first such member in joining order).
    pub peak_index: u64,
    /// That event's `peak_value`.
    pub peak_value: f64,
}

/// ObsPy's `coincidence_trigger` over events pushed in order of start.
///
/// ```
/// use sigstream::detect::Event;
/// use sigstream::detect::coincidence::Coincidence;
///
/// let ev = |channel, start, end| Event { channel, start, end, peak_index: start, peak_value: 1.0 };
/// let mut c = Coincidence::uniform(3, 2.0, 0, 1000).unwrap();
/// let mut out = Vec::new();
/// for e in [ev(0, 10, 20), ev(1, 15, 30), ev(2, 100, 110)] {
///     c.push(&e, &mut out).unwrap();
/// }
/// c.finish(&mut out);
/// assert_eq!(out.len(), 1);
/// assert_eq!((out[0].start, out[0].end, out[0].channels.clone()), (10, 30, vec![0, 1]));
/// ```
#[derive(Debug, Clone)]
pub struct Coincidence {
    weights: Vec<f64>,
    thr: f64,
    extension: u64,
    max_pending: usize,
    /// Triggers not yet taken as the head of a group, sorted by
    /// `(start, end, channel)`.
    pending: VecDeque<Event>,
    /// Start of the last trigger pushed.
    last_start: Option<u64>,
    /// `off` of the last group kept.
    last_off: Option<u64>,
    /// Per channel: whether it is in the group being built (all false
    /// between calls).
    member: Vec<bool>,
    /// Positions in `pending` of the group being built, in joining order.
    group: Vec<usize>,
}

/// A group as [`Coincidence::group`] finds it.
struct Group {
    off: u64,
    sum: f64,
}

impl Coincidence {
    /// A coincidence trigger over `weights.len()` channels (ObsPy's
    /// `trace_ids` dict), keeping groups whose weight sum is at least
    /// `thr_coincidence_sum`; a trigger joins a group if it starts at most
    /// `trigger_off_extension` samples after the group's end. At most
    /// `max_pending` triggers may wait to be grouped at a time
    /// ([`DEFAULT_MAX_PENDING`] is a sensible value).
    ///
    /// # Errors
    /// [`Error::Usage`] for fewer than two channels, a weight that is not
    /// a finite number `>= 0`, a threshold that is not a finite number
    /// `> 0`, or `max_pending` of 0.
    pub fn new(
        weights: Vec<f64>,
        thr_coincidence_sum: f64,
        trigger_off_extension: u64,
        max_pending: usize,
    ) -> crate::Result<Self> {
        if weights.len() < 2 {
            return Err(Error::usage(format!(
                "coincidence needs at least two channels (got {})",
                weights.len()
            )));
        }
        if let Some((c, w)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::usage(format!(
                "coincidence weight of channel {c} is {w}: weights must be finite numbers, 0 or more"
            )));
        }
        if !(thr_coincidence_sum.is_finite() && thr_coincidence_sum > 0.0) {
            return Err(Error::usage(format!(
                "the coincidence sum threshold must be a finite number above 0 (got {thr_coincidence_sum})"
            )));
        }
        if max_pending == 0 {
            return Err(Error::usage(
                "coincidence needs room for at least 1 pending trigger",
            ));
        }
        let channels = weights.len();
        Ok(Coincidence {
            weights,
            thr: thr_coincidence_sum,
            extension: trigger_off_extension,
            max_pending,
            pending: VecDeque::with_capacity(max_pending.min(1024)),
            last_start: None,
            last_off: None,
            member: vec![false; channels],
            group: Vec::with_capacity(channels),
        })
    }

    /// [`Coincidence::new`] with weight 1 for each of `channels` channels
    /// (ObsPy's `trace_ids` as a list).
    ///
    /// # Errors
    /// As [`Coincidence::new`].
    pub fn uniform(
        channels: usize,
        thr_coincidence_sum: f64,
        trigger_off_extension: u64,
        max_pending: usize,
    ) -> crate::Result<Self> {
        Self::new(
            vec![1.0; channels],
            thr_coincidence_sum,
            trigger_off_extension,
            max_pending,
        )
    }

    /// Takes one channel event and appends the network events that are now
    /// decided to `out`. Events must come in order of `start` (any order
    /// among equal starts).
    ///
    /// # Errors
    /// [`Error::Usage`] for a channel without a weight; [`Error::Runtime`]
    /// for an event that starts before the previous one, or when more than
    /// `max_pending` triggers would wait to be grouped (overlapping chains
    /// of triggers that long: raise the limit, or shorten the extension).
    pub fn push(&mut self, e: &Event, out: &mut Vec<NetworkEvent>) -> crate::Result<()> {
        if e.channel >= self.weights.len() {
            return Err(Error::usage(format!(
                "coincidence: an event on channel {} but weights for {} channels",
                e.channel,
                self.weights.len()
            )));
        }
        if let Some(last) = self.last_start.filter(|&last| e.start < last) {
            return Err(Error::Runtime {
                msg: format!(
                    "coincidence: events must come in order of start, but one at {} came after one at {last}",
                    e.start
                ),
            });
        }
        self.last_start = Some(e.start);
        // Every trigger that can join a group before e.start is in.
        self.decide(Some(e.start), out);
        if self.pending.len() >= self.max_pending {
            return Err(Error::Runtime {
                msg: format!(
                    "coincidence: more than {} triggers overlap in one chain (at sample {}); raise the pending limit, shorten the coincidence window, or raise the trigger levels",
                    self.max_pending, e.start
                ),
            });
        }
        let key = |x: &Event| (x.start, x.end, x.channel);
        let mut at = self.pending.len();
        while at > 0 && key(&self.pending[at - 1]) > key(e) {
            at -= 1;
        }
        self.pending.insert(at, *e);
        Ok(())
    }

    /// The events have ended: appends the remaining network events to
    /// `out`. The coincidence trigger is then as new.
    pub fn finish(&mut self, out: &mut Vec<NetworkEvent>) {
        self.decide(None, out);
        self.last_start = None;
        self.last_off = None;
    }

    /// Triggers waiting to be grouped.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Decides the groups headed by the first pending triggers while no
    /// trigger still to come (starting at `next_start` or later; none with
    /// `None`) could join them.
    fn decide(&mut self, next_start: Option<u64>, out: &mut Vec<NetworkEvent>) {
        while !self.pending.is_empty() {
            let g = self.group();
            let reach = g.off.checked_add(self.extension);
            let decided = match (next_start, reach) {
                (None, _) => true,
                (Some(s), Some(r)) => s > r,
                (Some(_), None) => false,
            };
            if !decided {
                return;
            }
            let keep = g.sum >= self.thr && self.last_off.is_none_or(|last| g.off > last);
            if keep {
                out.push(self.network_event(&g));
                self.last_off = Some(g.off);
            }
            self.pending.pop_front();
        }
    }

    /// The group headed by the first pending trigger, its members' positions
    /// left in `self.group`.
    fn group(&mut self) -> Group {
        self.group.clear();
        let head = self.pending[0];
        self.group.push(0);
        self.member[head.channel] = true;
        let mut off = head.end;
        let mut sum = self.weights[head.channel];
        for (j, t) in self.pending.iter().enumerate().skip(1) {
            if self.member[t.channel] {
                continue;
            }
            if off.checked_add(self.extension).is_some_and(|r| t.start > r) {
                break;
            }
            self.member[t.channel] = true;
            self.group.push(j);
            sum += self.weights[t.channel];
            off = off.max(t.end);
        }
        for &j in &self.group {
            self.member[self.pending[j].channel] = false;
        }
        Group { off, sum }
    }

    /// The network event of the group in `self.group`.
    fn network_event(&self, g: &Group) -> NetworkEvent {
        let members = self.group.iter().map(|&j| &self.pending[j]);
        let mut peak = &self.pending[0];
        for m in members.clone() {
            if m.peak_value > peak.peak_value {
                peak = m;
            }
        }
        NetworkEvent {
            start: self.pending[0].start,
            end: g.off,
            channels: members.map(|m| m.channel).collect(),
            coincidence_sum: g.sum,
            peak_index: peak.peak_index,
            peak_value: peak.peak_value,
        }
    }
}
