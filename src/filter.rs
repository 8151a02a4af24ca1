//! FIR kernels: convolution modes, kernel files, and windowed-sinc design.
//!
//! Why a module of its own: what the user asks for (`--lowpass 10`,
//! `--kernel taps.npy`, `--conv-mode same`) is turned here into plain taps
//! and index ranges, once, before any chunk is read. The backends only ever
//! see a kernel and a mode.

use std::path::Path;

use crate::error::{Error, Result};

/// Which part of the full convolution is output, as `numpy.convolve`'s
/// `mode` (signal of `n` samples, kernel of `m ≤ n` taps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvMode {
    /// All `n + m − 1` outputs.
    Full,
    /// `n` outputs centred on the input: output `i` lines up with input `i`
    /// (full outputs from `(m − 1) / 2` on).
    #[default]
    Same,
    /// The `n − m + 1` outputs that see no zero padding.
    Valid,
}

impl ConvMode {
    /// Full-convolution outputs dropped at the start.
    pub fn skip(self, taps: usize) -> usize {
        match self {
            ConvMode::Full => 0,
            ConvMode::Same => (taps - 1) / 2,
            ConvMode::Valid => taps - 1,
        }
    }

    /// Zeros pushed after the last input to complete the output: the last
    /// full output wanted is `skip + len − 1`, which needs inputs up to that
    /// index.
    pub fn pad(self, taps: usize) -> usize {
        match self {
            ConvMode::Full => taps - 1,
            ConvMode::Same => (taps - 1) / 2,
            ConvMode::Valid => 0,
        }
    }

    /// Number of outputs for `n` inputs and `taps` taps (`taps ≤ n`).
    pub fn output_len(self, n: u64, taps: usize) -> u64 {
        n + self.pad(taps) as u64 - self.skip(taps) as u64
    }
}

/// A filter as the user describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterSpec {
    /// Taps given directly.
    Kernel(Vec<f64>),
    /// `n` taps of `1/n`.
    MovingAverage(usize),
    /// Windowed-sinc low-pass, cutoff in Hz.
    Lowpass {
        /// Cutoff (−6 dB point) in Hz.
        cutoff: f64,
        /// Number of taps.
        taps: usize,
    },
    /// Windowed-sinc high-pass, cutoff in Hz (odd number of taps).
    Highpass {
        /// Cutoff in Hz.
        cutoff: f64,
        /// Number of taps.
        taps: usize,
    },
    /// Windowed-sinc band-pass between two cutoffs in Hz.
    Bandpass {
        /// Lower cutoff in Hz.
        low: f64,
        /// Upper cutoff in Hz.
        high: f64,
        /// Number of taps.
        taps: usize,
    },
}

impl FilterSpec {
    /// How many taps the filter has, known before it is designed (so that
    /// its memory can be checked first).
    pub fn len(&self) -> usize {
        match *self {
            FilterSpec::Kernel(ref k) => k.len(),
            FilterSpec::MovingAverage(n) => n,
            FilterSpec::Lowpass { taps, .. }
            | FilterSpec::Highpass { taps, .. }
            | FilterSpec::Bandpass { taps, .. } => taps,
        }
    }

    /// Whether the filter has no taps (a design error reported by
    /// [`FilterSpec::taps`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The taps, for a signal sampled at `sample_rate` Hz (needed by the
    /// designed filters only).
    pub fn taps(&self, sample_rate: Option<f64>) -> Result<Vec<f32>> {
        let need_rate = |what: &str| {
            sample_rate.ok_or_else(|| {
                Error::usage(format!(
                    "{what} needs a sample rate: the input has none, give --sample-rate HZ"
                ))
            })
        };
        let taps = match *self {
            FilterSpec::Kernel(ref k) => k.clone(),
            FilterSpec::MovingAverage(n) => {
                if n == 0 {
                    return Err(Error::usage("--moving-average must be at least 1"));
                }
                vec![1.0 / n as f64; n]
            }
            FilterSpec::Lowpass { cutoff, taps } => {
                let fs = need_rate("--lowpass")?;
                firwin(taps, &[0.0, check_cutoff("--lowpass", cutoff, fs)?], 0.0)?
            }
            FilterSpec::Highpass { cutoff, taps } => {
                let fs = need_rate("--highpass")?;
                if taps.is_multiple_of(2) {
                    return Err(Error::usage(format!(
                        "--highpass needs an odd number of taps (a symmetric filter with {taps} taps has a zero at the Nyquist frequency): use --taps {}",
                        taps + 1
                    )));
                }
                firwin(taps, &[check_cutoff("--highpass", cutoff, fs)?, 1.0], 1.0)?
            }
            FilterSpec::Bandpass { low, high, taps } => {
                let fs = need_rate("--bandpass")?;
                let (lo, hi) = (
                    check_cutoff("--bandpass", low, fs)?,
                    check_cutoff("--bandpass", high, fs)?,
                );
                if lo >= hi {
                    return Err(Error::usage(format!(
                        "--bandpass {low}:{high}: the low edge must be below the high edge"
                    )));
                }
                firwin(taps, &[lo, hi], (lo + hi) / 2.0)?
            }
        };
        if taps.is_empty() {
            return Err(Error::usage("the kernel has no taps"));
        }
        if let Some(i) = taps.iter().position(|t| !t.is_finite()) {
            return Err(Error::usage(format!(
                "kernel tap {i} is not a finite number"
            )));
        }
        Ok(taps.into_iter().map(|t| t as f32).collect())
    }
}

