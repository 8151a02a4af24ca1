//! FIR kernels: convolution modes, kernel files, and windowed-sinc design.
//!
//! Why a module of its own: what the user asks for (`--lowpass 10`,
//! `--kernel taps.npy`, `--conv-mode same`) is turned here into plain taps
//! and index ranges, once, before any chunk is read. The backends only ever
//! see a kernel and a mode.

use std::path::Path;

use crate::error::{Error, Result};

pub mod iir;
pub mod mix;
pub mod reference;
pub mod resample;

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
    /// Complex taps given directly (a complex64/complex128 `.npy`): the
    /// real and imaginary parts, of equal lengths. Only complex signals
    /// take them.
    ComplexKernel {
        /// Real parts.
        re: Vec<f64>,
        /// Imaginary parts.
        im: Vec<f64>,
    },
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

/// Deviation from the ideal response, in dB, that a Hamming-window design
/// keeps to in its pass band and stop band: about 53 dB (Oppenheim & Schafer,
/// *Discrete-Time Signal Processing*, Table 7.2, "peak approximation error"
/// of the Hamming window −53 dB; Ifeachor & Jervis, *Digital Signal
/// Processing*, Table 7.2, stop-band attenuation 53 dB). The transition band
/// is measured between the points where the response comes within this
/// deviation of the pass band and of the stop band.
pub const HAMMING_ATTENUATION_DB: f64 = 53.0;

/// Width of an `n`-tap Hamming-window design's transition band (at
/// [`HAMMING_ATTENUATION_DB`]) in units of `fs / (n − 1)`.
///
/// Textbooks round it to `3.3 fs / n` (Ifeachor & Jervis, Table 7.2).
/// Measured on `scipy.signal.firwin` designs (`freqz` on 2^20 points, low-
/// and high-pass, cutoffs from 0.05 to 12 Hz at 100 Hz): 3.30–3.36 for
/// `n ≥ 101`, up to 3.47 for `n = 51`; 3.4 makes the suggested `--taps`
/// meet the requirement for every case measured (widths 0.94–0.98 of the
/// band asked for).
pub const HAMMING_TRANSITION: f64 = 3.4;

/// The ripple, in dB, at which `scipy.signal.kaiserord`'s formula gives the
/// Hamming window's transition width ([`HAMMING_TRANSITION`]): about
/// 56.8 dB. It is not an attenuation the design reaches (that is
/// [`HAMMING_ATTENUATION_DB`]).
///
/// Why not kaiserord at 53 dB: Kaiser's formula, `n − 1 = (A − 7.95) /
/// (2.285 Δω)`, is for a Kaiser window (β = 4.88 at 53 dB), which reaches
/// 53 dB in a narrower band than a Hamming window of the same length: its
/// width is `(A − 7.95) / (2.285 π) / 2 = 3.14` in units of `fs / (n − 1)`,
/// against the Hamming window's 3.3–3.4. `kaiserord(53, 0.2 / 50)` = 1570
/// taps leaves the Hamming design of a 0.2 Hz corner at 100 Hz a
/// 0.208–0.213 Hz transition. With this ripple the formula is
/// `HAMMING_TRANSITION · fs / width + 1` taps.
pub const HAMMING_KAISER_RIPPLE_DB: f64 =
    KAISER_OFFSET_DB + KAISER_SLOPE * std::f64::consts::PI * 2.0 * HAMMING_TRANSITION;

/// Kaiser's empirical constants (Oppenheim & Schafer eq. 7.63, as
/// `scipy.signal.kaiserord` uses them): `n − 1 = (A − 7.95) / (2.285 Δω)`.
const KAISER_OFFSET_DB: f64 = 7.95;
const KAISER_SLOPE: f64 = 2.285;

