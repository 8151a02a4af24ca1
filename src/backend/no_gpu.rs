//! `backend::gpu` in a binary built without the `gpu` cargo feature.
//!
//! Why it exists: the library's signatures stay the same with and without
//! the feature (features must be additive: code written against a CPU-only
//! build compiles against a full one), so the GPU handle that the spectral
//! functions take, `Option<&Arc<GpuContext>>`, still exists here. Its types
//! are uninhabited enums: no value of them can ever be made, so every
//! method body is an empty `match` the compiler proves unreachable, and
//! `Some(..)` cannot be passed. [`super::gpu_context`] answers
//! `--backend gpu` with an error that says the binary was built without the
//! GPU.

use std::sync::Arc;

use crate::error::Result;

/// A GPU device: none can exist in this build.
#[derive(Debug)]
pub enum GpuContext {}

impl GpuContext {
    /// The adapter's name and driver.
    pub fn describe(&self) -> String {
        match *self {}
    }
}

/// Batched complex FFTs on the GPU (the out-of-core FFT's passes).
pub mod fft {
    use super::*;

    /// A GPU batch FFT: none can exist in this build.
    #[derive(Debug)]
    pub enum GpuFftBatch {}

    impl GpuFftBatch {
        /// Unreachable: no [`GpuContext`] exists to pass.
        ///
        /// # Errors
        /// Never.
        pub fn new(ctx: &Arc<GpuContext>, _n: usize, _batch: usize) -> Result<Option<Self>> {
            match **ctx {}
        }

        /// Unreachable: no value of this type exists.
        ///
        /// # Errors
        /// Never.
        pub fn run(&self, _data: &mut [rustfft::num_complex::Complex32]) -> Result<()> {
            match *self {}
        }
    }
}

/// Frame power spectra on the GPU (STFT and Welch).
pub mod spectra {
    use super::*;

    /// Frame lengths the GPU takes: none in this build.
    pub fn supports(_n: usize) -> bool {
        false
    }

    /// GPU frame power spectra: none can exist in this build.
    #[derive(Debug)]
    pub enum GpuPowerSpectra {}

    impl GpuPowerSpectra {
        /// Unreachable: no [`GpuContext`] exists to pass.
        ///
        /// # Errors
        /// Never.
        pub fn new(
            ctx: &Arc<GpuContext>,
            _n: usize,
            _hop: usize,
            _window: &[f32],
            _detrend: bool,
        ) -> Result<Self> {
            match **ctx {}
        }

        /// Unreachable: no value of this type exists.
        pub fn frames_per_call(&self) -> usize {
            match *self {}
        }

        /// Unreachable: no value of this type exists.
        ///
        /// # Errors
        /// Never.
        pub fn power(
            &mut self,
            _data: &[f32],
            _offset: usize,
            _count: usize,
            _out: &mut [f32],
        ) -> Result<()> {
            match *self {}
        }
    }
}
