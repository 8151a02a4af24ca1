//! The CPU backend: FIR filtering with rustfft or direct loops, and
//! the detectors of [`crate::detect`], channel by channel.
//!
//! Why it looks like this: each channel is an independent stream (its own
//! filter history and detector state), so channels run in parallel when
//! there are several; with one channel, the filter spreads its blocks over
//! the threads instead. Detection is sequential per channel by nature
//! (running sums, trigger state), and cheap next to filtering.

pub mod fir;

use std::sync::Arc;

use rayon::prelude::*;

use crate::backend::{Backend, ChunkProcessor, Job};
use crate::detect::{Detector, Event};
use crate::error::{Error, Result};
use crate::pool::Block;
use fir::{Fir, FirMethod};

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
        if channels == 0 || chunk == 0 {
            return Err(Error::usage(format!(
                "cannot plan {channels} channels in chunks of {chunk} frames: both must be at least 1"
            )));
        }
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("sigstream-cpu-{i}"))
                .build()
                .map_err(|e| Error::Runtime {
                    msg: format!("cannot start {threads} worker threads: {e}"),
                })?;
            // Wait until every worker has started and run a job: a worker
            // sets itself up (thread-locals, its deque's registration) when
            // it is first scheduled, which on a loaded machine can be chunks
            // later, and those allocations belong to planning, not to the
            // steady state.
            pool.broadcast(|_| ());
            Some(Arc::new(pool))
        } else {
            None
        };
        let across_channels = channels > 1 && pool.is_some();
        let fir_pool = if across_channels { None } else { pool.clone() };
        let taps = job.taps();
        let firs: Vec<Option<Fir>> = (0..channels)
            .map(|_| {
                job.kernel.as_ref().map(|k| {
                    let method = job.fir_method.unwrap_or_else(|| FirMethod::choose(k.len()));
                    Fir::new(k, chunk, method, fir_pool.clone())
                })
            })
            .collect();
        let out_capacity = firs
            .first()
            .and_then(|f| f.as_ref())
            .map_or(chunk, |f| f.max_output());
        let detectors: Vec<Box<dyn Detector>> = match &job.detector {
            Some(d) => (0..channels).map(|_| d.build()).collect(),
            None => Vec::new(),
        };
        Ok(CpuProcessor {
            events: (0..detectors.len())
                .map(|_| Vec::with_capacity(256))
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

    /// One filter step over every channel: `input`, or (without input)
    /// `zeros` zeros of the tail, or the final flush. Writes the trimmed
    /// outputs to `output`.
    fn filter(&mut self, input: Option<&Block>, zeros: usize, output: &mut Block) {
        let (skip, produced) = (self.skip, self.produced);
        let zeros_buf = &self.zeros[..zeros];
        let run = |(c, (fir, out)): (usize, (&mut Option<Fir>, &mut [f32]))| -> (usize, usize) {
            let n = match (fir, input) {
                (Some(fir), Some(block)) => fir.push(block.channel(c), out),
                (Some(fir), None) if zeros > 0 => fir.push(zeros_buf, out),
                (Some(fir), None) => fir.flush(out),
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
        let (n, kept) = match (&self.pool, self.across_channels) {
            (Some(pool), true) => pool.install(|| {
                self.firs
                    .par_iter_mut()
                    .zip(planes.par_chunks_exact_mut(stride))
                    .enumerate()
                    .map(run)
                    .reduce(|| (0, 0), |a, b| a.max(b))
            }),
            _ => self
                .firs
                .iter_mut()
                .zip(planes.chunks_exact_mut(stride))
                .enumerate()
                .map(run)
                .fold((0, 0), |a, b| a.max(b)),
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
            det.process(block.channel(c), block.start, ev);
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
        for (c, ev) in self.events.iter_mut().enumerate() {
            events.extend(ev.drain(..).map(|mut e| {
                e.channel = c;
                e
            }));
        }
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
        self.detectors
            .iter()
            .filter_map(|d| d.open_event_start())
            .min()
            .unwrap_or(self.detected)
            .min(self.detected)
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
