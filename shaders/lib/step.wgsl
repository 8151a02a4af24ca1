// The per-step parameters every streaming kernel reads from one small
// uniform buffer: the WGSL side of `StepParams` (src/backend/gpu/mod.rs),
// same fields in the same order (checked by tests/shaders.rs). The host
// prepends this file to each kernel that binds it (WGSL has no includes).

struct Step {
    // New input frames per channel in this step.
    frames: u32,
    // Leading full-convolution outputs dropped (conv mode's start trim).
    drop: u32,
    // Output frames per channel: frames - drop.
    out_frames: u32,
    // Outputs at the start of this step whose cft is forced to 0.
    warm_up: u32,
    // Absolute index of the step's first output, low and high 32 bits.
    base_lo: u32,
    base_hi: u32,
    pad0: u32,
    pad1: u32,
}
