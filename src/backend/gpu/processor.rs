//! [`GpuProcessor`]: one job on one stream, chunk after chunk, on the GPU.
//!
//! Why it looks like this: the GPU is fast but far away. Each chunk (or each
//! piece of it, when a chunk exceeds the device's binding limits) is a
//! *step*: the host writes the samples and the step's [`StepParams`] into a
//! mapped upload slot, one submission copies them to the device, filters
//! ([`GpuFir`]), computes the detector's characteristic function and
//! compacts the threshold candidates ([`GpuDetect`]), and copies back only
//! what is needed: the candidates always, the filtered signal only when it
//! is written somewhere. [`SLOTS`] slots rotate, so while the GPU computes
//! step k the host reads back step k−1 and the reader thread fills the next
//! block: output leaves one step late, like the CPU backend's detection.
//! Events are stitched across steps on the host by the same trigger state
//! machine as the CPU backend's. Nothing is allocated after planning, on the
//! host or on the device.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::backend::{ChunkProcessor, DetectorChoice, Footprint, Job};
use crate::detect::{Detector, DetectorSpec, Event};
use crate::error::{Error, Result};
use crate::pool::Block;

use super::detect::GpuDetect;
use super::fir::GpuFir;
use super::staging::Slot;
use super::{GpuContext, STEP_PARAMS_SIZE, StepParams};

/// Staging slots: one being filled, one computing, one being read back.
pub const SLOTS: usize = 3;

/// Bytes reserved at the start of each upload slot for the [`StepParams`]
/// (a multiple of the 256-byte storage offset alignment, so the samples
/// after it are aligned for any copy).
const HEADER: u64 = 256;

const F32: u64 = 4;

/// A step submitted and not yet read back.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    slot: usize,
    /// Absolute index of the step's first output.
    base: u64,
    out_frames: usize,
}

/// See the module docs.
pub struct GpuProcessor {
    ctx: Arc<GpuContext>,
    channels: usize,
    /// Frames per step: the chunk, or less if the chunk exceeds the
    /// device's binding limits.
    piece: usize,
    out_capacity: usize,
    step: wgpu::Buffer,
    input: wgpu::Buffer,
    fir: Option<GpuFir>,
    /// The filtered signal's buffer, when there is a filter.
    filtered: Option<wgpu::Buffer>,
    detect: Option<GpuDetect>,
    /// A user's own detectors run on the host over the read-back signal.
    custom: Vec<Box<dyn Detector>>,
    custom_events: Vec<Event>,
    /// Whether the filtered signal comes back to the host.
    read_signal: bool,
    /// Bytes at the start of a readback slot for the candidates.
    candidate_bytes: u64,
    slots: Vec<Slot>,
    next_slot: usize,
    in_flight: VecDeque<InFlight>,
    /// Leading full-convolution outputs still to drop.
    skip_left: u64,
    /// Zeros still to push after the input ends.
    pad_left: u64,
    /// Outputs produced (after the drop) by submitted steps.
    submitted_out: u64,
    /// Outputs read back and stitched.
    completed: u64,
    /// Detector warm-up in outputs (see [`StepParams::warm_up`]).
    warm_up: u64,
    finished: bool,
}

impl std::fmt::Debug for GpuProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProcessor")
            .field("device", &self.ctx.info.name)
            .finish_non_exhaustive()
    }
}

/// The error for a detector that [`DetectorChoice::gpu_supported`] refuses.
fn unsupported(d: &DetectorChoice) -> Error {
    let what = match d {
        DetectorChoice::PerChannel(_) => "per-channel detectors",
        DetectorChoice::Builtin(spec) if spec.dead().is_some() => "a detector with a dead time",
        DetectorChoice::Builtin(_) => "the threshold detector with --polarity pos or neg",
        DetectorChoice::Custom(_) => "this detector",
        DetectorChoice::Ranged { .. } => "a shard's detectors",
    };
    Error::usage(format!(
        "{what} runs on the CPU backend only (the GPU kernels compute |y| and replay the trigger without dead time); use --backend cpu"
    ))
}

/// The warm-up of a built-in detector: outputs whose cft is forced to 0.
fn warm_up(spec: &DetectorSpec) -> u64 {
    match *spec {
        DetectorSpec::Threshold { .. } => 0,
        DetectorSpec::ClassicStaLta { nlta, .. } => nlta as u64 - 1,
        DetectorSpec::RecursiveStaLta { nlta, .. } => nlta as u64,
    }
}

