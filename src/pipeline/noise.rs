//! Each channel's noise level before the streaming pass (`--on-noise K`):
//! the MAD of the filtered, referenced signal over chunks spread across
//! the recording, as `spikeinterface.get_noise_levels(method='mad')`
//! estimates it.
//!
//! Why a pass of its own: a threshold of K × noise must be known before
//! the first sample is detected, and the noise must come from the whole
//! recording, not from its first seconds (which may be a quiet or a noisy
//! start). So, before streaming, the chunks at
//! [`NoiseChunks::positions`] are read with random access (seek, then the
//! same windowed map as the streaming pass) and each is run through a
//! fresh copy of the job's stages without its detector: the FIR, the IIR,
//! the common reference. Each chunk is read with a warm-up before it
//! ([`warmup`]: the FIR's history and the IIR's settling time) and a
//! margin after it (the FIR's look-ahead), so its samples are those the
//! streaming pass computes, up to the filter state forgotten during the
//! warm-up.
//!
//! The filtered chunks go to a scratch file (unnamed, removed by the OS
//! however the run ends), planar by chunk and channel, so each channel's
//! `chunks × chunk_samples` values are then read back and reduced alone:
//! memory holds one channel's values, not all channels' (20 × 10,000 ×
//! 385 × 4 bytes would be 308 MB).
//!
//! An input that cannot seek (standard input, FIFOs, miniSEED, FLAC) takes
//! its noise from its first `chunks × chunk_samples` frames instead: they
//! are spooled to a scratch file, their noise estimated there (as
//! contiguous chunks), and the stream then restarts from the spooled frames
//! followed by the rest of the input ([`spool_prefix`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::staged::StagedBackend;
use crate::backend::{Backend, Footprint, Job};
use crate::detect::noise::{NoiseChunks, mad_with};
use crate::error::{Error, Result};
use crate::filter::iir::{Sos, SosBank};
use crate::io_at::PositionalIo;
use crate::pipeline::budget::{BASELINE_BYTES, MIN_CHUNK_FRAMES};
use crate::pool::Block;
use crate::source::{ChunkSource, SignalInfo};

/// Bytes per stored sample.
const F32_BYTES: u64 = 4;

/// Longest IIR warm-up counted by [`settle_len`]: 2^20 samples (35 s at
/// 30 kHz, 3 h at 100 Hz).
pub const MAX_SETTLE: usize = 1 << 20;

/// Impulse-response level, relative to its peak, below which an IIR is
/// taken to have forgotten its starting state (an error of 1e-7 of the
/// signal's scale: f32 rounding).
const SETTLED: f64 = 1e-7;

/// The noise levels of one input, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoiseLevels {
    /// Each channel's MAD noise (`median(|y − median(y)|) / 0.6745`).
    pub levels: Vec<f64>,
    /// First frame of each chunk.
    pub positions: Vec<u64>,
    /// Frames per chunk.
    pub chunk_samples: usize,
    /// Frames of warm-up read before each chunk.
    pub warmup: usize,
    /// Whether the chunks are the input's first frames (an input that
    /// cannot seek) rather than spread over it.
    pub from_start: bool,
}

/// Samples after which an IIR started at rest has forgotten its start:
/// where its impulse response has fallen for good below [`SETTLED`] of its
/// peak (at most [`MAX_SETTLE`]).
pub fn settle_len(sos: &Sos) -> usize {
    let mut bank = SosBank::new(sos.clone(), 1);
    let mut x = vec![0.0f32; 4096];
    let mut y = vec![0.0f32; 4096];
    x[0] = 1.0;
    let (mut peak, mut last_loud, mut n) = (0.0f64, 0usize, 0usize);
    while n < MAX_SETTLE {
        bank.process(&[&x], &mut [&mut y], None);
        x[0] = 0.0;
        for (i, &v) in y.iter().enumerate() {
            let v = f64::from(v).abs();
            peak = peak.max(v);
            if v > SETTLED * peak {
                last_loud = n + i;
            }
        }
        n += y.len();
        // Quiet for a whole block after the last loud sample: settled
        // (an IIR's response decays geometrically once its poles dominate).
        if n - last_loud > 4096 && peak > 0.0 {
            break;
        }
    }
    (last_loud + 1).min(MAX_SETTLE)
}

/// Frames each noise chunk is read with before it: the FIR's history and
/// the IIR's settling time.
pub fn warmup(job: &Job) -> usize {
    let iir = job.iir.as_ref().map_or(0, settle_len);
    (job.taps() - 1).saturating_add(iir)
}

/// Bytes [`estimate`] holds: one channel's values (as `f32` and `f64`)
/// per thread reducing them (`threads`), the input block of `block` frames
/// of `channels` channels, and the planned processor with its output block
/// (`footprint`).
pub fn bytes(
    plan: &NoiseChunks,
    channels: usize,
    block: usize,
    threads: usize,
    footprint: &Footprint,
) -> u64 {
    let values = (plan.chunks as u64)
        .saturating_mul(plan.chunk_samples as u64)
        .saturating_mul(F32_BYTES + 8)
        .saturating_mul(reducers(threads, channels) as u64);
    let frames = |n: usize| {
        (n as u64)
            .saturating_mul(channels as u64)
            .saturating_mul(F32_BYTES)
    };
    values
        .saturating_add(frames(block))
        .saturating_add(frames(footprint.output_frames))
        .saturating_add(footprint.bytes)
}

