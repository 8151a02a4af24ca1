//! The chunk engine: source → backend → sinks, with reading, computing and
//! writing overlapped.
//!
//! Why it is shaped like this:
//! - A reader thread fills pooled [`Block`]s from the source (mmap windows or
//!   a stream) while the compute thread works on the previous block, and a
//!   writer thread writes the output of the block before that. Bounded
//!   queues between them (`queue_depth`) cap the blocks in flight, so the
//!   memory is fixed by the chunk size, not by the file.
//! - The chunk size itself comes from a memory budget in bytes (see
//!   [`budget`]): everything a run allocates is added up for the input's
//!   channel count before anything is allocated, so a 385-channel probe and
//!   a single channel both run in a few MiB.
//! - Both pools are filled before the first chunk with every block that can
//!   be in flight, so the loop itself allocates nothing.
//! - The history each stage needs is carried inside the stages (filter
//!   history, detector windows), so chunks never overlap on disk and the
//!   results do not depend on the chunk size.
//! - Events from several channels are written in order of start, then
//!   channel: an event is held back only while a channel could still report
//!   one that starts earlier (see [`ChunkProcessor::horizon`]).

pub mod budget;
mod memory;
pub mod noise;
mod queue;
pub mod stats;
pub mod zerophase;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Backend, ChunkProcessor, Job, cpu::CpuBackend};
use crate::detect::Event;
use crate::error::{Error, Result};
use crate::pool::{Block, MemoryPool};
use crate::sink::{EventSink, SignalSink, SnippetSink};
use crate::source::{self, ChunkSource, SourceOptions};
pub use budget::{
    ChunkPlan, DEFAULT_MEMORY_LIMIT, InputShape, MAX_CHUNK_FRAMES, MIN_CHUNK_FRAMES, plan_chunk,
};
pub use memory::{MemorySample, MemorySource, chunked_convolve, convolve_array};
use queue::{CloseOnDrop, Queue};
pub use stats::Stats;

/// Most compute threads per core that a run accepts: more only adds
/// stacks and scheduling, and `--threads 100000` would take the machine's
/// thread limit (it hung before this check).
pub const MAX_THREADS_PER_CORE: usize = 8;

/// Checks a thread count: at least 1, at most [`MAX_THREADS_PER_CORE`]
/// times the cores (and at least 64 in all, for small machines).
///
/// # Errors
/// [`Error::Usage`] naming `--threads` and the limit.
pub fn check_threads(threads: usize) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = (MAX_THREADS_PER_CORE * cores).max(64);
    if threads == 0 {
        return Err(Error::usage("--threads must be at least 1"));
    }
    if threads > most {
        return Err(Error::usage(format!(
            "--threads {threads}: at most {most} ({MAX_THREADS_PER_CORE} per core on {cores} cores)"
        )));
    }
    Ok(threads)
}

/// Bytes in a MiB, for the figures in [`Stats`].
const MIB: f64 = (1u64 << 20) as f64;

/// How the stream is cut and run (the seed's `StreamConfig`).
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Frames (samples per channel) per chunk; `None` (the default): the
    /// largest chunk within `memory_limit` (see [`plan_chunk`]). A given
    /// chunk size that does not fit `memory_limit` is refused.
    pub chunk_size: Option<usize>,
    /// Peak memory of the whole process, in bytes, that the chunk and every
    /// buffer sized from the input or the options must fit
    /// ([`DEFAULT_MEMORY_LIMIT`] by default).
    pub memory_limit: u64,
    /// Whether `memory_limit` is a hard limit (the user set it, as
    /// `--memory-limit` does). When `false` (the default) it bounds the
    /// buffers, and a job whose own per-channel state (detector windows,
    /// filter history) leaves no room for the smallest chunk runs with the
    /// limit raised by that state instead of being refused
    /// ([`Stats::memory_limit_mb`] says by how much).
    pub strict_memory_limit: bool,
    /// Compute threads (besides the reader and writer threads).
    pub threads: usize,
    /// Blocks queued between reader, compute and writer.
    pub queue_depth: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            chunk_size: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            strict_memory_limit: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_depth: 2,
        }
    }
}

/// Where a run reports progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Chunks done.
    pub chunks: u64,
    /// Input frames done.
    pub frames: u64,
    /// Input frames in all, when known.
    pub total_frames: Option<u64>,
}

