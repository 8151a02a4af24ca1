//! [`Trigger`]: ObsPy's `trigger_onset` as a streaming state machine, with
//! an optional dead time.
//!
//! Why a state machine: ObsPy's version needs the whole cft at once (it
//! collects the indices above each level and pairs them through two deques).
//! Here the same pairing is decided sample by sample, so a cft of any length
//! can be pushed in pieces, and the built-in detectors and a user's own
//! characteristic function all share one implementation of the rules (see
//! the parent module's docs for the rules, for `off > on` and for the dead
//! time).
//!
//! Speed: most of a long recording is quiet. While no event is open, the
//! trigger only looks for `cft >= on`, first over groups of [`IDLE_GROUP`]
//! values with a branch-free reduction (which the compiler vectorises), and
//! steps sample by sample only inside a group that has a hit. With a dead
//! time, the samples between an event's end and the end of its dead window
//! are also stepped one by one (an onset there merges into the event, and
//! the merged event's peak must see them).

use super::Event;

/// Values checked at once while no event is open.
const IDLE_GROUP: usize = 64;

/// ObsPy's `trigger_onset` over a characteristic function pushed in pieces.
///
/// Feed it with [`Trigger::push`] (contiguous pieces, in order) and call
/// [`Trigger::finish`] at the end of the stream. Events are appended as soon
/// as they are complete (with a dead time, once their dead window has
/// passed); the output is the same for any split of the cft.
///
/// ```
/// use sigstream::detect::Trigger;
///
/// let cft = [0.0, 3.0, 2.0, 1.0, 0.0, 5.0, 5.0];
/// let mut trigger = Trigger::new(2.5, 1.0, None);
/// let mut events = Vec::new();
/// trigger.push(&cft[..3], 0, &mut events);
/// trigger.push(&cft[3..], 3, &mut events);
/// trigger.finish(&mut events);
/// let spans: Vec<_> = events.iter().map(|e| (e.start, e.end, e.peak_index)).collect();
/// assert_eq!(spans, [(1, 3, 1), (5, 6, 5)]);
///
/// // With a dead time of 6 samples the onset at 5 falls inside the first
/// // event's dead window [1, 7): it merges into that event.
/// let mut trigger = Trigger::new(2.5, 1.0, None).with_dead(6);
/// events.clear();
/// trigger.push(&cft, 0, &mut events);
/// trigger.finish(&mut events);
/// let spans: Vec<_> = events.iter().map(|e| (e.start, e.end, e.peak_index)).collect();
/// assert_eq!(spans, [(1, 6, 5)]);
/// ```
#[derive(Debug, Clone)]
pub struct Trigger {
    on: f64,
    off: f64,
    max_len: Option<u64>,
    /// Dead time in samples (0: none).
    dead: u64,
    channel: usize,
    /// Whether the last value pushed was `>= on` (an onset needs a value
    /// `>= on` after one that is not: the start of a run).
    above_on: bool,
    /// The event being built, if any.
    open: Option<Open>,
    /// An event that has ended but whose dead window has not passed: an
    /// onset inside the window merges into it. Never at the same time as
    /// `open`.
    held: Option<Held>,
    /// Onsets before this index are dropped: the rest of the dead window of
    /// an event that `max_len` cut (0 when there is none).
    quiet_until: u64,
    /// Index after the last value pushed, once something was pushed.
    next: Option<u64>,
    /// A shard's bounds ([`Trigger::with_sync`]): which events it reports.
    sync: Option<Box<SyncState>>,
}

