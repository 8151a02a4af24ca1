//! Welch's power spectral density estimate, streaming, as
//! `scipy.signal.welch` computes it.
//!
//! Why streaming: the estimate is a mean over segments, so it needs only
//! one running sum per channel and bin (kept in `f64`), however long the
//! recording; segments that span chunk boundaries are exact (see
//! [`super::frames::Framer`]).
//!
//! Conventions, scipy's defaults for the same parameters: a periodic window
//! (`hann` by default), `noverlap = nperseg / 2`, `nfft = nperseg`, each
//! segment's mean removed (`detrend='constant'`), a one-sided spectrum
//! (non-DC, non-Nyquist bins doubled), `average='mean'`, and
//! - `density`: `|X|² / (fs Σw²)`, units² / Hz;
//! - `spectrum`: `|X|² / (Σw)²`, units²;
//!
//! with `fs = 1` when the sample rate is unknown (frequencies then in
//! cycles per sample). Unlike scipy, `nperseg` larger than the signal is an
//! error rather than a warning that shrinks it.
//!
//! Complex channels ([`Stream::complex`]) follow scipy's conventions for
//! complex input (`return_onesided=False`): the complex mean removed, a
//! complex FFT of `nperseg` points, no bin doubled, and the `nperseg` bins
//! put in increasing frequency (`np.fft.fftshift`), offset by the centre
//! frequency when known ([`Stream::axis`]).

use std::sync::Arc;

use crate::backend::gpu::GpuContext;
use crate::error::{Error, Result};
use crate::pool::Block;

use super::Stream;
use super::frames::{Detrend, FramePower, Framer};
use super::stft::one_sided;
use super::window::Window;

/// Scipy's `scaling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// Power spectral density, units² / Hz.
    #[default]
    Density,
    /// Power spectrum, units².
    Spectrum,
}

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchConfig {
    /// Samples per segment (and FFT length).
    pub nperseg: usize,
    /// Samples shared by consecutive segments (`< nperseg`).
    pub noverlap: usize,
    /// The window.
    pub window: Window,
    /// Each segment's trend removed (scipy: constant).
    pub detrend: Detrend,
    /// Density or spectrum.
    pub scaling: Scaling,
}

