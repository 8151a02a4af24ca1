//! Zero-phase IIR filtering (`--zero-phase`) of a file of any size, in
//! constant memory: `scipy.signal.sosfiltfilt`, or ObsPy's
//! `zerophase=True`, out of core.
//!
//! Why two passes through a scratch file: the backward pass starts at the
//! last sample, so it cannot stream; and the whole signal does not fit in
//! memory. So, as the out-of-core FFT does ([`crate::spectral::ooc_fft`]):
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
//! sample by sample.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::filter::iir::{Sos, SosBank};
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
            // `tail` holds the last `keep` samples seen, oldest first.
            for (c, last) in tail.iter_mut().enumerate() {
                let x = block.channel(c);
                if n >= keep {
                    last.copy_from_slice(&x[n - keep..]);
                } else {
                    last.rotate_left(n);
                    last[keep - n..].copy_from_slice(x);
                }
            }
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