/// Threads reducing channels to their MAD: `threads`, at most one per
/// channel.
fn reducers(threads: usize, channels: usize) -> usize {
    threads.clamp(1, channels.max(1))
}

/// Estimates each channel's noise of `job`'s output (its detector left
/// out) over `source`, which must seek, at `plan`'s chunks; `block`
/// frames at a time (fewer, down to [`MIN_CHUNK_FRAMES`], when that does
/// not fit) on `backend`; the scratch file in `dir`. What it holds
/// ([`bytes`]) must fit `memory_limit` besides [`BASELINE_BYTES`], checked
/// before anything is allocated.
///
/// # Errors
/// [`Error::Usage`] for a job with `--decimate`, or one that does not fit
/// the limit (the message says what takes the room); the source's, the
/// backend's and the scratch file's errors.
#[expect(clippy::too_many_arguments, reason = "one call site, all distinct")]
pub fn estimate(
    source: &mut dyn ChunkSource,
    job: &Job,
    backend: Arc<dyn Backend>,
    plan: &NoiseChunks,
    block: usize,
    threads: usize,
    dir: &Path,
    from_start: bool,
    memory_limit: u64,
) -> Result<NoiseLevels> {
    if job.decimate.is_some_and(|n| n > 1) {
        return Err(Error::usage(
            "--on-noise with --decimate: not supported; decimate in a first run, then detect",
        ));
    }
    let info: SignalInfo = source.info().clone();
    let total = info.frames.ok_or_else(|| {
        Error::usage(format!(
            "{}: the noise estimate needs the input's length",
            info.path.display()
        ))
    })?;
    let channels = info.channels;
    let positions = plan.positions(total);
    let len = (plan.chunk_samples as u64).min(total) as usize;
    let warm = warmup(job);
    let ahead = job.taps();
    let noise_job = Job {
        detector: None,
        snippets: None,
        dedup: None,
        discard_signal: false,
        ..job.clone()
    };
    let staged = StagedBackend::new(backend);
    // The largest block up to `block` (halving, down to the pipeline's
    // smallest chunk) whose buffers fit the limit.
    let need = |b: usize| {
        let footprint = staged.footprint(&noise_job, channels, b, threads);
        BASELINE_BYTES.saturating_add(bytes(plan, channels, b, threads, &footprint))
    };
    let mut block = block.max(1);
    while block > MIN_CHUNK_FRAMES && need(block) > memory_limit {
        block /= 2;
    }
    if need(block) > memory_limit {
        return Err(Error::usage(format!(
            "the noise estimate ({} chunks of {} samples per channel, {channels} channels) needs {} MB, more than the memory limit of {} MB: lower --noise-chunks or --noise-chunk-samples, or raise --memory-limit",
            plan.chunks,
            plan.chunk_samples,
            need(block).div_ceil(1 << 20),
            memory_limit >> 20
        )));
    }
    let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let scratch_name: PathBuf = dir.join("<noise scratch>");
    let mut input = Block::new(channels, block);
    let mut bytes_out: Vec<u8> = Vec::new();
    for (k, &p) in positions.iter().enumerate() {
        let before = (warm as u64).min(p);
        let after = (ahead as u64).min(total - p - len as u64);
        let from = p - before;
        let mut left = before + len as u64 + after;
        source.seek(from)?;
        let mut processor = staged.plan(&noise_job, channels, block, threads)?;
        let mut output = Block::new(channels, processor.output_capacity());
        let mut events = Vec::new();
        // Output frames [before, before + len) of this run are the chunk's.
        let want = before..before + len as u64;
        let mut store = |out: &Block| -> Result<()> {
            let (s, e) = (out.start, out.start + out.frames() as u64);
            let (a, b) = (s.max(want.start), e.min(want.end));
            if a >= b {
                return Ok(());
            }
            for c in 0..channels {
                let part = &out.channel(c)[(a - s) as usize..(b - s) as usize];
                bytes_out.clear();
                bytes_out.extend(part.iter().flat_map(|v| v.to_le_bytes()));
                let at = ((k * channels + c) as u64 * len as u64 + (a - want.start)) * F32_BYTES;
                file.write_all_at(&bytes_out, at)
                    .map_err(|e| Error::io(&scratch_name, e))?;
            }
            Ok(())
        };
        while left > 0 {
            let n = source.read_block(&mut input)?;
            if n == 0 {
                break;
            }
            // The last block may run past the span: only its first frames.
            let n = (n as u64).min(left) as usize;
            input.set_frames(n);
            input.start -= from;
            left -= n as u64;
            processor.process(&input, &mut output, &mut events)?;
            store(&output)?;
        }
        while processor.finish(&mut output, &mut events)? {
            store(&output)?;
        }
        store(&output)?;
    }
    // Each channel alone: its chunks' values, then their MAD; channels
    // shared among `threads` reducers (each channel's MAD is its own, so
    // the levels do not depend on the thread count).
    let per_channel = positions.len() * len;
    let chunks = positions.len();
    let reduce = |c: usize, values: &mut Vec<f32>, scratch: &mut Vec<f64>| -> Result<f64> {
        let raw: &mut [u8] = bytemuck::cast_slice_mut(values.as_mut_slice());
        for k in 0..chunks {
            let at = ((k * channels + c) * len) as u64 * F32_BYTES;
            let part = &mut raw[k * len * F32_BYTES as usize..(k + 1) * len * F32_BYTES as usize];
            file.read_exact_at(part, at)
                .map_err(|e| Error::io(&scratch_name, e))?;
        }
        for v in values.iter_mut() {
            *v = f32::from_le_bytes(v.to_ne_bytes());
        }
        Ok(mad_with(values, scratch))
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || -> Result<Vec<(usize, f64)>> {
        let mut values = vec![0.0f32; per_channel];
        let mut scratch = Vec::with_capacity(per_channel);
        let mut done = Vec::new();
        loop {
            let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if c >= channels {
                return Ok(done);
            }
            done.push((c, reduce(c, &mut values, &mut scratch)?));
        }
    };
    let mut levels = vec![f64::NAN; channels];
    let parts: Vec<Result<Vec<(usize, f64)>>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..reducers(threads, channels))
            .map(|_| scope.spawn(worker))
            .collect();
        let mut parts = vec![worker()];
        parts.extend(helpers.into_iter().map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(Error::Runtime {
                    msg: "a noise-estimate thread panicked".into(),
                })
            })
        }));
        parts
    });
    for part in parts {
        for (c, level) in part? {
            levels[c] = level;
        }
    }
    Ok(NoiseLevels {
        levels,
        positions,
        chunk_samples: len,
        warmup: warm,
        from_start,
    })
}

