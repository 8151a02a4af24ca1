//! Batched complex FFT on the GPU: the host side of
//! `shaders/fft_stockham.wgsl`.
//!
//! Why it is built this way: a transform that fits in workgroup memory
//! (up to `max_compute_workgroup_storage_size / 8` complex values, at most
//! [`FFT_MAX_LOCAL`]) never leaves it, one dispatch for the whole batch.
//! Longer ones are split, four-step style, into the fewest passes whose
//! radices fit (two passes up to 2^24 with 32 KiB of workgroup memory),
//! each pass one dispatch of the same workgroup kernel. A workgroup takes
//! as many neighbouring columns (or, for short transforms, whole signals)
//! as fill its workgroup memory, so that short radices keep all its
//! invocations busy and its loads and stores touch consecutive addresses.
//! Everything a pass
//! needs (its uniform, the twiddle tables, a scratch buffer for passes that
//! cannot run in place) is made once at plan time, and [`GpuFft::bind`]
//! makes the bind groups for one data buffer once, so encoding a transform
//! allocates nothing. The pass plan itself lives with the CPU twin
//! ([`crate::kernels::fft_stockham`]) so that both run the same stages.
//!
//! The inverse transform is unnormalised, like rustfft's: forward then
//! inverse multiplies by `n`.

use std::sync::Arc;

use super::context::{GpuContext, grid};
use crate::error::{Error, Result};
use crate::kernels::fft_stockham::{self, FFT_MAX_LOCAL, FftPlan};

/// The shader, with the workgroup-FFT library in front.
const SOURCE: &str = concat!(
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/lib/fft_core.wgsl"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shaders/fft_stockham.wgsl"
    )),
);

/// Bytes per complex value (`vec2<f32>`).
const COMPLEX_BYTES: u64 = 8;

/// The longest transform one workgroup of this device can hold in
/// workgroup memory: a power of two, at most [`FFT_MAX_LOCAL`].
pub fn max_local(ctx: &GpuContext) -> usize {
    let fit = (ctx.limits.max_compute_workgroup_storage_size as u64 / COMPLEX_BYTES).max(4);
    let fit = 1usize << fit.ilog2();
    fit.min(FFT_MAX_LOCAL)
}

struct Pass {
    uniform: wgpu::Buffer,
    groups: (u32, u32),
}

/// A planned batched FFT of fixed length, batch and direction.
pub struct GpuFft {
    ctx: Arc<GpuContext>,
    n: usize,
    batch: usize,
    plan: FftPlan,
    pipeline: wgpu::ComputePipeline,
    passes: Vec<Pass>,
    twiddles: wgpu::Buffer,
    /// For multi-pass transforms: the buffer passes alternate with.
    scratch: Option<wgpu::Buffer>,
}

/// The bind groups of a [`GpuFft`] for one data buffer (made once by
/// [`GpuFft::bind`], used by every [`GpuFft::encode`]).
pub struct FftBinding {
    groups: Vec<wgpu::BindGroup>,
    data: wgpu::Buffer,
}

impl std::fmt::Debug for FftBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftBinding")
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GpuFft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFft")
            .field("n", &self.n)
            .field("batch", &self.batch)
            .field("radices", &self.radices())
            .finish_non_exhaustive()
    }
}

impl GpuFft {
    /// Plans `batch` transforms of `n` complex values (a power of two >= 2),
    /// forward or `inverse` (unnormalised).
    ///
    /// # Errors
    /// [`Error::Usage`] for a length that is not a power of two or a batch of
    /// 0; [`Error::Gpu`] if the data exceeds the device's storage binding
    /// size or a pipeline is rejected.
    pub fn new(ctx: &Arc<GpuContext>, n: usize, batch: usize, inverse: bool) -> Result<Self> {
        Self::with_max_local(ctx, n, batch, inverse, max_local(ctx))
    }

