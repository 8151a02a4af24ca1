//! Shards: one sample range of a recording, processed on its own, with the
//! same filtered samples and the same events as a run over the whole file.
//!
//! Why it exists: a recording too long for one machine's time is cut into
//! ranges that run anywhere (`sigstream process --range START:END`, or the
//! Python package's Dask and Ray drivers), each writing its slice of one
//! output file and returning its events; the events of the shards, in shard
//! order, are the whole run's. Nothing is approximate on the CPU backend:
//!
//! ```text
//!  file  |------------------------|-----------------------|--------------|
//!        0                        S                       E              N
//!  shard          |<--- halo ---->|<----- its range ----->|<- to p(E) -->|
//!                 read_start       writes its slice [S, E) in place
//!  events: onset in [p(S), p(E))   the previous shard ends at p(S), the
//!                                  next starts there: same p, same data
//! ```
//!
//! - **Halo (lead).** A shard starts reading [`ShardPlan::read_start`],
//!   before its range, by what its stages need to see before their output
//!   equals the whole run's: `taps − 1` for an FIR filter, and for the
//!   overlap-save method one more step of its FFT grid, with the start
//!   rounded down to that grid (its block pairs sit at fixed stream
//!   positions; the shard's first pair sees zeros before the shard, which
//!   changes the rounding of all its outputs, and from the second pair on it
//!   computes the very same blocks as the whole run);
//!   for an IIR filter, back to its restart before the range and that
//!   restart's warm-up ([`crate::filter::iir::Restarts`]: the streaming
//!   filter forgets its state on a fixed grid, so from a restart on the
//!   shard computes the very same bits); for the detectors,
//!   [`DetectorSpec::converge`] (nothing for the threshold, the long window
//!   and one resync period for the classic STA/LTA, 50 long windows for the
//!   recursive one, whose memory never ends). A shard at the file's start
//!   needs none.
//! - **Output.** Samples `[S, E)` of the filtered signal go to their place in
//!   one output file ([`open_shared_output`]): its header is written once,
//!   for the whole length, by whoever creates the file first (a driver, or
//!   the first shard), and each shard writes its slice with positioned
//!   writes. After the range the shard reads on, for the filter's lookahead
//!   (`taps`, and one FFT grid step for overlap-save, whose last block pair
//!   must be complete), and for detection to its end sync point.
//! - **Events, stitched exactly.** A shard reports, per channel, the events
//!   whose onset lies between two **sync points** ([`RangeSync`]): `p(t)` is
//!   the first index `≥ t` before which `max(dead, 1)` characteristic
//!   values are below `off`. There, whatever came before, ObsPy's trigger is
//!   idle with nothing pending (any event has ended, its dead window has
//!   passed), so the trigger of a shard that starts earlier and that of the
//!   whole run agree from `p` on. Shard `k` ends at `p(E_k)`, shard `k+1`
//!   starts at `p(S_{k+1})`, the same point computed from the same values:
//!   every event is reported once, by the shard where it starts. The shard
//!   keeps reading past `E` until every channel has found its `p(E)` (in
//!   quiet data, `max(dead, 1)` samples; in a long loud stretch, as long as
//!   it lasts).
//! - **Snippets.** The halo reaches back at least the window's `PRE` before
//!   the range (an event's peak is at or after its onset, at or after the
//!   range's start), and once every channel has found its end sync point
//!   the shard reads on for the window's `POST` and the filter's lookahead
//!   ([`ShardPlan::tail`]): every window is the whole run's. The shard's
//!   snippets follow its events' order; merged with them (sorted by start,
//!   channel, end), they are the whole run's.
//!
//! `--zero-phase` shards when it streams
//! ([`crate::pipeline::zerophase::Streaming::exact_seeks`]: its blocks and
//! its forward restarts sit on fixed grids); through a scratch file (too
//! little memory to stream) it is refused, its backward pass starting at the
//! file's end.
//!
//! What a shard refuses, and why: `--decimate` and `--shift` (their phase follows the
//! stream's start), `--conv-mode full|valid` (output and input indices
//! differ), `--dedup-window` and coincidence (decided across
//! channels at the driver's side of a shard boundary), a custom detector,
//! `off > on` (no quiet stretch ends an event: see [`DetectorSpec::syncs`]),
//! an IIR filter that never settles (no restart grid), and inputs that cannot seek (standard input,
//! miniSEED, FLAC).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::backend::{DetectorChoice, Job};
use crate::detect::{DetectorSpec, RangeSync};
use crate::error::{Error, Result};
use crate::filter::ConvMode;
use crate::filter::iir::Sos;
use crate::io_at::PositionalIo;
use crate::pool::Block;
use crate::sink::SignalSink;
use crate::sink::signal::{SignalFormat, check_complex, header, interleave_frames_le};

