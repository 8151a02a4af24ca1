//! Streaming short-time Fourier transform: the power spectrogram of a
//! signal of any length, frame by frame, with constant memory.
//!
//! Why streaming: a spectrogram of a long recording is larger than the
//! recording (every sample is in `nfft / hop` frames), so it cannot be held;
//! [`Stft::push`] turns each chunk into the rows of the frames it completes
//! and hands them on (to an `.npy` writer and an image accumulator) before
//! the next chunk is read. Frames are exact across chunk boundaries (see
//! [`super::frames::Framer`]).
//!
//! Conventions (those of `scipy.signal.spectrogram` with `padded=False,
//! boundary=None`, i.e. frames only where a whole window fits): frame `k`
//! covers samples `k hop .. k hop + nfft` and its time is its centre,
//! `(k hop + nfft / 2) / fs`; bins are `k fs / nfft`, `k = 0 ..= nfft/2`.
//! Values ([`Scale`]):
//! - `power`: the one-sided power spectral density, scipy's default
//!   `scaling='density', mode='psd'`: `c_k |X_k|² / (fs Σw²)`, with `c_k = 2`
//!   except at DC and Nyquist; units² / Hz (per cycle/sample without a rate,
//!   fs = 1 like scipy);
//! - `db` (default): `10 log10(power)`, floored at −300 dB (zeros);
//! - `magnitude`: `|X_k| / Σw` (scipy's `mode='magnitude',
//!   scaling='spectrum'`): a sinusoid of amplitude A on a bin reads A / 2.
//!
//! Complex channels ([`Stream::complex`]) give two-sided rows, as scipy's
//! `return_onesided=False` followed by `np.fft.fftshift(Sxx, axes=0)`:
//! `nfft` bins in increasing frequency from `−fs/2` ([`Stream::axis`]),
//! `c_k = 1` for every bin, each frame's complex mean removed with
//! `detrend constant`.

use std::sync::Arc;

use crate::backend::gpu::GpuContext;
use crate::error::{Error, Result};
use crate::pool::Block;

use super::frames::{Detrend, FramePower, Framer};
use super::window::Window;
use super::{FrequencyAxis, Stream};

/// The value the STFT reports per bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// `10 log10` of the power spectral density, floored at −300 dB.
    #[default]
    Db,
    /// The one-sided power spectral density (scipy's `mode='psd'`).
    Power,
    /// `|X| / Σw` (scipy's `mode='magnitude', scaling='spectrum'`).
    Magnitude,
}

/// Smallest power turned into dB (−300 dB), so that silence gives a finite
/// number.
pub const DB_FLOOR_POWER: f64 = 1e-30;

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StftConfig {
    /// Samples per frame (and FFT length).
    pub nfft: usize,
    /// Samples between frame starts.
    pub hop: usize,
    /// The window.
    pub window: Window,
    /// Whether to remove each frame's mean first.
    pub detrend: Detrend,
    /// The values written.
    pub scale: Scale,
}

impl StftConfig {
    /// The default hop for `nfft`: a quarter frame (at least 1).
    pub fn default_hop(nfft: usize) -> usize {
        (nfft / 4).max(1)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Usage`] for `nfft` or `hop` of 0.
    pub fn validate(&self) -> Result<()> {
        if self.nfft == 0 {
            return Err(Error::usage("--nfft must be at least 1"));
        }
        if self.hop == 0 {
            return Err(Error::usage("--hop must be at least 1"));
        }
        Ok(())
    }
}

/// One batch of rows: frames `first .. first + count`, each `channels ×
/// bins` values, in [`StftConfig::scale`] (`values`) and as dB of the power
/// density (`db`, for images).
#[derive(Debug)]
pub struct StftRows<'a> {
    /// Index of the first frame.
    pub first: u64,
    /// Frames in the batch.
    pub count: usize,
    /// `count × channels × bins` values in the configured scale.
    pub values: &'a [f32],
    /// The same in dB of the power density.
    pub db: &'a [f32],
}

/// The streaming STFT of one signal.
#[derive(Debug)]
pub struct Stft {
    config: StftConfig,
    stream: Stream,
    channels: usize,
    framer: Framer,
    power: FramePower,
    /// Per bin: the factor from `|X|²` to the power density.
    density: Vec<f64>,
    /// `1 / Σw`, for magnitudes.
    inv_sum: f64,
    raw: Vec<f32>,
    values: Vec<f32>,
    db: Vec<f32>,
}

impl Stft {
    /// Plans the STFT of `channels` real channels sampled at `sample_rate` Hz
    /// (1 when unknown, as scipy), on the GPU when `gpu` is given.
    ///
    /// # Errors
    /// [`Error::Usage`] for `nfft == 0` or `hop == 0`, or on the GPU a
    /// `nfft` that is not a power of two; [`Error::Gpu`] when the GPU plan
    /// fails.
    pub fn new(
        config: StftConfig,
        channels: usize,
        sample_rate: Option<f64>,
        gpu: Option<&Arc<GpuContext>>,
    ) -> Result<Self> {
        Self::for_stream(config, Stream::real(channels, sample_rate), gpu)
    }

