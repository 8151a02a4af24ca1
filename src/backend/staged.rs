//! The stages around the filter that complex (I/Q) signals, decimation,
//! IIR filters and common references need: frequency shift, complex FIR,
//! IIR (second-order sections), common reference across channels,
//! polyphase decimation, and detection (on `|y|` for complex channels).
//!
//! Why a wrapper rather than more stages inside each backend: the costly
//! stage, the FIR, is the backends' own (overlap-save or direct, on the CPU
//! or in WGSL on the GPU), and a complex signal is, to a FIR, two real
//! planes. A real kernel filters the I and Q planes as two channels; a
//! complex kernel `h = a + ib` is two real filters, `a` and `b`, over the
//! same planes, combined as `y = (I∗a − Q∗b) + i(I∗b + Q∗a)`. So this
//! processor plans the backend's own filter (once or twice) without a
//! detector, and runs around it what is cheap and sequential:
//! - before it, the mixer `e^(−2πi·f·n/fs)` (`--shift`, [`crate::filter::mix`]);
//! - after it, the IIR sections (`--iir`, `--sos`, [`crate::filter::iir`]),
//!   channels in parallel, each with its state carried from chunk to chunk;
//! - then the common reference (`--reference`, [`crate::filter::reference`]);
//! - then the decimator (`--decimate`, [`crate::filter::resample`]);
//! - then the detectors, one per channel, on `|y|` for a complex channel
//!   (`sqrt(I² + Q²)` in `f64`) or on `y` for a real one;
//! - last, the snippets around the events (`--snippets`,
//!   [`crate::detect::snippet`]), cut from the output.
//!
//! These run on the CPU whatever the backend; the README says so.
//! Each is exact across chunk boundaries (the mixer's phase is a function
//! of the absolute sample index, the decimator keeps its history), so the
//! results do not depend on the chunk size, bit for bit on the CPU backend.

use std::sync::Arc;

use rayon::prelude::*;

use crate::backend::{Backend, ChunkProcessor, Footprint, Job};
use crate::detect::snippet::Snippets;
use crate::detect::{Detector, Event};
use crate::error::{Error, Result};
use crate::filter::iir::SosBank;
use crate::filter::mix::Mixer;
use crate::filter::reference::CommonReference;
use crate::filter::resample::{self, Decimator};
use crate::pool::Block;

// The CPU backend's: bytes per `f32`, and the events each channel's list
// is reserved for.
use crate::backend::cpu::{EVENTS_PER_CHANNEL, F32_BYTES};

/// A backend whose jobs with complex signals or decimation run through a
/// [`StagedProcessor`]; every other job goes to the backend as it is.
pub struct StagedBackend {
    inner: Arc<dyn Backend>,
}

impl std::fmt::Debug for StagedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedBackend")
            .field("inner", &self.inner.name())
            .finish()
    }
}

impl StagedBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        StagedBackend { inner }
    }

    /// Whether `job` runs through a [`StagedProcessor`]: its own stages
    /// ([`Job::staged`]), or a detector the GPU backend does not run
    /// (per-channel levels, a polarity, a dead time), which then runs on
    /// the CPU after the GPU's filter.
    fn stages(&self, job: &Job) -> bool {
        job.staged()
            || (self.inner.name() == "gpu"
                && job.detector.as_ref().is_some_and(|d| !d.gpu_supported()))
    }
}

impl Backend for StagedBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn device(&self) -> String {
        self.inner.device()
    }

    fn plan(
        &self,
        job: &Job,
        channels: usize,
        chunk: usize,
        threads: usize,
    ) -> Result<Box<dyn ChunkProcessor>> {
        if self.stages(job) {
            Ok(Box::new(StagedProcessor::new(
                self.inner.as_ref(),
                job,
                channels,
                chunk,
                threads,
            )?))
        } else {
            self.inner.plan(job, channels, chunk, threads)
        }
    }

    fn footprint(&self, job: &Job, channels: usize, chunk: usize, threads: usize) -> Footprint {
        if self.stages(job) {
            StagedProcessor::footprint(self.inner.as_ref(), job, channels, chunk, threads)
        } else {
            self.inner.footprint(job, channels, chunk, threads)
        }
    }
}

