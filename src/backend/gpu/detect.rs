//! GPU detection: the characteristic function on the GPU, the trigger on the
//! host, joined by candidates.
//!
//! Why this split: ObsPy's trigger is a sequential state machine, cheap on a
//! CPU but awkward on a GPU, while the cft (and its reading) is the part that
//! touches every sample. So each step's cft is computed on the GPU
//! (`shaders/detect_threshold.wgsl`, `detect_classic.wgsl`,
//! `detect_recursive.wgsl`), and `detect_compact.wgsl` sends back only the
//! **candidates**: the (index, cft) pairs with cft `>= min(on, off)`. A value
//! below that (or NaN) can neither start an event, keep a run `>= off`
//! alive, nor raise a peak, so the host replays the trigger exactly from the
//! candidates, pushing each gap between them with [`Trigger::push_below`].
//! With quiet data the readback is a few bytes per step instead of the cft.
//!
//! Everything GPU-side (history of squares, recursion state, poison
//! countdown) lives in GPU buffers and is advanced by the step's own
//! commands, so steps may be encoded and submitted back to back; per-step
//! values reach the kernels only through the shared [`StepParams`] uniform
//! (`out_frames`, `warm_up`, `base`). Candidates go to per-slot buffers so a
//! slot's candidates survive until [`GpuDetect::stitch`] has read them.
//!
//! Events equal the CPU detectors' when the cft values do: start, end and
//! peak index exactly; the peak value up to the f32 rounding of the GPU's cft
//! (the candidates are compared in f64 against `on` and `off` on the host,
//! and the GPU's filter rounds `min(on, off)` down to f32, so it never drops
//! a sample the host would count).
//!
//! [`StepParams`]: super::StepParams

use std::sync::Arc;

use super::context::{GpuContext, grid};
use crate::detect::{DetectorSpec, Event, Trigger};
use crate::error::{Error, Result};

/// Invocations per workgroup in every detection kernel.
const WG: u64 = 256;
/// Outputs per workgroup in the compaction and recursive kernels (4 per
/// invocation).
const TILE: u64 = 1024;
/// Bytes per candidate: (u32 index in step, f32 cft bits).
const CAND_BYTES: u64 = 8;

/// Plans and runs the detection kernels of one [`DetectorSpec`] for all
/// channels, and replays each channel's trigger from the candidates.
pub struct GpuDetect {
    ctx: Arc<GpuContext>,
    channels: usize,
    chunk: usize,
    /// Candidates per channel read back with every step.
    fast: usize,
    /// Outputs of the stream whose cft is forced to 0 (ObsPy's warm-up).
    warm_up: u64,
    cft: Cft,
    /// The cft of the current step, `chunk` values per channel.
    cft_buf: wgpu::Buffer,
    compact: wgpu::ComputePipeline,
    /// Per slot: (counters, candidates, compaction bind group).
    slots: Vec<(wgpu::Buffer, wgpu::Buffer, wgpu::BindGroup)>,
    triggers: Vec<Trigger>,
    /// One channel's candidates of one step, sorted (allocated once).
    scratch: Vec<(u32, f32)>,
}

impl std::fmt::Debug for GpuDetect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDetect")
            .field("channels", &self.channels)
            .field("chunk", &self.chunk)
            .field("fast", &self.fast)
            .finish_non_exhaustive()
    }
}

/// The cft kernels of each detector, with their bind groups.
enum Cft {
    Threshold {
        main: (wgpu::ComputePipeline, wgpu::BindGroup),
    },
    Classic {
        squares: (wgpu::ComputePipeline, wgpu::BindGroup),
        reduce: wgpu::ComputePipeline,
        /// One bind group per level 1 ..= levels.
        reduce_groups: Vec<wgpu::BindGroup>,
        ratio: (wgpu::ComputePipeline, wgpu::BindGroup),
        history: (wgpu::ComputePipeline, wgpu::BindGroup),
        /// nlta − 1: squares carried between steps.
        hist_len: u64,
    },
    Recursive {
        tile_maps: (wgpu::ComputePipeline, wgpu::BindGroup),
        carry: (wgpu::ComputePipeline, wgpu::BindGroup),
        values: (wgpu::ComputePipeline, wgpu::BindGroup),
    },
}