/// Reads the first `frames` frames of `source` into a scratch file in
/// `dir`. Returns a seekable source over exactly those frames (fewer if the
/// stream is shorter; for [`estimate`]) and the whole stream again: the
/// frames spooled (whole blocks, so possibly a few more), then the rest of
/// `source`.
///
/// # Errors
/// The source's and the scratch file's errors.
pub fn spool_prefix<'s>(
    mut source: Box<dyn ChunkSource + 's>,
    frames: u64,
    block: usize,
    dir: &Path,
) -> Result<(Box<dyn ChunkSource>, Box<dyn ChunkSource + 's>)> {
    let info = source.info().clone();
    let channels = info.channels;
    let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let scratch_name = dir.join("<noise prefix scratch>");
    let frame_bytes = channels * F32_BYTES as usize;
    // Blocks of at most 1 MiB as read and 1 MiB as written, whatever the
    // channels: far inside any memory limit.
    let block = block.min((1 << 20) / frame_bytes.max(1)).max(1);
    let mut input = Block::new(channels, block);
    let mut bytes = Vec::with_capacity(block * frame_bytes);
    let mut spooled = 0u64;
    // The spool ends on a block boundary of the source: the frames read
    // past `frames` are kept too (the stream must not lose them).
    while spooled < frames {
        let n = source.read_block(&mut input)?;
        if n == 0 {
            break;
        }
        bytes.clear();
        for i in 0..n {
            for c in 0..channels {
                bytes.extend_from_slice(&input.channel(c)[i].to_le_bytes());
            }
        }
        file.write_all_at(&bytes, spooled * frame_bytes as u64)
            .map_err(|e| Error::io(&scratch_name, e))?;
        spooled += n as u64;
    }
    let like = SignalInfo {
        frames: Some(spooled),
        ..info.clone()
    };
    // The estimate sees the first `frames` frames only, not the rest of the
    // last block: its chunks are then contiguous from frame 0.
    let measured = spooled.min(frames);
    let prefix_like = SignalInfo {
        frames: Some(measured),
        ..info.clone()
    };
    let clone = |f: &File| f.try_clone().map_err(|e| Error::io(&scratch_name, e));
    let prefix = crate::source::scratch_source(clone(&file)?, &prefix_like, 0, measured)?;
    let replay = crate::source::scratch_source(file, &like, 0, spooled)?;
    let chain = Chain {
        info,
        first: Some(replay),
        rest: source,
        offset: spooled,
    };
    Ok((prefix, Box::new(chain)))
}

/// The spooled frames, then the rest of the stream.
struct Chain<'s> {
    info: SignalInfo,
    first: Option<Box<dyn ChunkSource>>,
    rest: Box<dyn ChunkSource + 's>,
    /// Frames in `first`.
    offset: u64,
}

impl ChunkSource for Chain<'_> {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        if let Some(first) = self.first.as_mut() {
            let n = first.read_block(block)?;
            if n > 0 {
                return Ok(n);
            }
            self.first = None;
        }
        let n = self.rest.read_block(block)?;
        block.start += self.offset;
        Ok(n)
    }
}
