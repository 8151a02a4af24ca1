//! The CPU backend: FIR filtering with rustfft or direct loops, and
//! the detectors of [`crate::detect`], channel by channel.
//!
//! Why it looks like this: each channel is an independent stream (its own
//! filter history and detector state), so channels run in parallel when
//! there are several; with one channel, the filter spreads its blocks over
//! the threads instead. Detection is sequential per channel by nature
//! (running sums, trigger state), and cheap next to filtering.
//!
//! With many channels, channels go to the threads in contiguous groups
//! ([`GROUPS_PER_THREAD`] per thread), each group with one FFT scratch, and
//! all channels share one [`FirPlan`]: what a channel holds is then only
//! its filter history and its detector, which is what lets a 385-channel
//! stream fit a memory budget of a few MiB (see [`crate::pipeline`]).

pub mod fir;

use std::sync::Arc;

use rayon::prelude::*;

use crate::backend::{Backend, ChunkProcessor, Footprint, Job};
use crate::detect::{Detector, Event};
use crate::error::{Error, Result};
use crate::pool::Block;
use fir::{Fir, FirFootprint, FirMethod, FirPlan, FirScratch};

/// Channel groups per thread when channels run in parallel: several per
/// thread so that a thread that also runs the detectors (they overlap the
/// filter, see [`CpuProcessor`]) does not hold up the others, and few enough
/// that each group is thousands of samples of work (one rayon task, one
/// FFT scratch each).
const GROUPS_PER_THREAD: usize = 4;

/// Bytes per `f32`.
pub(crate) const F32_BYTES: u64 = 4;

/// Initial capacity of each channel's event list: reserved at planning so
/// that a few events per chunk never allocate (a list that needs more grows
/// once and keeps its capacity). 64 rather than more because every channel
/// of a many-channel probe holds one, and the budget counts them.
pub(crate) const EVENTS_PER_CHANNEL: usize = 64;

/// Bytes of one [`Event`] in the event lists.
const EVENT_BYTES: u64 = std::mem::size_of::<Event>() as u64;

/// The CPU backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn device(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("{} ({cores} cores)", std::env::consts::ARCH)
    }

    fn plan(
        &self,
        job: &Job,
        channels: usize,
        chunk: usize,
        threads: usize,
    ) -> Result<Box<dyn ChunkProcessor>> {
        Ok(Box::new(CpuProcessor::new(job, channels, chunk, threads)?))
    }

    fn footprint(&self, job: &Job, channels: usize, chunk: usize, threads: usize) -> Footprint {
        CpuProcessor::footprint(job, channels, chunk, threads)
    }
}

/// The FIR method for `job` on `channels` channels.
fn fir_method(job: &Job, taps: usize, channels: usize) -> FirMethod {
    job.fir_method
        .unwrap_or_else(|| FirMethod::choose_for(taps, channels))
}

/// Channel groups (and FFT scratches) for `channels` channels on `threads`
/// threads; 0 when the channels do not run in parallel.
fn groups(channels: usize, threads: usize) -> usize {
    if channels > 1 && threads > 1 {
        channels.min(threads * GROUPS_PER_THREAD)
    } else {
        0
    }
}

