//! miniSEED (versions 2 and 3): channels, segments and gaps, decoded record
//! by record as they stream through, so memory stays flat.
//!
//! Why a decoder of our own rather than libmseed: the maintained binding
//! (`mseed`/`libmseed-sys`) generates its bindings with `bindgen` at build
//! time, which needs libclang, absent from a machine with only the Rust
//! toolchain (the set-up promise); and its reader owns the file, whereas
//! sigstream must read several channels of one file in step, each from its
//! own position. The format itself is small: a fixed header, a few
//! blockettes (version 2) or a source identifier and a CRC (version 3),
//! then samples as integers, floats or Steim-1/2 frames (`steim.rs`). Tests
//! check the decoder against files written by libmseed itself (the
//! `pymseed` package) and by ObsPy, sample for sample, and the fuzz target
//! `mseed` feeds it hostile records.
//!
//! How a file is read:
//! 1. **Index.** One pass over the record headers (no decoding) groups the
//!    records into channels (`NET.STA.LOC.CHA`) and each channel's records
//!    into contiguous segments, as libmseed's trace list does: a record
//!    continues a segment when its rate is within 0.01 % and its start
//!    within half a sample of the time the segment's next sample is due.
//!    The index holds one entry per segment, not per record.
//! 2. **Spans.** `--select` (ObsPy's `select` wildcards) picks channels, all
//!    of one rate. Each is placed on one sample grid (its start rounded to
//!    the nearest sample of the earliest selected channel). With
//!    `--gaps split` (the default) each stretch that every selected channel
//!    covers without a gap is a span of its own, processed with fresh
//!    filter and detector state, as ObsPy processes each trace; one channel
//!    gives exactly its segments, overlaps included. With `--gaps fill=V`
//!    or `--gaps interpolate` one span runs from the earliest sample to the
//!    latest and the holes are filled. A gap never shifts later samples:
//!    every sample keeps its grid position.
//! 3. **Streaming.** A span's source ([`SpanSource`]) keeps, per channel, a
//!    cursor that reads records forward from the segment's first record
//!    (positional reads into one small buffer) and decodes one record at a
//!    time into the block.

mod record;
mod steim;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ChunkSource, Dtype, Endian, Format, SignalInfo, SourceOptions, check_block};
use crate::error::{Error, Result};
use crate::io_at::PositionalIo;
use crate::pool::Block;
use crate::time::UtcTime;

pub(crate) use record::looks_like;
use record::{Encoding, Parsed, Record};

/// What fills the samples a channel lacks within a span.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Gaps {
    /// Each contiguous stretch is processed on its own (ObsPy's traces).
    #[default]
    Split,
    /// Holes hold this value.
    Fill(f32),
    /// Holes are a straight line between the samples on either side (the
    /// nearest sample at a channel's start or end).
    Interpolate,
}

