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
/// per thread reducing them (`threads`), the two input blocks of `block`
/// frames of `channels` channels (one read while the other is processed),
/// and the planned processor with its output block (`footprint`).
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
        .saturating_add(frames(block).saturating_mul(INPUT_BLOCKS as u64))
        .saturating_add(frames(footprint.output_frames))
        .saturating_add(footprint.bytes)
}

/// Input blocks in flight: the reader fills one while the other goes
/// through the stages.
const INPUT_BLOCKS: usize = 2;

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
    let output_frames = staged
        .footprint(&noise_job, channels, block, threads)
        .output_frames;
    let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let scratch_name: PathBuf = dir.join("<noise scratch>");
    let mut bytes_out: Vec<u8> = Vec::new();
    // The chunks' spans: each chunk with its warm-up before and its
    // margin after.
    let spans: Vec<(u64, u64, u64)> = positions
        .iter()
        .map(|&p| {
            let before = (warm as u64).min(p);
            let after = (ahead as u64).min(total - p - len as u64);
            (p - before, before, before + len as u64 + after)
        })
        .collect();
    // A reader thread seeks to each span and reads it (for a zero-phase
    // job, that is where the filtering happens) while this one runs the
    // stages over the previous block and stores the chunk's values: one
    // block in each hand ([`INPUT_BLOCKS`]).
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Result<(usize, Block)>>(1);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Block>();
    for _ in 0..INPUT_BLOCKS {
        free_tx
            .send(Block::new(channels, block))
            .expect("the receiver is here");
    }
    let spans = &spans;
    std::thread::scope(|scope| -> Result<()> {
        // Owned here, so that an early return drops it and a reader waiting
        // for a free block stops.
        let free_tx = free_tx;
        scope.spawn(move || {
            let read = |source: &mut dyn ChunkSource,
                        k: usize,
                        input: &mut Block,
                        left: &mut u64|
             -> Result<usize> {
                let n = source.read_block(input)?;
                // The last block may run past the span: only its first frames.
                let n = (n as u64).min(*left) as usize;
                input.set_frames(n);
                input.start -= spans[k].0;
                *left -= n as u64;
                Ok(n)
            };
            for (k, &(from, _, span)) in spans.iter().enumerate() {
                if let Err(e) = source.seek(from) {
                    let _ = full_tx.send(Err(e));
                    return;
                }
                let mut left = span;
                while left > 0 {
                    let Ok(mut input) = free_rx.recv() else {
                        return; // the stages stopped
                    };
                    match read(&mut *source, k, &mut input, &mut left) {
                        Ok(0) => break,
                        Ok(_) => {
                            if full_tx.send(Ok((k, input))).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = full_tx.send(Err(e));
                            return;
                        }
                    }
                }
            }
        });
        // Output frames [before, before + len) of chunk k's run are the
        // chunk's.
        let store = |k: usize, out: &Block, bytes_out: &mut Vec<u8>| -> Result<()> {
            let before = spans[k].1;
            let want = before..before + len as u64;
            let (s, e) = (out.start, out.start + out.frames() as u64);
            let (a, b) = (s.max(want.start), e.min(want.end));
            if a >= b {
                return Ok(());
            }
            for c in 0..channels {
                let part = &out.channel(c)[(a - s) as usize..(b - s) as usize];
                // Little-endian `f32`s are their own stored bytes.
                let stored: &[u8] = if cfg!(target_endian = "little") {
                    bytemuck::cast_slice(part)
                } else {
                    bytes_out.clear();
                    bytes_out.extend(part.iter().flat_map(|v| v.to_le_bytes()));
                    bytes_out
                };
                let at = ((k * channels + c) as u64 * len as u64 + (a - want.start)) * F32_BYTES;
                file.write_all_at(stored, at)
                    .map_err(|e| Error::io(&scratch_name, e))?;
            }
            Ok(())
        };
        let mut events = Vec::new();
        // Each chunk gets a fresh processor (its filters start from rest
        // before the chunk's warm-up); they all share one output block, as
        // large as the plan counted in `bytes`. The next chunk's processor
        // is planned before the last one is dropped, so that the worker
        // threads they share live on between them.
        let mut output = Block::new(channels, output_frames);
        let mut current = None;
        type Chunk = (usize, Box<dyn crate::backend::ChunkProcessor>);
        let finish = |(k, mut processor): Chunk,
                      output: &mut Block,
                      events: &mut Vec<crate::Event>,
                      bytes_out: &mut Vec<u8>|
         -> Result<()> {
            while processor.finish(output, events)? {
                store(k, output, bytes_out)?;
            }
            store(k, output, bytes_out)
        };
        // The stages stop at the first error; dropping the channels then
        // stops the reader.
        for msg in full_rx {
            let (k, input) = msg?;
            if current.as_ref().is_none_or(|(at, _)| *at != k) {
                let next = staged.plan(&noise_job, channels, block, threads)?;
                assert_eq!(next.output_capacity(), output_frames, "as planned");
                if let Some(done) = current.replace((k, next)) {
                    finish(done, &mut output, &mut events, &mut bytes_out)?;
                }
            }
            let (_, processor) = current.as_mut().expect("planned above");
            processor.process(&input, &mut output, &mut events)?;
            store(k, &output, &mut bytes_out)?;
            // The reader may have stopped (after its last block).
            let _ = free_tx.send(input);
        }
        if let Some(done) = current.take() {
            finish(done, &mut output, &mut events, &mut bytes_out)?;
        }
        Ok(())
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::detect::noise::mad;
    use crate::pipeline::memory::MemorySource;

    /// 3 channels of 1,000 frames, each channel its own mix.
    fn signal() -> Vec<f32> {
        (0..3000)
            .map(|i| {
                let (f, c) = ((i / 3) as f32, (i % 3) as f32);
                (f * 0.37 + c).sin() * (c + 1.0) + (f * 0.011).cos()
            })
            .collect()
    }

    /// The estimate with no filter, on the CPU, 2 threads, room to spare.
    fn run(source: &mut dyn ChunkSource, plan: &NoiseChunks, block: usize) -> Result<NoiseLevels> {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(CpuBackend);
        estimate(
            source,
            &Job::default(),
            backend,
            plan,
            block,
            2,
            dir.path(),
            false,
            1 << 30,
        )
    }

    #[test]
    fn levels_are_the_mad_of_the_chunks_values_read_in_blocks_of_any_size() {
        let data = signal();
        let plan = NoiseChunks {
            chunks: 4,
            chunk_samples: 150,
        };
        let positions = plan.positions(1000);
        for block in [1, 7, 150, 4096] {
            let levels = run(&mut Seeking::new(&data, 0), &plan, block).unwrap();
            assert_eq!(levels.positions, positions);
            for c in 0..3 {
                let values: Vec<f32> = positions
                    .iter()
                    .flat_map(|&p| (p..p + 150).map(|f| data[f as usize * 3 + c]))
                    .collect();
                assert_eq!(levels.levels[c], mad(&values), "block {block}, channel {c}");
            }
        }
    }

    /// Interleaved frames in memory that seek; failing on the
    /// `fail_at`-th read (0: never).
    struct Seeking<'a> {
        info: SignalInfo,
        data: &'a [f32],
        at: u64,
        reads: usize,
        fail_at: usize,
    }

    impl<'a> Seeking<'a> {
        fn new(data: &'a [f32], fail_at: usize) -> Self {
            let info = MemorySource::new(data, 3, Some(100.0))
                .unwrap()
                .info()
                .clone();
            Seeking {
                info,
                data,
                at: 0,
                reads: 0,
                fail_at,
            }
        }
    }

    impl ChunkSource for Seeking<'_> {
        fn info(&self) -> &SignalInfo {
            &self.info
        }
        fn read_block(&mut self, block: &mut Block) -> Result<usize> {
            self.reads += 1;
            if self.reads == self.fail_at {
                return Err(Error::format(&self.info.path, "went bad"));
            }
            let first = self.at as usize;
            let n = (self.data.len() / 3 - first).min(block.capacity());
            for c in 0..3 {
                for (i, v) in block.channel_capacity_mut(c)[..n].iter_mut().enumerate() {
                    *v = self.data[(first + i) * 3 + c];
                }
            }
            block.set_frames(n);
            block.start = self.at;
            self.at += n as u64;
            Ok(n)
        }
        fn seekable(&self) -> bool {
            true
        }
        fn seek(&mut self, frame: u64) -> Result<()> {
            self.at = frame;
            Ok(())
        }
    }

    #[test]
    fn a_read_error_ends_the_estimate_with_that_error() {
        let data = signal();
        let plan = NoiseChunks {
            chunks: 4,
            chunk_samples: 150,
        };
        for fail_at in [1, 2, 5, 9] {
            let err = run(&mut Seeking::new(&data, fail_at), &plan, 40).unwrap_err();
            assert!(err.to_string().contains("went bad"), "{fail_at}: {err}");
        }
    }
}
