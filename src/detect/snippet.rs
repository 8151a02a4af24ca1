//! Snippets: the filtered waveform around each event's peak
//! (`--snippets FILE.npy --snippet-samples PRE:POST`), cut while the stream
//! goes by, in bounded memory, and handed out in the events CSV's order.
//!
//! Why it is shaped like this:
//! - An event's window `[peak − PRE, peak + POST)` is known only once its
//!   peak is final, which may be long after the peak went by (an STA/LTA
//!   event can last minutes), and the window's last POST samples come later
//!   still. The signal cannot be kept, so a ring keeps the last
//!   `PRE + POST` frames before the current block, and the block. The
//!   invariant, after every block: every window that is complete
//!   (`peak + POST ≤` frames seen) has been cut out of the ring; one that is
//!   not has its peak within the last POST frames, so it lies in what the
//!   ring keeps through the next block. Chunk edges therefore never cut a
//!   window short.
//! - The running peak of an open event ([`Detector::open_event_peak`]) is a
//!   *candidate*: its window is cut as soon as it is complete, before the
//!   ring moves past it; if the peak moves on, that cut is dropped. When the
//!   event closes with the candidate's peak, the cut is its snippet.
//! - Cut snippets wait, keyed by (start, channel), until the pipeline writes
//!   their event. Events are written in order of start then channel, each
//!   held back while an earlier one may still come; an event whose window is
//!   not complete holds the order back likewise ([`Snippets::horizon`]), so
//!   the snippets come out in the events' order. The waiting snippets are
//!   kept in memory up to [`SnippetSpec::store_memory`] bytes and beyond it
//!   in an unnamed scratch file beside the outputs, which never outlives the
//!   run (it has no name to leave behind).
//! - A window reaching past the start or the end of the signal (of the
//!   segment, for inputs read in segments) is zero-padded there, and its
//!   event is flagged.
//!
//! The values are the output's `f32` samples, copied: a snippet equals the
//! output signal sliced at the same indices, bit for bit, whatever the
//! chunk size.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

use crate::detect::{Detector, Event};
use crate::error::{Error, Result};
use crate::io_at::PositionalIo;
use crate::pool::Block;

/// Bytes of waiting snippets kept in memory by default (beyond: the
/// scratch file). Snippets wait only while an earlier event may still come
/// (an open event on another channel, or its own window not complete), so
/// few wait at a time; 1 MiB holds 2,900 single-channel snippets of 90
/// samples, or 7 of all 385 channels of a Neuropixels probe, and keeps a
/// probe's run within the 32 MiB its users asked for.
pub const DEFAULT_STORE_MEMORY: u64 = 1 << 20;

/// Bytes per `f32`.
const F32: u64 = 4;

/// Which channels a snippet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnippetChannels {
    /// The event's own channel: shape `(events, PRE + POST, 1)`.
    #[default]
    Own,
    /// Every channel: shape `(events, PRE + POST, channels)`.
    All,
}

/// What to cut around each event: `pre` samples before its peak and `post`
/// from the peak on (the peak is sample `pre` of the snippet).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SnippetSpec {
    /// Samples before the peak.
    pub pre: usize,
    /// Samples from the peak on (the peak included).
    pub post: usize,
    /// The event's channel, or all of them.
    pub channels: SnippetChannels,
    /// Where the scratch file for waiting snippets goes (beside the
    /// outputs).
    #[serde(skip)]
    pub scratch_dir: PathBuf,
    /// Bytes of waiting snippets kept in memory ([`DEFAULT_STORE_MEMORY`]).
    #[serde(skip)]
    pub store_memory: u64,
}

impl SnippetSpec {
    /// A window of `pre` samples before the peak and `post` from it.
    ///
    /// # Errors
    /// [`Error::Usage`] naming `--snippet-samples` for an empty window or
    /// one whose length overflows.
    pub fn new(
        pre: usize,
        post: usize,
        channels: SnippetChannels,
        scratch_dir: PathBuf,
    ) -> Result<Self> {
        let window = pre.checked_add(post).ok_or_else(|| {
            Error::usage(format!(
                "--snippet-samples {pre}:{post}: the window is too long"
            ))
        })?;
        if window == 0 {
            return Err(Error::usage(
                "--snippet-samples 0:0: the window needs at least one sample",
            ));
        }
        Ok(SnippetSpec {
            pre,
            post,
            channels,
            scratch_dir,
            store_memory: DEFAULT_STORE_MEMORY,
        })
    }

