//! Spectral analysis of signals larger than memory: the streaming STFT
//! ([`stft`]), Welch's power spectral density ([`welch`]) and the windows
//! they use ([`window`]).
//!
//! Why a module of its own: these stages do not fit the chunk engine's
//! "samples in, samples out" shape (a spectrogram emits frames, Welch one
//! spectrum at the end), but they share its sources and constant-memory
//! rule. [`frames`] cuts chunks into exact frames across chunk boundaries
//! and computes their power spectra on the CPU (realfft, rayon) or the GPU
//! ([`crate::backend::gpu::spectra`]).

pub mod frames;
pub mod stft;
pub mod welch;
pub mod window;

pub use frames::{Detrend, FramePower, FrameRun, Framer, frame_count};
pub use stft::{Scale, Stft, StftConfig, StftRows};
pub use welch::{Psd, Scaling, Welch, WelchConfig};
pub use window::Window;
