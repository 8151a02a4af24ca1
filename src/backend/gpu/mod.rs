//! The GPU backend: wgpu compute shaders (one WGSL file per kernel under
//! `shaders/`, each with a CPU twin in [`crate::kernels`]).

pub mod context;

pub use context::{GpuContext, GpuOptions};
