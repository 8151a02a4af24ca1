//! Spectral analysis of recordings larger than memory: the exact DFT of the
//! whole signal ([`ooc_fft`]), the streaming STFT ([`stft`]), Welch's power
//! spectral density ([`welch`]) and the windows they use ([`window`]).
//!
//! Why a module of its own: these stages do not fit the chunk engine's
//! "samples in, samples out" shape (a spectrogram emits frames, Welch one
//! spectrum at the end, a whole-signal DFT needs every sample at once), but
//! they share its sources and its constant-memory rule. [`frames`] cuts
//! chunks into exact frames across chunk boundaries and computes their power
//! spectra on the CPU (realfft, rayon) or the GPU
//! ([`crate::backend::gpu::spectra`]); [`ooc_fft`] keeps memory bounded by
//! decomposing one huge transform into many small ones that run block by
//! block through a scratch file.

pub mod frames;
pub mod ooc_fft;
pub mod stft;
pub mod welch;
pub mod window;

pub use frames::{Detrend, FramePower, FrameRun, Framer, frame_count};
pub use stft::{Scale, Stft, StftConfig, StftRows};
pub use welch::{Psd, Scaling, Welch, WelchConfig};
pub use window::Window;

/// Checks what a spectral estimator is told about its stream: at least one
/// channel, and a sample rate (when given) that is a positive finite number.
fn check_stream(channels: usize, sample_rate: Option<f64>) -> crate::Result<()> {
    if channels == 0 {
        return Err(crate::Error::usage("channels must be at least 1"));
    }
    if let Some(r) = sample_rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(crate::Error::usage(format!(
            "sample rate {r}: must be a positive number of Hz"
        )));
    }
    Ok(())
}

/// Bytes an STFT or Welch estimator holds for `channels` channels of frames
/// of `frame_len` samples, for the memory budget
/// ([`crate::pipeline::budget::plan_blocks`]): per channel, the carried
/// partial frame and the joined frame (`f32`), the accumulated or current
/// spectrum (`f64`) and the transform's buffers (complex `f32`), about 32
/// bytes per sample of a frame.
pub fn state_bytes(channels: usize, frame_len: usize) -> u64 {
    const BYTES_PER_FRAME_SAMPLE: u64 = 32;
    (channels as u64)
        .saturating_mul(frame_len as u64)
        .saturating_mul(BYTES_PER_FRAME_SAMPLE)
}