/// A progress callback ([`Sinks::progress`]).
pub type ProgressFn<'a> = dyn FnMut(&Progress) -> Result<()> + 'a;

/// The outputs of one run; every part is optional.
#[derive(Default)]
pub struct Sinks<'a> {
    /// The filtered signal.
    pub signal: Option<Box<dyn SignalSink + 'a>>,
    /// The events, in order of start then channel.
    pub events: Option<&'a mut dyn EventSink>,
    /// The snippets around the events (the job's
    /// [`Job::snippets`](crate::backend::Job::snippets)), in the events'
    /// order.
    pub snippets: Option<&'a mut dyn SnippetSink>,
    /// Called after every chunk; an error stops the run (a front's
    /// Ctrl-C: [`Error::Interrupted`]) and is returned.
    pub progress: Option<&'a mut ProgressFn<'a>>,
}

impl std::fmt::Debug for Sinks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("signal", &self.signal.is_some())
            .field("events", &self.events.is_some())
            .field("snippets", &self.snippets.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The process's pool of `threads` worker threads (named
/// `sigstream-worker-{i}`), for stages that split their channels or frames.
///
/// Why one pool for all: a pipeline runs stages on two threads at once
/// (the reader's zero-phase stream, the compute thread's filter, IIR and
/// reference), each splitting its work. With a pool each, a 2-core machine
/// either ran 4 workers (their spinning and switching cost more than they
/// gave) or gave each side one core, and the side with less work left its
/// core idle (the spike pipeline ran at 150 % of 2 cores). Sharing one
/// pool, both sides' tasks go to the same `threads` workers, whichever
/// side has work. Every user with the same count shares it while any of
/// them holds it; a new one is built after they are all gone.
///
/// # Errors
/// [`Error::Runtime`] when the threads cannot be started.
pub(crate) fn worker_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    use std::sync::{Mutex, Weak};
    static POOLS: Mutex<Vec<(usize, Weak<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    // A panic elsewhere while holding the lock leaves the list as it was:
    // still a valid list of pools.
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|(_, pool)| pool.strong_count() > 0);
    if let Some(pool) = pools
        .iter()
        .filter(|(n, _)| *n == threads)
        .find_map(|(_, pool)| pool.upgrade())
    {
        return Ok(pool);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sigstream-worker-{i}"))
        .build()
        .map_err(|e| Error::Runtime {
            msg: format!("cannot start {threads} worker threads: {e}"),
        })?;
    // Wait until every worker has started and run a job: a worker sets
    // itself up (thread-locals, its deque's registration) when it is first
    // scheduled, which on a loaded machine can be chunks later, and those
    // allocations belong to planning, not to the steady state.
    pool.broadcast(|_| ());
    let pool = Arc::new(pool);
    pools.push((threads, Arc::downgrade(&pool)));
    Ok(pool)
}

/// Runs a [`Job`] over files or streams, chunk by chunk (the seed's
/// `StreamProcessor`).
#[derive(Clone)]
pub struct StreamProcessor {
    config: StreamConfig,
    job: Job,
    backend: Arc<dyn Backend>,
    /// One shard of the stream ([`crate::shard`]), or all of it.
    shard: Option<crate::shard::ShardPlan>,
}

impl std::fmt::Debug for StreamProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamProcessor")
            .field("config", &self.config)
            .field("job", &self.job)
            .field("backend", &self.backend.name())
            .field("shard", &self.shard)
            .finish()
    }
}

impl StreamProcessor {
    /// A processor for `job` on the CPU backend.
    pub fn new(config: StreamConfig, job: Job) -> Self {
        StreamProcessor {
            config,
            job,
            backend: Arc::new(CpuBackend),
            shard: None,
        }
    }

    /// Processes only the shard `plan` of the stream
    /// ([`crate::shard::plan`]): reads from its halo's start, stops once its
    /// output slice and its events are complete, and reports events in the
    /// stream's indices. The signal sink receives the output from
    /// [`crate::shard::ShardPlan::read_start`] on (the shard's shared output
    /// keeps its slice).
    #[must_use]
    pub fn with_shard(mut self, plan: crate::shard::ShardPlan) -> Self {
        self.shard = Some(plan);
        self
    }

