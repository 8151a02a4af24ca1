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

pub use crate::kernels::step::{STEP_PARAMS_SIZE, StepParams};