impl Gaps {
    /// Parses `split`, `fill=VALUE` or `interpolate` (`--gaps`).
    ///
    /// # Errors
    /// [`Error::Usage`] for anything else.
    pub fn parse(text: &str) -> Result<Gaps> {
        let bad = || {
            Error::usage(format!(
                "--gaps {text}: give split, fill=VALUE (a finite number) or interpolate"
            ))
        };
        match text.trim() {
            "split" => Ok(Gaps::Split),
            "interpolate" => Ok(Gaps::Interpolate),
            t => {
                let v: f32 = t
                    .strip_prefix("fill=")
                    .ok_or_else(bad)?
                    .trim()
                    .parse()
                    .map_err(|_| bad())?;
                if v.is_finite() {
                    Ok(Gaps::Fill(v))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// Whether `name` matches an ObsPy `select` pattern: `*` (any run), `?`
/// (one character), `[abc]`, `[a-z]` and `[!abc]`, compared without regard
/// to case (ObsPy upper-cases both sides before `fnmatch`).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_uppercase().chars().collect();
    let n: Vec<char> = name.to_uppercase().chars().collect();
    fnmatch(&p, &n)
}

fn fnmatch(p: &[char], n: &[char]) -> bool {
    // Iterative matcher with one backtracking point for `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], n[ni]),
            Some(&c) => (c == n[ni]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class at the start of `p` (`[...]`); the
/// pattern length it takes when it matches. An unclosed `[` is a literal.
fn class(p: &[char], c: char) -> Option<usize> {
    let Some(close) = p.iter().skip(2).position(|&x| x == ']').map(|i| i + 2) else {
        return (c == '[').then_some(1);
    };
    let body = &p[1..close];
    let (negate, body) = match body.first() {
        Some('!') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            hit |= (body[i]..=body[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    (hit != negate).then_some(close + 1)
}

/// Bytes each record reader buffers: many records per positional read
/// (records are 512 B to 8 KiB in practice), grown for a longer one.
const READ_BUFFER: usize = 128 << 10;

/// Bytes the read buffers of all the cursors of a span may take together:
/// with many channels each buffer shrinks (to one record at least), so
/// the readers' memory does not grow with the channel count.
const READ_BUFFERS_TOTAL: usize = 32 << 20;

/// Most segments the index holds (about 100 bytes each): a file that
/// breaks into more, one per record or worse, is refused rather than
/// indexed into gigabytes.
const MAX_SEGMENTS: usize = 1 << 20;

/// Fewest frames a block must ask for before its channels are decoded by
/// several threads: a thread costs tens of microseconds to start, a
/// channel's 65,536 samples about a quarter of a millisecond to decode, so
/// small blocks (a library caller's) stay on the calling thread. Found by
/// fuzzing, where 1-frame blocks made one read take seconds.
const PARALLEL_DECODE_FRAMES: usize = 1 << 16;

/// Threads that decode a block of `frames` frames of `channels` channels
/// on a machine of `cores`: one per channel up to the cores, and 1 for a
/// small block.
fn decode_workers(cores: usize, channels: usize, frames: usize) -> usize {
    if frames < PARALLEL_DECODE_FRAMES {
        1
    } else {
        cores.min(channels).max(1)
    }
}

/// Longest span `--gaps fill`/`interpolate` makes (2^40 samples: 350 years
/// at 100 Hz): two records with absurdly distant times are refused rather
/// than filled for ever.
const MAX_FILLED_SPAN: u64 = 1 << 40;

/// Reads records forward from a byte offset.
struct Records {
    file: Arc<File>,
    path: PathBuf,
    /// The file's size when it was opened.
    len: u64,
    /// Offset of the next record.
    pos: u64,
    buf: Vec<u8>,
    /// Bytes read at a time (more for a longer record).
    buffer: usize,
    /// File offset of `buf[0]` and the bytes held.
    buf_at: u64,
    held: usize,
}

impl Records {
    fn new(file: Arc<File>, path: &Path, len: u64, pos: u64, buffer: usize) -> Self {
        Records {
            buffer,
            file,
            path: path.to_path_buf(),
            len,
            pos,
            buf: Vec::new(),
            buf_at: 0,
            held: 0,
        }
    }

    /// Makes `buf` hold at least `want` bytes from `self.pos` (fewer at
    /// the end of the file).
    fn fill(&mut self, want: usize) -> Result<()> {
        let have_from = self.pos.checked_sub(self.buf_at);
        if let Some(off) = have_from
            && off as usize + want <= self.held
        {
            return Ok(());
        }
        let size = self.buffer.max(want);
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        let n = (self.len - self.pos).min(self.buf.len() as u64) as usize;
        if let Err(e) = self.file.read_exact_at(&mut self.buf[..n], self.pos) {
            let now = self.file.metadata().map_or(0, |m| m.len());
            return Err(if now < self.len {
                Error::Shrank {
                    path: self.path.clone(),
                    was: self.len,
                    now,
                }
            } else {
                Error::io(&self.path, e)
            });
        }
        self.buf_at = self.pos;
        self.held = n;
        Ok(())
    }

    /// The next record and its bytes; `None` at the end of the file.
    fn next(&mut self) -> Result<Option<(u64, Record, &[u8])>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let mut want = 64;
        loop {
            self.fill(want)?;
            let off = (self.pos - self.buf_at) as usize;
            let bytes = &self.buf[off..self.held];
            let left = self.len - self.pos;
            let parsed = record::parse(bytes, left).map_err(|why| {
                Error::format(&self.path, format!("record at byte {}: {why}", self.pos))
            })?;
            match parsed {
                Parsed::NeedMore(n) if n > want && (n as u64) <= left => want = n,
                Parsed::NeedMore(n) => {
                    return Err(Error::format(
                        &self.path,
                        format!(
                            "record at byte {}: cut short ({left} bytes left, {n} needed)",
                            self.pos
                        ),
                    ));
                }
                Parsed::Record(rec) if bytes.len() < rec.len => want = rec.len,
                Parsed::Record(rec) => {
                    let at = self.pos;
                    self.pos += rec.len as u64;
                    let off = (at - self.buf_at) as usize;
                    let end = off + rec.len;
                    return Ok(Some((at, rec, &self.buf[off..end])));
                }
            }
        }
    }
}

/// A run of records of one channel whose samples follow each other.
#[derive(Debug, Clone)]
struct Segment {
    start: UtcTime,
    rate: f64,
    samples: u64,
    /// File offset of its first record.
    first: u64,
    encoding: Encoding,
    /// When the sample after its last record's last is due (from that
    /// record's start, as libmseed continues segments).
    due_ns: i64,
}

/// When the sample after `rec`'s last is due.
fn due_after(rec: &Record) -> i64 {
    after(rec.start, rec.samples as f64, rec.rate).ns()
}

/// `samples` sample intervals at `rate` after `t` (saturating at the ends
/// of time).
fn after(t: UtcTime, samples: f64, rate: f64) -> UtcTime {
    UtcTime::from_ns(t.ns().saturating_add((samples * 1e9 / rate).round() as i64))
}

/// Whether `rec` carries on a segment of `rate` whose next sample is due at
/// `due_ns` (libmseed's default tolerances: rate within 0.01 %, time within
/// half a sample).
fn continues(due_ns: i64, rate: f64, rec: &Record) -> bool {
    (1.0 - rate / rec.rate).abs() < 1e-4 && ((rec.start.ns() - due_ns) as f64).abs() <= 0.5e9 / rate
}

impl Segment {
    /// Time of its last sample.
    fn end(&self) -> UtcTime {
        after(self.start, self.samples.saturating_sub(1) as f64, self.rate)
    }

    /// Whether `rec` carries on where this segment ends.
    fn continued_by(&self, rec: &Record) -> bool {
        continues(self.due_ns, self.rate, rec)
    }
}

/// One channel of the file and its segments, in file order.
#[derive(Debug, Clone)]
struct Channel {
    id: String,
    segments: Vec<Segment>,
}

/// A summary of one segment, for `info` and reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SegmentSummary {
    /// Time of its first sample.
    pub start: UtcTime,
    /// Time of its last sample.
    pub end: UtcTime,
    /// Samples.
    pub samples: u64,
}

/// A summary of one channel of a miniSEED file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelSummary {
    /// `NET.STA.LOC.CHA`.
    pub id: String,
    /// Time of its first sample.
    pub start: UtcTime,
    /// Time of its last sample.
    pub end: UtcTime,
    /// Samples per second (of its first segment).
    pub sample_rate: f64,
    /// Samples in all segments.
    pub samples: u64,
    /// Holes between consecutive segments (in time order).
    pub gaps: usize,
    /// Segments that start before the previous one ends.
    pub overlaps: usize,
    /// The data encoding of its first record (`steim2`, `int32`, ...).
    pub encoding: &'static str,
    /// Its contiguous segments, in time order.
    pub segments: Vec<SegmentSummary>,
}

/// What a miniSEED file holds, from its index.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inventory {
    /// miniSEED versions of its records (`[2]`, `[3]` or `[2, 3]`).
    pub versions: Vec<u8>,
    /// Records in the file (text records included).
    pub records: u64,
    /// Its channels, in order of first appearance.
    pub channels: Vec<ChannelSummary>,
}

/// The file's index: channels and segments.
#[derive(Debug)]
struct Index {
    channels: Vec<Channel>,
    records: u64,
    versions: Vec<u8>,
}

impl Index {
    /// Scans every record header of `file`.
    fn build(file: &Arc<File>, path: &Path, len: u64) -> Result<Index> {
        let mut reader = Records::new(file.clone(), path, len, 0, READ_BUFFER);
        let mut channels: Vec<Channel> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut records = 0u64;
        let mut segments = 0usize;
        let mut versions = Vec::new();
        while let Some((at, rec, _)) = reader.next()? {
            records += 1;
            if !versions.contains(&rec.version) {
                versions.push(rec.version);
            }
            if rec.samples == 0 || rec.encoding == Encoding::Text {
                continue;
            }
            let c = *by_id.entry(rec.id.clone()).or_insert_with(|| {
                channels.push(Channel {
                    id: rec.id.clone(),
                    segments: Vec::new(),
                });
                channels.len() - 1
            });
            let segs = &mut channels[c].segments;
            match segs.last_mut() {
                Some(last) if last.continued_by(&rec) => {
                    last.samples += rec.samples as u64;
                    last.due_ns = due_after(&rec);
                }
                _ => {
                    segments += 1;
                    if segments > MAX_SEGMENTS {
                        return Err(Error::format(
                            path,
                            format!(
                                "more than {MAX_SEGMENTS} contiguous segments (a gap or overlap at nearly every record): too fragmented to index"
                            ),
                        ));
                    }
                    segs.push(Segment {
                        start: rec.start,
                        rate: rec.rate,
                        samples: rec.samples as u64,
                        first: at,
                        encoding: rec.encoding,
                        due_ns: due_after(&rec),
                    });
                }
            }
        }
        if records == 0 {
            return Err(Error::format(path, "empty: no records"));
        }
        if channels.is_empty() {
            return Err(Error::format(
                path,
                format!("{records} records but no samples (text or empty records only)"),
            ));
        }
        versions.sort_unstable();
        Ok(Index {
            channels,
            records,
            versions,
        })
    }

    fn inventory(&self) -> Inventory {
        let channels = self
            .channels
            .iter()
            .map(|ch| {
                let mut segs: Vec<&Segment> = ch.segments.iter().collect();
                segs.sort_by_key(|s| s.start);
                let (mut gaps, mut overlaps) = (0, 0);
                for w in segs.windows(2) {
                    if w[1].start.ns() >= w[0].due_ns {
                        gaps += 1;
                    } else {
                        overlaps += 1;
                    }
                }
                ChannelSummary {
                    id: ch.id.clone(),
                    start: segs[0].start,
                    end: segs.iter().map(|s| s.end()).max().expect("a segment"),
                    sample_rate: segs[0].rate,
                    samples: segs.iter().map(|s| s.samples).sum(),
                    gaps,
                    overlaps,
                    encoding: ch.segments[0].encoding.name(),
                    segments: segs
                        .iter()
                        .map(|s| SegmentSummary {
                            start: s.start,
                            end: s.end(),
                            samples: s.samples,
                        })
                        .collect(),
                }
            })
            .collect();
        Inventory {
            versions: self.versions.clone(),
            records: self.records,
            channels,
        }
    }
}

/// A run of one segment's samples placed on the span grid.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Index of the segment in its channel.
    segment: usize,
    /// The segment's first record (file offset), start and rate.
    first: u64,
    seg_start: UtcTime,
    rate: f64,
    /// Grid position of the first sample taken.
    at: u64,
    /// Samples of the segment skipped before it.
    skip: u64,
    /// Samples taken.
    take: u64,
}

impl Piece {
    /// Segment `segment` (`seg`) from its sample `skip` on, at grid
    /// position `at`.
    fn of(segment: usize, seg: &Segment, at: u64, skip: u64) -> Piece {
        Piece {
            segment,
            first: seg.first,
            seg_start: seg.start,
            rate: seg.rate,
            at,
            skip,
            take: seg.samples - skip,
        }
    }

    fn end(&self) -> u64 {
        self.at + self.take
    }

    /// The part of this piece within grid positions `[a, b)`.
    fn clip(&self, a: u64, b: u64) -> Option<Piece> {
        let from = self.at.max(a);
        let to = self.end().min(b);
        (from < to).then(|| Piece {
            at: from,
            skip: self.skip + (from - self.at),
            take: to - from,
            ..*self
        })
    }
}

/// One span: grid positions `[start, start + len)` and, per selected
/// channel, the pieces that fill it (relative to the grid's origin).
#[derive(Debug, Clone)]
struct Span {
    at: u64,
    len: u64,
    start: UtcTime,
    pieces: Vec<Vec<Piece>>,
}

/// A miniSEED file opened for reading: its index and the spans the options
/// make of it.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    index: Index,
    /// The selected channels (indices into the index).
    selected: Vec<usize>,
    rate: f64,
    gaps: Gaps,
    spans: Vec<Span>,
    /// Samples of each selected channel that no span covers (split mode,
    /// several channels) or that repeat earlier ones (overlaps).
    dropped: Vec<u64>,
    dtype: Dtype,
    opts: SourceOptions,
}

impl Recording {
    /// Indexes `file` and plans its spans.
    pub(super) fn open(path: &Path, file: File, len: u64, opts: &SourceOptions) -> Result<Self> {
        let file = Arc::new(file);
        let index = Index::build(&file, path, len)?;
        let selected: Vec<usize> = (0..index.channels.len())
            .filter(|&c| {
                opts.select.is_empty()
                    || opts
                        .select
                        .iter()
                        .any(|p| matches_pattern(p, &index.channels[c].id))
            })
            .collect();
        let ids = || {
            index
                .channels
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if selected.is_empty() {
            return Err(Error::format(
                path,
                format!(
                    "no channel matches --select {}; the file holds {}",
                    opts.select.join(" --select "),
                    ids()
                ),
            ));
        }
        let rate = index.channels[selected[0]].segments[0].rate;
        for &c in &selected {
            let ch = &index.channels[c];
            if let Some(s) = ch
                .segments
                .iter()
                .find(|s| (1.0 - s.rate / rate).abs() >= 1e-4)
            {
                return Err(Error::format(
                    path,
                    format!(
                        "{} has a segment at {} Hz and {} one at {rate} Hz: channels processed together need one rate; pick them with --select",
                        ch.id, s.rate, index.channels[selected[0]].id
                    ),
                ));
            }
        }
        let dtype = match index.channels[selected[0]].segments[0].encoding {
            Encoding::Int16 => Dtype::I16,
            Encoding::Float32 => Dtype::F32,
            Encoding::Float64 => Dtype::F64,
            _ => Dtype::I32,
        };
        let mut rec = Recording {
            path: path.to_path_buf(),
            file,
            len,
            index,
            selected,
            rate,
            gaps: opts.gaps,
            spans: Vec::new(),
            dropped: Vec::new(),
            dtype,
            opts: opts.clone(),
        };
        rec.plan()?;
        Ok(rec)
    }

    /// Places every selected segment on the grid and cuts the spans.
    fn plan(&mut self) -> Result<()> {
        let rate = self.rate;
        let origin = self
            .selected
            .iter()
            .flat_map(|&c| self.index.channels[c].segments.iter().map(|s| s.start))
            .min()
            .expect("a selected channel has a segment");
        // Positions stay below 2^62, so that adding a segment's length
        // (below 2^59: 2^32 samples a record) cannot overflow.
        let grid =
            |t: UtcTime| (((t.ns() - origin.ns()) as f64 * rate / 1e9).round() as u64).min(1 << 62);
        let n = self.selected.len();
        self.dropped = vec![0; n];
        // One channel, split: its segments as they are (overlaps too), in
        // time order, as ObsPy's traces.
        if n == 1 && self.gaps == Gaps::Split {
            let ch = &self.index.channels[self.selected[0]];
            let mut order: Vec<usize> = (0..ch.segments.len()).collect();
            order.sort_by_key(|&i| (ch.segments[i].start, i));
            self.spans = order
                .into_iter()
                .map(|i| {
                    let s = &ch.segments[i];
                    Span {
                        at: grid(s.start),
                        len: s.samples,
                        start: s.start,
                        pieces: vec![vec![Piece::of(i, s, grid(s.start), 0)]],
                    }
                })
                .collect();
            return Ok(());
        }
        // Per channel: its segments on the grid in time order, later
        // samples at positions already covered dropped.
        let mut coverage: Vec<Vec<Piece>> = Vec::with_capacity(n);
        for (k, &c) in self.selected.iter().enumerate() {
            let ch = &self.index.channels[c];
            let mut order: Vec<usize> = (0..ch.segments.len()).collect();
            order.sort_by_key(|&i| (grid(ch.segments[i].start), i));
            let mut pieces: Vec<Piece> = Vec::new();
            let mut covered = 0u64;
            for i in order {
                let s = &ch.segments[i];
                let at = grid(s.start);
                let skip = covered.saturating_sub(at).min(s.samples);
                self.dropped[k] += skip;
                if skip < s.samples {
                    pieces.push(Piece::of(i, s, at + skip, skip));
                    covered = covered.max(at + s.samples);
                }
            }
            coverage.push(pieces);
        }
        let stretches: Vec<(u64, u64)> = if self.gaps == Gaps::Split {
            // Where every channel has data: intersect the channels' runs.
            let runs = |pieces: &[Piece]| {
                let mut runs: Vec<(u64, u64)> = Vec::new();
                for p in pieces {
                    match runs.last_mut() {
                        Some(r) if r.1 == p.at => r.1 = p.end(),
                        _ => runs.push((p.at, p.end())),
                    }
                }
                runs
            };
            let mut common = runs(&coverage[0]);
            for pieces in &coverage[1..] {
                common = intersect(&common, &runs(pieces));
            }
            common
        } else {
            let a = coverage.iter().map(|p| p[0].at).min().unwrap_or(0);
            let b = coverage
                .iter()
                .filter_map(|p| p.last().map(Piece::end))
                .max()
                .unwrap_or(0);
            if b - a > MAX_FILLED_SPAN {
                return Err(Error::format(
                    &self.path,
                    format!(
                        "filling the gaps would make one span of {} samples (from the earliest selected sample to the latest): more than {MAX_FILLED_SPAN}; use --gaps split or --select",
                        b - a
                    ),
                ));
            }
            vec![(a, b)]
        };
        self.spans = stretches
            .into_iter()
            .map(|(a, b)| {
                let pieces: Vec<Vec<Piece>> = coverage
                    .iter()
                    .map(|ps| ps.iter().filter_map(|p| p.clip(a, b)).collect())
                    .collect();
                Span {
                    at: a,
                    len: b - a,
                    start: self.time_at(&pieces, a, &origin),
                    pieces,
                }
            })
            .collect();
        if self.gaps == Gaps::Split {
            for (k, cover) in coverage.iter().enumerate() {
                let total: u64 = cover.iter().map(|p| p.take).sum();
                self.dropped[k] += total - self.spans.iter().map(|s| s.len).sum::<u64>();
            }
        }
        Ok(())
    }

    /// The time of grid position `a`: from the first channel with a piece
    /// in the span (its segment's own start, so that one channel's times
    /// are exactly its segments'), else from the grid's origin.
    fn time_at(&self, pieces: &[Vec<Piece>], a: u64, origin: &UtcTime) -> UtcTime {
        for (k, ps) in pieces.iter().enumerate() {
            if let Some(p) = ps.first() {
                let seg = &self.index.channels[self.selected[k]].segments[p.segment];
                return after(seg.start, p.skip as f64 - (p.at - a) as f64, self.rate);
            }
        }
        after(*origin, a as f64, self.rate)
    }

    /// What the file holds.
    pub fn inventory(&self) -> Inventory {
        self.index.inventory()
    }

    /// How many spans the options cut the selection into.
    pub fn spans(&self) -> usize {
        self.spans.len()
    }

    /// The ids of the selected channels.
    pub fn channel_names(&self) -> Vec<String> {
        self.selected
            .iter()
            .map(|&c| self.index.channels[c].id.clone())
            .collect()
    }

    /// Samples of each selected channel left out of every span: repeats of
    /// overlapping segments, and (split, several channels) stretches where
    /// not every channel has data.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        self.channel_names()
            .into_iter()
            .zip(self.dropped.iter().copied())
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Each span's start and length, in order.
    pub fn span_summaries(&self) -> Vec<SegmentSummary> {
        self.spans
            .iter()
            .map(|s| SegmentSummary {
                start: s.start,
                end: UtcTime::from_ns(
                    s.start.ns()
                        + (s.len.saturating_sub(1) as f64 * 1e9 / self.rate).round() as i64,
                ),
                samples: s.len,
            })
            .collect()
    }

    /// What span `i` holds.
    pub fn span_info(&self, i: usize) -> SignalInfo {
        let span = &self.spans[i];
        SignalInfo {
            path: self.path.clone(),
            format: Format::Mseed,
            dtype: self.dtype,
            endian: Endian::Big,
            channels: self.selected.len(),
            complex: false,
            center_frequency: None,
            annotations: Vec::new(),
            frames: Some(span.len),
            sample_rate: Some(self.opts.sample_rate.unwrap_or(self.rate)),
            data_offset: 0,
            // `--start-time` is refused for miniSEED (`source::open_input`).
            start_time: Some(span.start),
            channel_names: self.channel_names(),
            segment: (self.gaps == Gaps::Split).then_some(i),
        }
    }

    /// A source of span `i`'s samples.
    pub fn span_source(&self, i: usize) -> SpanSource {
        let span = &self.spans[i];
        let buffer = (READ_BUFFERS_TOTAL / self.selected.len()).min(READ_BUFFER);
        let cursors = self
            .selected
            .iter()
            .zip(&span.pieces)
            .map(|(&c, pieces)| Cursor {
                channel: self.index.channels[c].id.clone(),
                path: self.path.clone(),
                pieces: pieces.clone(),
                next_piece: 0,
                reading: None,
                records: Records::new(self.file.clone(), &self.path, self.len, 0, buffer),
                buf: Vec::new(),
                buf_pos: 0,
                diffs: Vec::new(),
                pos: span.at,
                last: None,
                last_at: 0,
                upcoming: None,
                gaps: self.gaps,
            })
            .collect();
        SpanSource {
            info: self.span_info(i),
            cursors,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            end: span.at + span.len,
            pos: span.at,
        }
    }
}

/// The intersection of two sorted lists of disjoint half-open intervals.
fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo < hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
    out
}

/// The state of reading one piece.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// Grid position of its first sample.
    at: u64,
    /// Samples still to skip, and to take.
    skip: u64,
    left: u64,
    /// When the segment's next record is due, and its rate.
    due_ns: i64,
    rate: f64,
}

/// One channel of a span, read forward.
struct Cursor {
    channel: String,
    path: PathBuf,
    pieces: Vec<Piece>,
    /// The piece after the one being read.
    next_piece: usize,
    reading: Option<Reading>,
    records: Records,
    /// The decoded samples of the current record, and how many are used.
    buf: Vec<f32>,
    buf_pos: usize,
    /// Steim differences of the current record (scratch).
    diffs: Vec<i32>,
    /// Grid position of the next sample to give.
    pos: u64,
    /// The last real sample given, and its grid position (interpolation).
    last: Option<f32>,
    last_at: u64,
    /// The first sample of the piece being read, before it starts
    /// (interpolation).
    upcoming: Option<f32>,
    gaps: Gaps,
}

impl Cursor {
    /// Starts reading the next piece (its records from the segment's
    /// first on).
    fn begin_piece(&mut self) {
        let p = self.pieces[self.next_piece];
        self.next_piece += 1;
        self.records.pos = p.first;
        self.reading = Some(Reading {
            at: p.at,
            skip: p.skip,
            left: p.take,
            due_ns: p.seg_start.ns(),
            rate: p.rate,
        });
        self.buf.clear();
        self.buf_pos = 0;
        self.upcoming = None;
    }

    /// Makes `buf` hold unread samples of the current piece (past its
    /// skip), decoding the segment's next record when it is used up.
    fn refill(&mut self) -> Result<()> {
        let r = self.reading.as_mut().expect("reading a piece");
        while self.buf_pos >= self.buf.len() {
            let Some((at, rec, bytes)) = self.records.next()? else {
                return Err(Error::format(
                    &self.path,
                    format!("{}: the file ended inside a segment", self.channel),
                ));
            };
            if rec.id != self.channel || rec.samples == 0 || rec.encoding == Encoding::Text {
                continue;
            }
            if !continues(r.due_ns, r.rate, &rec) {
                return Err(Error::format(
                    &self.path,
                    format!(
                        "record at byte {at}: {} does not continue its segment (the file changed since it was indexed)",
                        self.channel
                    ),
                ));
            }
            r.due_ns = due_after(&rec);
            let n = rec.samples as u64;
            if r.skip >= n {
                r.skip -= n;
                continue;
            }
            record::decode(&rec, bytes, &mut self.buf, &mut self.diffs)
                .map_err(|why| Error::format(&self.path, format!("record at byte {at}: {why}")))?;
            self.buf_pos = r.skip as usize;
            r.skip = 0;
        }
        Ok(())
    }

    /// Fills `out` with the samples at grid positions `pos..pos + len`.
    fn fill(&mut self, out: &mut [f32]) -> Result<()> {
        let mut i = 0;
        while i < out.len() {
            if self.reading.is_none()
                && self
                    .pieces
                    .get(self.next_piece)
                    .is_some_and(|p| p.at <= self.pos)
            {
                self.begin_piece();
            }
            match self.reading {
                Some(r) if r.at <= self.pos => {
                    self.refill()?;
                    let avail = (self.buf.len() - self.buf_pos).min(r.left as usize);
                    let n = avail.min(out.len() - i);
                    out[i..i + n].copy_from_slice(&self.buf[self.buf_pos..self.buf_pos + n]);
                    self.buf_pos += n;
                    i += n;
                    self.pos += n as u64;
                    self.last = Some(out[i - 1]);
                    self.last_at = self.pos - 1;
                    let r = self.reading.as_mut().expect("reading");
                    r.at += n as u64;
                    r.left -= n as u64;
                    if r.left == 0 {
                        self.reading = None;
                    }
                }
                _ => {
                    // A hole up to the next piece (`u64::MAX`: none left
                    // in the span).
                    let until = match self.reading {
                        Some(r) => r.at,
                        None => self.pieces.get(self.next_piece).map_or(u64::MAX, |p| p.at),
                    };
                    let n = ((until - self.pos).min((out.len() - i) as u64)) as usize;
                    self.hole(&mut out[i..i + n], until)?;
                    i += n;
                    self.pos += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Fills a hole that runs until grid position `until` (`u64::MAX`:
    /// the channel has no more data in the span).
    fn hole(&mut self, out: &mut [f32], until: u64) -> Result<()> {
        match self.gaps {
            Gaps::Fill(v) => out.fill(v),
            Gaps::Split => unreachable!("the pieces of a split span cover it"),
            Gaps::Interpolate => {
                if self.upcoming.is_none() && until != u64::MAX {
                    // The first sample after the hole: start its piece
                    // (it begins at `until`, so nothing is taken yet).
                    if self.reading.is_none() {
                        self.begin_piece();
                    }
                    self.refill()?;
                    self.upcoming = Some(self.buf[self.buf_pos]);
                }
                let (y0, y1) = match (self.last, self.upcoming) {
                    (Some(a), Some(b)) => (a, b),
                    (Some(a), None) => (a, a),
                    (None, Some(b)) => (b, b),
                    (None, None) => (0.0, 0.0),
                };
                // A line from the last sample (at the position before the
                // hole began) to the next (at `until`).
                let from = self.last_at;
                let width = until.saturating_sub(from) as f64;
                for (k, o) in out.iter_mut().enumerate() {
                    let x = (self.pos + k as u64 - from) as f64;
                    let t = if until == u64::MAX { 0.0 } else { x / width };
                    *o = (f64::from(y0) + (f64::from(y1) - f64::from(y0)) * t) as f32;
                }
            }
        }
        Ok(())
    }
}

/// The samples of one span, every selected channel in step.
pub struct SpanSource {
    info: SignalInfo,
    cursors: Vec<Cursor>,
    /// Threads that decode channels at once (the machine's cores).
    workers: usize,
    /// Grid positions still to give: `pos..end`.
    pos: u64,
    end: u64,
}

impl std::fmt::Debug for SpanSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanSource")
            .field("info", &self.info)
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish()
    }
}

impl ChunkSource for SpanSource {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        check_block(block, self.cursors.len());
        let n = ((self.end - self.pos).min(block.capacity() as u64)) as usize;
        block.set_frames(n);
        // Decoding is the reader's whole cost, and channels are
        // independent: with several, each core's worker decodes every
        // `workers`-th channel of the block.
        let workers = decode_workers(self.workers, self.cursors.len(), n);
        if workers <= 1 {
            for (c, cursor) in self.cursors.iter_mut().enumerate() {
                cursor.fill(&mut block.channel_mut(c)[..n])?;
            }
        } else {
            let mut groups: Vec<Vec<(&mut Cursor, &mut [f32])>> =
                (0..workers).map(|_| Vec::new()).collect();
            let planes = block.channels_capacity_mut();
            for (c, (cursor, plane)) in self.cursors.iter_mut().zip(planes).enumerate() {
                groups[c % workers].push((cursor, &mut plane[..n]));
            }
            std::thread::scope(|s| -> Result<()> {
                let handles: Vec<_> = groups
                    .into_iter()
                    .map(|group| {
                        s.spawn(move || -> Result<()> {
                            for (cursor, plane) in group {
                                cursor.fill(plane)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().map_err(|_| Error::Runtime {
                        msg: "a miniSEED decoding thread panicked".into(),
                    })??;
                }
                Ok(())
            })?;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_patterns_match_as_obspy_fnmatch_does() {
        for (p, n, want) in [
            ("IU.ANMO.00.BHZ", "IU.ANMO.00.BHZ", true),
            ("iu.anmo.*", "IU.ANMO.00.BHZ", true),
            ("*.BH?", "IU.ANMO.00.BHZ", true),
            ("*.BH?", "IU.ANMO.00.LHZ", false),
            ("*.BH[ZN]", "IU.ANMO.00.BHN", true),
            ("*.BH[!ZN]", "IU.ANMO.00.BHN", false),
            ("*.BH[!ZN]", "IU.ANMO.00.BHE", true),
            ("*.[A-C]HZ", "XX.S..BHZ", true),
            ("XX.S..?HZ", "XX.S..BHZ", true),
            ("*", "", true),
            ("?", "", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ] {
            assert_eq!(matches_pattern(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn gap_options_parse() {
        assert_eq!(Gaps::parse("split").unwrap(), Gaps::Split);
        assert_eq!(Gaps::parse("fill=0").unwrap(), Gaps::Fill(0.0));
        assert_eq!(Gaps::parse("fill=-1.5").unwrap(), Gaps::Fill(-1.5));
        assert_eq!(Gaps::parse("interpolate").unwrap(), Gaps::Interpolate);
        for bad in ["fill=", "fill=nan", "fill=inf", "zero", "fill"] {
            assert!(Gaps::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_blocks_are_decoded_on_the_calling_thread() {
        // Fuzzing found 1-frame blocks spawning threads per block
        // (fuzz/regressions/mseed-small-blocks-spawn-threads).
        assert_eq!(decode_workers(16, 3, 1), 1);
        assert_eq!(decode_workers(16, 3, PARALLEL_DECODE_FRAMES - 1), 1);
        assert_eq!(decode_workers(16, 3, PARALLEL_DECODE_FRAMES), 3);
        assert_eq!(decode_workers(2, 3, 1 << 20), 2);
        assert_eq!(decode_workers(8, 1, 1 << 20), 1);
    }

    #[test]
    fn intervals_intersect() {
        assert_eq!(
            intersect(&[(0, 10), (20, 30)], &[(5, 25), (28, 40)]),
            vec![(5, 10), (20, 25), (28, 30)]
        );
        assert_eq!(intersect(&[(0, 10)], &[(10, 20)]), vec![]);
    }
}