/// A cutoff in Hz as a fraction of the Nyquist frequency, checked.
fn check_cutoff(opt: &str, hz: f64, fs: f64) -> Result<f64> {
    let nyquist = fs / 2.0;
    if !(hz > 0.0 && hz < nyquist) {
        return Err(Error::usage(format!(
            "{opt}: cutoff {hz} Hz must lie strictly between 0 and the Nyquist frequency {nyquist} Hz"
        )));
    }
    Ok(hz / nyquist)
}

/// `scipy.signal.firwin(numtaps, cutoff, window='hamming', scale=True)` for
/// one pass band `[band[0], band[1]]` (fractions of Nyquist, 0 and 1 meaning
/// the band edge is DC or Nyquist), normalised to unit gain at
/// `scale_freq` (fraction of Nyquist), as firwin does: 0 for low-pass, 1 for
/// high-pass, the band centre for band-pass.
fn firwin(numtaps: usize, band: &[f64; 2], scale_freq: f64) -> Result<Vec<f64>> {
    if numtaps == 0 {
        return Err(Error::usage("--taps must be at least 1"));
    }
    let alpha = 0.5 * (numtaps - 1) as f64;
    let sinc = |x: f64| {
        if x == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
        }
    };
    let mut h: Vec<f64> = (0..numtaps)
        .map(|i| {
            let m = i as f64 - alpha;
            let (left, right) = (band[0], band[1]);
            let ideal = right * sinc(right * m) - left * sinc(left * m);
            // Symmetric Hamming window, as scipy.signal.get_window('hamming', n, fftbins=False).
            let w = if numtaps == 1 {
                1.0
            } else {
                0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (numtaps - 1) as f64).cos()
            };
            ideal * w
        })
        .collect();
    let s: f64 = h
        .iter()
        .enumerate()
        .map(|(i, v)| v * (std::f64::consts::PI * (i as f64 - alpha) * scale_freq).cos())
        .sum();
    for v in &mut h {
        *v /= s;
    }
    Ok(h)
}

