//! Batched real-input FFT on the GPU: the host side of
//! `shaders/fft_real.wgsl` (numpy.fft.rfft layout, `n / 2 + 1` bins).
//!
//! Why it is built this way: a real transform of n samples is a complex one
//! of n/2 plus an O(n) untangling, half the work and memory of transforming
//! the samples as complex values. When n/2 fits in workgroup memory, the
//! packing, the FFT and the untangling are fused into one dispatch that
//! reads the samples straight from the caller's buffer, so frames of a
//! spectrogram (overlapping, `input_stride` = hop apart, optionally
//! windowed) need no copy. When n/2 does not fit, the transform runs as
//! three steps: `rfft_pack` into a complex buffer of the plan's, the
//! multi-pass [`GpuFft`] in place on it, and `rfft_post`; the pack is a
//! plain buffer copy when frames are contiguous and unwindowed.
//!
//! As with [`GpuFft`], everything is made at plan time ([`GpuRfft::new`])
//! or bind time ([`GpuRfft::bind`], one uniform and the bind groups per
//! input/output pair), so [`GpuRfft::encode`] allocates nothing.

use std::sync::Arc;

use super::context::{GpuContext, grid};
use super::fft::{FftBinding, GpuFft, max_local};
use crate::error::{Error, Result};
use crate::kernels::fft_real::{self, RFFT_WG, RfftPlan};

/// The shader, with the workgroup-FFT library in front.
const SOURCE: &str = concat!(
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/lib/fft_core.wgsl"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/fft_real.wgsl"
    )),
);

/// Bytes per complex value (`vec2<f32>`).
const COMPLEX_BYTES: u64 = 8;

/// Bytes per sample (`f32`).
const SAMPLE_BYTES: u64 = 4;

/// The multi-pass path's buffers and pipelines.
struct MultiPass {
    pack: wgpu::ComputePipeline,
    post: wgpu::ComputePipeline,
    fft: GpuFft,
    /// batch × n/2 complex values: z, then Z in place.
    packed: wgpu::Buffer,
    fft_binding: FftBinding,
}

/// A planned batch of real-input FFTs of fixed length.
pub struct GpuRfft {
    ctx: Arc<GpuContext>,
    plan: RfftPlan,
    /// `rfft_fused`, on the fused path.
    fused: Option<wgpu::ComputePipeline>,
    multi: Option<MultiPass>,
    twiddles: wgpu::Buffer,
    /// Bound at binding 3 when there is no window (never read).
    no_window: wgpu::Buffer,
}

/// How one dispatch of an [`RfftBinding`] runs.
struct Dispatch {
    group: wgpu::BindGroup,
    groups: (u32, u32),
}

/// The uniform and bind groups of a [`GpuRfft`] for one input and output
/// (made by [`GpuRfft::bind`] or [`GpuRfft::bind_windowed`], used by every
/// [`GpuRfft::encode`]).
pub struct RfftBinding {
    params: fft_real::RfftParams,
    /// On the multi-pass path with contiguous unwindowed frames: the bytes
    /// of `input` to copy into the packed buffer instead of `rfft_pack`.
    copy: Option<(wgpu::Buffer, u64)>,
    /// `rfft_fused`, or `rfft_pack` (absent when copying) then `rfft_post`.
    first: Option<Dispatch>,
    last: Option<Dispatch>,
    _uniform: wgpu::Buffer,
}

impl std::fmt::Debug for RfftBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RfftBinding")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl RfftBinding {
    /// The uniform this binding runs with (for the CPU twin:
    /// [`fft_real::run`]).
    pub fn params(&self) -> &fft_real::RfftParams {
        &self.params
    }
}

impl std::fmt::Debug for GpuRfft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuRfft")
            .field("n", &self.plan.n)
            .field("batch", &self.plan.batch)
            .field("fused", &self.plan.is_fused())
            .finish_non_exhaustive()
    }
}