    /// Parses `PRE:POST` (`--snippet-samples 30:60`).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the option for anything else.
    pub fn parse_window(s: &str) -> Result<(usize, usize)> {
        s.split_once(':')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .ok_or_else(|| {
                Error::usage(format!(
                    "--snippet-samples '{s}': expected PRE:POST, samples before the peak and from it on, e.g. 30:60"
                ))
            })
    }

    /// Samples per snippet, `pre + post`.
    pub fn window(&self) -> usize {
        self.pre + self.post
    }

    /// Columns of a snippet for `lanes` channels.
    pub fn columns(&self, lanes: usize) -> usize {
        match self.channels {
            SnippetChannels::Own => 1,
            SnippetChannels::All => lanes,
        }
    }

    /// `f32` values in one snippet (two per complex sample), saturating.
    pub fn row_values(&self, lanes: usize, complex: bool) -> usize {
        self.window()
            .saturating_mul(self.columns(lanes))
            .saturating_mul(if complex { 2 } else { 1 })
    }

    /// Bytes [`Snippets::new`] allocates for `planes` output planes in
    /// blocks of `block` frames: the ring, one snippet of scratch, and the
    /// waiting snippets kept in memory; and the one snippet the pipeline
    /// takes them into.
    pub fn footprint(&self, planes: usize, complex: bool, block: usize) -> u64 {
        let lanes = if complex { planes / 2 } else { planes };
        let row = (self.row_values(lanes, complex) as u64).saturating_mul(F32);
        let ring = (self.window() as u64)
            .saturating_add(block as u64)
            .saturating_mul(planes as u64)
            .saturating_mul(F32);
        ring.saturating_add(row.saturating_mul(2))
            .saturating_add(self.store_memory.max(row))
    }
}

/// A window cut out of the ring, waiting for its event to be written.
#[derive(Debug)]
struct Cut {
    slot: Slot,
    padded: bool,
}

#[derive(Debug)]
enum Slot {
    Memory(Vec<f32>),
    /// Byte offset in the scratch file.
    Disk(u64),
}

/// The running peak of an open event, and its window once complete.
#[derive(Debug)]
struct Candidate {
    peak: u64,
    cut: Option<Cut>,
}

/// A closed event whose window is not complete yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    start: u64,
    lane: usize,
    peak: u64,
}

/// Waiting snippets: in memory up to a count, then in a scratch file whose
/// freed places are reused.
#[derive(Debug)]
struct Store {
    row_values: usize,
    in_memory: usize,
    max_in_memory: usize,
    dir: PathBuf,
    file: Option<File>,
    free: Vec<u64>,
    end: u64,
    /// Snippets that ever went to the scratch file (for the report).
    spilled: u64,
}

impl Store {
    fn put(&mut self, row: &[f32]) -> Result<Slot> {
        if self.in_memory < self.max_in_memory {
            self.in_memory += 1;
            return Ok(Slot::Memory(row.to_vec()));
        }
        if self.file.is_none() {
            self.file =
                Some(tempfile::tempfile_in(&self.dir).map_err(|e| Error::io(&self.dir, e))?);
        }
        let file = self.file.as_ref().expect("created above");
        let offset = match self.free.pop() {
            Some(o) => o,
            None => {
                let o = self.end;
                self.end += row.len() as u64 * F32;
                o
            }
        };
        file.write_all_at(bytemuck::cast_slice(row), offset)
            .map_err(|e| Error::io(&self.dir, e))?;
        self.spilled += 1;
        Ok(Slot::Disk(offset))
    }