/// A range of sample indices `[start, end)` of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SampleRange {
    /// First sample.
    pub start: u64,
    /// One past the last sample.
    pub end: u64,
}

impl FromStr for SampleRange {
    type Err = String;

    /// `START:END`, two sample indices with `START < END`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (a, b) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: give START:END, two sample indices"))?;
        let parse = |v: &str, what: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?}: {what} {v:?} is not a sample index"))
        };
        let range = SampleRange {
            start: parse(a, "START")?,
            end: parse(b, "END")?,
        };
        if range.start >= range.end {
            return Err(format!("{s:?}: START must be below END"));
        }
        Ok(range)
    }
}

impl SampleRange {
    /// `frames` samples cut into `shards` ranges of nearly equal length (at
    /// most `frames` of them), in order.
    pub fn split(frames: u64, shards: usize) -> Vec<SampleRange> {
        let n = (shards.max(1) as u64).min(frames.max(1));
        (0..n)
            .map(|k| SampleRange {
                start: frames * k / n,
                end: frames * (k + 1) / n,
            })
            .filter(|r| r.start < r.end)
            .collect()
    }
}

/// How one shard runs.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    /// The shard's range of output samples (and of events' onsets, up to
    /// the sync points).
    pub range: SampleRange,
    /// Samples in the stream.
    pub frames: u64,
    /// The first sample read: the range's start less the halo, on the FIR's
    /// block grid.
    pub read_start: u64,
    /// The first index at which the detectors' characteristic function
    /// equals the whole run's.
    pub exact_from: u64,
    /// Samples read past the range's end for the filter's output there
    /// (detection may read further, to its sync points).
    pub lookahead: u64,
    /// Samples read on once every channel has found its end sync point:
    /// with snippets, the windows' `POST` after the last event's peak (and
    /// the filter's lookahead for the output there); else 0.
    pub tail: u64,
}

/// Refusals that depend on the job alone: what cannot be cut into shards
/// (see the module docs).
///
/// # Errors
/// [`Error::Usage`] naming the option and why.
pub fn check(job: &Job) -> Result<()> {
    let refuse = |what: &str, why: &str| Err(Error::usage(format!("--range with {what}: {why}")));
    if job.decimate.is_some_and(|n| n > 1) {
        return refuse(
            "--decimate",
            "the decimated grid follows the stream's start; decimate the merged output",
        );
    }
    if job.shift.is_some() {
        return refuse("--shift", "the mixer's phase follows the stream's start");
    }
    if job.kernel.is_some() && job.conv_mode != ConvMode::Same {
        return refuse(
            "--conv-mode full or valid",
            "a shard's output indices are its input's (--conv-mode same)",
        );
    }
    if job.dedup.is_some() {
        return refuse(
            "--dedup-window",
            "de-duplication decides across channels over a window that a shard boundary may split",
        );
    }
    match &job.detector {
        Some(DetectorChoice::Custom(_)) => {
            return refuse(
                "a custom detector",
                "its events cannot be cut at sync points",
            );
        }
        Some(d) if d.specs().iter().any(|s| !s.syncs()) => {
            return refuse(
                "--off above --on",
                "an event then lasts until a later run above --off, so no quiet stretch ends it and a shard cannot know where the next one starts",
            );
        }
        _ => {}
    }
    if let Some(sos) = &job.iir
        && sos.restarts().is_none()
    {
        let why = sos
            .settling()
            .err()
            .map_or_else(String::new, |e| e.to_string());
        return refuse(
            "this IIR filter",
            &format!("{why}, so it has no restart grid and a shard cannot reproduce its state"),
        );
    }
    Ok(())
}

/// The FFT grid step of the job's filter on `channels` planes (1 when it
/// convolves directly or has no FIR).
fn fir_grid(job: &Job, channels: usize) -> u64 {
    job.kernel.as_ref().map_or(1, |k| {
        let method = job
            .fir_method
            .unwrap_or_else(|| crate::backend::cpu::fir::FirMethod::choose_for(k.len(), channels));
        crate::backend::cpu::fir::grid_of(k.len(), method) as u64
    })
}