/// Per-chunk work on the CPU for one stream. See the module docs.
///
/// When a detector runs, the processor is a two-stage pipeline: while chunk
/// `k` is filtered, the detector runs over the filtered chunk `k − 1`
/// (`rayon::join`), so the sequential detector overlaps the filter instead
/// of following it. Output blocks therefore leave one call late; the filtered
/// block waits in `pending`, and blocks are swapped, not copied.
pub struct CpuProcessor {
    firs: Vec<Option<Fir>>,
    /// One FFT scratch per channel group (parallel channels), or one for
    /// all channels (sequential channels); empty ones for direct filters
    /// and pass-through.
    scratch: Vec<FirScratch>,
    /// Channels per group when channels run in parallel.
    group: usize,
    detectors: Vec<Box<dyn Detector>>,
    events: Vec<Vec<Event>>,
    /// Filtered but not yet detected (only with detectors).
    pending: Block,
    /// Full-convolution outputs dropped at the start (conv mode).
    skip: u64,
    /// Zeros still to push after the input ends (conv mode's tail).
    pad_left: u64,
    /// Full-convolution outputs produced so far (per channel).
    produced: u64,
    /// Outputs emitted after trimming (per channel).
    emitted: u64,
    /// Outputs the detectors have seen.
    detected: u64,
    /// The filter's tail has been flushed.
    flushed: bool,
    zeros: Vec<f32>,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Parallelise across channels (else inside each channel's filter).
    across_channels: bool,
    chunk: usize,
    out_capacity: usize,
}

impl std::fmt::Debug for CpuProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuProcessor")
            .field("channels", &self.firs.len())
            .field("chunk", &self.chunk)
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

impl CpuProcessor {
    /// Plans `job` for `channels` channels, blocks of at most `chunk` frames,
    /// `threads` threads.
    pub fn new(job: &Job, channels: usize, chunk: usize, threads: usize) -> Result<Self> {
        job.validate()?;
        crate::pipeline::check_threads(threads)?;
        if channels == 0 || chunk == 0 {
            return Err(Error::usage(format!(
                "cannot plan {channels} channels in chunks of {chunk} frames: both must be at least 1"
            )));
        }
        // The process's workers, shared with the stages around this
        // processor ([`crate::pipeline::worker_pool`]).
        let pool = if threads > 1 {
            Some(crate::pipeline::worker_pool(threads)?)
        } else {
            None
        };
        let across_channels = channels > 1 && pool.is_some();
        let taps = job.taps();
        let plan = job
            .kernel
            .as_ref()
            .map(|k| FirPlan::new(k, fir_method(job, k.len(), channels)))
            .transpose()?;
        let ngroups = groups(channels, threads);
        let (firs, scratch): (Vec<Option<Fir>>, Vec<FirScratch>) = match &plan {
            Some(plan) if channels == 1 => {
                // One channel: the filter spreads its big pushes over the
                // pool, with a scratch per worker of its own.
                (
                    vec![Some(Fir::with_plan(plan, chunk, pool.clone()))],
                    vec![plan.scratch()],
                )
            }
            Some(plan) => (
                (0..channels)
                    .map(|_| Some(Fir::with_plan(plan, chunk, None)))
                    .collect(),
                (0..ngroups.max(1)).map(|_| plan.scratch()).collect(),
            ),
            // Pass-through: empty scratches, one per group, so the groups
            // still pair up with them.
            None => (
                (0..channels).map(|_| None).collect(),
                (0..ngroups.max(1)).map(|_| FirScratch::default()).collect(),
            ),
        };
        let out_capacity = plan.as_ref().map_or(chunk, |p| p.max_output(chunk));
        let detectors: Vec<Box<dyn Detector>> = match &job.detector {
            Some(d) => {
                d.check_channels(channels)?;
                (0..channels).map(|c| d.build_for(c)).collect()
            }
            None => Vec::new(),
        };
        Ok(CpuProcessor {
            scratch,
            group: channels.div_ceil(ngroups.max(1)),
            events: (0..detectors.len())
                .map(|_| Vec::with_capacity(EVENTS_PER_CHANNEL))
                .collect(),
            pending: Block::new(
                channels,
                if detectors.is_empty() {
                    0
                } else {
                    out_capacity
                },
            ),
            firs,
            detectors,
            skip: job.conv_mode.skip(taps) as u64,
            pad_left: job.conv_mode.pad(taps) as u64,
            produced: 0,
            emitted: 0,
            detected: 0,
            flushed: false,
            zeros: if job.kernel.is_some() {
                vec![0.0; chunk]
            } else {
                Vec::new()
            },
            pool,
            across_channels,
            chunk,
            out_capacity,
        })
    }

    /// What [`CpuProcessor::new`] allocates for the same arguments, besides
    /// the output blocks the caller makes ([`Footprint::output_frames`]
    /// frames each) and the pool's threads.
    pub fn footprint(job: &Job, channels: usize, chunk: usize, threads: usize) -> Footprint {
        let ch = channels as u64;
        let threads = threads.max(1);
        let (output_frames, fir_bytes) = match &job.kernel {
            Some(k) => {
                let fir = FirFootprint::new(k.len(), fir_method(job, k.len(), channels), chunk);
                let workers = if channels == 1 && threads > 1 {
                    threads + 1
                } else {
                    groups(channels, threads).max(1)
                } as u64;
                let bytes = fir
                    .per_channel
                    .saturating_mul(ch)
                    .saturating_add(fir.shared)
                    .saturating_add(fir.per_worker.saturating_mul(workers))
                    // The zeros of the convolution's tail.
                    .saturating_add((chunk as u64).saturating_mul(F32_BYTES));
                (fir.max_output, bytes)
            }
            None => (chunk, 0),
        };
        let detect_bytes = match &job.detector {
            Some(d) => {
                let state = d.memory_bytes();
                // Each channel's detector and event list, and the block
                // waiting for detection (`pending`).
                (state.saturating_add(EVENTS_PER_CHANNEL as u64 * EVENT_BYTES))
                    .saturating_mul(ch)
                    .saturating_add(
                        (output_frames as u64)
                            .saturating_mul(ch)
                            .saturating_mul(F32_BYTES),
                    )
            }
            None => 0,
        };
        Footprint {
            output_frames,
            bytes: fir_bytes.saturating_add(detect_bytes),
        }
    }