/// `scipy.signal.kaiserord(ripple, width)[0]`: the taps of a window design
/// with a transition `width` (a fraction of the Nyquist frequency) and
/// `ripple` dB of deviation, by Kaiser's formula
/// `ceil((A − 7.95) / 2.285 / (π · width) + 1)`, in scipy's order of
/// operations. Saturates at `usize::MAX`.
pub fn kaiserord(ripple_db: f64, width: f64) -> usize {
    let n = ((ripple_db.abs() - KAISER_OFFSET_DB) / KAISER_SLOPE / (std::f64::consts::PI * width)
        + 1.0)
        .ceil();
    if n.is_finite() && n < usize::MAX as f64 {
        n.max(1.0) as usize
    } else {
        usize::MAX
    }
}

/// A filter that was designed as asked, with something the user should know
/// about it.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterWarning {
    /// The transition band around a cutoff is wider than the band between
    /// that cutoff and its neighbour (0 Hz, the Nyquist frequency or the
    /// other cutoff of a band-pass): near the cutoff the filter neither
    /// passes nor stops the signal as asked (a 0.2 Hz high-pass of 101 taps
    /// at 100 Hz passes 79 % of the amplitude at 0 Hz, and a 10 Hz one at
    /// 30 kHz 96 %: `abs(scipy.signal.freqz(firwin(101, 0.2, fs=100,
    /// pass_zero=False), worN=[0], fs=100)[1])`).
    WideTransition {
        /// The option that designed the filter (`--lowpass`, ...).
        option: &'static str,
        /// The cutoff whose band is too narrow, in Hz.
        cutoff: f64,
        /// What bounds that band on the other side.
        neighbour: Neighbour,
        /// Hz between the cutoff and its neighbour.
        room: f64,
        /// Taps of the design.
        taps: usize,
        /// Width of the design's transition band in Hz
        /// ([`transition_width`]).
        transition: f64,
        /// The fewest taps whose transition band fits in `room`
        /// ([`taps_for_transition`]; odd where the filter needs it).
        suggested_taps: usize,
    },
}

/// What bounds the band on the other side of a cutoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Neighbour {
    /// 0 Hz.
    Dc,
    /// The Nyquist frequency, in Hz.
    Nyquist(f64),
    /// The other cutoff of a band-pass, in Hz.
    Cutoff(f64),
}

impl std::fmt::Display for Neighbour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Neighbour::Dc => write!(f, "0 Hz"),
            Neighbour::Nyquist(hz) => write!(f, "the Nyquist frequency {hz} Hz"),
            Neighbour::Cutoff(hz) => write!(f, "the other cutoff {hz} Hz"),
        }
    }
}

impl std::fmt::Display for FilterWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterWarning::WideTransition {
                option,
                cutoff,
                neighbour,
                room,
                taps,
                transition,
                suggested_taps,
            } => write!(
                f,
                "{option}: with {taps} taps the transition band around {cutoff} Hz is about {} Hz wide, \
                 wider than the {} Hz between the cutoff and {neighbour}, so the filter neither passes \
                 nor stops that band as asked; --taps {suggested_taps} or more would fit it",
                significant(*transition),
                significant(*room),
            ),
        }
    }
}

/// `v` with three significant digits, as a person writes it (`3.4`, `0.2`,
/// `1250`).
fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Width in Hz of the transition band of an `n`-tap Hamming-window design
/// at `sample_rate` Hz: `HAMMING_TRANSITION · fs / (n − 1)`, the inverse of
/// [`taps_for_transition`] (infinite for one tap, which does not filter).
pub fn transition_width(taps: usize, sample_rate: f64) -> f64 {
    if taps <= 1 {
        return f64::INFINITY;
    }
    HAMMING_TRANSITION * sample_rate / (taps - 1) as f64
}

/// The fewest taps whose Hamming-window design has a transition band no
/// wider than `width` Hz at `sample_rate` Hz:
/// `kaiserord(HAMMING_KAISER_RIPPLE_DB, width / (fs / 2))`, i.e.
/// `ceil(HAMMING_TRANSITION · fs / width + 1)`.
pub fn taps_for_transition(width: f64, sample_rate: f64) -> usize {
    kaiserord(HAMMING_KAISER_RIPPLE_DB, width / (sample_rate / 2.0))
}

