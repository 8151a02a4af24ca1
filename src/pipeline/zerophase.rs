//! Zero-phase IIR filtering (`--zero-phase`) of a file of any size, in
//! constant memory: `scipy.signal.sosfiltfilt`, or ObsPy's
//! `zerophase=True`, out of core.
//!
//! Two ways, since the backward pass starts at the last sample and the
//! whole signal does not fit in memory:
//!
//! - [`Streaming`], the usual one: the backward pass restarts from rest a
//!   settling length past the end of each block of the output, where the
//!   cascade has forgotten its start (to 10^−20 of the scale), so the
//!   result streams in blocks with no scratch file and no second read of
//!   the input. Its memory is a block and its warm-up for every channel
//!   ([`StreamPlan`]).
//! - [`filtfilt`], when the memory limit leaves too short a block for that
//!   (a slow filter over many channels): two passes through a scratch
//!   file, as the out-of-core FFT does ([`crate::spectral::ooc_fft`]):
//!
//! 1. **forward**: the input is read in order and filtered, with
//!    `sosfiltfilt`'s odd extension of `padlen` samples at each end
//!    ([`Pad::Odd`], the default: `2·x[0] − x[padlen..1]` before,
//!    `2·x[N−1] − x[N−2..N−1−padlen]` after) and its initial state
//!    `sosfilt_zi · ext[0]`, or with neither ([`Pad::None`], ObsPy's
//!    `zerophase=True`: `sosfilt` from rest, then again on the reversed
//!    result). The result goes to a scratch file (interleaved `f32`).
//! 2. **backward**: the scratch file is read back to front, one window at a
//!    time, each window's frames reversed, filtered (from
//!    `sosfilt_zi · y[last]`, or from rest), reversed again and written
//!    back in place, with positional reads and writes as the out-of-core
//!    FFT's passes do.
//! 3. The frames of the input's span (without the pads) are then an
//!    ordinary input ([`Filtered::source`]), read through the windowed map:
//!    the common reference, detection, decimation and the outputs stream
//!    over it as over any file.
//!
//! The scratch file is an unnamed temporary file (`O_TMPFILE` where the OS
//! has it) in the output's directory: it has no name to leave behind, and
//! the OS reclaims it when the run ends, however it ends (an error, a
//! signal, a kill).
//!
//! Every sample is filtered in `f64` as `sosfilt` does and stored as `f32`
//! between the passes (scipy keeps `f64`: the difference is one `f32`
//! rounding of the intermediate, far inside the 1e-5 the results are held
//! to). Nothing depends on the window or chunk sizes: the state is carried
//! sample by sample (and in [`Streaming`], the restarts are at multiples of
//! its block, which the chunk size does not set).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::filter::iir::{Restarts, Sos, SosBank};
use crate::io_at::PositionalIo;
use crate::pool::Block;
use crate::source::{ChunkSource, SignalInfo};

/// How the ends are padded before the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pad {
    /// `sosfiltfilt`'s default: odd extension of `padlen` samples
    /// ([`Sos::padlen`]), each pass started at its steady state.
    Odd,
    /// ObsPy's `zerophase=True`: no padding, each pass from rest.
    None,
}

/// Bytes per stored sample.
const F32_BYTES: u64 = 4;

/// The zero-phase result in its scratch file.
#[derive(Debug)]
pub struct Filtered {
    file: File,
    /// Frames of the input (the result's frames), after `pad` frames of
    /// padding in the file.
    frames: u64,
    pad: u64,
    channels: usize,
    /// Where the file lies (for messages; it has no name).
    dir: PathBuf,
}

impl Filtered {
    /// Frames of the result.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of scratch file used.
    pub fn scratch_bytes(&self) -> u64 {
        (self.frames + 2 * self.pad)
            .saturating_mul(self.channels as u64)
            .saturating_mul(F32_BYTES)
    }

    /// The result as an input with `like`'s description (rate, start time,
    /// names), read through the windowed map.
    ///
    /// # Errors
    /// When the scratch file cannot be read.
    pub fn source(&self, like: &SignalInfo) -> Result<Box<dyn ChunkSource>> {
        let file = self.file.try_clone().map_err(|e| Error::io(&self.dir, e))?;
        let frame_bytes = self.channels as u64 * F32_BYTES;
        crate::source::scratch_source(file, like, self.pad * frame_bytes, self.frames)
    }
}

/// Bytes [`filtfilt`] allocates for `channels` channels in windows of
/// `window` frames: the block read, two filtered windows (one filtered
/// while the other is written), the writer's and the backward reader's
/// interleaved windows, the reversed window, the ends kept for the pads,
/// and the filter state.
pub fn bytes(sos: &Sos, channels: usize, window: usize) -> u64 {
    let ch = channels as u64;
    let w = window as u64;
    let planes = w.saturating_mul(ch).saturating_mul(F32_BYTES);
    let ends = (sos.padlen() as u64 + 1)
        .saturating_mul(ch)
        .saturating_mul(5 * F32_BYTES);
    // The source's block, two filtered windows in flight, the writer's and
    // the backward reader's interleaved windows, the reversed window.
    planes
        .saturating_mul(6)
        .saturating_add(ends)
        .saturating_add(SosBank::state_bytes(sos, channels))
}