/// The backend's filter alone, for one part (real or imaginary) of the
/// kernel: no detector, the signal kept.
fn filter_job(job: &Job, taps: Vec<f32>) -> Job {
    Job {
        kernel: Some(taps),
        conv_mode: job.conv_mode,
        fir_method: job.fir_method,
        ..Job::default()
    }
}

/// Channels as detected: complex channels count once.
fn lanes(job: &Job, planes: usize) -> usize {
    if job.complex { planes / 2 } else { planes }
}

/// Shift, complex FIR, decimation and detection on `|y|` around a
/// backend's FIR. See the module docs.
pub struct StagedProcessor {
    complex: bool,
    mixer: Option<Mixer>,
    /// The mixed copy of the input (with a mixer).
    mixed: Block,
    /// The filter with the (real parts of the) taps, and with the
    /// imaginary parts.
    fir_re: Option<Box<dyn ChunkProcessor>>,
    fir_im: Option<Box<dyn ChunkProcessor>>,
    /// Their outputs.
    stage_re: Block,
    stage_im: Block,
    scratch_events: Vec<Event>,
    /// The IIR sections over every plane.
    iir: Option<SosBank>,
    /// The output of the IIR sections and the common reference when a
    /// decimator follows them (else they write into the output block).
    stage_mid: Block,
    /// The common reference, applied in place after the filters.
    reference: Option<CommonReference>,
    decimators: Vec<Decimator>,
    detectors: Vec<Box<dyn Detector>>,
    events: Vec<Vec<Event>>,
    /// `|y|` of one complex channel, for its detector.
    magnitude: Vec<f32>,
    /// Output frames so far (after decimation).
    emitted: u64,
    /// The filters have returned their last block.
    inner_done: bool,
    out_capacity: usize,
    /// Threads for the IIR, the reference and the decimators (planes or
    /// frames split among them).
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    /// The windows around the events (`--snippets`).
    snippets: Option<Snippets>,
}

impl std::fmt::Debug for StagedProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedProcessor")
            .field("complex", &self.complex)
            .field("mixer", &self.mixer)
            .field("decimators", &self.decimators.len())
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

impl StagedProcessor {
    /// Plans `job` on `channels` planes (I/Q pairs when `job.complex`) in
    /// blocks of at most `chunk` frames, its filter on `backend`.
    ///
    /// # Errors
    /// As [`Job::validate`] and the backend's own planning.
    pub fn new(
        backend: &dyn Backend,
        job: &Job,
        channels: usize,
        chunk: usize,
        threads: usize,
    ) -> Result<Self> {
        job.validate()?;
        if job.complex && !channels.is_multiple_of(2) {
            return Err(Error::usage(format!(
                "a complex stream has an even number of planes (I and Q), not {channels}"
            )));
        }
        let plan = |taps: &Vec<f32>| {
            backend.plan(&filter_job(job, taps.clone()), channels, chunk, threads)
        };
        let fir_re = job.kernel.as_ref().map(plan).transpose()?;
        let fir_im = job.kernel_imag.as_ref().map(plan).transpose()?;
        let inner_cap = fir_re.as_ref().map_or(chunk, |f| f.output_capacity());
        let out_capacity = output_capacity(job, inner_cap);
        let decimators = match job.decimate {
            Some(n) if n > 1 => {
                let rev = Decimator::reversed_taps(n);
                (0..channels)
                    .map(|_| Decimator::new(rev.clone(), n, inner_cap))
                    .collect()
            }
            _ => Vec::new(),
        };
        let detectors: Vec<Box<dyn Detector>> = match &job.detector {
            Some(d) => {
                d.check_channels(lanes(job, channels))?;
                (0..lanes(job, channels)).map(|c| d.build_for(c)).collect()
            }
            None => Vec::new(),
        };
        let iir = job.iir.clone().map(|sos| {
            let restarts = sos.restarts();
            let bank = SosBank::new(sos, channels);
            match restarts {
                Some(r) => bank.with_restarts(r, job.origin),
                None => bank,
            }
        });
        let reference = job
            .reference
            .map(|r| CommonReference::new(r, channels, inner_cap));
        if job.reference.is_some() && channels < 2 {
            return Err(Error::usage(
                "--reference subtracts what the channels share: it needs at least two channels",
            ));
        }
        let parallel_mid = iir.is_some() || reference.is_some();
        let parallel = !decimators.is_empty() || parallel_mid;
        let pool = if threads > 1 && channels > 1 && parallel {
            Some(crate::pipeline::worker_pool(threads.min(channels))?)
        } else {
            None
        };
        let snippets = job
            .snippets
            .clone()
            .map(|spec| Snippets::new(spec, channels, job.complex, out_capacity));
        Ok(StagedProcessor {
            snippets,
            pool,
            complex: job.complex,
            mixer: job.shift,
            mixed: Block::new(channels, if job.shift.is_some() { chunk } else { 0 }),
            stage_re: Block::new(channels, if fir_re.is_some() { inner_cap } else { 0 }),
            stage_im: Block::new(channels, if fir_im.is_some() { inner_cap } else { 0 }),
            fir_re,
            fir_im,
            scratch_events: Vec::new(),
            // Without decimation the IIR and the reference write straight
            // into the output block ([`StagedProcessor::step`]).
            stage_mid: Block::new(
                channels,
                if parallel_mid && !decimators.is_empty() {
                    inner_cap
                } else {
                    0
                },
            ),
            iir,
            reference,
            decimators,
            events: (0..detectors.len())
                .map(|_| Vec::with_capacity(EVENTS_PER_CHANNEL))
                .collect(),
            magnitude: if job.complex && !detectors.is_empty() {
                vec![0.0; out_capacity]
            } else {
                Vec::new()
            },
            detectors,
            emitted: 0,
            inner_done: false,
            out_capacity,
        })
    }