impl GpuProcessor {
    /// Frames per step: the chunk, at most `max_step`, and few enough that
    /// the largest buffer fits one storage binding. That buffer is the
    /// classic STA/LTA's pyramid, up to 2 × next_pow2(nlta + frames) values
    /// per channel, so up to 4 f32 per frame and channel.
    fn piece(ctx: &GpuContext, job: &Job, channels: usize, chunk: usize, max_step: usize) -> usize {
        let limit = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        let per_frame = (channels.max(1) as u64).saturating_mul(F32 * 4);
        let history = job.history() as u64;
        let fit = (limit / per_frame).saturating_sub(history).max(1);
        (chunk.min(max_step.max(1)) as u64).min(fit) as usize
    }

    /// What [`GpuProcessor::new`] allocates for the same arguments, device
    /// buffers included (on a software adapter they are host memory, and
    /// on any adapter the budget is the safer for it): per frame and
    /// channel of a step, the input, the filtered signal, up to four values
    /// of the detector's buffers, and each staging slot's upload and
    /// readback; per channel, the filter's and the detector's history.
    pub fn footprint(
        ctx: &GpuContext,
        job: &Job,
        channels: usize,
        chunk: usize,
        max_step: usize,
    ) -> Footprint {
        let piece = Self::piece(ctx, job, channels, chunk, max_step);
        let ch = channels.max(1) as u64;
        let plane = ch.saturating_mul(piece as u64).saturating_mul(F32);
        let read_signal =
            !job.discard_signal || matches!(job.detector, Some(DetectorChoice::Custom(_)));
        let planes = 1
            + u64::from(job.kernel.is_some())
            + if job.detector.is_some() { 4 } else { 0 }
            + SLOTS as u64 * (1 + u64::from(read_signal));
        let history = ch
            .saturating_mul((job.taps() + job.history()) as u64)
            .saturating_mul(2 * F32);
        Footprint {
            output_frames: chunk.saturating_add(piece),
            bytes: plane
                .saturating_mul(planes)
                .saturating_add(history)
                .saturating_add(SLOTS as u64 * HEADER),
        }
    }