/// Filters all of `source` forwards then backwards with `sos` into a
/// scratch file in `dir` (see the module docs), `window` frames at a time,
/// channel groups on `pool`'s threads.
///
/// # Errors
/// [`Error::Format`] for an input of `padlen` frames or fewer with
/// [`Pad::Odd`] (as `sosfiltfilt` refuses it), or an empty one;
/// [`Error::Io`] when the scratch file cannot be made, written or read;
/// the source's own errors.
pub fn filtfilt(
    source: &mut dyn ChunkSource,
    sos: &Sos,
    pad: Pad,
    dir: &Path,
    window: usize,
    pool: Option<&rayon::ThreadPool>,
) -> Result<Filtered> {
    let info = source.info().clone();
    let channels = info.channels;
    let window = window.max(1);
    let padlen = match pad {
        Pad::Odd => sos.padlen(),
        Pad::None => 0,
    };
    let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let scratch_name = dir.join("<zero-phase scratch>");
    let frame_bytes = channels * F32_BYTES as usize;
    let zi = sos.zi();

    // 1. Forward, with the pads.
    let mut bank = SosBank::new(sos.clone(), channels);
    let mut block = Block::new(channels, window);
    // The first `padlen + 1` frames (the left pad's source), then the last
    // `padlen + 1` (a ring; the right pad's).
    let keep = padlen + 1;
    let cap = window.max(padlen + keep);
    let mut head: Vec<Vec<f32>> = vec![Vec::with_capacity(keep); channels];
    let mut tail = vec![vec![0.0f32; keep]; channels];
    let mut seen: u64 = 0;
    let mut written: u64 = 0;
    let mut started = false;
    let forward = |spool: &Spool| -> Result<()> {
        let write = |planes: Vec<Vec<f32>>, n: usize, at: &mut u64| -> Result<()> {
            spool.write(planes, n, *at, false)?;
            *at += n as u64;
            Ok(())
        };
        loop {
            let n = source.read_block(&mut block)?;
            if n == 0 {
                break;
            }
            keep_last(&mut tail, &block);
            seen += n as u64;
            let mut from = 0;
            if !started {
                let take = (keep - head[0].len()).min(n);
                for (c, h) in head.iter_mut().enumerate() {
                    h.extend_from_slice(&block.channel(c)[..take]);
                }
                from = take;
                if head[0].len() < keep {
                    continue;
                }
                started = true;
                // The left pad, 2·x0 − x[padlen..1], from the steady state of
                // its first value (or from rest without padding).
                let mut ext = vec![vec![0.0f32; padlen + keep]; channels];
                for (c, h) in head.iter().enumerate() {
                    let x0 = h[0];
                    for k in 0..padlen {
                        ext[c][k] = pad_value(x0, h[padlen - k]);
                    }
                    ext[c][padlen..].copy_from_slice(h);
                    if pad == Pad::Odd {
                        bank.set_state(c, &zi, f64::from(ext[c][0]));
                    }
                }
                let mut out = spool.buffer()?;
                filter(&mut bank, &ext, padlen + keep, &mut out, pool);
                write(out, padlen + keep, &mut written)?;
            }
            if from < n {
                let mut out = spool.buffer()?;
                let rest: Vec<&[f32]> = (0..channels).map(|c| &block.channel(c)[from..]).collect();
                let mut outs: Vec<&mut [f32]> =
                    out.iter_mut().map(|o| &mut o[..n - from]).collect();
                bank.process(&rest, &mut outs, pool);
                write(out, n - from, &mut written)?;
            }
        }
        if seen == 0 {
            return Err(Error::format(&info.path, "no samples to filter"));
        }
        if !started {
            return Err(Error::format(
                &info.path,
                format!(
                    "{seen} samples: zero-phase filtering with odd padding needs more than padlen = {padlen} (3 × (2 × {} sections + 1)); use --pad none, or a longer input",
                    sos.len()
                ),
            ));
        }
        if padlen > 0 {
            // The right pad, 2·x[N−1] − x[N−2 .. N−1−padlen].
            let at = |c: usize, back: u64| tail[c][keep - 1 - back as usize];
            let mut ext = vec![vec![0.0f32; padlen]; channels];
            for (c, e) in ext.iter_mut().enumerate() {
                let last = at(c, 0);
                for (k, v) in e.iter_mut().enumerate() {
                    *v = pad_value(last, at(c, k as u64 + 1));
                }
            }
            let mut out = spool.buffer()?;
            filter(&mut bank, &ext, padlen, &mut out, pool);
            write(out, padlen, &mut written)?;
        }
        Ok(())
    };
    with_writer(&file, &scratch_name, channels, cap, forward)?;

    // 2. Backward, in place, from the last frame down to the first of the
    // input's span (the left pad's backward output is not needed).
    let total = written;
    let mut bank = SosBank::new(sos.clone(), channels);
    // One window of interleaved frames, as stored.
    let mut frames = vec![0.0f32; cap * channels];
    if pad == Pad::Odd {
        let last = &mut frames[..channels];
        file.read_exact_at(
            bytemuck::cast_slice_mut(last),
            (total - 1) * frame_bytes as u64,
        )
        .map_err(|e| Error::io(&scratch_name, e))?;
        from_le(last);
        for (c, &v) in last.iter().enumerate() {
            bank.set_state(c, &zi, f64::from(v));
        }
    }
    let mut rev = vec![vec![0.0f32; window]; channels];
    let stop = padlen as u64;
    let backward = |spool: &Spool| -> Result<()> {
        let mut end = total;
        while end > stop {
            let start = stop.max(end.saturating_sub(window as u64));
            let n = (end - start) as usize;
            let buf = &mut frames[..n * channels];
            file.read_exact_at(bytemuck::cast_slice_mut(buf), start * frame_bytes as u64)
                .map_err(|e| Error::io(&scratch_name, e))?;
            from_le(buf);
            for (j, frame) in buf.chunks_exact(channels).rev().enumerate() {
                for (r, &v) in rev.iter_mut().zip(frame) {
                    r[j] = v;
                }
            }
            let mut out = spool.buffer()?;
            filter(&mut bank, &rev, n, &mut out, pool);
            spool.write(out, n, start, true)?;
            end = start;
        }
        Ok(())
    };
    with_writer(&file, &scratch_name, channels, cap, backward)?;
    Ok(Filtered {
        file,
        frames: seen,
        pad: padlen as u64,
        channels,
        dir: dir.to_path_buf(),
    })
}

/// Keeps in each of `tail` (one per channel, of equal lengths) the last
/// samples seen, oldest first: those of `block`'s channel after the older
/// ones still there.
fn keep_last(tail: &mut [Vec<f32>], block: &Block) {
    let n = block.frames();
    for (c, last) in tail.iter_mut().enumerate() {
        let keep = last.len();
        let x = block.channel(c);
        if n >= keep {
            last.copy_from_slice(&x[n - keep..]);
        } else {
            last.rotate_left(n);
            last[keep - n..].copy_from_slice(x);
        }
    }
}

/// One odd-extension sample, `2·end − x`, as scipy's `odd_ext` computes
/// it (in `f64`: the pads are filtered in `f64` like the rest).
fn pad_value(end: f32, x: f32) -> f32 {
    (2.0 * f64::from(end) - f64::from(x)) as f32
}