    /// The same processor with `bytes` of its memory limit left to
    /// something that runs beside it (the streaming zero-phase filter that
    /// feeds it): it plans its chunks within the rest.
    #[must_use]
    pub fn reserving(mut self, bytes: u64) -> Self {
        self.config.memory_limit = self.config.memory_limit.saturating_sub(bytes);
        self
    }

    /// Runs on `backend` instead.
    pub fn with_backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = backend;
        self
    }

    /// The backend the job runs on.
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// The run configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Samples of history carried between chunks, derived from the stages.
    pub fn overlap(&self) -> usize {
        self.job.history()
    }

    /// Opens `path` (memory-mapped; `-` for standard input) and processes it.
    pub fn process_file(
        &self,
        path: &Path,
        opts: &SourceOptions,
        sinks: Sinks<'_>,
    ) -> Result<Stats> {
        let mut source = source::open(path, opts)?;
        self.process_source(source.as_mut(), sinks)
    }

    /// Processes every frame of `source`.
    pub fn process_source(
        &self,
        source: &mut dyn ChunkSource,
        mut sinks: Sinks<'_>,
    ) -> Result<Stats> {
        let started = Instant::now();
        let info = source.info().clone();
        // The job as it runs on this source (checked below).
        Job {
            complex: info.complex,
            ..self.job.clone()
        }
        .validate()?;
        let taps = self.job.taps();
        let too_short = |frames: u64| {
            Error::format(
                &info.path,
                format!(
                    "the kernel has {taps} taps but the signal only {frames} samples: a kernel may not be longer than the signal"
                ),
            )
        };
        if let Some(frames) = info.frames
            && frames < taps as u64
        {
            return Err(too_short(frames));
        }
        let channels = info.channels;
        let threads = self.config.threads.max(1);
        let mut signal = sinks.signal.take();
        let has_signal = signal.is_some();
        let mut job = Job {
            discard_signal: self.job.discard_signal || !has_signal,
            complex: info.complex,
            ..self.job.clone()
        };
        // A shard: its detectors follow its sync points, and it reads from
        // its halo's start.
        let mut synced = None;
        if let Some(shard) = &self.shard {
            let (ranged, done) = shard.job(&job);
            job = ranged;
            synced = Some(done);
            if !source.seekable() {
                return Err(Error::usage(format!(
                    "{}: --range starts reading inside the input; this one is read in order only (standard input, miniSEED, FLAC)",
                    info.path.display()
                )));
            }
            source.seek(shard.read_start)?;
        }
        let lanes = if job.detector.is_some() {
            info.signal_channels()
        } else {
            0
        };
        // Complex signals and decimation run through the stages around the
        // backend's filter (the backend's own path otherwise).
        let backend: Arc<dyn Backend> = Arc::new(crate::backend::staged::StagedBackend::new(
            self.backend.clone(),
        ));
        let shape = InputShape {
            channels,
            sample_bytes: info.dtype.size(),
            frames: info.frames,
        };
        // Everything below is sized from this plan, checked against the
        // memory limit before the first allocation.
        let plan = plan_chunk(&self.config, &shape, &job, backend.as_ref(), has_signal)?;
        let chunk = plan.frames;
        let mut processor = backend.plan(&job, channels, chunk, threads)?;
        debug_assert_eq!(processor.output_capacity(), plan.output_frames);
        let depth = self.config.queue_depth.max(1);
        // In flight: `depth` queued + one being filled/written + one in use
        // (see `budget`; one output block when nothing is written).
        let in_pool = MemoryPool::new(channels, chunk, plan.input_blocks);
        in_pool.prefill(plan.input_blocks);
        let out_pool = MemoryPool::new(channels, processor.output_capacity(), plan.output_blocks);
        out_pool.prefill(plan.output_blocks);
        let in_queue = Queue::<Result<Block>>::new(depth);
        let out_queue = Queue::<Block>::new(depth);

        let mut stats = Stats {
            channels: info.signal_channels(),
            backend: self.backend.name().to_string(),
            device: self.backend.device(),
            overlap: self.overlap(),
            chunk_size: chunk,
            memory_limit_mb: plan.memory_limit as f64 / MIB,
            planned_mb: plan.bytes as f64 / MIB,
            ..Stats::default()
        };
        let mut events = Vec::with_capacity(1024);
        if job.dedup.is_some() && info.signal_channels() < 2 {
            return Err(Error::format(
                &info.path,
                "one channel: --dedup-window compares neighbouring channels, it needs at least two channels",
            ));
        }
        let mut order = EventOrder {
            held: Vec::with_capacity(1024),
            written: 0,
            sink: sinks.events.take(),
            snippets: sinks.snippets.take(),
            row: Vec::new(),
            dedup: job.dedup.map(crate::detect::dedup::Dedup::new),
            decided: Vec::new(),
            base: self.shard.as_ref().map_or(0, |s| s.read_start),
        };
        let shard = self.shard.as_ref();

        std::thread::scope(|s| -> Result<()> {
            let (in_pool, out_pool) = (&in_pool, &out_pool);
            let (in_queue, out_queue) = (&in_queue, &out_queue);
            s.spawn(move || {
                let _close = CloseOnDrop(in_queue);
                let mut start = 0u64;
                loop {
                    let mut block = in_pool.get();
                    let msg = match source.read_block(&mut block) {
                        Ok(0) => break,
                        Ok(n) => {
                            block.start = start;
                            start += n as u64;
                            Ok(block)
                        }
                        Err(e) => Err(e),
                    };
                    let failed = msg.is_err();
                    if in_queue.push(msg).is_err() || failed {
                        break;
                    }
                }
            });
            let writer = signal.take().map(|mut sink| {
                s.spawn(move || -> Result<Box<dyn SignalSink + '_>> {
                    let _close = CloseOnDrop(out_queue);
                    while let Some(block) = out_queue.pop() {
                        sink.write(&block)?;
                        out_pool.put(block);
                    }
                    Ok(sink)
                })
            });

            // Hands an output block to the writer (or back to the pool when
            // nothing is written); false if the writer has stopped.
            let deliver = |block: Block| -> bool {
                if has_signal {
                    out_queue.push(block).is_ok()
                } else {
                    out_pool.put(block);
                    true
                }
            };
            let mut run = || -> Result<()> {
                // When every channel had found its end sync point (a shard's).
                let mut synced_at = None;
                while let Some(msg) = in_queue.pop() {
                    let block = msg?;
                    let mut out = out_pool.get();
                    processor.process(&block, &mut out, &mut events)?;
                    stats.samples += block.frames() as u64;
                    stats.chunks += 1;
                    in_pool.put(block);
                    if !deliver(out) {
                        return Ok(()); // the writer failed; its error is reported below
                    }
                    order.push(&mut events, processor.as_mut())?;
                    if let Some(progress) = sinks.progress.as_deref_mut() {
                        progress(&Progress {
                            chunks: stats.chunks,
                            frames: stats.samples,
                            total_frames: info.frames,
                        })?;
                    }
                    if let (Some(shard), Some(done)) = (shard, &synced) {
                        let found = done.load(std::sync::atomic::Ordering::Relaxed);
                        if shard.complete(stats.samples, lanes, found, &mut synced_at) {
                            break;
                        }
                    }
                }
                if stats.samples < taps as u64 {
                    return Err(too_short(stats.samples));
                }
                loop {
                    let mut out = out_pool.get();
                    let more = processor.finish(&mut out, &mut events)?;
                    if !deliver(out) {
                        return Ok(());
                    }
                    order.push(&mut events, processor.as_mut())?;
                    if !more {
                        break;
                    }
                }
                stats.output_samples = processor.emitted();
                stats.fir_method = processor.fir_method();
                order.flush(processor.as_mut())
            };
            let result = run();
            in_queue.close(); // stops the reader if we stopped early
            out_queue.close(); // the writer drains what is queued and ends
            let written = writer.map(|w| {
                w.join().map_err(|_| Error::Runtime {
                    msg: "the writer thread panicked".into(),
                })
            });
            result?;
            if let Some(sink) = written {
                signal = Some(sink??);
            }
            Ok(())
        })?;
        if let Some(sink) = signal {
            sink.finish()?;
        }
        stats.events = order.written;
        stats.duplicates = order.dedup.as_ref().map_or(0, |d| d.dropped());
        stats.bytes = stats.samples * channels as u64 * info.dtype.size() as u64;
        stats.seconds = started.elapsed().as_secs_f64();
        stats.throughput_mb_s = stats.bytes as f64 / stats.seconds.max(1e-9) / 1e6;
        stats.peak_rss_mb = stats::peak_rss_mib();
        Ok(stats)
    }
}