/// The taps of a filter, with the warnings of its design.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignedFilter {
    /// The taps, as the backends take them (the real parts of complex taps).
    pub taps: Vec<f32>,
    /// The imaginary parts of complex taps; `None` for a real filter.
    pub taps_imag: Option<Vec<f32>>,
    /// What the user should know about the design (empty for a kernel or a
    /// moving average, which are taken as given).
    pub warnings: Vec<FilterWarning>,
}

impl FilterSpec {
    /// Parses a band `"LO:HI"` in Hz (`--bandpass 1:20`), checking that both
    /// edges are finite and `LO < HI` (the checks against the Nyquist
    /// frequency wait for the sample rate).
    ///
    /// # Errors
    /// [`Error::Usage`] naming `--bandpass` for anything else.
    pub fn parse_band(band: &str) -> Result<(f64, f64)> {
        let parse = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let (low, high) = band
            .split_once(':')
            .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
            .ok_or_else(|| {
                Error::usage(format!(
                    "--bandpass '{band}': expected LO:HI in Hz, e.g. 1:20"
                ))
            })?;
        if low >= high {
            return Err(Error::usage(format!(
                "--bandpass {low}:{high}: the low edge must be below the high edge"
            )));
        }
        Ok((low, high))
    }

    /// Checks what does not depend on the sample rate, so that a front can
    /// refuse a bad filter before opening any input: at least one tap (and
    /// finite ones for a kernel), an odd number of taps for a high-pass,
    /// positive finite cutoffs, a band-pass's low edge below its
    /// high edge.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the option.
    pub fn validate(&self) -> Result<()> {
        let positive = |opt: &str, hz: f64| {
            if hz > 0.0 && hz.is_finite() {
                Ok(())
            } else {
                Err(Error::usage(format!(
                    "{opt}: cutoff {hz} Hz must be a positive number of Hz"
                )))
            }
        };
        let some_taps = |taps: usize| {
            if taps == 0 {
                Err(Error::usage("--taps must be at least 1"))
            } else {
                Ok(())
            }
        };
        let odd_taps = |opt: &str, taps: usize| {
            if taps.is_multiple_of(2) {
                Err(Error::usage(format!(
                    "{opt} needs an odd number of taps (a symmetric filter with {taps} taps has a zero at the Nyquist frequency): use --taps {}",
                    taps + 1
                )))
            } else {
                Ok(())
            }
        };
        match *self {
            FilterSpec::Kernel(ref k) => {
                if k.is_empty() {
                    return Err(Error::usage("the kernel has no taps"));
                }
                if let Some(i) = k.iter().position(|t| !t.is_finite()) {
                    return Err(Error::usage(format!(
                        "kernel tap {i} is not a finite number"
                    )));
                }
            }
            FilterSpec::ComplexKernel { ref re, ref im } => {
                if re.is_empty() || re.len() != im.len() {
                    return Err(Error::usage(
                        "a complex kernel needs at least one tap, with as many imaginary parts as real ones",
                    ));
                }
                if let Some(i) = re
                    .iter()
                    .zip(im)
                    .position(|(r, m)| !(r.is_finite() && m.is_finite()))
                {
                    return Err(Error::usage(format!(
                        "kernel tap {i} is not a finite number"
                    )));
                }
            }
            FilterSpec::MovingAverage(n) => {
                if n == 0 {
                    return Err(Error::usage("--moving-average must be at least 1"));
                }
            }
            FilterSpec::Lowpass { cutoff, taps } => {
                positive("--lowpass", cutoff)?;
                some_taps(taps)?;
            }
            FilterSpec::Highpass { cutoff, taps } => {
                positive("--highpass", cutoff)?;
                some_taps(taps)?;
                odd_taps("--highpass", taps)?;
            }
            FilterSpec::Bandpass { low, high, taps } => {
                positive("--bandpass", low)?;
                positive("--bandpass", high)?;
                if low >= high {
                    return Err(Error::usage(format!(
                        "--bandpass {low}:{high}: the low edge must be below the high edge"
                    )));
                }
                // Even is fine: a band-pass stops the Nyquist frequency,
                // where an even symmetric design has its zero (as firwin).
                some_taps(taps)?;
            }
        }
        Ok(())
    }