    /// What [`StagedProcessor::new`] allocates for the same arguments,
    /// the backend's filters included.
    pub fn footprint(
        backend: &dyn Backend,
        job: &Job,
        channels: usize,
        chunk: usize,
        threads: usize,
    ) -> Footprint {
        let ch = channels as u64;
        let block = |frames: usize| (frames as u64).saturating_mul(ch).saturating_mul(F32_BYTES);
        let mut bytes = 0u64;
        let mut inner_cap = chunk;
        let filters = usize::from(job.kernel.is_some()) + usize::from(job.kernel_imag.is_some());
        if let Some(k) = &job.kernel {
            let fp = backend.footprint(&filter_job(job, k.clone()), channels, chunk, threads);
            inner_cap = fp.output_frames;
            // Each filter's own state and its output block.
            bytes = fp
                .bytes
                .saturating_add(block(inner_cap))
                .saturating_mul(filters as u64);
        }
        if job.shift.is_some() {
            bytes = bytes.saturating_add(block(chunk));
        }
        if let Some(sos) = &job.iir {
            bytes = bytes.saturating_add(SosBank::state_bytes(sos, channels));
        }
        if job.reference.is_some() {
            bytes = bytes.saturating_add(CommonReference::bytes(channels, inner_cap));
        }
        let decimates = job.decimate.is_some_and(|n| n > 1);
        if (job.iir.is_some() || job.reference.is_some()) && decimates {
            bytes = bytes.saturating_add(block(inner_cap));
        }
        let out = output_capacity(job, inner_cap);
        if let Some(n) = job.decimate.filter(|&n| n > 1) {
            bytes = bytes
                .saturating_add(resample::state_bytes(n, inner_cap).saturating_mul(ch))
                .saturating_add(resample::taps_bytes(n));
        }
        if let Some(d) = &job.detector {
            let state = d.memory_bytes();
            let per_lane = state
                .saturating_add(EVENTS_PER_CHANNEL as u64 * std::mem::size_of::<Event>() as u64);
            bytes = bytes.saturating_add(per_lane.saturating_mul(lanes(job, channels) as u64));
            if job.complex {
                bytes = bytes.saturating_add((out as u64).saturating_mul(F32_BYTES));
            }
        }
        if let Some(spec) = &job.snippets {
            bytes = bytes.saturating_add(spec.footprint(channels, job.complex, out));
        }
        Footprint {
            output_frames: out,
            bytes,
        }
    }

