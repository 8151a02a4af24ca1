//! CPU twins of the WGSL kernels in `shaders/`.
//!
//! Why they exist (as in vello's `cpu/` shaders): each twin mirrors its
//! shader's bindings and its loop over workgroups and invocations, step for
//! step, in plain Rust. Tests run the twin and the shader on the same input:
//! when the GPU backend and the CPU backend disagree, the twins show which
//! stage diverges, on any machine, with a debugger. The twins are not the
//! CPU backend (which is tuned for CPUs); they are executable specifications
//! of the shaders.

pub mod detect_classic;
pub mod detect_compact;
pub mod detect_recursive;
pub mod detect_threshold;
pub mod fft_real;
pub mod fft_stockham;
pub mod fir_direct;
pub mod fir_overlap_save;
pub mod step;

#[cfg(test)]
mod tests;