/// Plans the shard `range` of a stream of `frames` samples on `channels`
/// planes for `job` (checked with [`check`]).
///
/// # Errors
/// [`check`]'s, and [`Error::Usage`] for a range past the stream's end.
pub fn plan(job: &Job, channels: usize, frames: u64, range: SampleRange) -> Result<ShardPlan> {
    check(job)?;
    if range.end > frames {
        return Err(Error::usage(format!(
            "--range {}:{}: the stream has {frames} samples",
            range.start, range.end
        )));
    }
    let taps = job.taps() as u64;
    // Overlap-save: the first block pair a shard computes holds zeros for
    // the samples before its start, which changes the rounding of all its
    // outputs; from the second pair on, the blocks are the whole run's.
    let grid = fir_grid(job, channels);
    let fft_lead = if grid > 1 { grid } else { 0 };
    let fir_lead = (taps - 1) + fft_lead;
    let quiet = |s: &DetectorSpec| s.dead().unwrap_or(0).max(1);
    let detect_lead = job.detector.as_ref().map_or(0, |d| {
        d.specs()
            .iter()
            .map(|s| s.converge() - quiet(s))
            .max()
            .unwrap_or(0)
    });
    let quiet_max = job
        .detector
        .as_ref()
        .map_or(1, |d| d.specs().iter().map(quiet).max().unwrap_or(1));
    // The filter's output must equal the whole run's from `need` on: where
    // the detectors start, and where the snippet window of an event at the
    // range's start does (its peak is at or after its onset, which is at or
    // after the start).
    let pre = job.snippets.as_ref().map_or(0, |s| s.pre as u64);
    let need = range
        .start
        .saturating_sub((detect_lead + quiet_max).max(pre));
    let restarts = job.iir.as_ref().and_then(Sos::restarts);
    let (read_start, filter_exact) = match restarts {
        // The IIR's output is the whole run's from the restart at or
        // before `need`, if the shard reads its warm-up (and the FIR's
        // history before that).
        Some(r) => {
            let take_over = need / r.grid * r.grid;
            let read = (take_over - r.warm.min(take_over)).saturating_sub(fir_lead);
            (read / grid * grid, take_over)
        }
        None => {
            let read = need.saturating_sub(fir_lead) / grid * grid;
            (read, read + fir_lead)
        }
    };
    let exact_from = if read_start == 0 {
        0
    } else {
        filter_exact + detect_lead
    };
    debug_assert!(read_start == 0 || exact_from + quiet_max <= range.start);
    Ok(ShardPlan {
        range,
        frames,
        read_start,
        exact_from,
        // The block pair holding the range's last output must be complete
        // before the shard stops: a pair finished early, padded with
        // zeros, rounds differently.
        lookahead: taps + fft_lead,
        tail: job
            .snippets
            .as_ref()
            .map_or(0, |s| s.post as u64 + taps + fft_lead),
    })
}

impl ShardPlan {
    /// The job as the shard runs it: its detectors follow the shard's sync
    /// points, in the indices of the samples it reads (0 at
    /// [`ShardPlan::read_start`]). Returns the job and the counter of
    /// channels that have found their end sync point.
    pub fn job(&self, job: &Job) -> (Job, Arc<AtomicUsize>) {
        let done = Arc::new(AtomicUsize::new(0));
        let mut job = job.clone();
        job.origin = self.read_start;
        if let Some(inner) = job.detector.take() {
            let base = self.read_start;
            let sync = RangeSync {
                exact_from: self.exact_from - base,
                start: (self.range.start > 0).then(|| self.range.start - base),
                end: (self.range.end < self.frames).then(|| self.range.end - base),
                done: done.clone(),
            };
            job.detector = Some(DetectorChoice::Ranged {
                inner: Arc::new(inner),
                origin: base,
                sync,
            });
        }
        (job, done)
    }

    /// Whether the shard may stop reading once `read` samples (from
    /// [`ShardPlan::read_start`]) are in: its output slice is complete,
    /// every one of its `lanes` detected channels (none: 0) has found its
    /// end sync point (`synced` of them), and [`ShardPlan::tail`] samples
    /// have come in since they all had. `synced_at` keeps the samples read
    /// when that was first seen (the caller's, `None` to begin with).
    pub fn complete(
        &self,
        read: u64,
        lanes: usize,
        synced: usize,
        synced_at: &mut Option<u64>,
    ) -> bool {
        let needed = (self.range.end + self.lookahead).min(self.frames) - self.read_start;
        if read < needed {
            return false;
        }
        if self.range.end == self.frames {
            return true;
        }
        if synced < lanes {
            return false;
        }
        let at = *synced_at.get_or_insert(read);
        read >= at + self.tail
    }
}