    /// One step: `input` (or, without, the filters' next finishing block)
    /// through the filters, the decimators and the detectors into
    /// `output`. Returns whether the filters have more to give (finishing).
    fn step(&mut self, input: Option<&Block>, output: &mut Block) -> Result<bool> {
        let mut more = false;
        // 1. The filters (or the input as it is).
        let filtered: Option<&Block> = match (self.fir_re.as_mut(), input) {
            (Some(fir_re), input) => {
                let ev = &mut self.scratch_events;
                let more_re = match input {
                    Some(x) => {
                        fir_re.process(x, &mut self.stage_re, ev)?;
                        false
                    }
                    None => fir_re.finish(&mut self.stage_re, ev)?,
                };
                if let Some(fir_im) = self.fir_im.as_mut() {
                    let more_im = match input {
                        Some(x) => {
                            fir_im.process(x, &mut self.stage_im, ev)?;
                            false
                        }
                        None => fir_im.finish(&mut self.stage_im, ev)?,
                    };
                    assert_eq!(
                        (more_re, self.stage_re.frames()),
                        (more_im, self.stage_im.frames()),
                        "the two parts of a complex filter run in step"
                    );
                    combine_complex(&mut self.stage_re, &self.stage_im);
                }
                more = more_re;
                Some(&self.stage_re)
            }
            (None, Some(x)) => Some(x),
            (None, None) => None,
        };
        // 1b. The IIR sections, then the common reference: into `output`
        // itself when nothing comes after them (no decimation), else into
        // the middle stage; the reference in place after the IIR, or from
        // its input straight to where it goes (no copy first).
        let direct = self.decimators.is_empty();
        let mut in_output = false;
        let filtered: Option<&Block> = match filtered {
            Some(y) if self.iir.is_some() || self.reference.is_some() => {
                let pool = self.pool.as_deref();
                let dst: &mut Block = if direct {
                    &mut *output
                } else {
                    &mut self.stage_mid
                };
                match (self.iir.as_mut(), self.reference.as_mut()) {
                    (Some(bank), reference) => {
                        bank.process_block(y, dst, pool);
                        if let Some(r) = reference {
                            r.apply(dst, pool);
                        }
                    }
                    (None, Some(r)) => r.apply_into(y, dst, pool),
                    (None, None) => unreachable!("guarded: an IIR or a reference"),
                }
                in_output = direct;
                (!direct).then_some(&self.stage_mid)
            }
            other => other,
        };
        // 2. Decimation, or the filtered block as it is.
        let frames = match filtered {
            _ if in_output => output.frames(),
            None => 0,
            Some(y) if !self.decimators.is_empty() => {
                let stride = output.capacity();
                let planes = output.planes_mut();
                let push = |(c, (d, out)): (usize, (&mut Decimator, &mut [f32]))| {
                    d.push(y.channel(c), out)
                };
                match &self.pool {
                    Some(pool) => pool.install(|| {
                        self.decimators
                            .par_iter_mut()
                            .zip(planes.par_chunks_exact_mut(stride))
                            .enumerate()
                            .map(push)
                            .max()
                            .unwrap_or(0)
                    }),
                    None => self
                        .decimators
                        .iter_mut()
                        .zip(planes.chunks_exact_mut(stride))
                        .enumerate()
                        .map(push)
                        .max()
                        .unwrap_or(0),
                }
            }
            Some(y) => {
                for c in 0..y.channels() {
                    output.channel_capacity_mut(c)[..y.frames()].copy_from_slice(y.channel(c));
                }
                y.frames()
            }
        };
        output.start = self.emitted;
        output.set_frames(frames);
        self.emitted += frames as u64;
        // 3. Detection on what is output, and the windows around events.
        self.detect(output);
        if let Some(s) = self.snippets.as_mut() {
            s.observe(output, &self.events, &self.detectors)?;
        }
        Ok(more)
    }

    /// Runs each channel's detector over `block` (`|y|` for complex ones).
    fn detect(&mut self, block: &Block) {
        let n = block.frames();
        for (c, (det, ev)) in self
            .detectors
            .iter_mut()
            .zip(self.events.iter_mut())
            .enumerate()
        {
            if self.complex {
                let (re, im) = (block.channel(2 * c), block.channel(2 * c + 1));
                for ((m, &r), &i) in self.magnitude[..n].iter_mut().zip(re).zip(im) {
                    let (r, i) = (f64::from(r), f64::from(i));
                    *m = (r * r + i * i).sqrt() as f32;
                }
                det.process(&self.magnitude[..n], block.start, ev);
            } else {
                det.process_in(block, c, 0..n, block.start, ev);
            }
        }
    }

