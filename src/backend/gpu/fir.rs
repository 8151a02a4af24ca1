//! Streaming FIR filtering on the GPU: the host side of
//! `shaders/fir_direct.wgsl` and `shaders/fir_overlap_save.wgsl`.
//!
//! Why it is built this way:
//! - Same semantics as the CPU's [`crate::backend::cpu::fir`]: outputs of
//!   the full convolution `y[n] = Σ_t k[t]·x[n−t]`, one per input, with the
//!   `taps − 1` previous inputs carried from step to step (zeros before the
//!   start). Unlike the CPU, every step returns all its outputs at once (no
//!   block grid, no latency): a GPU step always has a whole chunk.
//! - The history stays on the GPU, in two buffers that alternate by step
//!   parity: each step's single dispatch reads one and writes the next
//!   step's history to the other, so steps can be encoded and submitted
//!   before earlier ones finish, and nothing per step is written from the
//!   host except the shared [`super::StepParams`] uniform. Both bind groups
//!   are built at plan time; encoding allocates nothing.
//! - Short kernels (up to [`DIRECT_MAX_TAPS`], as on the CPU) use direct
//!   convolution with inputs and taps tiled in workgroup memory. Longer ones
//!   use overlap-save fused into one dispatch: each workgroup transforms two
//!   blocks packed as one complex signal (the kernel is real) forward and
//!   back in workgroup memory, with the kernel's spectrum computed once in
//!   f64 on the host. A kernel too long for the device's in-workgroup FFT
//!   (`taps > max_local / 2`, e.g. 2048 taps with 32 KiB of workgroup
//!   memory) falls back to the direct kernel, which is correct for any
//!   length but costs `taps` multiply-adds per output.

use std::sync::Arc;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use super::context::{GpuContext, grid};
use super::fft::max_local;
use crate::error::{Error, Result};
use crate::kernels::fft_stockham::{self, C32, FFT_WG};
use crate::kernels::{fir_direct, fir_overlap_save};

const DIRECT_SOURCE: &str = super::step_shader!("fir_direct.wgsl");

const OVERLAP_SAVE_SOURCE: &str =
    super::step_shader!("fir_overlap_save.wgsl", with "lib/fft_core.wgsl");

/// Kernels up to this many taps use the direct method by default (the
/// CPU's crossover, [`crate::backend::cpu::fir::DIRECT_MAX_TAPS`]).
pub const DIRECT_MAX_TAPS: usize = crate::backend::cpu::fir::DIRECT_MAX_TAPS;

/// Smallest default overlap-save FFT length: below it most of a
/// workgroup's [`FFT_WG`] invocations would idle in every FFT stage.
const MIN_DEFAULT_NFFT: usize = 4 * FFT_WG;

/// How a [`GpuFir`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuFirMethod {
    /// Direct convolution, `taps` multiply-adds per output.
    Direct,
    /// FFT overlap-save in workgroup memory, blocks of `nfft` samples.
    OverlapSave {
        /// FFT length (a power of two, more than `taps - 1`, at most the
        /// device's in-workgroup maximum).
        nfft: usize,
    },
}

impl GpuFirMethod {
    /// The default for a kernel of `taps` taps on a device whose workgroup
    /// FFT holds at most `max_local` values: direct up to
    /// [`DIRECT_MAX_TAPS`] and beyond `max_local / 2` (the fallback),
    /// otherwise overlap-save with the smallest power of two >= 4·taps,
    /// clamped to `[min(1024, max_local), max_local]`.
    pub fn choose(taps: usize, max_local: usize) -> Self {
        if taps <= DIRECT_MAX_TAPS || taps > max_local / 2 {
            GpuFirMethod::Direct
        } else {
            let nfft = (4 * taps)
                .next_power_of_two()
                .clamp(MIN_DEFAULT_NFFT.min(max_local), max_local);
            GpuFirMethod::OverlapSave { nfft }
        }
    }
}

/// A streaming FIR stage planned on the GPU for fixed buffers.
pub struct GpuFir {
    method: GpuFirMethod,
    taps: usize,
    channels: usize,
    chunk: usize,
    max_dim: u32,
    pipeline: wgpu::ComputePipeline,
    /// Bind groups reading history buffer `i` and writing the other.
    groups: [wgpu::BindGroup; 2],
    /// Which bind group the next non-empty step uses.
    parity: usize,
    /// Buffers the bind groups hold (taps or spectrum and twiddles, the two
    /// histories), kept for clarity about what the stage owns.
    _owned: Vec<wgpu::Buffer>,
}

impl std::fmt::Debug for GpuFir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFir")
            .field("method", &self.method)
            .field("taps", &self.taps)
            .field("channels", &self.channels)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

/// The kernel's spectrum over `nfft`, scaled by `1 / nfft` (the inverse
/// transform is unnormalised): computed in f64, stored as f32.
pub fn kernel_spectrum(kernel: &[f32], nfft: usize) -> Vec<C32> {
    let mut s = vec![Complex::<f64>::default(); nfft];
    for (v, &k) in s.iter_mut().zip(kernel) {
        v.re = f64::from(k);
    }
    FftPlanner::<f64>::new()
        .plan_fft_forward(nfft)
        .process(&mut s);
    let scale = 1.0 / nfft as f64;
    s.iter()
        .map(|c| [(c.re * scale) as f32, (c.im * scale) as f32])
        .collect()
}