    /// One filter step over every channel: `input`, or (without input)
    /// `zeros` zeros of the tail, or the final flush. Writes the trimmed
    /// outputs to `output`.
    fn filter(&mut self, input: Option<&Block>, zeros: usize, output: &mut Block) {
        let (skip, produced) = (self.skip, self.produced);
        let zeros_buf = &self.zeros[..zeros];
        let run = |c: usize,
                   fir: &mut Option<Fir>,
                   out: &mut [f32],
                   scratch: Option<&mut FirScratch>|
         -> (usize, usize) {
            let n = match (fir, input) {
                (Some(fir), Some(block)) => fir.push_with(block.channel(c), out, scratch),
                (Some(fir), None) if zeros > 0 => fir.push_with(zeros_buf, out, scratch),
                (Some(fir), None) => fir.flush_with(out, scratch),
                (None, Some(block)) => {
                    let x = block.channel(c);
                    out[..x.len()].copy_from_slice(x);
                    x.len()
                }
                (None, None) => 0,
            };
            // Trim the start to the conv mode's range.
            let drop = (skip.saturating_sub(produced) as usize).min(n);
            if drop > 0 {
                out.copy_within(drop..n, 0);
            }
            (n, n - drop)
        };
        let stride = output.capacity();
        let planes = output.planes_mut();
        let group = self.group;
        let (n, kept) = match (&self.pool, self.across_channels) {
            (Some(pool), true) => pool.install(|| {
                self.firs
                    .par_chunks_mut(group)
                    .zip(planes.par_chunks_mut(group * stride))
                    .zip(self.scratch.par_iter_mut())
                    .enumerate()
                    .map(|(g, ((firs, planes), scratch))| {
                        firs.iter_mut()
                            .zip(planes.chunks_exact_mut(stride))
                            .enumerate()
                            .map(|(i, (fir, out))| {
                                run(g * group + i, fir, out, Some(&mut *scratch))
                            })
                            .fold((0, 0), |a, b| a.max(b))
                    })
                    .reduce(|| (0, 0), |a, b| a.max(b))
            }),
            _ => {
                let mut scratch = self.scratch.first_mut();
                self.firs
                    .iter_mut()
                    .zip(planes.chunks_exact_mut(stride))
                    .enumerate()
                    .map(|(c, (fir, out))| run(c, fir, out, scratch.as_deref_mut()))
                    .fold((0, 0), |a, b| a.max(b))
            }
        };
        output.start = self.emitted;
        output.set_frames(kept);
        self.produced += n as u64;
        self.emitted += kept as u64;
    }

    /// Runs every channel's detector over `block`.
    fn detect(
        detectors: &mut [Box<dyn Detector>],
        events: &mut [Vec<Event>],
        block: &Block,
        parallel: bool,
    ) {
        let run = |(c, (det, ev)): (usize, (&mut Box<dyn Detector>, &mut Vec<Event>))| {
            det.process_in(block, c, 0..block.frames(), block.start, ev);
        };
        if parallel {
            detectors
                .par_iter_mut()
                .zip(events.par_iter_mut())
                .enumerate()
                .for_each(run);
        } else {
            detectors
                .iter_mut()
                .zip(events.iter_mut())
                .enumerate()
                .for_each(run);
        }
    }

    /// Filters one step into `output` while detecting the pending block,
    /// then swaps them: `output` leaves holding the detected block.
    fn step(&mut self, input: Option<&Block>, zeros: usize, output: &mut Block) {
        if self.detectors.is_empty() {
            self.filter(input, zeros, output);
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let mut detectors = std::mem::take(&mut self.detectors);
        let mut events = std::mem::take(&mut self.events);
        let across = self.across_channels;
        match self.pool.clone() {
            Some(pool) => {
                pool.install(|| {
                    rayon::join(
                        || self.filter(input, zeros, output),
                        || Self::detect(&mut detectors, &mut events, &pending, across),
                    )
                });
            }
            None => {
                self.filter(input, zeros, output);
                Self::detect(&mut detectors, &mut events, &pending, false);
            }
        };
        self.detected += pending.frames() as u64;
        std::mem::swap(output, &mut pending);
        self.pending = pending;
        self.detectors = detectors;
        self.events = events;
    }

    fn collect_events(&mut self, events: &mut Vec<Event>) {
        crate::backend::collect_channel_events(&mut self.events, events);
    }
}

impl ChunkProcessor for CpuProcessor {
    fn output_capacity(&self) -> usize {
        self.out_capacity
    }

    fn process(
        &mut self,
        input: &Block,
        output: &mut Block,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        self.step(Some(input), 0, output);
        self.collect_events(events);
        Ok(())
    }

    fn finish(&mut self, output: &mut Block, events: &mut Vec<Event>) -> Result<bool> {
        let has_fir = self.firs.first().is_some_and(|f| f.is_some());
        let more = if has_fir && self.pad_left > 0 {
            let z = (self.pad_left as usize).min(self.chunk);
            self.pad_left -= z as u64;
            self.step(None, z, output);
            true
        } else if !self.flushed {
            self.flushed = true;
            self.step(None, 0, output);
            // With detectors, the flushed block is still pending.
            !self.detectors.is_empty()
        } else {
            // Detect the last pending block, then close open events.
            self.step(None, 0, output);
            for (det, ev) in self.detectors.iter_mut().zip(self.events.iter_mut()) {
                det.finish(ev);
            }
            false
        };
        self.collect_events(events);
        Ok(more)
    }

    fn horizon(&self) -> u64 {
        crate::backend::detectors_horizon(&self.detectors, self.detected)
    }

    fn emitted(&self) -> u64 {
        self.emitted
    }

    fn fir_method(&self) -> Option<String> {
        self.firs
            .first()
            .and_then(|f| f.as_ref())
            .map(|f| format!("{:?}", f.method()))
    }
}