    /// As [`GpuFft::new`], with at most `max_local` values per workgroup
    /// (clamped to what the device holds): more, smaller passes. For tests
    /// of the multi-pass path on small sizes, and for tuning.
    ///
    /// # Errors
    /// As [`GpuFft::new`].
    pub fn with_max_local(
        ctx: &Arc<GpuContext>,
        n: usize,
        batch: usize,
        inverse: bool,
        max_local: usize,
    ) -> Result<Self> {
        let plan = fft_stockham::plan(n, batch, max_local.min(self::max_local(ctx)), inverse)?;
        let bytes = (n * batch) as u64 * COMPLEX_BYTES;
        let max_binding = ctx.limits.max_storage_buffer_binding_size;
        if bytes > max_binding {
            return Err(Error::gpu(format!(
                "{}: FFT of {batch} x {n} values needs {bytes} bytes, more than the {max_binding} one binding may hold",
                ctx.info.name
            )));
        }
        let entry = if plan.passes.len() == 1 {
            "fft_in_place"
        } else {
            "fft_pass"
        };
        let pipeline = ctx.pipeline(
            "fft_stockham",
            SOURCE,
            entry,
            &[("SHARED", plan.shared_len as f64)],
        )?;
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        let passes = plan
            .passes
            .iter()
            .map(|fp| {
                Ok(Pass {
                    uniform: ctx.uniform("fft_stockham pass", fp)?,
                    groups: grid(u64::from(fp.total), u64::from(fp.cols), max_dim),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let twiddles = ctx.storage_init("fft_stockham twiddles", &plan.twiddles)?;
        let scratch = (plan.passes.len() > 1).then(|| ctx.storage("fft_stockham scratch", bytes));
        Ok(GpuFft {
            ctx: ctx.clone(),
            n,
            batch,
            plan,
            pipeline,
            passes,
            twiddles,
            scratch,
        })
    }

    /// Transform length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (a transform has at least 2 values); for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Signals per transform call.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The radix of each pass, in order (their product is the length).
    pub fn radices(&self) -> Vec<usize> {
        self.plan.passes.iter().map(|p| p.radix as usize).collect()
    }

    /// The plan the passes run, shared with the CPU twin
    /// ([`fft_stockham::run`]).
    pub fn plan(&self) -> &FftPlan {
        &self.plan
    }

    /// The bind groups for transforming `data` (at least `batch * n`
    /// complex values, signal `b` at values `b n .. (b + 1) n`) in place.
    ///
    /// # Panics
    /// If `data` is smaller than `batch * n` complex values.
    pub fn bind(&self, data: &wgpu::Buffer) -> FftBinding {
        let bytes = (self.n * self.batch) as u64 * COMPLEX_BYTES;
        assert!(
            data.size() >= bytes,
            "FFT buffer of {} bytes, {bytes} needed",
            data.size()
        );
        let ctx = &self.ctx;
        let groups = match &self.scratch {
            None => vec![ctx.bind(
                "fft_stockham",
                &self.pipeline,
                &[&self.passes[0].uniform, &self.twiddles, data],
            )],
            Some(scratch) => self
                .passes
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (src, dst) = if i % 2 == 0 {
                        (data, scratch)
                    } else {
                        (scratch, data)
                    };
                    ctx.bind(
                        "fft_stockham",
                        &self.pipeline,
                        &[&p.uniform, &self.twiddles, src, dst],
                    )
                })
                .collect(),
        };
        FftBinding {
            groups,
            data: data.clone(),
        }
    }

    /// Encodes the transform of the buffer `binding` was made for, in
    /// place. Allocates nothing on the GPU.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, binding: &FftBinding) {
        {
            let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fft_stockham"),
                timestamp_writes: None,
            });
            cpass.set_pipeline(&self.pipeline);
            for (pass, group) in self.passes.iter().zip(&binding.groups) {
                cpass.set_bind_group(0, group, &[]);
                cpass.dispatch_workgroups(pass.groups.0, pass.groups.1, 1);
            }
        }
        if let Some(scratch) = &self.scratch
            && self.passes.len() % 2 == 1
        {
            let bytes = (self.n * self.batch) as u64 * COMPLEX_BYTES;
            encoder.copy_buffer_to_buffer(scratch, 0, &binding.data, 0, bytes);
        }
    }
}

/// A GPU batch FFT of fixed length and batch, with its data buffer and the
/// mapped upload and readback buffers it reuses for every block: what the
/// out-of-core FFT ([`crate::spectral::ooc_fft`]) runs its column and row
/// passes through, host data in and out.
pub struct GpuFftBatch {
    ctx: Arc<GpuContext>,
    fft: GpuFft,
    binding: FftBinding,
    buffer: wgpu::Buffer,
    upload: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl std::fmt::Debug for GpuFftBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFftBatch")
            .field("fft", &self.fft)
            .finish_non_exhaustive()
    }
}

impl GpuFftBatch {
    /// A plan when `n` is a power of two the GPU FFT takes (`None`
    /// otherwise).
    ///
    /// # Errors
    /// [`Error::Gpu`] when the device cannot hold the plan.
    pub fn new(ctx: &Arc<GpuContext>, n: usize, batch: usize) -> Result<Option<Self>> {
        if !n.is_power_of_two() || n < 2 {
            return Ok(None);
        }
        let fft = GpuFft::new(ctx, n, batch, false)?;
        let bytes = (n * batch * std::mem::size_of::<rustfft::num_complex::Complex32>()) as u64;
        let buffer = ctx.storage("ooc fft block", bytes);
        let binding = fft.bind(&buffer);
        let upload = ctx.buffer(
            "ooc fft upload",
            bytes,
            wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
        );
        let readback = ctx.buffer(
            "ooc fft readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        Ok(Some(GpuFftBatch {
            ctx: ctx.clone(),
            fft,
            binding,
            buffer,
            upload,
            readback,
        }))
    }

    /// Transforms the rows of `data` (at most `batch` rows) in place, through
    /// the pass's own staging buffers (nothing is allocated per block).
    ///
    /// # Errors
    /// [`Error::Gpu`] when the device fails.
    pub fn run(&self, data: &mut [rustfft::num_complex::Complex32]) -> Result<()> {
        let ctx = &self.ctx;
        let gpu_err = |e: wgpu::MapRangeError| Error::gpu(format!("{}: {e}", ctx.info.name));
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(data);
        let len = bytes.len() as u64;
        ctx.map_blocking(&self.upload, len, wgpu::MapMode::Write)?;
        {
            let mut view = self
                .upload
                .slice(..len)
                .get_mapped_range_mut()
                .map_err(gpu_err)?;
            view.slice(..).copy_from_slice(bytes);
        }
        self.upload.unmap();
        let mut encoder = ctx.encoder("ooc fft");
        encoder.copy_buffer_to_buffer(&self.upload, 0, &self.buffer, 0, len);
        self.fft.encode(&mut encoder, &self.binding);
        encoder.copy_buffer_to_buffer(&self.buffer, 0, &self.readback, 0, len);
        ctx.run(encoder)?;
        ctx.map_blocking(&self.readback, len, wgpu::MapMode::Read)?;
        {
            let view = self
                .readback
                .slice(..len)
                .get_mapped_range()
                .map_err(gpu_err)?;
            bytes.copy_from_slice(&view);
        }
        self.readback.unmap();
        Ok(())
    }
}