impl GpuFir {
    /// Plans `kernel` for `channels` channels and at most `chunk` new
    /// frames per step.
    /// `step`: the [`super::StepParams`] uniform buffer (frames, drop used).
    /// `input`: planar f32, channel c's new frames at element
    /// `c*chunk .. c*chunk+frames`.
    /// `output`: planar f32, for full-convolution output j of this step with
    /// `j >= drop`, written at element `c*out_stride + (j - drop)`.
    /// `out_stride >= chunk`.
    /// `method`: `None` for [`GpuFirMethod::choose`].
    ///
    /// # Errors
    /// [`Error::Usage`] for an empty kernel, no channels, a chunk of 0, an
    /// output stride below the chunk, or an overlap-save length that is not
    /// a power of two above `taps - 1` within the device's in-workgroup
    /// maximum; [`Error::Gpu`] if a pipeline is rejected or a buffer cannot
    /// be made.
    #[expect(
        clippy::too_many_arguments,
        reason = "the integration contract: every buffer the stage binds"
    )]
    pub fn new(
        ctx: &Arc<GpuContext>,
        kernel: &[f32],
        channels: usize,
        chunk: usize,
        step: &wgpu::Buffer,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        out_stride: usize,
        method: Option<GpuFirMethod>,
    ) -> Result<Self> {
        let taps = kernel.len();
        if taps == 0 {
            return Err(Error::usage("GPU FIR kernel has no taps"));
        }
        if channels == 0 || chunk == 0 {
            return Err(Error::usage(format!(
                "GPU FIR planned for {channels} channels of {chunk} frames"
            )));
        }
        if out_stride < chunk {
            return Err(Error::usage(format!(
                "GPU FIR output stride {out_stride} is below the chunk of {chunk} frames"
            )));
        }
        if channels
            .checked_mul(out_stride.max(taps))
            .is_none_or(|n| n > u32::MAX as usize)
        {
            return Err(Error::usage(format!(
                "GPU FIR of {channels} channels x {out_stride} frames exceeds 2^32 samples"
            )));
        }
        let max = max_local(ctx);
        let method = method.unwrap_or_else(|| GpuFirMethod::choose(taps, max));
        let h = taps - 1;
        let hist = [
            ctx.storage("fir history 0", (channels * h * 4) as u64),
            ctx.storage("fir history 1", (channels * h * 4) as u64),
        ];
        let mut constants = vec![
            ("TAPS", taps as f64),
            ("CHANNELS", channels as f64),
            ("CHUNK", chunk as f64),
            ("OUT_STRIDE", out_stride as f64),
        ];
        let (pipeline, mut owned) = match method {
            GpuFirMethod::Direct => {
                let pipeline =
                    ctx.pipeline("fir_direct", DIRECT_SOURCE, "fir_direct", &constants)?;
                (pipeline, vec![ctx.storage_init("fir taps", kernel)?])
            }
            GpuFirMethod::OverlapSave { nfft } => {
                if !nfft.is_power_of_two() || nfft < 2 || nfft <= h || nfft > max {
                    return Err(Error::usage(format!(
                        "overlap-save FFT length {nfft} for {taps} taps: must be a power of two \
                         above {h} and at most {max} (this device's in-workgroup maximum)"
                    )));
                }
                constants.push(("NFFT", nfft as f64));
                constants.push(("SHARED", nfft as f64));
                let pipeline = ctx.pipeline(
                    "fir_overlap_save",
                    OVERLAP_SAVE_SOURCE,
                    "fir_overlap_save",
                    &constants,
                )?;
                let twiddles =
                    ctx.storage_init("fir twiddles", &fft_stockham::local_twiddles(nfft))?;
                let spectrum = ctx.storage_init("fir spectrum", &kernel_spectrum(kernel, nfft))?;
                let taps = ctx.storage_init("fir taps", kernel)?;
                (pipeline, vec![twiddles, spectrum, taps])
            }
        };
        let group = |from: usize| {
            let (hin, hout) = (&hist[from], &hist[1 - from]);
            let buffers: Vec<&wgpu::Buffer> = match method {
                GpuFirMethod::Direct => vec![step, &owned[0], input, output, hin, hout],
                GpuFirMethod::OverlapSave { .. } => {
                    vec![
                        step, &owned[0], &owned[1], input, output, hin, hout, &owned[2],
                    ]
                }
            };
            ctx.bind("fir", &pipeline, &buffers)
        };
        let groups = [group(0), group(1)];
        owned.extend(hist);
        Ok(GpuFir {
            method,
            taps,
            channels,
            chunk,
            max_dim: ctx.limits.max_compute_workgroups_per_dimension,
            pipeline,
            groups,
            parity: 0,
            _owned: owned,
        })
    }

    /// The method in use.
    pub fn method(&self) -> GpuFirMethod {
        self.method
    }

    /// Number of taps.
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// Encodes one step of `frames` new frames per channel (the same value
    /// as the step uniform's `frames`; the host passes it for dispatch
    /// sizing). Updates the carried history. A step of 0 frames encodes
    /// nothing.
    ///
    /// # Panics
    /// If `frames` exceeds the chunk the stage was planned for.
    pub fn encode(&mut self, encoder: &mut wgpu::CommandEncoder, frames: usize) {
        assert!(
            frames <= self.chunk,
            "GPU FIR step of {frames} frames exceeds the {} it was planned for",
            self.chunk
        );
        if frames == 0 {
            return;
        }
        let total = match self.method {
            GpuFirMethod::Direct => fir_direct::workgroups(frames, self.channels),
            GpuFirMethod::OverlapSave { nfft } => {
                fir_overlap_save::workgroups(nfft, self.taps, frames, self.channels)
            }
        };
        let (x, y) = grid(total as u64, 1, self.max_dim);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fir"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.groups[self.parity], &[]);
        pass.dispatch_workgroups(x, y, 1);
        self.parity ^= 1;
    }
}
