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

pub use frames::{ChannelSamples, Detrend, FramePower, FrameRun, Framer, frame_count};
pub use stft::{Scale, Stft, StftConfig, StftRows};
pub use welch::{Psd, Scaling, Welch, WelchConfig};
pub use window::Window;

use crate::source::SignalInfo;

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

/// What a spectral estimator is told about its stream: how many channels,
/// whether they are complex, the sample rate and the centre frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stream {
    /// Channels as a user counts them (a complex channel once).
    pub channels: usize,
    /// Each channel is complex, read as two planes (I, Q).
    pub complex: bool,
    /// Samples per second; `None`: frequencies in cycles/sample (`fs = 1`).
    pub sample_rate: Option<f64>,
    /// The centre frequency (Hz) the spectra of a complex stream are
    /// offset by. Ignored for real streams, and without a sample rate
    /// (there are no Hz to offset then).
    pub center_frequency: Option<f64>,
}

impl Stream {
    /// `channels` real channels.
    pub fn real(channels: usize, sample_rate: Option<f64>) -> Self {
        Stream {
            channels,
            complex: false,
            sample_rate,
            center_frequency: None,
        }
    }

    /// `channels` complex channels, each two planes (I, Q).
    pub fn complex(
        channels: usize,
        sample_rate: Option<f64>,
        center_frequency: Option<f64>,
    ) -> Self {
        Stream {
            channels,
            complex: true,
            sample_rate,
            center_frequency,
        }
    }

    /// The stream an opened input gives: its channels, complexity, rate
    /// and centre frequency ([`SignalInfo::center_frequency`], which a
    /// SigMF recording carries).
    pub fn of(info: &SignalInfo) -> Self {
        Stream {
            channels: info.signal_channels(),
            complex: info.complex,
            sample_rate: info.sample_rate,
            center_frequency: info.center_frequency,
        }
    }

    /// Planes a block of this stream holds: twice the channels when
    /// complex.
    pub fn planes(&self) -> usize {
        if self.complex {
            2 * self.channels
        } else {
            self.channels
        }
    }

    /// The frequency axis of `n`-point spectra of this stream: one-sided
    /// (`k fs / n`, `k = 0 ..= n/2`) for real channels; two-sided in
    /// increasing order (`(k − ⌊n/2⌋) fs / n + f_c`, `k = 0 .. n`, numpy's
    /// `fftshift(fftfreq(n, 1/fs))`) for complex ones, offset by the
    /// centre frequency `f_c` when it and the rate are known.
    pub fn axis(&self, n: usize) -> FrequencyAxis {
        let fs = self.sample_rate.unwrap_or(1.0);
        let step = fs / n as f64;
        if self.complex {
            let offset = match (self.sample_rate, self.center_frequency) {
                (Some(_), Some(fc)) => fc,
                _ => 0.0,
            };
            FrequencyAxis {
                first: offset - (n / 2) as f64 * step,
                step,
                bins: n,
                two_sided: true,
            }
        } else {
            FrequencyAxis {
                first: 0.0,
                step,
                bins: n / 2 + 1,
                two_sided: false,
            }
        }
    }

    fn check(&self) -> crate::Result<()> {
        check_stream(self.channels, self.sample_rate)?;
        if let Some(fc) = self.center_frequency
            && !fc.is_finite()
        {
            return Err(crate::Error::usage(format!(
                "centre frequency {fc}: must be a finite number of Hz"
            )));
        }
        Ok(())
    }
}

/// The frequencies of a spectrum's bins, evenly spaced and increasing:
/// bin `k` is at `first + k step` (Hz, or cycles/sample without a rate).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FrequencyAxis {
    /// The first bin's frequency: 0 for a one-sided spectrum, `−fs/2`
    /// (even `n`; `−(n−1)/2 · fs/n` for odd) plus the centre frequency for
    /// a two-sided one.
    pub first: f64,
    /// Between bins: `fs / n`.
    pub step: f64,
    /// Bins: `n/2 + 1` one-sided, `n` two-sided.
    pub bins: usize,
    /// Whether negative frequencies are included (complex input).
    pub two_sided: bool,
}

impl FrequencyAxis {
    /// Bin `k`'s frequency.
    pub fn frequency(&self, k: usize) -> f64 {
        self.first + k as f64 * self.step
    }

    /// The last bin's frequency.
    pub fn last(&self) -> f64 {
        self.frequency(self.bins.saturating_sub(1))
    }

    /// Every bin's frequency.
    pub fn frequencies(&self) -> Vec<f64> {
        (0..self.bins).map(|k| self.frequency(k)).collect()
    }
}

/// Bytes an STFT or Welch estimator holds for `channels` planes (real
/// channels, or two per complex channel) of frames of `frame_len` samples,
/// for the memory budget ([`crate::pipeline::budget::plan_blocks`]): per
/// plane, the carried partial frame and the joined frame (`f32`), the
/// accumulated or current spectrum (`f64`) and the transform's buffers
/// (complex `f32`), about 32 bytes per sample of a frame. A complex channel
/// (two planes, 64 bytes per sample) holds its two planes' carry and joint
/// (16 bytes), a spectrum of `n` bins rather than `n/2 + 1` (8) and a
/// complex FFT's input and scratch (16) per sample: within the two planes'
/// share.
pub fn state_bytes(channels: usize, frame_len: usize) -> u64 {
    const BYTES_PER_FRAME_SAMPLE: u64 = 32;
    (channels as u64)
        .saturating_mul(frame_len as u64)
        .saturating_mul(BYTES_PER_FRAME_SAMPLE)
}