    /// Plans `job` for `channels` channels in blocks of at most `chunk`
    /// frames on `ctx`, in steps of at most `max_step` frames (and fewer if
    /// the device's binding limits require it).
    ///
    /// # Errors
    /// [`Error::Gpu`] if a kernel cannot be built on this device.
    pub fn new(
        ctx: &Arc<GpuContext>,
        job: &Job,
        channels: usize,
        chunk: usize,
        max_step: usize,
    ) -> Result<Self> {
        job.validate()?;
        let channels = channels.max(1);
        let piece = Self::piece(ctx, job, channels, chunk, max_step);
        let taps = job.taps();
        let step = ctx.buffer(
            "step params",
            STEP_PARAMS_SIZE,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let plane_bytes = channels as u64 * piece as u64 * F32;
        let input = ctx.storage("input", plane_bytes);
        let (fir, filtered) = match &job.kernel {
            Some(kernel) => {
                let filtered = ctx.storage("filtered", plane_bytes);
                let fir = GpuFir::new(
                    ctx, kernel, channels, piece, &step, &input, &filtered, piece, None,
                )?;
                (Some(fir), Some(filtered))
            }
            None => (None, None),
        };
        let y = filtered.as_ref().unwrap_or(&input);
        let (detect, custom, warm) = match &job.detector {
            Some(d) if !d.gpu_supported() => return Err(unsupported(d)),
            Some(DetectorChoice::Builtin(spec)) => (
                Some(GpuDetect::new(
                    ctx, spec, channels, piece, &step, y, piece, SLOTS,
                )?),
                Vec::new(),
                warm_up(spec),
            ),
            Some(custom @ DetectorChoice::Custom(_)) => (
                None,
                (0..channels).map(|c| custom.build_for(c)).collect(),
                0,
            ),
            Some(d @ (DetectorChoice::PerChannel(_) | DetectorChoice::Ranged { .. })) => {
                return Err(unsupported(d));
            }
            None => (None, Vec::new(), 0),
        };
        let read_signal = !job.discard_signal || !custom.is_empty();
        let candidate_bytes = detect
            .as_ref()
            .map_or(0, |d| d.readback_size().next_multiple_of(F32));
        let readback_bytes = candidate_bytes + if read_signal { plane_bytes } else { 0 };
        let slots = (0..SLOTS)
            .map(|_| Slot::new(ctx, "staging", HEADER + plane_bytes, readback_bytes))
            .collect();
        Ok(GpuProcessor {
            ctx: ctx.clone(),
            channels,
            piece,
            out_capacity: chunk + piece,
            step,
            input,
            fir,
            filtered,
            detect,
            custom,
            custom_events: Vec::with_capacity(256),
            read_signal,
            candidate_bytes,
            slots,
            next_slot: 0,
            in_flight: VecDeque::with_capacity(SLOTS),
            skip_left: job.conv_mode.skip(taps) as u64,
            pad_left: if job.kernel.is_some() {
                job.conv_mode.pad(taps) as u64
            } else {
                0
            },
            submitted_out: 0,
            completed: 0,
            warm_up: warm,
            finished: false,
        })
    }

    /// Submits one step of `frames` frames per channel: from `input`
    /// starting at frame `from`, or zeros (the convolution's tail) without
    /// input. Reads back the oldest step first if every slot is busy.
    fn submit(
        &mut self,
        input: Option<(&Block, usize)>,
        frames: usize,
        output: &mut Block,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        if !self.slots[self.next_slot].is_writable() {
            self.complete_oldest(output, events)?;
        }
        let slot_index = self.next_slot;
        self.next_slot = (self.next_slot + 1) % SLOTS;
        let drop = self.skip_left.min(frames as u64) as usize;
        self.skip_left -= drop as u64;
        let out_frames = frames - drop;
        let base = self.submitted_out;
        let params = StepParams {
            frames: frames as u32,
            drop: drop as u32,
            out_frames: out_frames as u32,
            warm_up: self.warm_up.saturating_sub(base).min(u64::from(u32::MAX)) as u32,
            base_lo: base as u32,
            base_hi: (base >> 32) as u32,
            pad: [0; 2],
        };
        let piece_bytes = self.piece * F32 as usize;
        let channels = self.channels;
        let slot = &mut self.slots[slot_index];
        slot.write(|view| {
            view.slice(..STEP_PARAMS_SIZE as usize)
                .copy_from_slice(bytemuck::bytes_of(&params));
            for c in 0..channels {
                let at = HEADER as usize + c * piece_bytes;
                let mut dst = view.slice(at..at + frames * F32 as usize);
                match input {
                    Some((block, from)) => dst.copy_from_slice(bytemuck::cast_slice(
                        &block.channel(c)[from..from + frames],
                    )),
                    None => dst.fill(0),
                }
            }
        })?;
        slot.unmap_upload()?;

        let mut encoder = self.ctx.encoder("step");
        encoder.copy_buffer_to_buffer(slot.upload(), 0, &self.step, 0, STEP_PARAMS_SIZE);
        if frames > 0 {
            for c in 0..channels as u64 {
                let at = c * self.piece as u64 * F32;
                encoder.copy_buffer_to_buffer(
                    slot.upload(),
                    HEADER + at,
                    &self.input,
                    at,
                    frames as u64 * F32,
                );
            }
        }
        if let Some(fir) = &mut self.fir {
            fir.encode(&mut encoder, frames);
        }
        if let Some(detect) = &mut self.detect {
            detect.encode(&mut encoder, slot_index, out_frames);
            detect.encode_readback(&mut encoder, slot_index, slot.readback(), 0);
        }
        if self.read_signal && out_frames > 0 {
            let y = self.filtered.as_ref().unwrap_or(&self.input);
            for c in 0..channels as u64 {
                let at = c * self.piece as u64 * F32;
                encoder.copy_buffer_to_buffer(
                    y,
                    at,
                    slot.readback(),
                    self.candidate_bytes + at,
                    out_frames as u64 * F32,
                );
            }
        }
        let submission = self.ctx.queue.submit(Some(encoder.finish()));
        slot.submitted(submission)?;
        self.in_flight.push_back(InFlight {
            slot: slot_index,
            base,
            out_frames,
        });
        self.submitted_out += out_frames as u64;
        Ok(())
    }

    /// Waits for the oldest step, appends its output to `output` and its
    /// events to `events`, and frees its slot.
    fn complete_oldest(&mut self, output: &mut Block, events: &mut Vec<Event>) -> Result<()> {
        let Some(step) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let slot = &mut self.slots[step.slot];
        slot.complete(&self.ctx)?;
        if let Some(detect) = &mut self.detect {
            let view = slot.read(0..self.candidate_bytes.max(F32))?;
            detect.stitch(&view, step.slot, step.base, step.out_frames, events)?;
        }
        if self.read_signal && step.out_frames > 0 {
            let have = output.frames();
            if have == 0 {
                output.start = step.base;
            }
            let n = step.out_frames;
            if have + n > output.capacity() {
                return Err(Error::gpu(format!(
                    "internal: {} output frames exceed the block's {}",
                    have + n,
                    output.capacity()
                )));
            }
            let plane = self.piece as u64 * F32;
            let view = slot
                .read(self.candidate_bytes..self.candidate_bytes + self.channels as u64 * plane)?;
            for c in 0..self.channels {
                let at = c * plane as usize;
                let src: &[f32] = bytemuck::cast_slice(&view[at..at + n * F32 as usize]);
                output.channel_capacity_mut(c)[have..have + n].copy_from_slice(src);
                if let Some(det) = self.custom.get_mut(c) {
                    // From the output block (shareable), not the mapped
                    // buffer, which is unmapped below.
                    det.process_in(
                        output,
                        c,
                        have..have + n,
                        step.base,
                        &mut self.custom_events,
                    );
                    events.extend(self.custom_events.drain(..).map(|mut e| {
                        e.channel = c;
                        e
                    }));
                }
            }
            drop(view);
            output.set_frames(have + n);
        }
        slot.release()?;
        self.completed += step.out_frames as u64;
        Ok(())
    }

    /// Steps through `block` in pieces, then reads back all but the last
    /// step (which keeps the GPU busy while the next block is read).
    fn push(
        &mut self,
        input: Option<&Block>,
        zeros: usize,
        output: &mut Block,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        output.set_frames(0);
        output.start = self.completed;
        let total = input.map_or(zeros, Block::frames);
        let mut from = 0;
        while from < total {
            let frames = (total - from).min(self.piece);
            self.submit(input.map(|b| (b, from)), frames, output, events)?;
            from += frames;
        }
        while self.in_flight.len() > 1 {
            self.complete_oldest(output, events)?;
        }
        Ok(())
    }

    /// The end of the input: pushes the convolution's tail, then reads back
    /// every step still in flight and closes open events.
    fn finish_steps(&mut self, output: &mut Block, events: &mut Vec<Event>) -> Result<bool> {
        if self.pad_left > 0 {
            let z = (self.pad_left as usize).min(self.piece);
            self.pad_left -= z as u64;
            self.push(None, z, output, events)?;
            return Ok(true);
        }
        output.set_frames(0);
        output.start = self.completed;
        while !self.in_flight.is_empty() {
            self.complete_oldest(output, events)?;
        }
        if !self.finished {
            self.finished = true;
            if let Some(detect) = &mut self.detect {
                detect.finish(events);
            }
            for (c, det) in self.custom.iter_mut().enumerate() {
                det.finish(&mut self.custom_events);
                events.extend(self.custom_events.drain(..).map(|mut e| {
                    e.channel = c;
                    e
                }));
            }
        }
        Ok(false)
    }

    /// A failure while stepping, replaced by the first error the device
    /// itself reported (device lost, validation, out of memory), which says
    /// more than the symptom seen on the host.
    fn explain(&self, e: Error) -> Error {
        match self.ctx.check() {
            Err(reported) => reported,
            Ok(()) => e,
        }
    }
}

impl ChunkProcessor for GpuProcessor {
    fn output_capacity(&self) -> usize {
        self.out_capacity
    }

    fn process(
        &mut self,
        input: &Block,
        output: &mut Block,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        self.push(Some(input), 0, output, events)
            .map_err(|e| self.explain(e))
    }

    fn finish(&mut self, output: &mut Block, events: &mut Vec<Event>) -> Result<bool> {
        self.finish_steps(output, events)
            .map_err(|e| self.explain(e))
    }

    fn horizon(&self) -> u64 {
        let open = match &self.detect {
            Some(d) => d.open_event_start(),
            None => self
                .custom
                .iter()
                .filter_map(|d| d.open_event_start())
                .min(),
        };
        open.unwrap_or(self.completed).min(self.completed)
    }

    fn emitted(&self) -> u64 {
        self.completed
    }

    fn fir_method(&self) -> Option<String> {
        self.fir.as_ref().map(|f| format!("{:?}", f.method()))
    }
}
