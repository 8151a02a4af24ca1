//! The GPU backend: wgpu compute shaders (one WGSL file per kernel under
//! `shaders/`, each with a CPU twin in [`crate::kernels`]).
//!
//! Why a backend and not a pipeline of its own: the chunk engine (reading,
//! pooling, ordering, writing, the error contract) is the same whatever
//! computes. [`GpuBackend`] plans a [`GpuProcessor`] that implements the same
//! [`ChunkProcessor`] trait as the CPU's, and inside it fuses the stages on
//! the device: upload, filter, characteristic function, candidate
//! compaction, readback.
//!
//! Modules: [`context`] (adapter, device, limits, errors), [`staging`]
//! (upload/readback slots), [`processor`] (the per-chunk steps), and one
//! module per stage, each driving its shaders: [`fft`] (complex), [`rfft`]
//! (real input), [`fir`], [`detect`], and [`spectra`] (real-frame power
//! spectra for the STFT and Welch).

/// The WGSL source of a streaming kernel: `shaders/lib/step.wgsl` (the
/// [`StepParams`] mirror), then the libraries named after `with`, then
/// `shaders/FILE` (WGSL has no includes, so shared pieces are prepended at
/// compile time).
macro_rules! step_shader {
    ($file:literal $(, with $lib:literal)*) => {
        concat!(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/lib/step.wgsl")),
            $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $lib)),)*
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
        )
    };
}
pub(crate) use step_shader;

pub mod context;
pub mod detect;
pub mod fft;
pub mod fir;
pub mod processor;
pub mod rfft;
pub mod spectra;
pub mod staging;

use std::sync::Arc;

use crate::backend::{Backend, ChunkProcessor, Footprint, Job};
use crate::error::Result;

pub use context::{GpuContext, GpuOptions};
pub use processor::GpuProcessor;

/// The GPU backend, on one device.
#[derive(Debug, Clone)]
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    max_step: usize,
}

impl GpuBackend {
    /// Opens the adapter `options` choose.
    ///
    /// # Errors
    /// [`crate::Error::Gpu`] when there is none.
    pub fn new(options: &GpuOptions) -> Result<Self> {
        Ok(GpuBackend {
            ctx: GpuContext::new(options)?,
            max_step: usize::MAX,
        })
    }

    /// The backend on an already open device.
    pub fn with_context(ctx: Arc<GpuContext>) -> Self {
        GpuBackend {
            ctx,
            max_step: usize::MAX,
        }
    }

    /// Splits every chunk into GPU steps of at most `frames` frames (chunks
    /// are split anyway when they exceed the device's binding limits; tests
    /// use this to exercise the split on small data).
    #[must_use]
    pub fn with_max_step(mut self, frames: usize) -> Self {
        self.max_step = frames.max(1);
        self
    }

    /// The device.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn device(&self) -> String {
        self.ctx.describe()
    }

    fn plan(
        &self,
        job: &Job,
        channels: usize,
        chunk: usize,
        _threads: usize,
    ) -> Result<Box<dyn ChunkProcessor>> {
        Ok(Box::new(GpuProcessor::new(
            &self.ctx,
            job,
            channels,
            chunk,
            self.max_step,
        )?))
    }

    fn footprint(&self, job: &Job, channels: usize, chunk: usize, _threads: usize) -> Footprint {
        GpuProcessor::footprint(&self.ctx, job, channels, chunk, self.max_step)
    }
}

/// Per-step parameters every kernel of a step reads from one small uniform
/// buffer (WGSL: `struct Step` in each shader, same field order).
///
/// Why one struct: per-chunk values must reach the GPU without
/// `queue.write_buffer` (which allocates a staging buffer per call). The
/// processor writes this struct into the header of the chunk's mapped upload
/// slot, and the step's first command copies it into the uniform buffer
/// that all stages bind. Static parameters (taps, window lengths, strides)
/// are fixed at plan time in each stage's own buffers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepParams {
    /// New input frames per channel in this step.
    pub frames: u32,
    /// Leading full-convolution outputs dropped in this step (the `same` and
    /// `valid` modes' start trim); `drop <= frames`.
    pub drop: u32,
    /// Output frames per channel in this step: `frames - drop`.
    pub out_frames: u32,
    /// Outputs at the start of this step whose characteristic function is
    /// forced to 0 (the detector's warm-up still to go, saturated to u32).
    pub warm_up: u32,
    /// Absolute index of this step's first output frame, low 32 bits.
    pub base_lo: u32,
    /// Absolute index of this step's first output frame, high 32 bits.
    pub base_hi: u32,
    /// Padding to 32 bytes (uniform buffers are sized in 16-byte units).
    pub pad: [u32; 2],
}

/// Size of [`StepParams`] in bytes, as the uniform buffer's size.
pub const STEP_PARAMS_SIZE: u64 = std::mem::size_of::<StepParams>() as u64;