/// Where a shard of a longer stream starts and ends for one channel, in
/// the trigger's indices: the **sync points** (see [`crate::shard`]).
///
/// A sync point for a target `t` is the first index `p >= t` such that the
/// `quiet` values before it, `cft[p − quiet .. p)`, are all below `off`
/// (or NaN), with `quiet = max(dead, 1)` and `off <= on`. Whatever happened
/// before, a trigger is idle there, with nothing held: an open event ended
/// at the first of those values, its dead window (`dead` after an onset that
/// came before them) has passed, and no run `>= on` goes on. So two
/// triggers fed the same cft from `p − quiet` on report the same events
/// from `p` on, whatever they saw before: a shard reports the events whose
/// onset lies in `[p(start), p(end))`, and its neighbour, computing the same
/// point from the same values, reports the rest.
#[derive(Debug, Clone)]
pub struct RangeSync {
    /// The first index whose cft equals the whole stream's (the shard's
    /// halo has converged): values before it count as loud.
    pub exact_from: u64,
    /// The shard's first index (`None`: the stream's start, a sync point
    /// by definition).
    pub start: Option<u64>,
    /// The index after the shard (`None`: the stream's end).
    pub end: Option<u64>,
    /// Channels whose end sync point has been found, shared by a shard's
    /// triggers: the run stops reading once all have.
    pub done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// A [`RangeSync`] as a trigger follows it.
#[derive(Debug, Clone)]
struct SyncState {
    bounds: RangeSync,
    /// `max(dead, 1)`.
    quiet: u64,
    /// The first index of the current run of quiet values (one past the
    /// last loud one).
    quiet_from: u64,
    /// The sync points found: of the start, of the end.
    found: [Option<u64>; 2],
}

/// An event whose end has not been seen yet.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: u64,
    peak_index: u64,
    peak_value: f64,
    /// Whether the last value pushed was `>= off`: the event ends when that
    /// run of values `>= off` ends.
    above_off: bool,
    /// Index at which `max_len` cuts the event, if it gets that far.
    cut_at: Option<u64>,
}

/// An event that has ended at `end`, inside its dead window.
#[derive(Debug, Clone, Copy)]
struct Held {
    event: Open,
    end: u64,
    /// `start + dead`: the first index at which an onset starts a new event.
    until: u64,
    /// The first index at which no onset can merge any more: `until`, or
    /// the event's `max_len` cut if that comes first.
    close_at: u64,
    /// The first maximum of the cft after `end` (−∞ while there is none):
    /// part of the peak if an onset merges.
    gap_peak_index: u64,
    gap_peak_value: f64,
}

impl Trigger {
    /// A trigger with ObsPy's levels: an onset needs cft `>= on`, an event
    /// lasts while cft `>= off`, and, with `max_len`, ends at the latest
    /// `max_len` samples after its onset. Events carry channel 0 unless set
    /// with [`Trigger::with_channel`]; no dead time unless set with
    /// [`Trigger::with_dead`].
    pub fn new(on: f64, off: f64, max_len: Option<u64>) -> Self {
        Trigger {
            on,
            off,
            max_len,
            dead: 0,
            channel: 0,
            above_on: false,
            open: None,
            held: None,
            quiet_until: 0,
            next: None,
            sync: None,
        }
    }