    fn collect_events(&mut self, events: &mut Vec<Event>) {
        crate::backend::collect_channel_events(&mut self.events, events);
    }
}

/// Frames an output block needs for `job` when the filter's blocks hold
/// `inner` frames.
fn output_capacity(job: &Job, inner: usize) -> usize {
    match job.decimate {
        Some(n) if n > 1 => resample::max_outputs(inner, n).max(resample::max_tail(n)),
        _ => inner,
    }
}

/// `re` holds `x ∗ a` and `im` holds `x ∗ b` for every plane of a complex
/// stream (planes `2c`, `2c + 1` = I, Q); leaves `x ∗ (a + ib)` in `re`:
/// I' = I∗a − Q∗b, Q' = Q∗a + I∗b.
fn combine_complex(re: &mut Block, im: &Block) {
    let n = re.frames();
    let stride = re.capacity();
    let planes = re.planes_mut();
    for (c, pair) in planes.chunks_exact_mut(2 * stride).enumerate() {
        let (i_plane, q_plane) = pair.split_at_mut(stride);
        let (ib, qb) = (im.channel(2 * c), im.channel(2 * c + 1));
        for (((ia, qa), &ib), &qb) in i_plane[..n]
            .iter_mut()
            .zip(&mut q_plane[..n])
            .zip(ib)
            .zip(qb)
        {
            let (i_a, q_a) = (*ia, *qa);
            *ia = i_a - qb;
            *qa = q_a + ib;
        }
    }
}

impl ChunkProcessor for StagedProcessor {
    fn output_capacity(&self) -> usize {
        self.out_capacity
    }

    fn process(
        &mut self,
        input: &Block,
        output: &mut Block,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        if let Some(mixer) = self.mixer {
            let n = input.frames();
            self.mixed.start = input.start;
            for c in 0..input.channels() {
                self.mixed.channel_capacity_mut(c)[..n].copy_from_slice(input.channel(c));
            }
            self.mixed.set_frames(n);
            let stride = self.mixed.capacity();
            for pair in self.mixed.planes_mut().chunks_exact_mut(2 * stride) {
                let (re, im) = pair.split_at_mut(stride);
                mixer.mix(input.start, &mut re[..n], &mut im[..n]);
            }
            let mixed = std::mem::take(&mut self.mixed);
            let result = self.step(Some(&mixed), output);
            self.mixed = mixed;
            result?;
        } else {
            self.step(Some(input), output)?;
        }
        self.collect_events(events);
        Ok(())
    }

    fn finish(&mut self, output: &mut Block, events: &mut Vec<Event>) -> Result<bool> {
        if !self.inner_done && self.fir_re.is_some() {
            let more = self.step(None, output)?;
            self.inner_done = !more;
            self.collect_events(events);
            return Ok(true);
        }
        self.inner_done = true;
        // The decimators' tail, then the open events.
        output.start = self.emitted;
        let mut frames = 0;
        if !self.decimators.is_empty() {
            let stride = output.capacity();
            let planes = output.planes_mut();
            for (d, out) in self
                .decimators
                .iter_mut()
                .zip(planes.chunks_exact_mut(stride))
            {
                frames = d.finish(out);
            }
        }
        output.set_frames(frames);
        self.emitted += frames as u64;
        self.detect(output);
        if let Some(s) = self.snippets.as_mut() {
            s.observe(output, &self.events, &self.detectors)?;
            self.collect_events(events);
        }
        for (det, ev) in self.detectors.iter_mut().zip(self.events.iter_mut()) {
            det.finish(ev);
        }
        if let Some(s) = self.snippets.as_mut() {
            s.finish(&self.events)?;
        }
        self.collect_events(events);
        Ok(false)
    }

    fn horizon(&self) -> u64 {
        let detected = crate::backend::detectors_horizon(&self.detectors, self.emitted);
        self.snippets
            .as_ref()
            .map_or(detected, |s| s.horizon().min(detected))
    }

    fn emitted(&self) -> u64 {
        self.emitted
    }

    fn fir_method(&self) -> Option<String> {
        self.fir_re.as_ref().and_then(|f| f.fir_method())
    }

    fn snippets(&mut self) -> Option<&mut Snippets> {
        self.snippets.as_mut()
    }
}