/// Opens `path`, the output shared by the shards of a stream of `frames`
/// samples on `channels` planes, for the shard `plan`: creates it, with its
/// header for the whole length, if it does not exist yet (atomically: a
/// complete file appears under its name, or none), or checks that the file
/// there is that output (its size and header); then writes the range's
/// samples to their place as they come.
///
/// # Errors
/// [`Error::Usage`] for a file there that is not this output, or a format
/// that is not a file (`-`); [`Error::Open`]/[`Error::Io`] when the file
/// cannot be created or written.
pub fn open_shared_output(
    path: &Path,
    channels: usize,
    complex: bool,
    sample_rate: Option<f64>,
    plan: &ShardPlan,
) -> Result<Box<dyn SignalSink>> {
    let (head, size) = create_output(path, channels, complex, sample_rate, plan.frames)?;
    let frame_bytes = 4 * channels as u64;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::open(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut found = vec![0u8; head.len()];
    let matches = len == size
        && file
            .read_exact_at(&mut found, 0)
            .map(|()| found == head)
            .unwrap_or(false);
    if !matches {
        return Err(Error::usage(format!(
            "{}: exists and is not this input's output ({} bytes, with its header): --range writes into the output of the same input and options, or creates it; remove the file or name another",
            path.display(),
            size
        )));
    }
    Ok(Box::new(SharedOutput {
        file,
        path: path.to_path_buf(),
        data_at: head.len() as u64,
        frame_bytes,
        range: plan.range,
        next: plan.read_start,
        bytes: Vec::new(),
    }))
}

/// Creates the output shared by the shards of a stream of `frames` samples
/// on `channels` planes at `path` (format from its extension: `.npy`,
/// `.wav`, raw), with its header for the whole length and room for every
/// sample, unless a file is there already (a driver calls it before the
/// shards run; each shard calls it too). Returns the header and the size.
///
/// # Errors
/// [`Error::Usage`] for a stream target or a complex signal to WAV;
/// [`Error::Open`]/[`Error::Io`] when the file cannot be made.
pub fn create_output(
    path: &Path,
    channels: usize,
    complex: bool,
    sample_rate: Option<f64>,
    frames: u64,
) -> Result<(Vec<u8>, u64)> {
    let format = SignalFormat::from_path(path);
    if crate::sink::is_stream_target(path) {
        return Err(Error::usage(format!(
            "{}: --range writes its slice in place, into a regular file",
            path.display()
        )));
    }
    check_complex(path, format, complex)?;
    let head = header(format, frames, channels, complex, sample_rate);
    let size = head.len() as u64 + frames * 4 * channels as u64;
    create_shared(path, &head, size)?;
    Ok((head, size))
}

/// Creates `path` holding `head` and `size` bytes in all, unless a file is
/// there: written under a temporary name beside it and linked into place,
/// which fails, leaving the other's, when another shard got there first.
fn create_shared(path: &Path, head: &[u8], size: u64) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let mut tmp = crate::sink::AtomicFile::create(path)?;
    {
        use std::io::Write;
        let f = tmp.file();
        f.write_all(head).map_err(|e| Error::io(path, e))?;
        f.set_len(size).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))?;
    }
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::open(path, e)),
    }
    // `tmp` is removed when dropped.
}

/// A shard's slice of the shared output.
struct SharedOutput {
    file: std::fs::File,
    path: PathBuf,
    /// Byte offset of sample 0.
    data_at: u64,
    frame_bytes: u64,
    range: SampleRange,
    /// Stream index of the next frame to arrive.
    next: u64,
    bytes: Vec<u8>,
}

impl SignalSink for SharedOutput {
    fn write(&mut self, block: &Block) -> Result<()> {
        let n = block.frames() as u64;
        let (first, last) = (self.next, self.next + n);
        self.next = last;
        let (from, to) = (first.max(self.range.start), last.min(self.range.end));
        if from >= to {
            return Ok(());
        }
        let need = ((to - from) * self.frame_bytes) as usize;
        if self.bytes.len() < need {
            // Once, for the largest block the pool hands out.
            let most = block.capacity() as u64 * self.frame_bytes;
            self.bytes.resize(need.max(most as usize), 0);
        }
        let bytes = &mut self.bytes[..need];
        interleave_frames_le(block, (from - first) as usize..(to - first) as usize, bytes);
        self.file
            .write_all_at(bytes, self.data_at + from * self.frame_bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}