/// Filters the first `n` samples of each of `planes` into `out`.
fn filter(
    bank: &mut SosBank,
    planes: &[Vec<f32>],
    n: usize,
    out: &mut [Vec<f32>],
    pool: Option<&rayon::ThreadPool>,
) {
    let ins: Vec<&[f32]> = planes.iter().map(|p| &p[..n]).collect();
    let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|o| &mut o[..n]).collect();
    bank.process(&ins, &mut outs, pool);
}

/// A window of filtered frames on its way to the scratch file: planar,
/// `n` frames for frame `at` on, in reverse order when `reversed`.
struct Piece {
    planes: Vec<Vec<f32>>,
    n: usize,
    at: u64,
    reversed: bool,
}

/// The filtering side of [`with_writer`]: free planar buffers, and where
/// filled ones go.
struct Spool {
    tx: std::sync::mpsc::SyncSender<Piece>,
    free: std::sync::mpsc::Receiver<Vec<Vec<f32>>>,
}

impl Spool {
    /// A free buffer (one of two; waits for the writer to return one).
    fn buffer(&self) -> Result<Vec<Vec<f32>>> {
        self.free.recv().map_err(|_| stopped())
    }

    /// Hands `planes` to the writer.
    fn write(&self, planes: Vec<Vec<f32>>, n: usize, at: u64, reversed: bool) -> Result<()> {
        self.tx
            .send(Piece {
                planes,
                n,
                at,
                reversed,
            })
            .map_err(|_| stopped())
    }
}

/// The error of a writer that has stopped (its own error is reported
/// instead by [`with_writer`]).
fn stopped() -> Error {
    Error::Runtime {
        msg: "the zero-phase scratch writer stopped".into(),
    }
}

/// Runs `fill` (a pass that filters windows into buffers of `cap` frames
/// of `channels` channels) while a thread of its own interleaves the
/// filled buffers and writes them to `file`, so that the writing (a copy
/// into the page cache, as costly as the filtering) overlaps the
/// filtering of the next window. Two buffers circulate.
///
/// # Errors
/// The writer's error (the scratch file cannot be written), else `fill`'s.
fn with_writer(
    file: &File,
    name: &Path,
    channels: usize,
    cap: usize,
    fill: impl FnOnce(&Spool) -> Result<()>,
) -> Result<()> {
    let frame_bytes = channels as u64 * F32_BYTES;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(1);
        let (free_tx, free_rx) = std::sync::mpsc::sync_channel(2);
        for _ in 0..2 {
            free_tx
                .send(vec![vec![0.0f32; cap]; channels])
                .expect("room for two buffers");
        }
        let writer = std::thread::Builder::new()
            .name("sigstream-zerophase-writer".into())
            .spawn_scoped(scope, move || -> Result<()> {
                let mut frames = vec![0.0f32; cap * channels];
                for p in rx {
                    let buf = &mut frames[..p.n * channels];
                    if p.reversed {
                        for (j, frame) in buf.chunks_exact_mut(channels).rev().enumerate() {
                            for (v, o) in frame.iter_mut().zip(&p.planes) {
                                *v = o[j];
                            }
                        }
                    } else {
                        interleave(&p.planes, p.n, buf);
                    }
                    file.write_all_at(as_le_bytes(buf), p.at * frame_bytes)
                        .map_err(|e| Error::io(name, e))?;
                    // The filter may have finished: then nobody takes it.
                    let _ = free_tx.send(p.planes);
                }
                Ok(())
            })
            .map_err(|e| Error::Runtime {
                msg: format!("cannot start the zero-phase writer thread: {e}"),
            })?;
        let result = fill(&Spool { tx, free: free_rx });
        // `fill`'s Spool is gone: the writer sees the end and finishes.
        match writer.join() {
            Ok(Ok(())) => result,
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Runtime {
                msg: "the zero-phase scratch writer panicked".into(),
            }),
        }
    })
}

/// Interleaves the first `n` samples of `planes` into `frames`.
fn interleave(planes: &[Vec<f32>], n: usize, frames: &mut [f32]) {
    let channels = planes.len();
    for (i, frame) in frames[..n * channels]
        .chunks_exact_mut(channels)
        .enumerate()
    {
        for (v, p) in frame.iter_mut().zip(planes) {
            *v = p[i];
        }
    }
}

/// `values` as the little-endian bytes the scratch file holds (swapped in
/// place on a big-endian machine; a no-op elsewhere).
fn as_le_bytes(values: &mut [f32]) -> &[u8] {
    if cfg!(target_endian = "big") {
        for v in values.iter_mut() {
            *v = f32::from_bits(v.to_bits().swap_bytes());
        }
    }
    bytemuck::cast_slice(values)
}

/// Little-endian values read into `values` as native ones (see
/// [`as_le_bytes`]).
fn from_le(values: &mut [f32]) {
    if cfg!(target_endian = "big") {
        for v in values.iter_mut() {
            *v = f32::from_bits(v.to_bits().swap_bytes());
        }
    }
}

/// How [`Streaming`] runs: output blocks of `grid` frames, each filtered
/// backwards from `warm` frames past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPlan {
    /// Frames per output block (a power of two).
    pub grid: usize,
    /// Frames the backward pass runs before each block's last frame, from
    /// rest: the cascade's settling length ([`Sos::settling`]).
    pub warm: usize,
    /// Frames per read of the input.
    pub read: usize,
}

/// Largest output block tried: 2^16 frames.
const MAX_GRID: usize = 1 << 16;

/// Output blocks are at least this many times the warm-up when the memory
/// allows (the backward pass then does at most 1/4 more work).
const GRID_PER_WARM: usize = 4;

/// Frames per read of the input by [`Streaming`].
const STREAM_READ: usize = 1024;