    /// How many taps the filter has, known before it is designed (so that
    /// its memory can be checked first).
    pub fn len(&self) -> usize {
        match *self {
            FilterSpec::Kernel(ref k) => k.len(),
            FilterSpec::ComplexKernel { ref re, .. } => re.len(),
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
    /// designed filters only); [`FilterSpec::design`] without the warnings.
    ///
    /// # Errors
    /// As [`FilterSpec::design`].
    pub fn taps(&self, sample_rate: Option<f64>) -> Result<Vec<f32>> {
        Ok(self.design(sample_rate)?.taps)
    }

    /// The taps for a signal sampled at `sample_rate` Hz (needed by the
    /// designed filters only), and the design's warnings: a
    /// [`FilterWarning::WideTransition`] when the transition band
    /// ([`transition_width`]) is wider than the band between a cutoff and
    /// its neighbour (the narrowest such band when there are several).
    ///
    /// # Errors
    /// [`Error::Usage`] for what [`FilterSpec::validate`] refuses, a
    /// designed filter without a sample rate, or a cutoff not strictly
    /// between 0 and the Nyquist frequency.
    pub fn design(&self, sample_rate: Option<f64>) -> Result<DesignedFilter> {
        self.validate()?;
        let need_rate = |what: &str| {
            sample_rate.ok_or_else(|| {
                Error::usage(format!(
                    "{what} needs a sample rate: the input has none, give --sample-rate HZ"
                ))
            })
        };
        // (option, taps, sample rate, the narrowest band next to a cutoff,
        // whether the taps must be odd) of a designed filter.
        let (taps, guard) = match *self {
            FilterSpec::Kernel(ref k) => (k.clone(), None),
            FilterSpec::ComplexKernel { ref re, .. } => (re.clone(), None),
            FilterSpec::MovingAverage(n) => (vec![1.0 / n as f64; n], None),
            FilterSpec::Lowpass { cutoff, taps } => {
                let fs = need_rate("--lowpass")?;
                let wc = check_cutoff("--lowpass", cutoff, fs)?;
                let edges = [(cutoff, Neighbour::Dc, cutoff), nyquist_side(cutoff, fs)];
                (
                    firwin(taps, &[0.0, wc], 0.0),
                    Some(("--lowpass", taps, fs, narrowest(&edges), false)),
                )
            }
            FilterSpec::Highpass { cutoff, taps } => {
                let fs = need_rate("--highpass")?;
                let wc = check_cutoff("--highpass", cutoff, fs)?;
                let edges = [(cutoff, Neighbour::Dc, cutoff), nyquist_side(cutoff, fs)];
                (
                    firwin(taps, &[wc, 1.0], 1.0),
                    Some(("--highpass", taps, fs, narrowest(&edges), true)),
                )
            }
            FilterSpec::Bandpass { low, high, taps } => {
                let fs = need_rate("--bandpass")?;
                let (lo, hi) = (
                    check_cutoff("--bandpass", low, fs)?,
                    check_cutoff("--bandpass", high, fs)?,
                );
                let edges = [
                    (low, Neighbour::Dc, low),
                    (low, Neighbour::Cutoff(high), high - low),
                    nyquist_side(high, fs),
                ];
                (
                    firwin(taps, &[lo, hi], (lo + hi) / 2.0),
                    Some(("--bandpass", taps, fs, narrowest(&edges), false)),
                )
            }
        };
        let mut warnings = Vec::new();
        if let Some((option, n, fs, (cutoff, neighbour, room), odd)) = guard {
            // Fewer taps than the least that fit is the same as a transition
            // wider than the room, without a second rounding.
            let mut suggested_taps = taps_for_transition(room, fs);
            if n < suggested_taps {
                if odd && suggested_taps.is_multiple_of(2) {
                    suggested_taps = suggested_taps.saturating_add(1);
                }
                warnings.push(FilterWarning::WideTransition {
                    option,
                    cutoff,
                    neighbour,
                    room,
                    taps: n,
                    transition: transition_width(n, fs),
                    suggested_taps,
                });
            }
        }
        let taps_imag = match self {
            FilterSpec::ComplexKernel { im, .. } => Some(im.iter().map(|&t| t as f32).collect()),
            _ => None,
        };
        Ok(DesignedFilter {
            taps: taps.into_iter().map(|t| t as f32).collect(),
            taps_imag,
            warnings,
        })
    }
}

/// The band between `cutoff` and the Nyquist frequency, as `(cutoff,
/// neighbour, room)`.
fn nyquist_side(cutoff: f64, fs: f64) -> (f64, Neighbour, f64) {
    (cutoff, Neighbour::Nyquist(fs / 2.0), fs / 2.0 - cutoff)
}

/// The narrowest of the bands next to the cutoffs (the first on a tie).
fn narrowest(edges: &[(f64, Neighbour, f64)]) -> (f64, Neighbour, f64) {
    edges
        .iter()
        .copied()
        .reduce(|a, b| if b.2 < a.2 { b } else { a })
        .expect("a designed filter has at least one cutoff")
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
///
/// `numtaps ≥ 1` ([`FilterSpec::validate`] checks it).
fn firwin(numtaps: usize, band: &[f64; 2], scale_freq: f64) -> Vec<f64> {
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
    h
}

/// Largest kernel file `load_kernel` reads: 64 MiB, 8M taps as an f8
/// `.npy` (far past the longest filter the memory budget lets run).
pub const MAX_KERNEL_FILE_BYTES: u64 = 64 << 20;

/// Reads a kernel file: `.npy` (1-D, any real dtype numpy writes), or text
/// with numbers separated by whitespace or commas (`#` starts a comment).
///
/// # Errors
/// [`Error::Open`] when it cannot be read, [`Error::Format`] for anything
/// but real taps (a complex `.npy` included: see [`load_kernel_spec`]).
pub fn load_kernel(path: &Path) -> Result<Vec<f64>> {
    match load_kernel_spec(path)? {
        FilterSpec::Kernel(taps) => Ok(taps),
        _ => Err(Error::format(
            path,
            "a complex kernel: it filters complex (I/Q) signals only",
        )),
    }
}

/// Reads a kernel file as [`load_kernel`] does, and a complex64/complex128
/// `.npy` as a [`FilterSpec::ComplexKernel`].
///
/// # Errors
/// As [`load_kernel`].
pub fn load_kernel_spec(path: &Path) -> Result<FilterSpec> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::open(path, e))?;
    let mut bytes = Vec::new();
    // Read at most one byte past the limit: `--kernel /dev/zero` (or any
    // huge file) is refused after MAX_KERNEL_FILE_BYTES, not read whole.
    file.take(MAX_KERNEL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::open(path, e))?;
    if bytes.len() as u64 > MAX_KERNEL_FILE_BYTES {
        return Err(Error::format(
            path,
            format!(
                "a kernel file is at most {} MiB (8M taps as f8 npy); this one is larger",
                MAX_KERNEL_FILE_BYTES >> 20
            ),
        ));
    }
    if bytes.starts_with(b"\x93NUMPY") {
        // The declared header must lie within the file: npyz allocates
        // whatever length it declares.
        match crate::source::npy_header_end(&bytes) {
            Ok(Some(end)) if end <= bytes.len() as u64 => {}
            Ok(Some(end)) => {
                return Err(Error::format(
                    path,
                    format!(
                        "invalid npy kernel: the header claims to end at byte {end}, past the end of the file ({} bytes)",
                        bytes.len()
                    ),
                ));
            }
            Ok(None) => {
                return Err(Error::format(
                    path,
                    "invalid npy kernel: the header is cut short",
                ));
            }
            Err(why) => return Err(Error::format(path, format!("invalid npy kernel: {why}"))),
        }
        let header_end = bytes
            .iter()
            .take(1 << 20)
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len().min(1 << 20));
        crate::source::check_npy_header_nesting(&bytes[..header_end])
            .map_err(|why| Error::format(path, format!("invalid npy kernel: {why}")))?;
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
        use npyz::TypeChar::{Complex, Float, Int};
        let taps: Vec<f64> = match kind {
            (Complex, 8 | 16) => {
                let (re, im): (Vec<f64>, Vec<f64>) = if kind.1 == 8 {
                    npy.into_vec::<num_complex::Complex<f32>>()
                        .map_err(bad)?
                        .into_iter()
                        .map(|z| (f64::from(z.re), f64::from(z.im)))
                        .unzip()
                } else {
                    npy.into_vec::<num_complex::Complex<f64>>()
                        .map_err(bad)?
                        .into_iter()
                        .map(|z| (z.re, z.im))
                        .unzip()
                };
                if re.is_empty() {
                    return Err(Error::format(path, "the kernel has no taps"));
                }
                return Ok(FilterSpec::ComplexKernel { re, im });
            }
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
                        "unsupported kernel dtype {} (use f4, f8, i2, i4, i8, or c8/c16 for a complex kernel)",
                        npy.dtype().descr()
                    ),
                ));
            }
        };
        if taps.is_empty() {
            return Err(Error::format(path, "the kernel has no taps"));
        }
        return Ok(FilterSpec::Kernel(taps));
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
    Ok(FilterSpec::Kernel(taps))
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

    /// `scipy.signal.kaiserord(ripple, width)[0]`, printed by scipy 1.17.1.
    #[test]
    fn kaiserord_matches_scipy() {
        // kaiserord(53, 0.2/50), kaiserord(53, 10/15000)
        assert_eq!(kaiserord(53.0, 0.2 / 50.0), 1570);
        assert_eq!(kaiserord(53.0, 10.0 / 15000.0), 9415);
        // kaiserord(7.95 + 2.285*np.pi*2*3.4, w) for w = 0.2/50, 10/15000, 5/50
        assert_eq!(kaiserord(HAMMING_KAISER_RIPPLE_DB, 0.2 / 50.0), 1701);
        assert_eq!(kaiserord(HAMMING_KAISER_RIPPLE_DB, 10.0 / 15000.0), 10201);
        assert_eq!(kaiserord(HAMMING_KAISER_RIPPLE_DB, 5.0 / 50.0), 69);
        // 7.95 + 2.285*np.pi*2*3.4
        assert!((HAMMING_KAISER_RIPPLE_DB - 56.76406665147821).abs() < 1e-12);
    }

    /// `|H(f)|` of `taps` at `f` Hz (sample rate `fs`), by a direct DFT.
    fn gain(taps: &[f32], f: f64, fs: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * f / fs;
        let (re, im) = taps
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(re, im), (k, &t)| {
                let p = w * k as f64;
                (re + f64::from(t) * p.cos(), im - f64::from(t) * p.sin())
            });
        re.hypot(im)
    }

    /// Width in Hz of the transition band around `cutoff`: the run of
    /// frequencies (on a grid of `step` Hz over `[0, top]`) containing the
    /// cutoff where the response is more than [`HAMMING_ATTENUATION_DB`]
    /// from ideal (1 at or beyond the cutoff on the pass side, 0 on the
    /// stop side).
    fn measured_transition(
        taps: &[f32],
        fs: f64,
        cutoff: f64,
        pass_above: bool,
        step: f64,
        top: f64,
    ) -> f64 {
        let dev = 10f64.powf(-HAMMING_ATTENUATION_DB / 20.0);
        let n = (top / step) as usize;
        let bad = |i: usize| {
            let f = i as f64 * step;
            let ideal = if (f >= cutoff) == pass_above {
                1.0
            } else {
                0.0
            };
            (gain(taps, f, fs) - ideal).abs() > dev
        };
        let c = (cutoff / step).round() as usize;
        assert!(bad(c), "the response at the cutoff is in transition");
        let mut lo = c;
        while lo > 0 && bad(lo - 1) {
            lo -= 1;
        }
        let mut hi = c;
        while hi < n && bad(hi + 1) {
            hi += 1;
        }
        assert!(hi < n, "the transition band runs past {top} Hz");
        (hi - lo) as f64 * step
    }

    #[test]
    fn narrow_corner_warns_with_the_taps_that_fit_it() {
        let spec = FilterSpec::Highpass {
            cutoff: 0.2,
            taps: 101,
        };
        let designed = spec.design(Some(100.0)).unwrap();
        let [
            FilterWarning::WideTransition {
                option,
                cutoff,
                neighbour,
                room,
                taps,
                transition,
                suggested_taps,
            },
        ] = designed.warnings[..]
        else {
            panic!("one warning expected: {:?}", designed.warnings);
        };
        assert_eq!(
            (option, cutoff, neighbour, room, taps),
            ("--highpass", 0.2, Neighbour::Dc, 0.2, 101)
        );
        assert!((transition - 3.4).abs() < 1e-12, "{transition}");
        // scipy.signal.kaiserord(7.95 + 2.285*np.pi*2*3.4, 0.2/50)[0], odd already.
        assert_eq!(suggested_taps, 1701);
        let text = designed.warnings[0].to_string();
        assert!(
            text.contains("--taps 1701") && text.contains("3.4 Hz") && text.contains("0 Hz"),
            "{text}"
        );

        // Measured: the 101-tap transition is far wider than the corner (it
        // reaches 0 Hz), the suggested design's fits in it, and so does the
        // suggested low-pass's.
        let step = 0.0005;
        let wide = measured_transition(&designed.taps, 100.0, 0.2, true, step, 5.0);
        assert!(wide > 1.0, "101 taps: transition {wide} Hz");
        for (spec, pass_above) in [
            (
                FilterSpec::Highpass {
                    cutoff: 0.2,
                    taps: suggested_taps,
                },
                true,
            ),
            (
                FilterSpec::Lowpass {
                    cutoff: 0.2,
                    taps: suggested_taps,
                },
                false,
            ),
        ] {
            let fitted = spec.design(Some(100.0)).unwrap();
            assert!(fitted.warnings.is_empty(), "{:?}", fitted.warnings);
            let width = measured_transition(&fitted.taps, 100.0, 0.2, pass_above, step, 1.0);
            assert!(width < 0.2, "{spec:?}: transition {width} Hz");
        }
        // One tap fewer warns again.
        let short = FilterSpec::Lowpass {
            cutoff: 0.2,
            taps: 1700,
        };
        assert_eq!(short.design(Some(100.0)).unwrap().warnings.len(), 1);
    }

    #[test]
    fn comfortable_designs_do_not_warn() {
        for spec in [
            FilterSpec::Lowpass {
                cutoff: 10.0,
                taps: 101,
            },
            FilterSpec::Highpass {
                cutoff: 10.0,
                taps: 101,
            },
            FilterSpec::Bandpass {
                low: 5.0,
                high: 20.0,
                taps: 101,
            },
            FilterSpec::MovingAverage(3),
            FilterSpec::Kernel(vec![0.25, 0.5, 0.25]),
        ] {
            let designed = spec.design(Some(100.0)).unwrap();
            assert!(
                designed.warnings.is_empty(),
                "{spec:?}: {:?}",
                designed.warnings
            );
        }
    }

    #[test]
    fn band_pass_warns_about_its_narrowest_band() {
        // 1 Hz between the cutoffs, 10 Hz to DC, 29 Hz to Nyquist.
        let designed = FilterSpec::Bandpass {
            low: 10.0,
            high: 11.0,
            taps: 101,
        }
        .design(Some(100.0))
        .unwrap();
        let [
            FilterWarning::WideTransition {
                neighbour,
                room,
                suggested_taps,
                ..
            },
        ] = designed.warnings[..]
        else {
            panic!("{:?}", designed.warnings);
        };
        assert_eq!((neighbour, room), (Neighbour::Cutoff(11.0), 1.0));
        // kaiserord(7.95 + 2.285*np.pi*2*3.4, 1/50) = 341.
        assert_eq!(suggested_taps, 341);
        // Near Nyquist: a high-pass at 49.5 Hz has 0.5 Hz above it.
        let near = FilterSpec::Highpass {
            cutoff: 49.5,
            taps: 101,
        }
        .design(Some(100.0))
        .unwrap();
        let [
            FilterWarning::WideTransition {
                neighbour,
                suggested_taps,
                ..
            },
        ] = near.warnings[..]
        else {
            panic!("{:?}", near.warnings);
        };
        assert_eq!(neighbour, Neighbour::Nyquist(50.0));
        // kaiserord(7.95 + 2.285*np.pi*2*3.4, 0.5/50) = 681.
        assert_eq!(suggested_taps, 681);
        // kaiserord(7.95 + 2.285*np.pi*2*3.4, 4/50) = 86: a high-pass needs
        // an odd count, so 87; a low-pass takes 86.
        for (spec, want) in [
            (
                FilterSpec::Highpass {
                    cutoff: 4.0,
                    taps: 51,
                },
                87,
            ),
            (
                FilterSpec::Lowpass {
                    cutoff: 4.0,
                    taps: 51,
                },
                86,
            ),
        ] {
            let designed = spec.design(Some(100.0)).unwrap();
            let [FilterWarning::WideTransition { suggested_taps, .. }] = designed.warnings[..]
            else {
                panic!("{:?}", designed.warnings);
            };
            assert_eq!(suggested_taps, want, "{spec:?}");
        }
    }

    #[test]
    fn specs_are_checked_before_any_input() {
        assert_eq!(FilterSpec::parse_band(" 1 : 20").unwrap(), (1.0, 20.0));
        for bad in ["1-20", "1:", "a:2", "1:inf", "20:5", "5:5"] {
            let e = FilterSpec::parse_band(bad).unwrap_err();
            assert!(e.to_string().contains("--bandpass"), "{bad}: {e}");
        }
        let refused = [
            FilterSpec::MovingAverage(0),
            FilterSpec::Kernel(vec![]),
            FilterSpec::Kernel(vec![1.0, f64::NAN]),
            FilterSpec::Lowpass {
                cutoff: 10.0,
                taps: 0,
            },
            FilterSpec::Lowpass {
                cutoff: -1.0,
                taps: 11,
            },
            FilterSpec::Highpass {
                cutoff: 10.0,
                taps: 10,
            },
            FilterSpec::Bandpass {
                low: 20.0,
                high: 5.0,
                taps: 11,
            },
        ];
        for spec in refused {
            assert!(
                matches!(spec.validate(), Err(Error::Usage { .. })),
                "{spec:?}"
            );
        }
        assert!(
            FilterSpec::Lowpass {
                cutoff: 1e6,
                taps: 12
            }
            .validate()
            .is_ok(),
            "the Nyquist check waits for the sample rate"
        );
    }
}