    /// Plans the STFT of `stream`'s channels, real or complex (blocks then
    /// hold two planes per channel: I, Q), on the GPU when `gpu` is given.
    ///
    /// # Errors
    /// As [`Stft::new`], and [`Error::Usage`] for a centre frequency that
    /// is not finite.
    pub fn for_stream(
        config: StftConfig,
        stream: Stream,
        gpu: Option<&Arc<GpuContext>>,
    ) -> Result<Self> {
        config.validate()?;
        stream.check()?;
        let power = FramePower::with_kind(
            config.nfft,
            config.hop,
            config.window,
            config.detrend,
            stream.complex,
            gpu,
        )?;
        let w = config.window.coefficients(config.nfft);
        let fs = stream.sample_rate.unwrap_or(1.0);
        let sum_sq: f64 = w.iter().map(|x| x * x).sum();
        let sum: f64 = w.iter().sum();
        let density = if stream.complex {
            vec![1.0 / (fs * sum_sq); config.nfft]
        } else {
            one_sided(config.nfft).map(|c| c / (fs * sum_sq)).collect()
        };
        Ok(Stft {
            config,
            stream,
            channels: stream.channels,
            framer: Framer::new(stream.planes(), config.nfft, config.hop),
            power,
            density,
            inv_sum: 1.0 / sum,
            raw: Vec::new(),
            values: Vec::new(),
            db: Vec::new(),
        })
    }

    /// Bins per spectrum: `nfft / 2 + 1` for real channels, `nfft` for
    /// complex ones.
    pub fn bins(&self) -> usize {
        self.power.bins()
    }

    /// The rows' frequency axis ([`Stream::axis`]).
    pub fn axis(&self) -> FrequencyAxis {
        self.stream.axis(self.config.nfft)
    }

    /// Frames produced so far.
    pub fn frames(&self) -> u64 {
        self.framer.frames()
    }

    /// Whether the FFTs run on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.power.on_gpu()
    }

    /// Takes the next chunk and calls `f` with the rows of the frames it
    /// completes, in order, in batches of bounded size.
    ///
    /// # Errors
    /// [`Error::Gpu`] from the GPU, or whatever `f` returns.
    pub fn push(
        &mut self,
        block: &Block,
        mut f: impl FnMut(&StftRows<'_>) -> Result<()>,
    ) -> Result<()> {
        let complex = self.stream.complex;
        let Stft {
            config,
            stream: _,
            channels,
            framer,
            power,
            density,
            inv_sum,
            raw,
            values,
            db,
        } = self;
        let (hop, channels) = (config.hop, *channels);
        let bins = power.bins();
        let row = channels * bins;
        let batch = (power.batch_frames() / channels).max(1);
        framer.push(block, |run| {
            let mut done = 0;
            while done < run.count {
                let count = batch.min(run.count - done);
                raw.resize(count * row, 0.0);
                for (c, data) in run.samples(complex).into_iter().enumerate() {
                    power.power_rows(
                        data,
                        run.offset + done * hop,
                        hop,
                        count,
                        raw,
                        row,
                        c * bins,
                    )?;
                }
                values.resize(raw.len(), 0.0);
                db.resize(raw.len(), 0.0);
                for ((r, v), d) in raw
                    .chunks_exact(bins)
                    .zip(values.chunks_exact_mut(bins))
                    .zip(db.chunks_exact_mut(bins))
                {
                    for k in 0..bins {
                        let p = f64::from(r[k]) * density[k];
                        let p_db = 10.0 * p.max(DB_FLOOR_POWER).log10();
                        d[k] = p_db as f32;
                        v[k] = match config.scale {
                            Scale::Db => p_db as f32,
                            Scale::Power => p as f32,
                            Scale::Magnitude => (f64::from(r[k]).sqrt() * *inv_sum) as f32,
                        };
                    }
                }
                f(&StftRows {
                    first: run.first + done as u64,
                    count,
                    values,
                    db,
                })?;
                done += count;
            }
            Ok(())
        })
    }
}

/// The one-sided factor of each bin of an `n`-point real FFT: 2 except at
/// DC and (for even `n`) Nyquist.
pub fn one_sided(n: usize) -> impl Iterator<Item = f64> {
    let bins = n / 2 + 1;
    (0..bins).map(move |k| {
        if k == 0 || (n.is_multiple_of(2) && k == n / 2) {
            1.0
        } else {
            2.0
        }
    })
}