impl WelchConfig {
    /// Scipy's defaults for `nperseg`: Hann, half overlap, constant
    /// detrend, density.
    pub fn new(nperseg: usize) -> Self {
        WelchConfig {
            nperseg,
            noverlap: nperseg / 2,
            window: Window::Hann,
            detrend: Detrend::Constant,
            scaling: Scaling::Density,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Usage`] for `nperseg` of 0 or `noverlap >= nperseg`.
    pub fn validate(&self) -> Result<()> {
        if self.nperseg == 0 {
            return Err(Error::usage("--nperseg must be at least 1"));
        }
        if self.noverlap >= self.nperseg {
            return Err(Error::usage(format!(
                "--overlap {} must be less than --nperseg {}",
                self.noverlap, self.nperseg
            )));
        }
        Ok(())
    }
}

/// The estimate.
#[derive(Debug, Clone)]
pub struct Psd {
    /// Bin frequencies (Hz, or cycles/sample), increasing: `k fs /
    /// nperseg` for real channels; for complex ones `(k − ⌊nperseg/2⌋) fs /
    /// nperseg` plus the centre frequency ([`Stream::axis`]).
    pub frequencies: Vec<f64>,
    /// Whether the spectrum is two-sided (complex channels).
    pub two_sided: bool,
    /// Per channel (complex channels count once), per bin.
    pub values: Vec<Vec<f64>>,
    /// Segments averaged (per channel).
    pub segments: u64,
    /// Samples per channel read.
    pub samples: u64,
}

/// Welch's estimate over a stream of chunks.
#[derive(Debug)]
pub struct Welch {
    config: WelchConfig,
    stream: Stream,
    fs: f64,
    framer: Framer,
    power: FramePower,
    sums: Vec<Vec<f64>>,
}

impl Welch {
    /// Plans the estimate for `channels` real channels sampled at
    /// `sample_rate` Hz (1 when unknown), on the GPU when `gpu` is given.
    ///
    /// # Errors
    /// [`Error::Usage`] for `nperseg == 0`, `noverlap >= nperseg`, or on the
    /// GPU a `nperseg` that is not a power of two; [`Error::Gpu`] when the
    /// GPU plan fails.
    pub fn new(
        config: WelchConfig,
        channels: usize,
        sample_rate: Option<f64>,
        gpu: Option<&Arc<GpuContext>>,
    ) -> Result<Self> {
        Self::for_stream(config, Stream::real(channels, sample_rate), gpu)
    }

    /// Plans the estimate for `stream`'s channels, real or complex
    /// (blocks then hold two planes per channel: I, Q), on the GPU when
    /// `gpu` is given.
    ///
    /// # Errors
    /// As [`Welch::new`], and [`Error::Usage`] for a centre frequency that
    /// is not finite.
    pub fn for_stream(
        config: WelchConfig,
        stream: Stream,
        gpu: Option<&Arc<GpuContext>>,
    ) -> Result<Self> {
        config.validate()?;
        stream.check()?;
        let hop = config.nperseg - config.noverlap;
        let power = FramePower::with_kind(
            config.nperseg,
            hop,
            config.window,
            config.detrend,
            stream.complex,
            gpu,
        )?;
        let bins = power.bins();
        Ok(Welch {
            config,
            stream,
            fs: stream.sample_rate.unwrap_or(1.0),
            framer: Framer::new(stream.planes(), config.nperseg, hop),
            power,
            sums: vec![vec![0.0; bins]; stream.channels],
        })
    }

    /// Whether the FFTs run on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.power.on_gpu()
    }

    /// Segments averaged so far.
    pub fn segments(&self) -> u64 {
        self.framer.frames()
    }

    /// Takes the next chunk.
    ///
    /// # Errors
    /// [`Error::Gpu`] from the GPU.
    pub fn push(&mut self, block: &Block) -> Result<()> {
        let hop = self.config.nperseg - self.config.noverlap;
        let complex = self.stream.complex;
        let Welch {
            framer,
            power,
            sums,
            ..
        } = self;
        framer.push(block, |run| {
            for (data, sum) in run.samples(complex).into_iter().zip(sums.iter_mut()) {
                power.power_sum(data, run.offset, hop, run.count, sum)?;
            }
            Ok(())
        })
    }

    /// The estimate.
    ///
    /// # Errors
    /// [`Error::Usage`] when the signal is shorter than one segment.
    pub fn finish(self) -> Result<Psd> {
        let segments = self.framer.frames();
        let samples = self.framer.samples();
        if segments == 0 {
            return Err(Error::usage(format!(
                "--nperseg {} is larger than the signal ({samples} samples per channel)",
                self.config.nperseg
            )));
        }
        let n = self.config.nperseg;
        let w = self.config.window.coefficients(n);
        let norm = match self.config.scaling {
            Scaling::Density => self.fs * w.iter().map(|x| x * x).sum::<f64>(),
            Scaling::Spectrum => w.iter().sum::<f64>().powi(2),
        };
        let scale = 1.0 / (norm * segments as f64);
        let factors: Vec<f64> = if self.stream.complex {
            vec![scale; n]
        } else {
            one_sided(n).map(|c| c * scale).collect()
        };
        let values = self
            .sums
            .into_iter()
            .map(|s| s.iter().zip(&factors).map(|(s, f)| s * f).collect())
            .collect();
        let axis = self.stream.axis(n);
        debug_assert_eq!(axis.bins, factors.len());
        Ok(Psd {
            frequencies: axis.frequencies(),
            two_sided: axis.two_sided,
            values,
            segments,
            samples,
        })
    }
}
