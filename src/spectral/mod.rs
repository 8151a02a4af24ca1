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