    /// The same trigger for a shard of a longer stream: it reports only the
    /// events whose onset lies between the sync points of `bounds`.
    ///
    /// # Panics
    /// If `off > on`: an event then lasts until a run `>= off` that may come
    /// any time later, and no stretch of quiet values ends it (the shard
    /// planner refuses such levels).
    #[must_use]
    #[expect(
        clippy::neg_cmp_op_on_partial_ord,
        reason = "NaN levels (a channel whose noise is NaN) trigger nothing and sync anywhere: only off > on is refused"
    )]
    pub fn with_sync(mut self, bounds: RangeSync) -> Self {
        assert!(
            !(self.off > self.on),
            "sync points need off <= on (off {} > on {})",
            self.off,
            self.on
        );
        let quiet = self.dead.max(1);
        let start = bounds.start;
        self.sync = Some(Box::new(SyncState {
            quiet_from: bounds.exact_from,
            found: [if start.is_none() { Some(0) } else { None }, None],
            bounds,
            quiet,
        }));
        self
    }

    /// The sync point of the shard's end, once found.
    pub fn sync_end(&self) -> Option<u64> {
        self.sync.as_ref().and_then(|s| s.found[1])
    }

    /// Looks for the pending sync point in `cft` (at `offset ..`).
    fn track(&mut self, cft: &[f64], offset: u64) {
        let Some(s) = self.sync.as_deref_mut() else {
            return;
        };
        let off = self.off;
        let end = offset + cft.len() as u64;
        let mut i = offset;
        while i < end {
            let (k, target) = match (s.found, s.bounds.start, s.bounds.end) {
                ([None, _], Some(t), _) => (0, t),
                ([Some(_), None], _, Some(t)) => (1, t),
                _ => return,
            };
            // Only the `quiet` values before the target matter; values
            // skipped, and those before the exact ones, count as loud.
            let scan_from = target.saturating_sub(s.quiet).max(s.bounds.exact_from);
            if i < scan_from {
                s.quiet_from = s.quiet_from.max(scan_from);
                i = scan_from;
                continue;
            }
            let mut hit = None;
            for (j, &c) in cft[(i - offset) as usize..].iter().enumerate() {
                let index = i + j as u64;
                if c >= off {
                    s.quiet_from = index + 1;
                } else if index + 1 >= target && index + 1 - s.quiet_from >= s.quiet {
                    hit = Some(index + 1);
                    break;
                }
            }
            let Some(p) = hit else {
                return;
            };
            s.found[k] = Some(p);
            // p(t) is non-decreasing in t: an end target at or before the
            // start's point has that point too.
            if k == 0 && s.bounds.end.is_some_and(|e| p >= e) {
                s.found[1] = Some(p);
            }
            if s.found[1].is_some() {
                s.bounds
                    .done
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            i = p;
        }
    }

    /// As [`Trigger::track`] for `len` quiet values at `offset`.
    fn track_quiet(&mut self, offset: u64, len: u64) {
        let Some(s) = self.sync.as_deref() else {
            return;
        };
        if s.found[1].is_some() || (s.found[0].is_some() && s.bounds.end.is_none()) {
            return;
        }
        // Rare (a GPU gap): pushed as NaN values in pieces.
        let nan = [f64::NAN; 256];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(nan.len() as u64);
            self.track(&nan[..n as usize], offset + at);
            at += n;
        }
    }

    /// The same trigger, with events labelled `channel`.
    #[must_use]
    pub fn with_channel(mut self, channel: usize) -> Self {
        self.channel = channel;
        self
    }

    /// The same trigger with a dead time (refractory period) of `dead`
    /// samples: after an onset at `s`, no new event starts before
    /// `s + dead`; an onset before that merges into the event (see the
    /// parent module's docs). 0 means none.
    #[must_use]
    pub fn with_dead(mut self, dead: u64) -> Self {
        self.dead = dead;
        self
    }

    /// Whether an event has started and not yet been reported (it is open,
    /// or has ended inside its dead window).
    pub fn is_open(&self) -> bool {
        self.open.is_some() || self.held.is_some()
    }

    /// The onset of the event that has started and not yet been reported,
    /// if any.
    pub fn open_start(&self) -> Option<u64> {
        self.open
            .map(|o| o.start)
            .or(self.held.map(|h| h.event.start))
    }

    /// The index of the running peak (the first maximum so far) of the
    /// event that has started and not yet been reported, if any.
    pub fn open_peak(&self) -> Option<u64> {
        self.open
            .map(|o| o.peak_index)
            .or(self.held.map(|h| h.event.peak_index))
    }

    /// Consumes `cft`, whose first value is at absolute index `offset`, and
    /// appends the events that are complete to `events`.
    ///
    /// Pieces must be pushed in order and without gaps: `offset` is the
    /// previous `offset` plus the previous length (checked in debug builds).
    pub fn push(&mut self, cft: &[f64], offset: u64, events: &mut Vec<Event>) {
        if cft.is_empty() {
            return;
        }
        debug_assert!(
            self.next.is_none_or(|next| next == offset),
            "trigger fed out of order: expected index {:?}, got {offset}",
            self.next
        );
        self.track(cft, offset);
        let mut i = 0;
        while i < cft.len() {
            i = if let Some(open) = self.open {
                self.scan_open(open, cft, i, offset, events)
            } else if let Some(held) = self.held {
                self.scan_held(held, cft, i, offset, events)
            } else {
                self.scan_idle(cft, i, offset)
            };
        }
        self.next = Some(offset + cft.len() as u64);
    }

    /// Consumes a single value at absolute index `index`; the same as
    /// [`Trigger::push`] with a one-element slice.
    pub fn push_one(&mut self, cft: f64, index: u64, events: &mut Vec<Event>) {
        self.push(std::slice::from_ref(&cft), index, events);
    }

    /// Consumes `len` values at `offset ..` that are below every level (NaN,
    /// or anything `< min(on, off)`), in O(1): exactly the same as pushing
    /// `len` NaN values.
    ///
    /// Why: the GPU backend sends back only the samples that reach
    /// `min(on, off)` (the candidates); a gap between two candidates is a
    /// run of values that can neither start an event, nor keep a run `>= off`
    /// alive, nor raise a peak, so only its length matters. An open event
    /// whose last value was `>= off` ends at `offset − 1`; otherwise one whose
    /// `max_len` cut falls inside the gap ends at the cut; otherwise it stays
    /// open. An ended event whose dead window closes inside the gap is
    /// reported. Afterwards the last value is below `on`. (A value below the
    /// levels inside a dead window cannot raise a merged event's peak
    /// either: the peak is at least the onset's value, which is `>= on`.)
    pub fn push_below(&mut self, offset: u64, len: u64, events: &mut Vec<Event>) {
        if len == 0 {
            return;
        }
        debug_assert!(
            self.next.is_none_or(|next| next == offset),
            "trigger fed out of order: expected index {:?}, got {offset}",
            self.next
        );
        self.track_quiet(offset, len);
        if let Some(mut open) = self.open {
            if open.above_off {
                // The first value of the gap ends the run >= off.
                self.open = None;
                self.end_event(open, offset - 1, offset, f64::NAN, events);
            } else if let Some(cut) = open
                .cut_at
                .filter(|&cut| cut.checked_sub(offset).is_some_and(|d| d < len))
            {
                self.open = None;
                self.cut_event(open, cut, events);
            } else {
                open.above_off = false;
                self.open = Some(open);
            }
        }
        if let Some(held) = self.held
            && held.close_at.checked_sub(offset).is_some_and(|d| d < len)
        {
            self.release(held, events);
        }
        self.above_on = false;
        self.next = Some(offset + len);
    }

    /// The cft has ended: an open event ends at the last value pushed, an
    /// event waiting in its dead window is reported. The trigger is then as
    /// new and may start another stream.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        if let (Some(open), Some(next)) = (self.open.take(), self.next) {
            self.emit(open, next - 1, events);
        }
        if let Some(held) = self.held.take() {
            self.emit(held.event, held.end, events);
        }
        self.above_on = false;
        self.quiet_until = 0;
        self.next = None;
    }

    /// Looks for an onset in `cft[from..]`; opens the event and returns the
    /// index after it, or `cft.len()` if there is none.
    fn scan_idle(&mut self, cft: &[f64], from: usize, offset: u64) -> usize {
        let on = self.on;
        let mut i = from;
        while i < cft.len() {
            let end = (i + IDLE_GROUP).min(cft.len());
            let group = &cft[i..end];
            // Branch-free on purpose: a short-circuiting `any` would not
            // vectorise. NaN compares false, like NumPy's `np.where`.
            if !group.iter().fold(false, |hit, &c| hit | (c >= on)) {
                self.above_on = false;
                i = end;
                continue;
            }
            for (k, &c) in group.iter().enumerate() {
                let above = c >= on;
                let start = offset + (i + k) as u64;
                if above && !self.above_on && start >= self.quiet_until {
                    self.above_on = true;
                    self.open = Some(Open {
                        start,
                        peak_index: start,
                        peak_value: c,
                        above_off: c >= self.off,
                        cut_at: self.max_len.and_then(|m| start.checked_add(m)),
                    });
                    return i + k + 1;
                }
                self.above_on = above;
            }
            i = end;
        }
        i
    }

    /// Follows the open event through `cft[from..]`; returns the index after
    /// the sample at which it ended, or `cft.len()` if it is still open.
    fn scan_open(
        &mut self,
        mut open: Open,
        cft: &[f64],
        from: usize,
        offset: u64,
        events: &mut Vec<Event>,
    ) -> usize {
        for (k, &c) in cft[from..].iter().enumerate() {
            let index = offset + (from + k) as u64;
            let above_off = c >= self.off;
            self.above_on = c >= self.on;
            if open.above_off && !above_off {
                // The run >= off that ends at or after the onset has ended
                // at the previous sample. This sample cannot be an onset:
                // with off <= on it is below on, with off > on the previous
                // one was above on.
                self.open = None;
                self.end_event(open, index - 1, index, c, events);
                return from + k + 1;
            }
            open.above_off = above_off;
            if c > open.peak_value {
                open.peak_value = c;
                open.peak_index = index;
            }
            if open.cut_at == Some(index) {
                // ObsPy: the event is cut here, and onsets up to and
                // including this index are dropped, so the next event needs
                // a run start after it.
                self.open = None;
                self.cut_event(open, index, events);
                return from + k + 1;
            }
        }
        self.open = Some(open);
        cft.len()
    }

    /// Follows an ended event through its dead window in `cft[from..]`:
    /// merges an onset into it, or reports it once the window has closed.
    /// Returns the index of the first value not consumed.
    fn scan_held(
        &mut self,
        mut held: Held,
        cft: &[f64],
        from: usize,
        offset: u64,
        events: &mut Vec<Event>,
    ) -> usize {
        for (k, &c) in cft[from..].iter().enumerate() {
            let index = offset + (from + k) as u64;
            if index >= held.close_at {
                // Not consumed: the idle scan decides whether it is an onset.
                self.release(held, events);
                return from + k;
            }
            let above = c >= self.on;
            if above && !self.above_on {
                // An onset inside the dead window: the event goes on from
                // here, with its start, its cut and the peak over the whole
                // merged span (the earlier maximum wins ties).
                self.above_on = true;
                self.held = None;
                let mut open = held.event;
                if held.gap_peak_value > open.peak_value {
                    open.peak_value = held.gap_peak_value;
                    open.peak_index = held.gap_peak_index;
                }
                if c > open.peak_value {
                    open.peak_value = c;
                    open.peak_index = index;
                }
                open.above_off = c >= self.off;
                self.open = Some(open);
                return from + k + 1;
            }
            self.above_on = above;
            if c > held.gap_peak_value {
                held.gap_peak_value = c;
                held.gap_peak_index = index;
            }
        }
        self.held = Some(held);
        cft.len()
    }

    /// The run `>= off` of `open` ended at `end`; `value` is the cft at
    /// `after` (= `end + 1`), the value that ended it. Reports the event at
    /// once, or holds it if an onset could still merge into it.
    fn end_event(&mut self, open: Open, end: u64, after: u64, value: f64, events: &mut Vec<Event>) {
        let until = open.start.saturating_add(self.dead);
        let close_at = open.cut_at.map_or(until, |cut| cut.min(until));
        if after >= close_at {
            // No onset can merge any more; after a `max_len` cut that came
            // first, onsets stay dropped until the window's end.
            self.quiet_until = until;
            self.emit(open, end, events);
            return;
        }
        let mut held = Held {
            event: open,
            end,
            until,
            close_at,
            gap_peak_index: after,
            gap_peak_value: f64::NEG_INFINITY,
        };
        if value > held.gap_peak_value {
            held.gap_peak_value = value;
        }
        self.held = Some(held);
    }

    /// `max_len` cut `open` at `cut`: reports it, and drops onsets for the
    /// rest of its dead window.
    fn cut_event(&mut self, open: Open, cut: u64, events: &mut Vec<Event>) {
        self.quiet_until = open.start.saturating_add(self.dead);
        self.emit(open, cut, events);
    }

    /// No onset can merge into `held` any more: reports it; if its `max_len`
    /// cut closed the window early, onsets stay dropped until the window's
    /// end.
    fn release(&mut self, held: Held, events: &mut Vec<Event>) {
        self.held = None;
        self.quiet_until = held.until;
        self.emit(held.event, held.end, events);
    }

    fn emit(&self, open: Open, end: u64, events: &mut Vec<Event>) {
        if let Some(s) = self.sync.as_deref() {
            // Not found yet: the point lies past what was pushed, so after
            // this onset (an event is emitted after its onset was pushed).
            let after_start = s.found[0].is_some_and(|p| open.start >= p);
            let before_end = s.found[1].is_none_or(|p| open.start < p);
            if !(after_start && before_end) {
                return;
            }
        }
        events.push(Event {
            channel: self.channel,
            start: open.start,
            end,
            peak_index: open.peak_index,
            peak_value: open.peak_value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(events: &[Event]) -> Vec<(u64, u64, u64)> {
        events
            .iter()
            .map(|e| (e.start, e.end, e.peak_index))
            .collect()
    }

    #[test]
    fn an_ended_event_waits_for_its_dead_window() {
        let mut t = Trigger::new(2.0, 1.0, None).with_dead(5);
        let mut events = Vec::new();
        t.push(&[3.0, 4.0, 0.0], 0, &mut events);
        // Ended at 1, reported only at 5 (= 0 + 5).
        assert!(events.is_empty() && t.is_open());
        assert_eq!((t.open_start(), t.open_peak()), (Some(0), Some(1)));
        t.push(&[0.0, 0.0], 3, &mut events);
        assert!(events.is_empty());
        t.push(&[0.0], 5, &mut events);
        assert_eq!(spans(&events), [(0, 1, 1)]);
        assert!(!t.is_open());
    }

    #[test]
    fn a_gap_closes_the_dead_window() {
        let mut t = Trigger::new(2.0, 1.0, None).with_dead(50);
        let mut events = Vec::new();
        t.push(&[3.0, 0.0], 0, &mut events);
        t.push_below(2, 10, &mut events);
        assert!(events.is_empty());
        // An onset inside the window merges, across the gap.
        t.push(&[5.0, 0.0], 12, &mut events);
        t.push_below(14, 100, &mut events);
        assert_eq!(spans(&events), [(0, 12, 12)]);
    }

    /// Whole-stream events against the union of shards' events: each shard
    /// starts its trigger fresh, `halo` values before its range (or at 0),
    /// with the values before `exact_from` replaced by garbage (what a
    /// shard's unconverged stages would give), and reports the events
    /// between its sync points.
    #[expect(clippy::too_many_arguments, reason = "the property's parameters")]
    fn sharded(
        cft: &[f64],
        on: f64,
        off: f64,
        dead: u64,
        max_len: Option<u64>,
        cuts: &[u64],
        halo: u64,
        via_gaps: bool,
    ) -> (Vec<Event>, Vec<Event>) {
        let make = || Trigger::new(on, off, max_len).with_dead(dead);
        let mut whole = Vec::new();
        let mut t = make();
        t.push(cft, 0, &mut whole);
        t.finish(&mut whole);
        let n = cft.len() as u64;
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < n));
        bounds.sort_unstable();
        bounds.dedup();
        bounds.push(n);
        let mut union = Vec::new();
        for w in bounds.windows(2) {
            let (start, end) = (w[0], w[1]);
            let quiet = dead.max(1);
            let read = start.saturating_sub(halo + quiet);
            let exact_from = if read == 0 { 0 } else { read + halo };
            let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut t = make().with_sync(RangeSync {
                exact_from,
                start: (start > 0).then_some(start),
                end: (end < n).then_some(end),
                done: done.clone(),
            });
            // Unconverged values: garbage that sometimes triggers.
            let mut piece: Vec<f64> = cft[read as usize..].to_vec();
            for (k, v) in piece.iter_mut().enumerate() {
                if (read + k as u64) < exact_from {
                    *v = if k % 7 < 3 { on * 2.0 } else { 0.0 };
                }
            }
            let mut got = Vec::new();
            let mut at = 0;
            for chunk in piece.chunks(13) {
                let offset = read + at;
                if via_gaps && chunk.iter().all(|&c| c < on.min(off)) {
                    t.push_below(offset, chunk.len() as u64, &mut got);
                } else {
                    t.push(chunk, offset, &mut got);
                }
                at += chunk.len() as u64;
                if done.load(std::sync::atomic::Ordering::Relaxed) == 1 {
                    break;
                }
            }
            t.finish(&mut got);
            union.extend(got);
        }
        (whole, union)
    }

    proptest::proptest! {
        /// Shards cut anywhere (inside events, dead windows and `max_len`
        /// cuts included) report together exactly the whole stream's
        /// events, each once.
        #[test]
        fn shards_report_the_whole_streams_events(
            values in proptest::collection::vec(0u8..6, 1..400),
            cuts in proptest::collection::vec(0u64..400, 0..6),
            dead in 0u64..12,
            off_steps in 0u8..3,
            max_len in proptest::option::of(1u64..20),
            halo in 0u64..30,
            via_gaps: bool,
        ) {
            let cft: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            let on = 3.0;
            let off = on - f64::from(off_steps);
            let (whole, union) = sharded(&cft, on, off, dead, max_len, &cuts, halo, via_gaps);
            proptest::prop_assert_eq!(whole, union);
        }
    }

    /// A channel whose noise level is NaN gets NaN levels: nothing
    /// triggers, and a shard of it must not refuse (or panic) for want of
    /// `off <= on`.
    #[test]
    fn nan_levels_sync_and_report_nothing() {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut t = Trigger::new(f64::NAN, f64::NAN, None).with_sync(RangeSync {
            exact_from: 0,
            start: Some(5),
            end: Some(20),
            done: done.clone(),
        });
        let mut events = Vec::new();
        t.push(
            &[1.0, 9.0, 0.0, 9.0, 9.0, 1.0, 2.0, 3.0, 9.0, 9.0],
            0,
            &mut events,
        );
        t.push(&[9.0; 20], 10, &mut events);
        t.finish(&mut events);
        assert!(events.is_empty());
        // Every value is quiet against a NaN `off`: the end's point is the
        // end target itself.
        assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(t.sync_end(), Some(20));
    }

    #[test]
    #[should_panic(expected = "off <= on")]
    fn sync_points_need_off_at_most_on() {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let _ = Trigger::new(1.0, 2.0, None).with_sync(RangeSync {
            exact_from: 0,
            start: None,
            end: Some(10),
            done,
        });
    }
}