    /// Moves the snippet in `slot` to `row` and frees the slot.
    fn take(&mut self, slot: Slot, row: &mut Vec<f32>) -> Result<()> {
        row.resize(self.row_values, 0.0);
        match slot {
            Slot::Memory(v) => {
                row.copy_from_slice(&v);
                self.in_memory -= 1;
            }
            Slot::Disk(offset) => {
                let file = self.file.as_ref().expect("a disk slot has its file");
                file.read_exact_at(bytemuck::cast_slice_mut(row.as_mut_slice()), offset)
                    .map_err(|e| Error::io(&self.dir, e))?;
                self.free.push(offset);
            }
        }
        Ok(())
    }

    fn drop_slot(&mut self, slot: Slot) {
        match slot {
            Slot::Memory(_) => self.in_memory -= 1,
            Slot::Disk(offset) => self.free.push(offset),
        }
    }
}

/// Cuts and keeps the snippets of one stream. See the module docs.
#[derive(Debug)]
pub struct Snippets {
    spec: SnippetSpec,
    /// Output planes; 2 per lane for a complex signal.
    planes: usize,
    per_lane: usize,
    lanes: usize,
    /// `planes` rings of `cap` frames: frame `i` of the stream at
    /// `i % cap`.
    ring: Vec<f32>,
    cap: usize,
    /// Frames seen (the ring holds `[end − min(end, cap), end)`).
    end: u64,
    candidates: Vec<Option<Candidate>>,
    pending: Vec<Pending>,
    waiting: BTreeMap<(u64, usize), Cut>,
    store: Store,
    /// One snippet being cut.
    row: Vec<f32>,
}

impl Snippets {
    /// Snippets of a stream of `planes` planes (I/Q pairs when `complex`)
    /// arriving in blocks of at most `block` frames. Allocates
    /// [`SnippetSpec::footprint`] bytes at most.
    pub fn new(spec: SnippetSpec, planes: usize, complex: bool, block: usize) -> Self {
        let per_lane = if complex { 2 } else { 1 };
        let lanes = planes / per_lane;
        let cap = spec.window() + block.max(1);
        let row_values = spec.row_values(lanes, complex);
        let row_bytes = (row_values as u64 * F32).max(1);
        Snippets {
            planes,
            per_lane,
            lanes,
            ring: vec![0.0; planes * cap],
            cap,
            end: 0,
            candidates: (0..lanes).map(|_| None).collect(),
            pending: Vec::new(),
            waiting: BTreeMap::new(),
            store: Store {
                row_values,
                in_memory: 0,
                max_in_memory: (spec.store_memory / row_bytes).max(1) as usize,
                dir: spec.scratch_dir.clone(),
                file: None,
                free: Vec::new(),
                end: 0,
                spilled: 0,
            },
            row: Vec::with_capacity(row_values),
            spec,
        }
    }

    /// The spec.
    pub fn spec(&self) -> &SnippetSpec {
        &self.spec
    }

    /// Snippets that went to the scratch file while waiting.
    pub fn spilled(&self) -> u64 {
        self.store.spilled
    }