/// Holds events back until no channel can report an earlier one, then
/// writes them sorted by (start, channel, end), each with its snippet when
/// the job cuts them (held back, too, until its window is complete: the
/// processor's horizon says so), and, with de-duplication, only those no
/// neighbour's larger peak suppresses (decided in the same order).
struct EventOrder<'a> {
    held: Vec<Event>,
    written: u64,
    sink: Option<&'a mut dyn EventSink>,
    snippets: Option<&'a mut dyn SnippetSink>,
    /// One snippet, reused.
    row: Vec<f32>,
    dedup: Option<crate::detect::dedup::Dedup>,
    /// The de-duplication's decisions, reused.
    decided: Vec<(Event, bool)>,
    /// Stream index of the first sample read (a shard's; 0 otherwise):
    /// added to the events' indices as they are written.
    base: u64,
}

impl EventOrder<'_> {
    fn push(&mut self, new: &mut Vec<Event>, processor: &mut dyn ChunkProcessor) -> Result<()> {
        if self.held.is_empty() && new.is_empty() {
            return Ok(());
        }
        self.held.append(new);
        let horizon = processor.horizon();
        self.emit(processor, horizon)
    }

    fn flush(&mut self, processor: &mut dyn ChunkProcessor) -> Result<()> {
        self.emit(processor, u64::MAX)
    }

    /// Writes the held events that start before `horizon` (all of them at
    /// `u64::MAX`).
    fn emit(&mut self, processor: &mut dyn ChunkProcessor, horizon: u64) -> Result<()> {
        self.held
            .sort_unstable_by_key(|e| (e.start, e.channel, e.end));
        let n = self
            .held
            .iter()
            .take_while(|e| horizon == u64::MAX || e.start < horizon)
            .count();
        let Some(dedup) = self.dedup.as_mut() else {
            for i in 0..n {
                let e = self.held[i];
                self.write(processor, &e, true)?;
            }
            self.held.drain(..n);
            return Ok(());
        };
        for e in self.held.drain(..n) {
            dedup.push(e);
        }
        let mut decided = std::mem::take(&mut self.decided);
        dedup.release(horizon, &mut decided);
        let result = decided
            .drain(..)
            .try_for_each(|(e, keep)| self.write(processor, &e, keep));
        self.decided = decided;
        result
    }

    /// Writes one event with its snippet, or (not `keep`) drops both.
    fn write(&mut self, processor: &mut dyn ChunkProcessor, e: &Event, keep: bool) -> Result<()> {
        let padded = match processor.snippets() {
            Some(s) => {
                let padded = s.take(e, &mut self.row)?;
                if keep && let Some(w) = self.snippets.as_deref_mut() {
                    w.snippet(&self.row)?;
                }
                Some(padded)
            }
            None => None,
        };
        if !keep {
            return Ok(());
        }
        let shifted;
        let e = if self.base == 0 {
            e
        } else {
            shifted = Event {
                start: e.start + self.base,
                end: e.end + self.base,
                peak_index: e.peak_index + self.base,
                ..*e
            };
            &shifted
        };
        if let Some(sink) = self.sink.as_deref_mut() {
            match padded {
                Some(p) => sink.event_with_snippet(e, p)?,
                None => sink.event(e)?,
            }
        }
        self.written += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn one_worker_pool_per_thread_count_shared_by_threads_at_once() {
        let a = worker_pool(3).unwrap();
        let b = worker_pool(3).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same count shares the pool");
        let c = worker_pool(5).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!((a.current_num_threads(), c.current_num_threads()), (3, 5));
        // Two threads splitting work on the shared pool at once, each
        // nesting a split inside its tasks (as the stages do), all finish
        // with their own results.
        let sums: Vec<u64> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..2u64)
                .map(|k| {
                    let pool = worker_pool(3).unwrap();
                    s.spawn(move || {
                        pool.install(|| {
                            (0..64u64)
                                .into_par_iter()
                                .map(|i| {
                                    (0..100u64).into_par_iter().map(|j| i * j + k).sum::<u64>()
                                })
                                .sum::<u64>()
                        })
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let want = |k: u64| {
            (0..64u64)
                .map(|i| (0..100u64).map(|j| i * j + k).sum::<u64>())
                .sum::<u64>()
        };
        assert_eq!(sums, vec![want(0), want(1)]);
    }
}