/// A bind group with `entries` at the given binding numbers (the entry
/// points of `fft_real.wgsl` each use a different subset of them).
fn bind_at(
    ctx: &GpuContext,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    entries: &[(u32, &wgpu::Buffer)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
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

impl GpuRfft {
    /// Plans `batch` real transforms of `n` samples (a power of two >= 4),
    /// each giving `n / 2 + 1` bins.
    ///
    /// # Errors
    /// [`Error::Usage`] for a length that is not a power of two >= 4 or a
    /// batch of 0; [`Error::Gpu`] if the data exceeds the device's storage
    /// binding size or a pipeline is rejected.
    pub fn new(ctx: &Arc<GpuContext>, n: usize, batch: usize) -> Result<Self> {
        Self::with_max_local(ctx, n, batch, max_local(ctx))
    }

    /// As [`GpuRfft::new`], with at most `max_local` complex values per
    /// workgroup (clamped to what the device holds): the multi-pass path
    /// from smaller sizes on. For tests and tuning.
    ///
    /// # Errors
    /// As [`GpuRfft::new`].
    pub fn with_max_local(
        ctx: &Arc<GpuContext>,
        n: usize,
        batch: usize,
        max_local: usize,
    ) -> Result<Self> {
        let local = max_local.min(self::max_local(ctx));
        let plan = fft_real::plan(n, batch, local)?;
        let bytes = (fft_real::bins(n) * batch) as u64 * COMPLEX_BYTES;
        let max_binding = ctx.limits.max_storage_buffer_binding_size;
        if bytes > max_binding {
            return Err(Error::gpu(format!(
                "{}: real FFT of {batch} x {n} samples needs {bytes} bytes of output, more than the {max_binding} one binding may hold",
                ctx.info.name
            )));
        }
        let twiddles = ctx.storage_init("fft_real twiddles", &plan.twiddles)?;
        let no_window = ctx.storage("fft_real no window", SAMPLE_BYTES);
        let (fused, multi) = match &plan.fft {
            None => {
                let shared = (plan.cols * n / 2) as f64;
                let pipeline =
                    ctx.pipeline("fft_real", SOURCE, "rfft_fused", &[("SHARED", shared)])?;
                (Some(pipeline), None)
            }
            Some(_) => {
                // The same arguments as fft_real::plan gave fft_stockham::plan:
                // the same passes as the twin's.
                let fft = GpuFft::with_max_local(ctx, n / 2, batch, false, local)?;
                let packed = ctx.storage("fft_real packed", (n / 2 * batch) as u64 * COMPLEX_BYTES);
                let fft_binding = fft.bind(&packed);
                let pack = ctx.pipeline("fft_real pack", SOURCE, "rfft_pack", &[])?;
                let post = ctx.pipeline("fft_real post", SOURCE, "rfft_post", &[])?;
                (
                    None,
                    Some(MultiPass {
                        pack,
                        post,
                        fft,
                        packed,
                        fft_binding,
                    }),
                )
            }
        };
        Ok(GpuRfft {
            ctx: ctx.clone(),
            plan,
            fused,
            multi,
            twiddles,
            no_window,
        })
    }

    /// Real samples per transform.
    pub fn len(&self) -> usize {
        self.plan.n
    }

    /// Always false (a transform has at least 4 samples); for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Transforms per call.
    pub fn batch(&self) -> usize {
        self.plan.batch
    }

    /// Complex bins per transform: `n / 2 + 1`.
    pub fn bins(&self) -> usize {
        fft_real::bins(self.plan.n)
    }

    /// The plan, shared with the CPU twin ([`fft_real::run`]).
    pub fn plan(&self) -> &RfftPlan {
        &self.plan
    }

    /// The bind groups for transforming `input` (`batch × n` f32, transform
    /// `t` at samples `t n .. (t + 1) n`) into `output` (`batch × (n/2 +
    /// 1)` `vec2<f32>`, transform `t`'s bins at `t (n/2 + 1) ..`).
    ///
    /// # Panics
    /// As [`GpuRfft::bind_windowed`].
    pub fn bind(&self, input: &wgpu::Buffer, output: &wgpu::Buffer) -> RfftBinding {
        self.bind_windowed(input, 0, self.plan.n, None, output)
    }

    /// The bind groups for transforming frames of `input`: transform `t`
    /// reads samples `offset + t input_stride ..` (+ n), each multiplied by
    /// `window[s]` (n f32) when there is a window, and writes its bins to
    /// `output` as in [`GpuRfft::bind`]. Frames may overlap (a stride below
    /// n: spectrogram frames read in place from the signal).
    ///
    /// # Panics
    /// If `input` is too small for the last frame, `output` for the bins,
    /// `window` for n samples, or the indices exceed u32.
    pub fn bind_windowed(
        &self,
        input: &wgpu::Buffer,
        offset: usize,
        input_stride: usize,
        window: Option<&wgpu::Buffer>,
        output: &wgpu::Buffer,
    ) -> RfftBinding {
        let (n, batch) = (self.plan.n, self.plan.batch);
        let end = offset + (batch - 1) * input_stride + n;
        assert!(
            u32::try_from(end).is_ok(),
            "real FFT input index {end} exceeds u32"
        );
        assert!(
            input.size() >= end as u64 * SAMPLE_BYTES,
            "real FFT input of {} bytes, {} needed",
            input.size(),
            end as u64 * SAMPLE_BYTES
        );
        let out_bytes = (self.bins() * batch) as u64 * COMPLEX_BYTES;
        assert!(
            output.size() >= out_bytes,
            "real FFT output of {} bytes, {out_bytes} needed",
            output.size()
        );
        if let Some(w) = window {
            assert!(
                w.size() >= n as u64 * SAMPLE_BYTES,
                "real FFT window of {} bytes, {} needed",
                w.size(),
                n as u64 * SAMPLE_BYTES
            );
        }
        let params = self.plan.params(input_stride, offset, window.is_some());
        let ctx = &self.ctx;
        // The uniform is per binding: a binding fixes stride, offset and
        // window, so encode writes nothing. Written through the queue (a
        // one-off, ordered before any later submission), which cannot fail
        // here, unlike mapping.
        let uniform = ctx.buffer(
            "fft_real params",
            std::mem::size_of::<fft_real::RfftParams>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        ctx.write(&uniform, 0, &[params]);
        let window = window.unwrap_or(&self.no_window);
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        let (copy, first, last) = match (&self.fused, &self.multi) {
            (Some(fused), _) => {
                let group = bind_at(
                    ctx,
                    "fft_real",
                    fused,
                    &[
                        (0, &uniform),
                        (1, &self.twiddles),
                        (2, input),
                        (3, window),
                        (4, output),
                    ],
                );
                let groups = grid(batch as u64, self.plan.cols as u64, max_dim);
                (None, Some(Dispatch { group, groups }), None)
            }
            (None, Some(m)) => {
                let contiguous = input_stride == n && params.windowed == 0;
                let copy = contiguous.then(|| (input.clone(), offset as u64 * SAMPLE_BYTES));
                let pack = (!contiguous).then(|| Dispatch {
                    group: bind_at(
                        ctx,
                        "fft_real pack",
                        &m.pack,
                        &[(0, &uniform), (2, input), (3, window), (5, &m.packed)],
                    ),
                    groups: grid((batch * n / 2) as u64, RFFT_WG as u64, max_dim),
                });
                let post = Dispatch {
                    group: bind_at(
                        ctx,
                        "fft_real post",
                        &m.post,
                        &[
                            (0, &uniform),
                            (1, &self.twiddles),
                            (4, output),
                            (5, &m.packed),
                        ],
                    ),
                    groups: grid(out_bytes / COMPLEX_BYTES, RFFT_WG as u64, max_dim),
                };
                (copy, pack, Some(post))
            }
            (None, None) => unreachable!("a plan is fused or multi-pass"),
        };
        RfftBinding {
            params,
            copy,
            first,
            last,
            _uniform: uniform,
        }
    }

    /// Encodes the transforms `binding` was made for. Allocates nothing on
    /// the GPU.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, binding: &RfftBinding) {
        let dispatch =
            |encoder: &mut wgpu::CommandEncoder, pipeline: &wgpu::ComputePipeline, d: &Dispatch| {
                let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("fft_real"),
                    timestamp_writes: None,
                });
                cpass.set_pipeline(pipeline);
                cpass.set_bind_group(0, &d.group, &[]);
                cpass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            };
        match (&self.fused, &self.multi) {
            (Some(fused), _) => {
                if let Some(d) = &binding.first {
                    dispatch(encoder, fused, d);
                }
            }
            (None, Some(m)) => {
                if let Some((input, offset)) = &binding.copy {
                    let bytes = (self.plan.batch * self.plan.n) as u64 * SAMPLE_BYTES;
                    encoder.copy_buffer_to_buffer(input, *offset, &m.packed, 0, bytes);
                }
                if let Some(d) = &binding.first {
                    dispatch(encoder, &m.pack, d);
                }
                m.fft.encode(encoder, &m.fft_binding);
                if let Some(d) = &binding.last {
                    dispatch(encoder, &m.post, d);
                }
            }
            (None, None) => {}
        }
    }
}