impl StreamPlan {
    /// The plan for `channels` channels within `room` bytes: the largest
    /// power-of-two block up to `max(4·warm, 4096)` (and [`MAX_GRID`])
    /// whose buffers fit, or `None` when the cascade does not settle or the
    /// block would be shorter than half its warm-up (more than three times
    /// the backward work: then the two passes through a scratch file,
    /// [`filtfilt`], cost less).
    pub fn fit(sos: &Sos, channels: usize, room: u64) -> Option<StreamPlan> {
        let warm = usize::try_from(sos.settling().ok()?).ok()?;
        let want = warm
            .saturating_mul(GRID_PER_WARM)
            .max(4096)
            .checked_next_power_of_two()?
            .min(MAX_GRID);
        let mut plan = StreamPlan {
            grid: want,
            warm,
            read: STREAM_READ,
        };
        while plan.bytes(sos, channels) > room && plan.grid > 1 {
            plan.grid /= 2;
        }
        (plan.bytes(sos, channels) <= room && plan.grid >= (warm / 2).max(256)).then_some(plan)
    }

    /// Bytes [`Streaming`] holds: the forward results of a block, its
    /// warm-up and the right pad, the input block read, the next one read
    /// ahead meanwhile, one as large for a seek's warm-up, and the two
    /// filter states.
    pub fn bytes(&self, sos: &Sos, channels: usize) -> u64 {
        let frames = (self.grid as u64)
            .saturating_add(self.warm as u64)
            .saturating_add(sos.padlen() as u64 + 1)
            .saturating_add(3 * self.read as u64);
        // The first and last `padlen + 1` frames kept for the pads, and
        // the left pad's extension and results (`2·padlen + 1` each).
        let ends = (sos.padlen() as u64 + 1)
            .saturating_mul(channels as u64)
            .saturating_mul(6 * F32_BYTES);
        frames
            .saturating_mul(channels as u64)
            .saturating_mul(F32_BYTES)
            .saturating_add(ends)
            .saturating_add(SosBank::state_bytes(sos, channels).saturating_mul(2))
    }
}

/// `sosfiltfilt` as a stream, without a scratch file: the input is read
/// once, in order, and filtered forwards as `sosfiltfilt` does (the odd
/// pads, the steady-state start); the result comes out in blocks of
/// `grid` frames. Block `k` (frames `k·grid ..`) is filtered backwards
/// from rest starting `warm` frames past its end, where the cascade has
/// forgotten its start (its impulse response has fallen below 10^−20 of
/// its peak, [`Sos::settling`]): the backward state at the block's end is
/// then the exact one up to 10^−20 of the signal's scale, far below one
/// `f32` rounding. A block whose warm-up would reach the end of the
/// (padded) input is filtered from that end exactly as `sosfiltfilt` does
/// (from `sosfilt_zi · y[last]`, or from rest without padding).
///
/// The restart points are multiples of `grid` (the plan's, which only the
/// cascade, the channel count and the memory limit set), so the result does
/// not depend on the chunk size or the thread count.
///
/// The forward pass restarts on the cascade's own grid ([`Sos::restarts`],
/// as the streaming `sosfilt` does), so that a shard ([`crate::shard`])
/// can reproduce it: from each take-over on, its values are a function of
/// the input from that take-over's warm-up on.
///
/// [`ChunkSource::seek`] works two ways:
/// - by default (the noise estimate's random access), it starts the blocks
///   at the frame asked for and the forward pass from rest `warm` frames
///   before it (or from the input's start, exactly, when that is nearer):
///   the same values up to the same 10^−20;
/// - after [`Streaming::exact_seeks`] (a shard's start), it starts at the
///   block holding the frame, and the forward pass at the warm-up of the
///   last take-over at or before that block (or at the input's start when
///   there is none): every value it serves is then the one a read from the
///   start gives, bit for bit. It costs up to a restart grid, a warm-up and
///   a block of forward filtering, once.
pub struct Streaming<'s> {
    input: Box<dyn ChunkSource + 's>,
    info: SignalInfo,
    sos: Sos,
    pad: Pad,
    padlen: usize,
    plan: StreamPlan,
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    forward: SosBank,
    backward: SosBank,
    /// Forward results for frames `base ..` (`have` of them; after the
    /// input's end, the right pad's too), then, once a block is filtered
    /// backwards, its result in place.
    buf: Option<Block>,
    base: u64,
    have: usize,
    /// Frames of `buf` that are the current block's result, and how many
    /// of them were handed out.
    ready: usize,
    served: usize,
    /// The input block, and its frames not yet filtered forwards.
    block: Option<Block>,
    /// The input's next block, read on another worker while the current
    /// one's last frames were filtered (the deinterleave, serial, then no
    /// longer waits for the filter, nor the filter for it); `read_ahead`
    /// while it holds a read not yet taken (its frames, 0 at the end).
    ahead: Option<Block>,
    read_ahead: bool,
    /// Where a seek's warm-up results go (dropped): a block as large.
    sink: Option<Block>,
    pending: std::ops::Range<usize>,
    /// The input's first `padlen + 1` frames (for the left pad), then its
    /// last `padlen + 1` (a ring, oldest first; for the right pad).
    head: Vec<Vec<f32>>,
    tail: Vec<Vec<f32>>,
    /// Input frames read, and forward results made, since the forward
    /// pass began at frame `origin`.
    seen: u64,
    origin: u64,
    started: bool,
    /// The input has ended (its frame count is `origin + seen`).
    ended: bool,
    /// Forward results still to drop (a seek's warm-up).
    skip: usize,
    /// Frames of the first block after a seek not to serve (an exact seek
    /// starts at its block's start).
    discard: usize,
    /// The forward pass's restart grid, and whether seeks are exact.
    restarts: Restarts,
    exact: bool,
}

