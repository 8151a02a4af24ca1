//! The CPU backend: FIR filtering with rustfft/realfft or direct loops, and
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

/// One channel's filter and detector state.
struct Channel {
    fir: Option<Fir>,
    detector: Option<Box<dyn Detector>>,
    events: Vec<Event>,
}

/// Per-chunk work on the CPU for one stream. See the module docs.
pub struct CpuProcessor {
    channels: Vec<Channel>,
    /// Full-convolution outputs dropped at the start (conv mode).
    skip: u64,
    /// Zeros still to push after the input ends (conv mode's tail).
    pad_left: u64,
    /// Full-convolution outputs produced so far (per channel).
    produced: u64,
    /// Outputs emitted after trimming (per channel).
    emitted: u64,
    zeros: Vec<f32>,
    /// Parallelise across channels (else inside each channel's filter).
    across_channels: Option<Arc<rayon::ThreadPool>>,
    chunk: usize,
    out_capacity: usize,
}

impl CpuProcessor {
    /// Plans `job` for `channels` channels, blocks of at most `chunk` frames,
    /// `threads` threads.
    pub fn new(job: &Job, channels: usize, chunk: usize, threads: usize) -> Result<Self> {
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("sigstream-cpu-{i}"))
                .build()
                .map_err(|e| Error::Runtime {
                    msg: format!("cannot start {threads} worker threads: {e}"),
                })?;
            Some(Arc::new(pool))
        } else {
            None
        };
        let across_channels = if channels > 1 { pool.clone() } else { None };
        let fir_pool = if channels > 1 { None } else { pool };
        let taps = job.taps();
        let mut out_capacity = chunk;
        let channels = (0..channels)
            .map(|_| {
                let fir = job.kernel.as_ref().map(|k| {
                    let method = job.fir_method.unwrap_or_else(|| FirMethod::choose(k.len()));
                    Fir::new(k, chunk, method, fir_pool.clone())
                });
                if let Some(f) = &fir {
                    out_capacity = f.max_output();
                }
                Channel {
                    fir,
                    detector: job.detector.as_ref().map(|d| d.build()),
                    events: Vec::with_capacity(256),
                }
            })
            .collect();
        Ok(CpuProcessor {
            channels,
            skip: job.conv_mode.skip(taps) as u64,
            pad_left: job.conv_mode.pad(taps) as u64,
            produced: 0,
            emitted: 0,
            zeros: if job.kernel.is_some() {
                vec![0.0; chunk]
            } else {
                Vec::new()
            },
            across_channels,
            chunk,
            out_capacity,
        })
    }

    /// Runs every channel on its input slice (`None`: the flush at the end).
    fn step(&mut self, input: Option<&Block>, zeros: usize, output: &mut Block) -> usize {
        let (skip, produced, emitted) = (self.skip, self.produced, self.emitted);
        let zeros_buf = &self.zeros[..zeros];
        let run = |(c, (ch, out)): (usize, (&mut Channel, &mut [f32]))| -> (usize, usize) {
            let n = match (&mut ch.fir, input) {
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
            let kept = n - drop;
            if let Some(det) = &mut ch.detector {
                det.process(&out[..kept], emitted, &mut ch.events);
            }
            (n, kept)
        };
        let stride = output.capacity();
        let (n, kept) = match &self.across_channels {
            Some(pool) => {
                let planes = output.planes_mut();
                pool.install(|| {
                    self.channels
                        .par_iter_mut()
                        .zip(planes.par_chunks_exact_mut(stride))
                        .enumerate()
                        .map(run)
                        .reduce(|| (0, 0), |a, b| a.max(b))
                })
            }
            None => {
                let planes = output.planes_mut();
                self.channels
                    .iter_mut()
                    .zip(planes.chunks_exact_mut(stride))
                    .enumerate()
                    .map(run)
                    .fold((0, 0), |a, b| a.max(b))
            }
        };
        output.start = self.emitted;
        output.set_frames(kept);
        self.produced += n as u64;
        self.emitted += kept as u64;
        kept
    }

    fn collect_events(&mut self, events: &mut Vec<Event>) {
        for (c, ch) in self.channels.iter_mut().enumerate() {
            events.extend(ch.events.drain(..).map(|mut e| {
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
        let has_fir = self.channels.first().is_some_and(|c| c.fir.is_some());
        let more = if has_fir && self.pad_left > 0 {
            let z = (self.pad_left as usize).min(self.chunk);
            self.pad_left -= z as u64;
            self.step(None, z, output);
            true
        } else {
            self.step(None, 0, output);
            for ch in &mut self.channels {
                if let Some(det) = &mut ch.detector {
                    det.finish(&mut ch.events);
                }
            }
            false
        };
        self.collect_events(events);
        Ok(more)
    }

    fn horizon(&self) -> u64 {
        self.channels
            .iter()
            .filter_map(|c| c.detector.as_ref().and_then(|d| d.open_event_start()))
            .min()
            .unwrap_or(self.emitted)
            .min(self.emitted)
    }
}