    /// The output block that follows the last one (`block.start` is the
    /// frames seen so far), with the events its detection closed
    /// (`new_events[lane]`) and the detectors after it. Cuts every window
    /// that is complete.
    ///
    /// # Errors
    /// [`Error::Io`] when the scratch file fails; [`Error::Runtime`] when a
    /// detector closes an event whose peak it did not report while the event
    /// was open (a custom detector without [`Detector::open_event_peak`]).
    pub fn observe(
        &mut self,
        block: &Block,
        new_events: &[Vec<Event>],
        detectors: &[Box<dyn Detector>],
    ) -> Result<()> {
        self.push(block);
        self.closed(new_events)?;
        for (lane, det) in detectors.iter().enumerate() {
            let peak = match (det.open_event_start(), det.open_event_peak()) {
                (_, Some(p)) => Some(p),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(Error::Runtime {
                        msg: "--snippets needs a detector that reports the running peak of its open event".into(),
                    });
                }
            };
            let keep = matches!((&self.candidates[lane], peak), (Some(c), Some(p)) if c.peak == p);
            if !keep {
                if let Some(Candidate { cut: Some(cut), .. }) = self.candidates[lane].take() {
                    self.store.drop_slot(cut.slot);
                }
                self.candidates[lane] = peak.map(|peak| Candidate { peak, cut: None });
            }
        }
        self.cut_complete(false)
    }

    /// The stream has ended (after the detectors' last events,
    /// `new_events`): every window left is cut, zero-padded past the end.
    ///
    /// # Errors
    /// As [`Snippets::observe`].
    pub fn finish(&mut self, new_events: &[Vec<Event>]) -> Result<()> {
        self.closed(new_events)?;
        for c in self.candidates.iter_mut() {
            if let Some(Candidate { cut: Some(cut), .. }) = c.take() {
                self.store.drop_slot(cut.slot);
            }
        }
        self.cut_complete(true)
    }

    /// No event starting at or after this can be written yet: the earliest
    /// start of a closed event whose window is not complete.
    pub fn horizon(&self) -> u64 {
        self.pending
            .iter()
            .map(|p| p.start)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Moves `e`'s snippet to `row` (`row_values` values, C order
    /// `(PRE + POST, columns[, re/im])`); returns whether it was
    /// zero-padded.
    ///
    /// # Errors
    /// [`Error::Io`] when the scratch file fails; [`Error::Runtime`] when
    /// the event has no snippet (not an event of this stream, or taken
    /// twice).
    pub fn take(&mut self, e: &Event, row: &mut Vec<f32>) -> Result<bool> {
        let cut = self
            .waiting
            .remove(&(e.start, e.channel))
            .ok_or_else(|| Error::Runtime {
                msg: format!(
                    "no snippet for the event at sample {} of channel {}",
                    e.start, e.channel
                ),
            })?;
        self.store.take(cut.slot, row)?;
        Ok(cut.padded)
    }

    /// Appends `block` to the ring.
    fn push(&mut self, block: &Block) {
        debug_assert_eq!(block.start, self.end, "snippet blocks in order");
        let n = block.frames();
        debug_assert!(n + self.spec.window() <= self.cap, "block within the ring");
        let at = (self.end % self.cap as u64) as usize;
        let first = n.min(self.cap - at);
        for p in 0..self.planes {
            let src = block.channel(p);
            let ring = &mut self.ring[p * self.cap..(p + 1) * self.cap];
            ring[at..at + first].copy_from_slice(&src[..first]);
            ring[..n - first].copy_from_slice(&src[first..]);
        }
        self.end += n as u64;
    }

    /// Events closed since the last block: each takes its candidate's cut
    /// when the peaks agree, else waits for its window.
    fn closed(&mut self, new_events: &[Vec<Event>]) -> Result<()> {
        for (lane, events) in new_events.iter().enumerate() {
            for e in events {
                let candidate = self.candidates[lane]
                    .take_if(|c| c.peak == e.peak_index)
                    .map(|c| c.cut);
                match candidate {
                    Some(Some(cut)) => {
                        self.waiting.insert((e.start, lane), cut);
                    }
                    _ => {
                        if e.peak_index.saturating_sub(self.spec.pre as u64) < self.first() {
                            return Err(Error::Runtime {
                                msg: format!(
                                    "--snippets: the peak at sample {} of channel {lane} was not reported while its event was open",
                                    e.peak_index
                                ),
                            });
                        }
                        self.pending.push(Pending {
                            start: e.start,
                            lane,
                            peak: e.peak_index,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The first frame the ring still holds.
    fn first(&self) -> u64 {
        self.end.saturating_sub(self.cap as u64)
    }

    /// Cuts the windows that are complete (all of them when `ended`, padded
    /// past the end).
    fn cut_complete(&mut self, ended: bool) -> Result<()> {
        let post = self.spec.post as u64;
        let complete = |peak: u64, end: u64| ended || peak.saturating_add(post) <= end;
        let mut i = 0;
        while i < self.pending.len() {
            let p = self.pending[i];
            if complete(p.peak, self.end) {
                self.pending.swap_remove(i);
                let cut = self.cut(p.peak, p.lane)?;
                self.waiting.insert((p.start, p.lane), cut);
            } else {
                i += 1;
            }
        }
        for lane in 0..self.lanes {
            let due = matches!(&self.candidates[lane],
                Some(c) if c.cut.is_none() && complete(c.peak, self.end));
            if due {
                let peak = self.candidates[lane].as_ref().expect("due").peak;
                let cut = self.cut(peak, lane)?;
                self.candidates[lane].as_mut().expect("due").cut = Some(cut);
            }
        }
        Ok(())
    }

    /// The window around `peak` of `lane` (or of every lane), out of the
    /// ring, zero outside `[0, end)`.
    fn cut(&mut self, peak: u64, lane: usize) -> Result<Cut> {
        let window = self.spec.window();
        let columns = self.spec.columns(self.lanes);
        let lanes = match self.spec.channels {
            SnippetChannels::Own => lane..lane + 1,
            SnippetChannels::All => 0..self.lanes,
        };
        self.row.clear();
        self.row.resize(window * columns * self.per_lane, 0.0);
        // The window's first sample, and the part of it inside [0, end).
        let from = i128::from(peak) - self.spec.pre as i128;
        let lo = from.max(0) as u64;
        let hi = (from + window as i128)
            .min(i128::from(self.end))
            .max(lo as i128) as u64;
        debug_assert!(lo >= self.first() || lo >= hi, "window within the ring");
        let padded = from < 0 || i128::from(hi) < from + window as i128;
        let stride = columns * self.per_lane;
        for (k, l) in lanes.enumerate() {
            for q in 0..self.per_lane {
                let plane = &self.ring[(l * self.per_lane + q) * self.cap..][..self.cap];
                let col = k * self.per_lane + q;
                for t in lo..hi {
                    let j = (t as i128 - from) as usize;
                    self.row[j * stride + col] = plane[(t % self.cap as u64) as usize];
                }
            }
        }
        let slot = self.store.put(&self.row)?;
        Ok(Cut { slot, padded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pre: usize, post: usize, channels: SnippetChannels, store: u64) -> SnippetSpec {
        SnippetSpec {
            store_memory: store,
            ..SnippetSpec::new(pre, post, channels, std::env::temp_dir()).unwrap()
        }
    }

    #[test]
    fn windows_parse_and_empty_ones_are_refused() {
        assert_eq!(SnippetSpec::parse_window("30:60").unwrap(), (30, 60));
        assert_eq!(SnippetSpec::parse_window(" 0 : 5").unwrap(), (0, 5));
        for bad in ["30", "a:b", "-1:5", "5:", ":5", "1:2:3"] {
            let msg = SnippetSpec::parse_window(bad).unwrap_err().to_string();
            assert!(msg.contains("--snippet-samples"), "{bad}: {msg}");
        }
        let msg = SnippetSpec::new(0, 0, SnippetChannels::Own, PathBuf::new())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("at least one sample"), "{msg}");
        assert!(SnippetSpec::new(usize::MAX, 1, SnippetChannels::Own, PathBuf::new()).is_err());
    }

    /// Feeds `signal` (one plane per channel) in blocks of `block` frames
    /// with the events given as closing at their end and open before it;
    /// returns each event's snippet and flag.
    fn run(
        signal: &[Vec<f32>],
        events: &[Event],
        spec: SnippetSpec,
        block: usize,
    ) -> Vec<(Vec<f32>, bool)> {
        /// A detector that replays known events: open from start to end,
        /// its running peak the final one from the peak on (the start
        /// before).
        struct Replay {
            events: Vec<Event>,
            seen: u64,
        }
        impl Detector for Replay {
            fn process(&mut self, samples: &[f32], offset: u64, out: &mut Vec<Event>) {
                self.seen = offset + samples.len() as u64;
                let seen = self.seen;
                out.extend(
                    self.events
                        .iter()
                        .filter(|e| e.end < seen && e.end >= offset),
                );
            }
            fn finish(&mut self, out: &mut Vec<Event>) {
                let seen = self.seen;
                out.extend(self.events.iter().filter(|e| e.end >= seen));
            }
            fn open_event_start(&self) -> Option<u64> {
                self.open().map(|e| e.start)
            }
            fn open_event_peak(&self) -> Option<u64> {
                self.open().map(|e| {
                    if self.seen > e.peak_index {
                        e.peak_index
                    } else {
                        e.start
                    }
                })
            }
        }
        impl Replay {
            fn open(&self) -> Option<&Event> {
                self.events
                    .iter()
                    .find(|e| e.start < self.seen && e.end >= self.seen)
            }
        }
        let channels = signal.len();
        let n = signal[0].len();
        let mut dets: Vec<Box<dyn Detector>> = (0..channels)
            .map(|c| {
                Box::new(Replay {
                    events: events.iter().filter(|e| e.channel == c).copied().collect(),
                    seen: 0,
                }) as Box<dyn Detector>
            })
            .collect();
        let mut s = Snippets::new(spec, channels, false, block);
        let mut closed: Vec<Vec<Event>> = vec![Vec::new(); channels];
        let mut all = Vec::new();
        let mut b = Block::new(channels, block);
        let mut at = 0;
        while at < n {
            let m = block.min(n - at);
            b.start = at as u64;
            for (c, sig) in signal.iter().enumerate() {
                b.channel_capacity_mut(c)[..m].copy_from_slice(&sig[at..at + m]);
            }
            b.set_frames(m);
            for (det, out) in dets.iter_mut().zip(closed.iter_mut()) {
                det.process(b.channel(0), at as u64, out);
            }
            s.observe(&b, &closed, &dets).unwrap();
            all.extend(closed.iter_mut().flat_map(|v| v.drain(..)));
            at += m;
        }
        for (det, out) in dets.iter_mut().zip(closed.iter_mut()) {
            det.finish(out);
        }
        s.finish(&closed).unwrap();
        all.extend(closed.iter_mut().flat_map(|v| v.drain(..)));
        assert_eq!(s.horizon(), u64::MAX, "nothing left pending");
        let mut row = Vec::new();
        events
            .iter()
            .map(|e| {
                let padded = s.take(e, &mut row).unwrap();
                (row.clone(), padded)
            })
            .collect()
    }

    /// The window sliced from the whole signal in `f64`-free plain indexing,
    /// zero outside it: the reference.
    fn expected(
        signal: &[Vec<f32>],
        e: &Event,
        pre: usize,
        post: usize,
        all: bool,
    ) -> (Vec<f32>, bool) {
        let n = signal[0].len() as i64;
        let cols: Vec<usize> = if all {
            (0..signal.len()).collect()
        } else {
            vec![e.channel]
        };
        let mut row = Vec::new();
        let mut padded = false;
        for j in 0..(pre + post) as i64 {
            let t = e.peak_index as i64 - pre as i64 + j;
            for &c in &cols {
                if (0..n).contains(&t) {
                    row.push(signal[c][t as usize]);
                } else {
                    padded = true;
                    row.push(0.0);
                }
            }
        }
        (row, padded)
    }

    fn event(channel: usize, start: u64, peak: u64, end: u64) -> Event {
        Event {
            channel,
            start,
            end,
            peak_index: peak,
            peak_value: 1.0,
        }
    }

    #[test]
    fn snippets_equal_the_sliced_signal_at_chunk_and_file_edges() {
        let n = 500;
        let signal: Vec<Vec<f32>> = (0..3)
            .map(|c| (0..n).map(|i| (i * 3 + c) as f32 + 0.25).collect())
            .collect();
        let events = vec![
            event(0, 0, 2, 4), // padded at the start
            event(1, 10, 40, 45),
            event(2, 60, 63, 64),    // peak on a 64-frame chunk edge
            event(0, 100, 300, 310), // peak long before the end: a candidate
            event(1, 120, 121, 400), // an event far longer than the ring
            event(2, 480, 495, 499), // padded at the end
        ];
        for channels in [SnippetChannels::Own, SnippetChannels::All] {
            let all = channels == SnippetChannels::All;
            // Spilled to the scratch file (store of 1 byte: one snippet in
            // memory) or kept in memory.
            for store in [1, DEFAULT_STORE_MEMORY] {
                for block in [1, 7, 64, 500] {
                    let got = run(&signal, &events, spec(5, 11, channels, store), block);
                    for (e, g) in events.iter().zip(&got) {
                        assert_eq!(*g, expected(&signal, e, 5, 11, all), "{e:?} block {block}");
                    }
                }
            }
        }
    }
}