impl std::fmt::Debug for Streaming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("path", &self.info.path)
            .field("plan", &self.plan)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl<'s> Streaming<'s> {
    /// `input` filtered forwards and backwards with `sos` as it is read,
    /// by `plan` (from [`StreamPlan::fit`]); channel groups on `threads`
    /// threads. Nothing is allocated before the first read.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the threads cannot be started.
    pub fn new(
        input: Box<dyn ChunkSource + 's>,
        sos: &Sos,
        pad: Pad,
        plan: StreamPlan,
        threads: usize,
    ) -> Result<Self> {
        let info = input.info().clone();
        let channels = info.channels;
        let restarts = sos.restarts().ok_or_else(|| {
            Error::usage(format!(
                "{}: this IIR filter does not settle: zero-phase filtering needs the two passes through a scratch file",
                info.path.display()
            ))
        })?;
        let pool = if threads > 1 && channels > crate::filter::iir::LANES {
            Some(crate::pipeline::worker_pool(threads)?)
        } else {
            None
        };
        let padlen = match pad {
            Pad::Odd => sos.padlen(),
            Pad::None => 0,
        };
        Ok(Streaming {
            input,
            info,
            sos: sos.clone(),
            pad,
            padlen,
            plan,
            pool,
            forward: SosBank::new(sos.clone(), channels).with_restarts(restarts, 0),
            backward: SosBank::new(sos.clone(), channels),
            buf: None,
            base: 0,
            have: 0,
            ready: 0,
            served: 0,
            block: None,
            sink: None,
            pending: 0..0,
            head: Vec::new(),
            tail: Vec::new(),
            seen: 0,
            origin: 0,
            started: false,
            ended: false,
            skip: 0,
            ahead: None,
            read_ahead: false,
            discard: 0,
            restarts,
            exact: false,
        })
    }

    /// The same stream, its forward pass restarting on `restarts` instead
    /// of the cascade's own grid (tests: a grid short enough for a short
    /// signal).
    #[cfg(test)]
    fn with_forward_restarts(mut self, restarts: Restarts) -> Self {
        self.forward =
            SosBank::new(self.sos.clone(), self.info.channels).with_restarts(restarts, 0);
        self.restarts = restarts;
        self
    }

    /// The same stream, its seeks exact (see the type's docs): for a shard,
    /// whose output must be the whole run's bit for bit.
    #[must_use]
    pub fn exact_seeks(mut self) -> Self {
        self.exact = true;
        self
    }

    /// Frames of the forward buffer: a block, its warm-up, the right pad.
    fn capacity(&self) -> usize {
        self.plan.grid + self.plan.warm + self.padlen + 1
    }

    /// Forward results until the buffer holds the current block and its
    /// warm-up, or the input (and its right pad) has ended.
    fn fill(&mut self) -> Result<()> {
        let channels = self.info.channels;
        let keep = self.padlen + 1;
        let cap = self.capacity();
        let target = self.plan.grid + self.plan.warm;
        let buf = self.buf.get_or_insert_with(|| Block::new(channels, cap));
        let block = self
            .block
            .get_or_insert_with(|| Block::new(channels, self.plan.read));
        while self.have < target && !self.ended {
            if self.pending.is_empty() {
                let n = if std::mem::take(&mut self.read_ahead) {
                    std::mem::swap(block, self.ahead.as_mut().expect("read ahead"));
                    block.frames()
                } else {
                    self.input.read_block(block)?
                };
                if n == 0 {
                    self.ended = true;
                    break;
                }
                if self.tail.is_empty() {
                    self.tail = vec![vec![0.0; keep]; channels];
                }
                keep_last(&mut self.tail, block);
                self.seen += n as u64;
                self.pending = 0..n;
            }
            if !self.started {
                if self.origin > 0 {
                    // After a seek: from rest, the warm-up dropped.
                    self.started = true;
                } else {
                    if self.head.is_empty() {
                        self.head = vec![Vec::with_capacity(keep); channels];
                    }
                    let take = (keep - self.head[0].len()).min(self.pending.len());
                    let from = self.pending.start;
                    for (c, h) in self.head.iter_mut().enumerate() {
                        h.extend_from_slice(&block.channel(c)[from..from + take]);
                    }
                    self.pending.start += take;
                    if self.head[0].len() < keep {
                        continue;
                    }
                    self.started = true;
                    // The left pad, 2·x0 − x[padlen..1], from the steady
                    // state of its first value (or from rest without
                    // padding); its results before frame 0 are dropped.
                    let padlen = self.padlen;
                    let zi = self.sos.zi();
                    let mut ext = vec![vec![0.0f32; padlen + keep]; channels];
                    for (c, h) in self.head.iter().enumerate() {
                        for k in 0..padlen {
                            ext[c][k] = pad_value(h[0], h[padlen - k]);
                        }
                        ext[c][padlen..].copy_from_slice(h);
                        if self.pad == Pad::Odd {
                            self.forward.set_state(c, &zi, f64::from(ext[c][0]));
                        }
                    }
                    let mut out = vec![vec![0.0f32; padlen + keep]; channels];
                    filter(
                        &mut self.forward,
                        &ext,
                        padlen + keep,
                        &mut out,
                        self.pool.as_deref(),
                    );
                    // The pad has no stream position: the restarts count
                    // from frame 0 (no take-over is near: the first is a
                    // grid of at least 2^16 frames on).
                    self.forward.set_position(keep as u64);
                    self.skip += padlen;
                    store(buf, &mut self.have, &mut self.skip, &out, padlen + keep);
                    continue;
                }
            }
            let take = self.pending.len().min(target - self.have + self.skip);
            let from = self.pending.start;
            let ins: Vec<&[f32]> = (0..channels)
                .map(|c| &block.channel(c)[from..from + take])
                .collect();
            // Straight into the buffer, after the dropped warm-up.
            let drop = self.skip.min(take);
            if drop > 0 {
                let sink = self
                    .sink
                    .get_or_insert_with(|| Block::new(channels, self.plan.read));
                let stride = sink.capacity();
                let heads: Vec<&[f32]> = ins.iter().map(|x| &x[..drop]).collect();
                let mut outs: Vec<&mut [f32]> = sink
                    .planes_mut()
                    .chunks_exact_mut(stride)
                    .map(|o| &mut o[..drop])
                    .collect();
                self.forward
                    .process(&heads, &mut outs, self.pool.as_deref());
                self.skip -= drop;
            }
            if take > drop {
                let stride = buf.capacity();
                let at = self.have;
                let rest: Vec<&[f32]> = ins.iter().map(|x| &x[drop..]).collect();
                let mut outs: Vec<&mut [f32]> = buf
                    .planes_mut()
                    .chunks_exact_mut(stride)
                    .map(|p| &mut p[at..at + take - drop])
                    .collect();
                let last = take == self.pending.len();
                match self.pool.as_deref() {
                    // The block's last frames: the next block is read
                    // meanwhile (the same frames, in the same order).
                    Some(pool) if last && !self.read_ahead => {
                        let ahead = self
                            .ahead
                            .get_or_insert_with(|| Block::new(channels, self.plan.read));
                        let (input, forward) = (&mut self.input, &mut self.forward);
                        let (read, ()) = pool.install(|| {
                            rayon::join(
                                || input.read_block(ahead),
                                || forward.process(&rest, &mut outs, Some(pool)),
                            )
                        });
                        read?;
                        self.read_ahead = true;
                    }
                    pool => self.forward.process(&rest, &mut outs, pool),
                }
                self.have += take - drop;
            }
            self.pending.start += take;
        }
        if self.ended && !self.started {
            if self.seen == 0 {
                return Err(Error::format(&self.info.path, "no samples to filter"));
            }
            return Err(Error::format(
                &self.info.path,
                format!(
                    "{} samples: zero-phase filtering with odd padding needs more than padlen = {} (3 × (2 × {} sections + 1)); use --pad none, or a longer input",
                    self.seen,
                    self.padlen,
                    self.sos.len()
                ),
            ));
        }
        Ok(())
    }

    /// The frame count of the input (known once it has ended).
    fn frames(&self) -> u64 {
        self.origin + self.seen
    }

    /// Filters the current block backwards (see the type's docs); returns
    /// its frames.
    fn backward(&mut self) -> Result<usize> {
        self.fill()?;
        let channels = self.info.channels;
        let (grid, warm) = (self.plan.grid as u64, self.plan.warm as u64);
        let padded_end = if self.ended {
            Some(self.frames() + self.padlen as u64)
        } else {
            None
        };
        if self.ended && self.padlen > 0 && !self.right_padded() {
            self.pad_right();
        }
        let total = self.frames();
        let buf = self.buf.as_mut().expect("filled");
        let stride = buf.capacity();
        let block_end = self.base + grid;
        let exact = padded_end.is_some_and(|end| block_end + warm >= end);
        let end = if exact {
            (padded_end.expect("ended") - self.base) as usize
        } else {
            (grid + warm) as usize
        };
        debug_assert!(end <= self.have, "the warm-up is in the buffer");
        let frames = if exact {
            total.saturating_sub(self.base).min(grid) as usize
        } else {
            grid as usize
        };
        self.backward.reset();
        if exact && self.pad == Pad::Odd {
            let zi = self.sos.zi();
            for c in 0..channels {
                let last = buf.channel_capacity_mut(c)[end - 1];
                self.backward.set_state(c, &zi, f64::from(last));
            }
        }
        self.backward.process_reversed(
            buf.planes_mut(),
            stride,
            0..end,
            frames,
            self.pool.as_deref(),
        );
        Ok(frames)
    }

    /// Whether the right pad's forward results are in the buffer.
    fn right_padded(&self) -> bool {
        self.base + self.have as u64 >= self.frames() + self.padlen as u64
    }

    /// Appends the right pad's forward results, `2·x[N−1] − x[N−2 ..
    /// N−1−padlen]`, after the input's end.
    fn pad_right(&mut self) {
        let channels = self.info.channels;
        let padlen = self.padlen;
        let keep = padlen + 1;
        let at = |c: usize, back: usize| self.tail[c][keep - 1 - back];
        let mut ext = vec![vec![0.0f32; padlen]; channels];
        for (c, e) in ext.iter_mut().enumerate() {
            let last = at(c, 0);
            for (k, v) in e.iter_mut().enumerate() {
                *v = pad_value(last, at(c, k + 1));
            }
        }
        let mut out = vec![vec![0.0f32; padlen]; channels];
        filter(
            &mut self.forward,
            &ext,
            padlen,
            &mut out,
            self.pool.as_deref(),
        );
        let buf = self.buf.as_mut().expect("filled");
        store(buf, &mut self.have, &mut self.skip, &out, padlen);
    }
}