/// A bind group for group 0 of `pipeline` with explicit binding numbers
/// (entry points of one shader use different subsets of its bindings).
fn bind_at(
    ctx: &GpuContext,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[(u32, &wgpu::Buffer)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
        .iter()
        .map(|&(binding, b)| wgpu::BindGroupEntry {
            binding,
            resource: b.as_entire_binding(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// The largest f32 `<= x`, clamped to the finite range (the candidate level
/// on the GPU: rounding down never drops a value the host compares as
/// `>= x` in f64).
fn f32_at_most(x: f64) -> f32 {
    let mut f = x as f32;
    if f64::from(f) > x {
        f = f.next_down();
    }
    f.clamp(-f32::MAX, f32::MAX)
}

impl GpuDetect {
    /// Plans `spec` for `channels` channels and at most `chunk` outputs per step.
    /// `y`: planar f32 input, channel c's outputs of this step at element c*y_stride .. +out_frames.
    /// `step`: the StepParams uniform (out_frames, warm_up used). `slots`: how many steps may be
    /// in flight (the candidate buffers are per slot, so slot k's candidates survive until stitched).
    ///
    /// # Errors
    /// [`Error::Usage`] if `spec` is invalid or a size is zero or too large
    /// for 32-bit indices; [`Error::Gpu`] if a buffer exceeds the device's
    /// storage binding limit or a kernel is rejected.
    #[expect(
        clippy::too_many_arguments,
        reason = "the agreed integration API: every argument is a plan-time input"
    )]
    pub fn new(
        ctx: &Arc<GpuContext>,
        spec: &DetectorSpec,
        channels: usize,
        chunk: usize,
        step: &wgpu::Buffer,
        y: &wgpu::Buffer,
        y_stride: usize,
        slots: usize,
    ) -> Result<Self> {
        spec.validate().map_err(Error::usage)?;
        if channels == 0 || chunk == 0 || slots == 0 {
            return Err(Error::usage(format!(
                "GPU detection needs channels, chunk and slots >= 1 (got {channels}, {chunk}, {slots})"
            )));
        }
        if chunk > 1 << 29 || y_stride < chunk {
            return Err(Error::usage(format!(
                "GPU detection: chunk {chunk} must be at most 2^29 and at most the stride {y_stride}"
            )));
        }
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        if channels > max_dim as usize {
            return Err(Error::gpu(format!(
                "{}: {channels} channels exceed {max_dim} workgroups per dimension",
                ctx.info.name
            )));
        }
        let check = |what: &str, elems: u64, size: u64| -> Result<u64> {
            let bytes = elems * size;
            let limit = ctx
                .limits
                .max_storage_buffer_binding_size
                .min(ctx.limits.max_buffer_size);
            if bytes > limit || elems > u64::from(u32::MAX) {
                return Err(Error::gpu(format!(
                    "{}: GPU detection's {what} needs {bytes} bytes, more than a binding allows ({limit})",
                    ctx.info.name
                )));
            }
            Ok(bytes)
        };
        let (ch, ck) = (channels as u64, chunk as u64);
        let (on, off, low) = match *spec {
            DetectorSpec::Threshold { on, off, .. }
            | DetectorSpec::ClassicStaLta { on, off, .. }
            | DetectorSpec::RecursiveStaLta { on, off, .. } => (on, off, on.min(off)),
        };
        let max_len = match *spec {
            DetectorSpec::Threshold { max_len, .. }
            | DetectorSpec::ClassicStaLta { max_len, .. }
            | DetectorSpec::RecursiveStaLta { max_len, .. } => max_len,
        };
        let cft_buf = ctx.storage("detect cft", check("cft", ch * ck, 4)?);
        let ys = y_stride as f64;
        let (cft, warm_up) = match *spec {
            DetectorSpec::Threshold { .. } => {
                let p = ctx.pipeline(
                    "detect_threshold",
                    super::step_shader!("detect_threshold.wgsl"),
                    "main",
                    &[("Y_STRIDE", ys), ("CHUNK", ck as f64)],
                )?;
                let g = ctx.bind("detect_threshold", &p, &[step, y, &cft_buf]);
                (Cft::Threshold { main: (p, g) }, 0)
            }
            DetectorSpec::ClassicStaLta { nsta, nlta, .. } => {
                let h = nlta as u64 - 1;
                let cap = (h + ck).next_power_of_two();
                let pstride = 2 * cap;
                let levels = u64::from(nlta.ilog2());
                let hist = ctx.storage("detect_classic hist", check("history", ch * h, 4)?);
                let pyr = ctx.storage("detect_classic pyramid", check("pyramid", ch * pstride, 4)?);
                let src = super::step_shader!("detect_classic.wgsl");
                let consts = [
                    ("Y_STRIDE", ys),
                    ("CHUNK", ck as f64),
                    ("NSTA", nsta as f64),
                    ("NLTA", nlta as f64),
                    ("LEVELS", levels as f64),
                    ("PSTRIDE", pstride as f64),
                    ("FRAC", nlta as f64 / nsta as f64),
                ];
                let pipe = |entry: &str| ctx.pipeline("detect_classic", src, entry, &consts);
                let squares = pipe("squares")?;
                let reduce = pipe("reduce")?;
                let ratio = pipe("ratio")?;
                let history = pipe("history")?;
                let mut reduce_groups = Vec::new();
                for k in 1..=levels as u32 {
                    let level = ctx.uniform("detect_classic level", &[k, 0, 0, 0])?;
                    reduce_groups.push(bind_at(
                        ctx,
                        "detect_classic reduce",
                        &reduce,
                        &[(0, step), (3, &pyr), (5, &level)],
                    ));
                }
                let g_sq = bind_at(
                    ctx,
                    "detect_classic squares",
                    &squares,
                    &[(0, step), (1, y), (2, &hist), (3, &pyr)],
                );
                let g_ratio = bind_at(
                    ctx,
                    "detect_classic ratio",
                    &ratio,
                    &[(0, step), (3, &pyr), (4, &cft_buf)],
                );
                let g_hist = bind_at(
                    ctx,
                    "detect_classic history",
                    &history,
                    &[(0, step), (2, &hist), (3, &pyr)],
                );
                let cft = Cft::Classic {
                    squares: (squares, g_sq),
                    reduce,
                    reduce_groups,
                    ratio: (ratio, g_ratio),
                    history: (history, g_hist),
                    hist_len: h,
                };
                (cft, h)
            }
            DetectorSpec::RecursiveStaLta { nsta, nlta, .. } => {
                let max_tiles = ck.div_ceil(TILE);
                // Map: 5 words; State: 4 words.
                let tiles = ctx.storage(
                    "detect_recursive tiles",
                    check("tiles", ch * max_tiles * 5, 4)?,
                );
                let starts = ctx.storage(
                    "detect_recursive starts",
                    check("starts", ch * max_tiles * 4, 4)?,
                );
                let state = ctx.storage("detect_recursive state", ch * 16);
                let src = super::step_shader!("detect_recursive.wgsl");
                let consts = [
                    ("Y_STRIDE", ys),
                    ("CHUNK", ck as f64),
                    ("MAX_TILES", max_tiles as f64),
                    ("NLTA", nlta as f64),
                    ("CSTA", 1.0 / nsta as f64),
                    ("CLTA", 1.0 / nlta as f64),
                ];
                let pipe = |entry: &str| ctx.pipeline("detect_recursive", src, entry, &consts);
                let tile_maps = pipe("tile_maps")?;
                let carry = pipe("carry")?;
                let values = pipe("values")?;
                let g_t = bind_at(
                    ctx,
                    "detect_recursive tile_maps",
                    &tile_maps,
                    &[(0, step), (1, y), (2, &tiles)],
                );
                let g_c = bind_at(
                    ctx,
                    "detect_recursive carry",
                    &carry,
                    &[(0, step), (2, &tiles), (3, &state), (4, &starts)],
                );
                let g_v = bind_at(
                    ctx,
                    "detect_recursive values",
                    &values,
                    &[(0, step), (1, y), (4, &starts), (5, &cft_buf)],
                );
                let cft = Cft::Recursive {
                    tile_maps: (tile_maps, g_t),
                    carry: (carry, g_c),
                    values: (values, g_v),
                };
                (cft, nlta as u64)
            }
        };
        // Enough for the quiet steps of most signals in one readback; a step
        // with more candidates on a channel reads the rest synchronously.
        let fast = chunk.min((chunk / 16).max(1024));
        let compact = ctx.pipeline(
            "detect_compact",
            super::step_shader!("detect_compact.wgsl"),
            "main",
            &[
                ("CHUNK", ck as f64),
                ("FAST", fast as f64),
                ("CHANNELS", ch as f64),
                ("LOW", f64::from(f32_at_most(low))),
            ],
        )?;
        let cand_bytes = check("candidates", ch * ck * 2, 4)?;
        let mut slot_bufs = Vec::with_capacity(slots);
        for _ in 0..slots {
            let counts = ctx.storage("detect_compact counts", ch * 4);
            let cands = ctx.storage("detect_compact candidates", cand_bytes);
            let g = ctx.bind(
                "detect_compact",
                &compact,
                &[step, &cft_buf, &counts, &cands],
            );
            slot_bufs.push((counts, cands, g));
        }
        let triggers = (0..channels)
            .map(|c| Trigger::new(on, off, max_len).with_channel(c))
            .collect();
        Ok(GpuDetect {
            ctx: ctx.clone(),
            channels,
            chunk,
            fast,
            warm_up,
            cft,
            cft_buf,
            compact,
            slots: slot_bufs,
            triggers,
            scratch: Vec::with_capacity(chunk),
        })
    }

    /// Outputs at the start of the stream whose cft is 0 (ObsPy's warm-up):
    /// step `k`'s `StepParams::warm_up` is this minus the step's base,
    /// saturated at 0 and at `u32::MAX`.
    pub fn warm_up(&self) -> u64 {
        self.warm_up
    }

    /// Candidates per channel in each step's readback (more are read from
    /// the GPU synchronously in [`GpuDetect::stitch`]).
    pub fn fast(&self) -> usize {
        self.fast
    }

    /// The cft of the last step encoded: channel c's at element
    /// `c * chunk ..` (f32; for tests and diagnostics, compared with the
    /// kernels' CPU twins).
    pub fn cft_buffer(&self) -> &wgpu::Buffer {
        &self.cft_buf
    }

    /// Encodes the cft and compaction for one step into candidate slot `slot`
    /// (also resets that slot's counters). `out_frames` = step.out_frames, for dispatch sizing.
    ///
    /// # Panics
    /// If `slot` is not below the planned number of slots or `out_frames`
    /// exceeds the planned chunk.
    pub fn encode(&mut self, encoder: &mut wgpu::CommandEncoder, slot: usize, out_frames: usize) {
        assert!(
            out_frames <= self.chunk,
            "step of {out_frames} outputs > planned chunk {}",
            self.chunk
        );
        let (counts, _, compact_group) = &self.slots[slot];
        encoder.clear_buffer(counts, 0, None);
        if out_frames == 0 {
            return;
        }
        let n = out_frames as u64;
        let ch = self.channels as u32;
        let max_dim = self.ctx.limits.max_compute_workgroups_per_dimension;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("detect"),
            timestamp_writes: None,
        });
        let groups = |items: u64, per: u64| grid(items, per, max_dim);
        let run = |pass: &mut wgpu::ComputePass<'_>,
                   p: &wgpu::ComputePipeline,
                   g: &wgpu::BindGroup,
                   (x, y): (u32, u32),
                   z: u32| {
            pass.set_pipeline(p);
            pass.set_bind_group(0, g, &[]);
            pass.dispatch_workgroups(x, y, z);
        };
        match &self.cft {
            Cft::Threshold { main } => run(&mut pass, &main.0, &main.1, groups(n, WG), ch),
            Cft::Classic {
                squares,
                reduce,
                reduce_groups,
                ratio,
                history,
                hist_len,
            } => {
                let ext = hist_len + n;
                run(&mut pass, &squares.0, &squares.1, groups(ext, WG), ch);
                for (k, g) in reduce_groups.iter().enumerate() {
                    run(&mut pass, reduce, g, groups(ext >> (k + 1), WG), ch);
                }
                run(&mut pass, &ratio.0, &ratio.1, groups(n, WG), ch);
                run(&mut pass, &history.0, &history.1, groups(*hist_len, WG), ch);
            }
            Cft::Recursive {
                tile_maps,
                carry,
                values,
            } => {
                run(&mut pass, &tile_maps.0, &tile_maps.1, groups(n, TILE), ch);
                // One workgroup per channel.
                run(&mut pass, &carry.0, &carry.1, (ch, 1), 1);
                run(&mut pass, &values.0, &values.1, groups(n, TILE), ch);
            }
        }
        run(&mut pass, &self.compact, compact_group, groups(n, TILE), ch);
    }

    /// Bytes of the readback region for one step (counters + the first `fast` candidates per channel).
    pub fn readback_size(&self) -> u64 {
        self.counts_bytes() + (self.channels * self.fast) as u64 * CAND_BYTES
    }

    /// Bytes of the counters at the start of the readback region (padded so
    /// the candidates start 8-byte aligned).
    fn counts_bytes(&self) -> u64 {
        (self.channels as u64 * 4).next_multiple_of(8)
    }

    /// Encodes copying slot `slot`'s counters and first candidates into `dst` at `dst_offset`.
    pub fn encode_readback(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        slot: usize,
        dst: &wgpu::Buffer,
        dst_offset: u64,
    ) {
        let (counts, cands, _) = &self.slots[slot];
        let ch = self.channels as u64;
        encoder.copy_buffer_to_buffer(counts, 0, dst, dst_offset, ch * 4);
        encoder.copy_buffer_to_buffer(
            cands,
            0,
            dst,
            dst_offset + self.counts_bytes(),
            ch * self.fast as u64 * CAND_BYTES,
        );
    }

    /// Host side, after the step's readback is mapped: `mapped` = those readback bytes; `base` = absolute
    /// index of the step's first output; replays every channel's trigger over the step's
    /// candidates and gaps (up to base+out_frames), appending finished events (with their channel).
    /// If a channel had more candidates than fit in the fast readback, reads the rest from the
    /// slot's GPU buffer synchronously (ctx.read) — rare.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the overflow read fails; [`Error::Runtime`] if
    /// `mapped` is shorter than [`GpuDetect::readback_size`] or a counter is
    /// impossible (more candidates than outputs).
    pub fn stitch(
        &mut self,
        mapped: &[u8],
        slot: usize,
        base: u64,
        out_frames: usize,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        if (mapped.len() as u64) < self.readback_size() {
            return Err(Error::Runtime {
                msg: format!(
                    "GPU detection readback of {} bytes, expected {}",
                    mapped.len(),
                    self.readback_size()
                ),
            });
        }
        let word = |at: usize| {
            u32::from_le_bytes([mapped[at], mapped[at + 1], mapped[at + 2], mapped[at + 3]])
        };
        let cands_at = self.counts_bytes() as usize;
        let end = base + out_frames as u64;
        for c in 0..self.channels {
            let n = word(c * 4) as usize;
            if n > out_frames {
                return Err(Error::Runtime {
                    msg: format!(
                        "GPU detection: channel {c} reports {n} candidates in a step of {out_frames}"
                    ),
                });
            }
            self.scratch.clear();
            for j in 0..n.min(self.fast) {
                let at = cands_at + (c * self.fast + j) * CAND_BYTES as usize;
                self.scratch.push((word(at), f32::from_bits(word(at + 4))));
            }
            if n > self.fast {
                let rest = n - self.fast;
                let first = (self.channels * self.fast + c * (self.chunk - self.fast)) as u64;
                let more: Vec<[u32; 2]> =
                    self.ctx
                        .read(&self.slots[slot].1, first * CAND_BYTES, rest)?;
                self.scratch
                    .extend(more.iter().map(|&[i, v]| (i, f32::from_bits(v))));
            }
            self.scratch.sort_unstable_by_key(|&(i, _)| i);
            let trigger = &mut self.triggers[c];
            let mut pos = base;
            for &(i, v) in &self.scratch {
                let at = base + u64::from(i);
                if at < pos || at >= end {
                    return Err(Error::Runtime {
                        msg: format!(
                            "GPU detection: channel {c} candidate index {i} out of order or past the step"
                        ),
                    });
                }
                trigger.push_below(pos, at - pos, events);
                trigger.push_one(f64::from(v), at, events);
                pos = at + 1;
            }
            trigger.push_below(pos, end - pos, events);
        }
        Ok(())
    }

    /// End of stream: closes open events.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        for t in &mut self.triggers {
            t.finish(events);
        }
    }

    /// Earliest onset of an event still open on any channel.
    pub fn open_event_start(&self) -> Option<u64> {
        self.triggers.iter().filter_map(Trigger::open_start).min()
    }
}