/// Reads a kernel file: `.npy` (1-D, any real dtype numpy writes), or text
/// with numbers separated by whitespace or commas (`#` starts a comment).
pub fn load_kernel(path: &Path) -> Result<Vec<f64>> {
    let bytes = std::fs::read(path).map_err(|e| Error::open(path, e))?;
    if bytes.starts_with(b"\x93NUMPY") {
        let npy = npyz::NpyFile::new(&bytes[..])
            .map_err(|e| Error::format(path, format!("invalid npy kernel: {e}")))?;
        if npy.shape().len() != 1 {
            return Err(Error::format(
                path,
                format!("a kernel must be 1-D, this npy has shape {:?}", npy.shape()),
            ));
        }
        let bad = |e: std::io::Error| Error::format(path, format!("invalid npy kernel: {e}"));
        let kind = match npy.dtype() {
            npyz::DType::Plain(ts) => (ts.type_char(), ts.size_field()),
            other => {
                return Err(Error::format(
                    path,
                    format!(
                        "unsupported kernel dtype {} (use f4, f8, i2, i4 or i8)",
                        other.descr()
                    ),
                ));
            }
        };
        use npyz::TypeChar::{Float, Int};
        let taps: Vec<f64> = match kind {
            (Float, 8) => npy.into_vec::<f64>().map_err(bad)?,
            (Float, 4) => npy
                .into_vec::<f32>()
                .map_err(bad)?
                .into_iter()
                .map(f64::from)
                .collect(),
            (Int, 2) => npy
                .into_vec::<i16>()
                .map_err(bad)?
                .into_iter()
                .map(f64::from)
                .collect(),
            (Int, 4) => npy
                .into_vec::<i32>()
                .map_err(bad)?
                .into_iter()
                .map(f64::from)
                .collect(),
            (Int, 8) => npy
                .into_vec::<i64>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f64)
                .collect(),
            _ => {
                return Err(Error::format(
                    path,
                    format!(
                        "unsupported kernel dtype {} (use f4, f8, i2, i4 or i8)",
                        npy.dtype().descr()
                    ),
                ));
            }
        };
        if taps.is_empty() {
            return Err(Error::format(path, "the kernel has no taps"));
        }
        return Ok(taps);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::format(path, "a kernel file must be .npy or text"))?;
    let mut taps = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            let v: f64 = word.parse().map_err(|_| {
                Error::format(
                    path,
                    format!("line {}: '{word}' is not a number", lineno + 1),
                )
            })?;
            taps.push(v);
        }
    }
    if taps.is_empty() {
        return Err(Error::format(path, "the kernel file holds no numbers"));
    }
    Ok(taps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_ranges_follow_numpy() {
        // numpy.convolve([1,2,3], [0,1,0.5], 'same') == full[1:4]; with 2
        // taps 'same' == full[0:3].
        assert_eq!(ConvMode::Same.skip(3), 1);
        assert_eq!(ConvMode::Same.skip(2), 0);
        assert_eq!(ConvMode::Same.skip(4), 1);
        for m in 1..10 {
            assert_eq!(ConvMode::Same.output_len(20, m), 20);
            assert_eq!(ConvMode::Full.output_len(20, m), 20 + m as u64 - 1);
            assert_eq!(ConvMode::Valid.output_len(20, m), 20 - m as u64 + 1);
        }
    }

    /// Taps printed by scipy 1.17.1 (`scipy.signal.firwin(..., fs=100)`),
    /// an independent implementation of the same design.
    const SCIPY_LOWPASS_11_10HZ: [f64; 11] = [
        7.391423150963729e-19,
        0.009304283145018147,
        0.04757776613441745,
        0.12236354636114467,
        0.20224655842984032,
        0.23701569185915894,
        0.20224655842984032,
        0.12236354636114467,
        0.04757776613441745,
        0.009304283145018147,
        7.391423150963729e-19,
    ];
    const SCIPY_HIGHPASS_11_10HZ: [f64; 11] = [
        2.4963101798827748e-18,
        -0.007855854095023694,
        -0.04017117526343438,
        -0.10331480155755132,
        -0.1707621564694342,
        0.8004746478394128,
        -0.1707621564694342,
        -0.10331480155755132,
        -0.04017117526343438,
        -0.007855854095023694,
        2.4963101798827748e-18,
    ];
    const SCIPY_BANDPASS_12_5_20HZ: [f64; 12] = [
        -0.00247359790571682,
        -0.02278260809036635,
        -0.07809006469649188,
        -0.07282507833163235,
        0.11854621159590445,
        0.3600302458221138,
        0.3600302458221138,
        0.11854621159590445,
        -0.07282507833163235,
        -0.07809006469649189,
        -0.022782608090366335,
        -0.00247359790571682,
    ];

    /// The taps are returned as f32: agreement to f32 rounding of the f64
    /// design (half an ulp of values below 1, plus the f64 design's own
    /// rounding, far smaller).
    const F32_ROUNDING: f64 = 6e-8;

    #[test]
    fn designed_filters_match_scipy_firwin() {
        let cases: [(FilterSpec, &[f64]); 3] = [
            (
                FilterSpec::Lowpass {
                    cutoff: 10.0,
                    taps: 11,
                },
                &SCIPY_LOWPASS_11_10HZ,
            ),
            (
                FilterSpec::Highpass {
                    cutoff: 10.0,
                    taps: 11,
                },
                &SCIPY_HIGHPASS_11_10HZ,
            ),
            (
                FilterSpec::Bandpass {
                    low: 5.0,
                    high: 20.0,
                    taps: 12,
                },
                &SCIPY_BANDPASS_12_5_20HZ,
            ),
        ];
        for (spec, want) in cases {
            let got = spec.taps(Some(100.0)).unwrap();
            assert_eq!(got.len(), want.len(), "{spec:?}");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (*g as f64 - w).abs() <= F32_ROUNDING,
                    "{spec:?} tap {i}: {g} vs scipy {w}"
                );
            }
        }
    }

    #[test]
    fn design_errors_name_the_option() {
        let no_rate = FilterSpec::Lowpass {
            cutoff: 10.0,
            taps: 11,
        }
        .taps(None)
        .unwrap_err();
        assert!(
            no_rate
                .to_string()
                .contains("--lowpass needs a sample rate"),
            "{no_rate}"
        );
        let even = FilterSpec::Highpass {
            cutoff: 10.0,
            taps: 10,
        }
        .taps(Some(100.0))
        .unwrap_err();
        assert!(even.to_string().contains("odd number of taps"), "{even}");
        let above = FilterSpec::Lowpass {
            cutoff: 60.0,
            taps: 11,
        }
        .taps(Some(100.0))
        .unwrap_err();
        assert!(above.to_string().contains("Nyquist"), "{above}");
        let inverted = FilterSpec::Bandpass {
            low: 20.0,
            high: 5.0,
            taps: 11,
        }
        .taps(Some(100.0))
        .unwrap_err();
        assert!(inverted.to_string().contains("low edge"), "{inverted}");
    }
}