/// Appends `n` frames of `planes` to `buf` after its `have`, the first
/// `skip` of them dropped (and counted off).
fn store(buf: &mut Block, have: &mut usize, skip: &mut usize, planes: &[Vec<f32>], n: usize) {
    let drop = (*skip).min(n);
    *skip -= drop;
    let m = n - drop;
    for (c, p) in planes.iter().enumerate() {
        buf.channel_capacity_mut(c)[*have..*have + m].copy_from_slice(&p[drop..n]);
    }
    *have += m;
}

impl ChunkSource for Streaming<'_> {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, out: &mut Block) -> Result<usize> {
        while self.served == self.ready {
            if self.ready > 0 {
                // The block is out: its frames leave the buffer.
                let grid = self.plan.grid;
                let have = self.have;
                let buf = self.buf.as_mut().expect("filled");
                let stride = buf.capacity();
                for plane in buf.planes_mut().chunks_exact_mut(stride) {
                    plane.copy_within(grid.min(have)..have, 0);
                }
                self.have = have.saturating_sub(grid);
                self.base += grid as u64;
                self.ready = 0;
                self.served = 0;
            }
            if self.ended && self.base >= self.frames() {
                out.set_frames(0);
                return Ok(0);
            }
            self.ready = self.backward()?;
            if self.ready == 0 {
                out.set_frames(0);
                return Ok(0);
            }
            // An exact seek's frames before the one asked for.
            self.served = std::mem::take(&mut self.discard).min(self.ready);
        }
        let n = (self.ready - self.served).min(out.capacity());
        let at = self.served;
        let buf = self.buf.as_mut().expect("filled");
        for c in 0..self.info.channels {
            out.channel_capacity_mut(c)[..n]
                .copy_from_slice(&buf.channel_capacity_mut(c)[at..at + n]);
        }
        out.set_frames(n);
        out.start = self.base + at as u64;
        self.served += n;
        Ok(n)
    }

    fn seekable(&self) -> bool {
        self.input.seekable() && self.info.frames.is_some()
    }

    fn seek(&mut self, frame: u64) -> Result<()> {
        let Some(total) = self.info.frames.filter(|_| self.input.seekable()) else {
            return Err(Error::usage(format!(
                "{}: this input is read in order only",
                self.info.path.display()
            )));
        };
        let keep = self.padlen as u64 + 1;
        let frame = frame.min(total);
        let (start, base) = if self.exact {
            // The block holding the frame; the forward pass from the
            // warm-up of the last take-over at or before it (from the
            // input's start, exactly, when that is frame 0). Starting
            // earlier changes nothing from the take-over on, so it may
            // start where the right pad's frames are still read.
            let grid = self.plan.grid as u64;
            let base = frame / grid * grid;
            let take_over = base / self.restarts.grid * self.restarts.grid;
            (take_over.saturating_sub(self.restarts.warm), base)
        } else {
            // The forward pass from rest `warm` frames before.
            (frame.saturating_sub(self.plan.warm as u64), frame)
        };
        // But from where the right pad's frames are still read.
        let start = start.min(total.saturating_sub(keep));
        self.input.seek(start)?;
        self.forward.reset();
        self.forward.set_position(start);
        self.head.clear();
        self.tail.clear();
        self.pending = 0..0;
        self.read_ahead = false;
        self.have = 0;
        self.ready = 0;
        self.served = 0;
        self.seen = 0;
        self.started = false;
        self.ended = false;
        self.origin = start;
        self.base = base;
        self.skip = (base - start) as usize;
        self.discard = (frame - base) as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::iir::tests::butter2;
    use crate::pipeline::memory::MemorySource;

    /// `f32` storage of the forward result between the passes and of the
    /// output (about 1e-7 of the scale each), against an all-`f64`
    /// reference; the restarts add 1e-20.
    const REL_TOL: f64 = 1e-6;

    fn sosfilt64(sos: &Sos, x: &[f64], zi: Option<f64>) -> Vec<f64> {
        let mut z: Vec<[f64; 2]> = match zi {
            Some(x0) => sos.zi().iter().map(|z| [z[0] * x0, z[1] * x0]).collect(),
            None => vec![[0.0; 2]; sos.len()],
        };
        x.iter()
            .map(|&v| {
                let mut cur = v;
                for (s, z) in sos.sections().iter().zip(z.iter_mut()) {
                    let out = s[0] * cur + z[0];
                    z[0] = s[1] * cur - s[4] * out + z[1];
                    z[1] = s[2] * cur - s[5] * out;
                    cur = out;
                }
                cur
            })
            .collect()
    }

    /// `scipy.signal.sosfiltfilt` (odd padding, default padlen), or ObsPy's
    /// unpadded forward-backward, written out plainly in `f64`.
    fn sosfiltfilt64(sos: &Sos, x: &[f32], pad: Pad) -> Vec<f64> {
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let n = x.len();
        let p = if pad == Pad::Odd { sos.padlen() } else { 0 };
        let mut ext: Vec<f64> = (1..=p).rev().map(|k| 2.0 * x[0] - x[k]).collect();
        ext.extend_from_slice(&x);
        ext.extend((1..=p).map(|k| 2.0 * x[n - 1] - x[n - 1 - k]));
        let odd = pad == Pad::Odd;
        let y = sosfilt64(sos, &ext, odd.then_some(ext[0]));
        let rev: Vec<f64> = y.iter().rev().copied().collect();
        let z = sosfilt64(sos, &rev, odd.then(|| rev[0]));
        z.iter().rev().skip(p).take(n).copied().collect()
    }

    /// `channels` channels of `n` frames, interleaved: tones, a drift and
    /// a step, different on each channel.
    fn signal(channels: usize, n: usize) -> Vec<f32> {
        (0..n * channels)
            .map(|k| {
                let (i, c) = ((k / channels) as f32, (k % channels) as f32);
                (i * (0.07 + 0.013 * c)).sin() * 3.0
                    + (i * 0.9).cos()
                    + 0.002 * i
                    + if i > 400.0 + 10.0 * c { 1.5 } else { 0.0 }
            })
            .collect()
    }

    /// Every frame of `source`, read `cap` frames at a time, per channel.
    fn read_all(source: &mut dyn ChunkSource, channels: usize, cap: usize) -> Vec<Vec<f32>> {
        let mut out = vec![Vec::new(); channels];
        let mut block = Block::new(channels, cap);
        let mut next = None;
        loop {
            let n = source.read_block(&mut block).unwrap();
            if n == 0 {
                return out;
            }
            if let Some(at) = next {
                assert_eq!(block.start, at, "blocks follow each other");
            }
            next = Some(block.start + n as u64);
            for (c, o) in out.iter_mut().enumerate() {
                o.extend_from_slice(block.channel(c));
            }
        }
    }

    fn streamed(
        x: &[f32],
        channels: usize,
        sos: &Sos,
        pad: Pad,
        plan: StreamPlan,
        threads: usize,
        cap: usize,
    ) -> Vec<Vec<f32>> {
        let source = MemorySource::new(x, channels, None).unwrap();
        let mut z = Streaming::new(Box::new(source), sos, pad, plan, threads).unwrap();
        read_all(&mut z, channels, cap)
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (f64::from(g) - w).abs() / scale;
            assert!(
                err < REL_TOL,
                "{what}: frame {i}: {g} against {w} ({err:e})"
            );
        }
    }

    #[test]
    fn streaming_equals_sosfiltfilt_for_any_block_read_and_thread_count() {
        let sos = butter2();
        let warm = sos.settling().unwrap() as usize;
        let channels = crate::filter::iir::LANES + 4;
        // Lengths around the blocks' edges: one block, the last block's
        // warm-up reaching the end or not, a short last block.
        for n in [200usize, 1000, 1024, 1500, 2049] {
            let x = signal(channels, n);
            for pad in [Pad::Odd, Pad::None] {
                let want: Vec<Vec<f64>> = (0..channels)
                    .map(|c| {
                        let xc: Vec<f32> = x.iter().skip(c).step_by(channels).copied().collect();
                        sosfiltfilt64(&sos, &xc, pad)
                    })
                    .collect();
                let mut first: Option<Vec<Vec<f32>>> = None;
                for (grid, read, threads, cap) in [
                    (256, 1024, 1, 4096),
                    (256, 7, 2, 100),
                    (128, 64, 2, 1),
                    (1024, 33, 1, 333),
                ] {
                    let plan = StreamPlan { grid, warm, read };
                    let got = streamed(&x, channels, &sos, pad, plan, threads, cap);
                    for c in 0..channels {
                        assert_close(
                            &got[c],
                            &want[c],
                            &format!("n {n} {pad:?} grid {grid} ch {c}"),
                        );
                    }
                    // The same blocks, whatever the reads and threads.
                    if grid == 256 {
                        match &first {
                            None => first = Some(got),
                            Some(f) => assert_eq!(f, &got, "n {n} {pad:?}: bit for bit"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_scratch_file_passes_equal_sosfiltfilt_too() {
        let sos = butter2();
        let channels = 5;
        let dir = tempfile::tempdir().unwrap();
        for (n, window) in [(200usize, 64usize), (2049, 1000)] {
            let x = signal(channels, n);
            for pad in [Pad::Odd, Pad::None] {
                let mut source = MemorySource::new(&x, channels, None).unwrap();
                let info = source.info().clone();
                let filtered = filtfilt(&mut source, &sos, pad, dir.path(), window, None).unwrap();
                let got = read_all(filtered.source(&info).unwrap().as_mut(), channels, 77);
                for (c, got) in got.iter().enumerate() {
                    let xc: Vec<f32> = x.iter().skip(c).step_by(channels).copied().collect();
                    let want = sosfiltfilt64(&sos, &xc, pad);
                    assert_close(got, &want, &format!("scratch n {n} {pad:?} ch {c}"));
                }
            }
        }
    }

    #[test]
    fn a_seek_gives_the_stream_s_values_from_there() {
        let sos = butter2();
        let warm = sos.settling().unwrap() as usize;
        let channels = 3;
        let n = 3000;
        let x = signal(channels, n);
        let plan = StreamPlan {
            grid: 512,
            warm,
            read: 100,
        };
        let whole = streamed(&x, channels, &sos, Pad::Odd, plan, 1, 4096);
        for from in [0u64, 1, 100, warm as u64 + 7, 1500, 2990, 3000] {
            let source = MemorySource::new(&x, channels, None)
                .unwrap()
                .with_seek(true);
            let mut z = Streaming::new(Box::new(source), &sos, Pad::Odd, plan, 1).unwrap();
            assert!(z.seekable());
            z.seek(from).unwrap();
            let got = read_all(&mut z, channels, 250);
            for c in 0..channels {
                let want: Vec<f64> = whole[c][from as usize..]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                if want.is_empty() {
                    assert!(got[c].is_empty(), "nothing after the end");
                } else {
                    assert_close(&got[c], &want, &format!("seek {from} ch {c}"));
                }
            }
        }
    }

    #[test]
    fn an_exact_seek_gives_the_streams_values_bit_for_bit() {
        let sos = butter2();
        let warm = sos.settling().unwrap() as usize;
        // Two channel groups, on two threads.
        let channels = crate::filter::iir::LANES + 3;
        let n = 9000;
        let x = signal(channels, n);
        // Take-overs every 2,048 frames: four in the signal.
        let restarts = Restarts {
            warm: warm as u64,
            grid: 2048,
        };
        assert!(restarts.warm * 4 < restarts.grid, "warm-ups apart");
        let open = |plan: StreamPlan| {
            let source = MemorySource::new(&x, channels, None)
                .unwrap()
                .with_seek(true);
            Streaming::new(Box::new(source), &sos, Pad::Odd, plan, 2)
                .unwrap()
                .with_forward_restarts(restarts)
        };
        let plan = StreamPlan {
            grid: 256,
            warm,
            read: 100,
        };
        for (c, got) in read_all(&mut open(plan), channels, 4096).iter().enumerate() {
            // The restarts change nothing beyond the 1e-20 they drop.
            let xc: Vec<f32> = x.iter().skip(c).step_by(channels).copied().collect();
            assert_close(got, &sosfiltfilt64(&sos, &xc, Pad::Odd), &format!("ch {c}"));
        }
        // With blocks warmed over 16 frames only, the default seek's
        // forward warm-up (as long) leaves errors far above an `f32`
        // rounding: the exact seek must not depend on it.
        let plan = StreamPlan { warm: 16, ..plan };
        let whole = read_all(&mut open(plan), channels, 4096);
        let (w, g) = (warm as u64, restarts.grid);
        for from in [
            0,
            1,
            255,
            256,
            700,
            g - w,
            g - 1,
            g,
            g + w,
            2 * g + 3,
            4 * g - 1,
            8999,
            9000,
        ] {
            let mut z = open(plan).exact_seeks();
            z.seek(from).unwrap();
            let got = read_all(&mut z, channels, 250);
            for c in 0..channels {
                assert!(
                    got[c] == whole[c][from as usize..],
                    "seek {from} ch {c}: not the stream's values bit for bit"
                );
            }
        }
    }

    #[test]
    fn too_short_and_empty_inputs_are_refused() {
        let sos = butter2();
        let plan = StreamPlan {
            grid: 256,
            warm: 100,
            read: 16,
        };
        let short = vec![1.0f32; sos.padlen()];
        let source = MemorySource::new(&short, 1, None).unwrap();
        let mut z = Streaming::new(Box::new(source), &sos, Pad::Odd, plan, 1).unwrap();
        let err = z.read_block(&mut Block::new(1, 8)).unwrap_err().to_string();
        assert!(err.contains("needs more than padlen"), "{err}");
        let source = MemorySource::new(&short, 1, None).unwrap();
        let mut z = Streaming::new(Box::new(source), &sos, Pad::None, plan, 1).unwrap();
        assert_eq!(
            read_all(&mut z, 1, 5)[0].len(),
            short.len(),
            "no pad: any length"
        );
    }

    #[test]
    fn the_plan_fits_its_room_or_declines() {
        let sos = butter2();
        let warm = sos.settling().unwrap() as usize;
        let roomy = StreamPlan::fit(&sos, 8, u64::MAX).unwrap();
        assert_eq!(
            roomy.grid,
            (4 * warm).max(4096).next_power_of_two().min(MAX_GRID)
        );
        let plan = StreamPlan::fit(&sos, 385, 8 << 20).unwrap();
        assert!(plan.bytes(&sos, 385) <= 8 << 20 && plan.grid.is_power_of_two());
        assert!(plan.grid < roomy.grid, "a smaller block in less room");
        assert_eq!(
            StreamPlan::fit(&sos, 385, 64 << 10),
            None,
            "no room: the scratch file"
        );
    }
}
