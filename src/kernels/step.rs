//! The per-step parameters that every streaming kernel reads (WGSL:
//! `struct Step` in `shaders/lib/step.wgsl`).
//!
//! Why here and not in the GPU backend: the parameters belong to the
//! kernels. The CPU twins take them as the shaders do, and the GPU backend
//! fills them in; keeping them beside the twins keeps `kernels` free of any
//! GPU code, so the twins build without wgpu.

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
