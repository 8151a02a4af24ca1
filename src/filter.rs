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
pub mod window;

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
        /// Its length and window.
        fir: FirDesign,
    },
    /// Windowed-sinc high-pass, cutoff in Hz (an odd number of taps).
    Highpass {
        /// Cutoff in Hz.
        cutoff: f64,
        /// Its length and window.
        fir: FirDesign,
    },
    /// Windowed-sinc band-pass between two cutoffs in Hz.
    Bandpass {
        /// Lower cutoff in Hz.
        low: f64,
        /// Upper cutoff in Hz.
        high: f64,
        /// Its length and window.
        fir: FirDesign,
    },
}

/// The window of a designed filter, as chosen (`--window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Hamming, `scipy.signal.firwin`'s default: a stop band about 53 dB
    /// down ([`HAMMING_ATTENUATION_DB`]) whatever the length.
    Hamming,
    /// Kaiser, shaped for the attenuation asked:
    /// β = [`window::kaiser_beta`]`(attenuation)`.
    Kaiser,
}

/// How a windowed-sinc filter (`--lowpass`, `--highpass`, `--bandpass`)
/// gets its length and its window: `--taps`, `--window`, `--transition`,
/// `--attenuation`. The default (every field `None`) is a Kaiser window
/// whose length is `scipy.signal.kaiserord`'s for the default transition
/// band and [`DEFAULT_ATTENUATION_DB`], made odd.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FirDesign {
    /// Number of taps (`--taps`). `None`: the fewest whose transition band
    /// is no wider than [`FirDesign::transition`] — `kaiserord(attenuation,
    /// transition / (fs/2))` for a Kaiser window, [`HAMMING_TRANSITION`]`·fs
    /// / transition + 1` for a Hamming one — rounded up to an odd number, so
    /// that the filter delays by a whole number of samples (and a high-pass
    /// can have it).
    pub taps: Option<usize>,
    /// The window (`--window`). `None`: Kaiser when the taps come from the
    /// transition band, Hamming when they are given (`scipy.signal.firwin`'s
    /// default, so `--taps N` designs what `firwin(N, ...)` does).
    pub window: Option<WindowKind>,
    /// Width in Hz of the transition band the taps are chosen for
    /// (`--transition`; only without `taps`). `None`: [`default_transition`].
    pub transition: Option<f64>,
    /// Stop-band attenuation in dB of a Kaiser window (`--attenuation`): its
    /// β, and kaiserord's `ripple` when the taps are chosen. `None`:
    /// [`DEFAULT_ATTENUATION_DB`]. A Hamming window refuses it: its
    /// attenuation is fixed.
    pub attenuation: Option<f64>,
}

impl FirDesign {
    /// `taps` taps with a Hamming window: `scipy.signal.firwin(taps, ...)`.
    pub fn taps(taps: usize) -> Self {
        FirDesign {
            taps: Some(taps),
            ..FirDesign::default()
        }
    }

    /// The window, its default resolved.
    pub fn window_kind(&self) -> WindowKind {
        match (self.window, self.taps) {
            (Some(w), _) => w,
            (None, Some(_)) => WindowKind::Hamming,
            (None, None) => WindowKind::Kaiser,
        }
    }

    /// The window with what shapes it.
    fn resolved_window(&self) -> FirWindow {
        match self.window_kind() {
            WindowKind::Hamming => FirWindow::Hamming,
            WindowKind::Kaiser => {
                let attenuation = self.attenuation.unwrap_or(DEFAULT_ATTENUATION_DB);
                FirWindow::Kaiser {
                    attenuation,
                    beta: window::kaiser_beta(attenuation),
                }
            }
        }
    }

    /// The checks that need no sample rate, for the filter of `option`
    /// (`odd`: the taps must be odd).
    fn validate(&self, option: &str, odd: bool) -> Result<()> {
        if let Some(taps) = self.taps {
            if taps == 0 {
                return Err(Error::usage("--taps must be at least 1"));
            }
            if taps > MAX_DESIGN_TAPS {
                return Err(Error::usage(format!(
                    "--taps {taps}: a designed filter has at most {MAX_DESIGN_TAPS} taps"
                )));
            }
            if odd && taps.is_multiple_of(2) {
                return Err(Error::usage(format!(
                    "{option} needs an odd number of taps (a symmetric filter with {taps} taps has a zero at the Nyquist frequency): use --taps {}",
                    taps + 1
                )));
            }
            if let Some(t) = self.transition {
                return Err(Error::usage(format!(
                    "--transition {t} with --taps {taps}: both set the length of {option}; give one of them"
                )));
            }
        }
        if let Some(t) = self.transition
            && !(t.is_finite() && t > 0.0)
        {
            return Err(Error::usage(format!(
                "--transition {t}: the width of the transition band must be a positive number of Hz"
            )));
        }
        match (self.window_kind(), self.attenuation) {
            (WindowKind::Hamming, Some(a)) => Err(Error::usage(format!(
                "--attenuation {a} shapes a Kaiser window; {option}'s window is Hamming (the default with --taps), whose stop band is about {HAMMING_ATTENUATION_DB} dB down whatever the taps: add --window kaiser"
            ))),
            (WindowKind::Hamming, None) => Ok(()),
            (WindowKind::Kaiser, a) => {
                let a = a.unwrap_or(DEFAULT_ATTENUATION_DB);
                if !(a.is_finite() && a > 0.0 && a <= MAX_ATTENUATION_DB) {
                    return Err(Error::usage(format!(
                        "--attenuation {a}: a Kaiser window's stop-band attenuation is a number of dB above 0 and at most {MAX_ATTENUATION_DB} (f64 taps resolve about 320 dB)"
                    )));
                }
                if self.taps.is_none() && a < KAISERORD_MIN_DB {
                    return Err(Error::usage(format!(
                        "--attenuation {a}: Kaiser's formula for the taps (scipy.signal.kaiserord) needs at least {KAISERORD_MIN_DB} dB; give --taps N for less"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// The window of a design, with what shapes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FirWindow {
    /// Hamming.
    Hamming,
    /// Kaiser.
    Kaiser {
        /// The stop-band attenuation it is shaped for, in dB.
        attenuation: f64,
        /// Its β, `kaiser_beta(attenuation)`.
        beta: f64,
    },
}

impl FirWindow {
    /// `"hamming"` or `"kaiser"`, as `scipy.signal.get_window` names them.
    pub fn name(&self) -> &'static str {
        match self {
            FirWindow::Hamming => "hamming",
            FirWindow::Kaiser { .. } => "kaiser",
        }
    }

    /// The Kaiser window's β; `None` for Hamming.
    pub fn beta(&self) -> Option<f64> {
        match *self {
            FirWindow::Hamming => None,
            FirWindow::Kaiser { beta, .. } => Some(beta),
        }
    }

    /// The ripple at which `scipy.signal.kaiserord`'s formula gives this
    /// window's transition width: the attenuation for a Kaiser window,
    /// [`HAMMING_KAISER_RIPPLE_DB`] for a Hamming one.
    fn kaiserord_ripple(&self) -> f64 {
        match *self {
            FirWindow::Hamming => HAMMING_KAISER_RIPPLE_DB,
            FirWindow::Kaiser { attenuation, .. } => attenuation,
        }
    }

    /// Width in Hz of the transition band of an `n`-tap design at
    /// `sample_rate` Hz, the inverse of [`FirWindow::taps_for_transition`]:
    /// [`HAMMING_TRANSITION`]`·fs / (n − 1)` for a Hamming window (measured at
    /// [`HAMMING_ATTENUATION_DB`]), Kaiser's formula inverted, `(A − 7.95) /
    /// (2.285·2π) · fs / (n − 1)`, for a Kaiser window shaped for `A` dB
    /// (measured at `A`). Infinite for one tap, which does not filter.
    pub fn transition_width(&self, taps: usize, sample_rate: f64) -> f64 {
        if taps <= 1 {
            return f64::INFINITY;
        }
        let per_tap = match *self {
            FirWindow::Hamming => HAMMING_TRANSITION,
            FirWindow::Kaiser { attenuation, .. } => {
                (attenuation - KAISER_OFFSET_DB) / (KAISER_SLOPE * 2.0 * std::f64::consts::PI)
            }
        };
        per_tap * sample_rate / (taps - 1) as f64
    }

    /// The fewest taps whose design has a transition band no wider than
    /// `width` Hz at `sample_rate` Hz: `kaiserord(ripple, width / (fs /
    /// 2))` with [`FirWindow::kaiserord_ripple`] (for a Hamming window,
    /// `ceil(HAMMING_TRANSITION · fs / width + 1)`). Saturates at
    /// `usize::MAX`.
    pub fn taps_for_transition(&self, width: f64, sample_rate: f64) -> usize {
        kaiserord(self.kaiserord_ripple(), width / (sample_rate / 2.0))
    }

    /// The window's `n` values.
    fn values(&self, n: usize) -> Vec<f64> {
        match *self {
            FirWindow::Hamming => window::hamming(n),
            FirWindow::Kaiser { beta, .. } => window::kaiser(n, beta),
        }
    }
}

impl std::fmt::Display for FirWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            FirWindow::Hamming => write!(f, "Hamming window"),
            FirWindow::Kaiser { beta, .. } => {
                write!(f, "Kaiser window of β {}", significant(beta))
            }
        }
    }
}

/// A designed filter's length and window, known before its taps are
/// computed (so that its memory can be checked first), and reported with
/// them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirPlan {
    /// Number of taps.
    pub taps: usize,
    /// The window.
    pub window: FirWindow,
    /// Width in Hz of the transition band the taps were chosen for; `None`
    /// when they were given (`--taps`).
    pub transition: Option<f64>,
}

/// Stop-band attenuation of a Kaiser design when none is given
/// (`--attenuation`, shared with the IIR families cheby2 and ellip): 60 dB,
/// a thousandth of the amplitude (a little more than a Hamming window's
/// 53 dB).
pub const DEFAULT_ATTENUATION_DB: f64 = 60.0;

/// The default transition band as a fraction of the lowest cutoff: a
/// quarter (`--lowpass 10` at 100 Hz: 2.5 Hz, 147 taps at 60 dB). See
/// [`default_transition`].
pub const DEFAULT_TRANSITION_FRACTION: f64 = 0.25;

/// The most taps of a designed filter, given or chosen: 2^23, as many as
/// the largest kernel file holds ([`MAX_KERNEL_FILE_BYTES`] of f8); a
/// `--transition` that needs more is refused before anything is allocated
/// (the memory budget refuses most such filters earlier: 2^23 taps take
/// 160 MiB to design and hold).
pub const MAX_DESIGN_TAPS: usize = 1 << 23;

/// The most stop-band attenuation a Kaiser design takes: 300 dB. f64 taps
/// resolve about 320 dB (2^-53), the f32 taps the backends run about
/// 150 dB, so more asks for what no design here can give (and β beyond
/// ~700 would overflow the window's Bessel function).
pub const MAX_ATTENUATION_DB: f64 = 300.0;

/// The least attenuation `scipy.signal.kaiserord` takes: below 8 dB its
/// formula is not valid (scipy raises `ValueError`).
pub const KAISERORD_MIN_DB: f64 = 8.0;

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
/// operations. Saturates at `usize::MAX`. (kaiserord's β is
/// [`window::kaiser_beta`]`(ripple)`; scipy refuses a ripple below
/// [`KAISERORD_MIN_DB`], which callers check.)
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

/// The transition band, in Hz, that a designed filter's taps are chosen
/// for when `--transition` is not given: [`DEFAULT_TRANSITION_FRACTION`]
/// of the lowest cutoff, but no wider than the narrowest band between a
/// cutoff and its neighbour (0 Hz, the Nyquist frequency, the other cutoff
/// of a band-pass) — `min(cutoff / 4, fs/2 − cutoff)` for a low- or
/// high-pass, `min(low / 4, high − low, fs/2 − high)` for a band-pass.
/// (The band down to 0 Hz never binds: it is the lowest cutoff itself.)
/// `cutoffs` ascending, in Hz, each strictly between 0 and `fs / 2`.
pub fn default_transition(cutoffs: &[f64], sample_rate: f64) -> f64 {
    let edges = rooms(cutoffs, sample_rate);
    let (_, _, room) = narrowest(&edges);
    (DEFAULT_TRANSITION_FRACTION * cutoffs[0]).min(room)
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
        /// Its window.
        window: FirWindow,
        /// Width of the design's transition band in Hz
        /// ([`FirWindow::transition_width`]).
        transition: f64,
        /// The transition band the taps were chosen for (`--transition`),
        /// `None` when the taps were given.
        asked: Option<f64>,
        /// The fewest taps whose transition band fits in `room`
        /// ([`FirWindow::taps_for_transition`]; odd where the filter needs
        /// it, and always when the taps are chosen).
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
                window,
                transition,
                asked: None,
                suggested_taps,
            } => write!(
                f,
                "{option}: with {taps} taps and a {window} the transition band around {cutoff} Hz is about {} Hz wide, \
                 wider than the {} Hz between the cutoff and {neighbour}, so the filter neither passes \
                 nor stops that band as asked; --taps {suggested_taps} or more would fit it",
                significant(*transition),
                significant(*room),
            ),
            FilterWarning::WideTransition {
                option,
                cutoff,
                neighbour,
                room,
                taps,
                window,
                asked: Some(asked),
                suggested_taps,
                ..
            } => write!(
                f,
                "{option}: --transition {asked} Hz ({taps} taps, {window}) is wider than the {} Hz \
                 between the cutoff {cutoff} Hz and {neighbour}, so the filter neither passes nor stops \
                 that band as asked; --transition {} or narrower ({suggested_taps} taps) would fit it",
                significant(*room),
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

/// The taps of a filter, with the warnings of its design.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignedFilter {
    /// The taps, as the backends take them (the real parts of complex taps).
    pub taps: Vec<f32>,
    /// The imaginary parts of complex taps; `None` for a real filter.
    pub taps_imag: Option<Vec<f32>>,
    /// A windowed-sinc design's length and window; `None` for a kernel or a
    /// moving average.
    pub fir: Option<FirPlan>,
    /// What the user should know about the design (empty for a kernel or a
    /// moving average, which are taken as given).
    pub warnings: Vec<FilterWarning>,
}

/// What a designed filter is, checked against the sample rate: its option,
/// cutoffs (fractions of Nyquist and Hz), the band next to each cutoff,
/// and the firwin band and scale frequency.
struct SincDesign {
    option: &'static str,
    fir: FirDesign,
    fs: f64,
    /// The cutoffs in Hz, ascending.
    cutoffs: Vec<f64>,
    /// The pass band as fractions of Nyquist (0 and 1 at DC and Nyquist).
    pass: [f64; 2],
    /// firwin's scale frequency (fraction of Nyquist).
    scale: f64,
    /// The taps must be odd (the pass band reaches Nyquist).
    odd: bool,
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
    /// finite ones for a kernel); for a designed filter positive finite
    /// cutoffs (a band-pass's low edge below its high edge), at most
    /// [`MAX_DESIGN_TAPS`] given taps (odd for a high-pass), not both taps
    /// and a transition band, a positive finite transition band, and an
    /// attenuation only with a Kaiser window, above 0 and at most
    /// [`MAX_ATTENUATION_DB`] dB (at least [`KAISERORD_MIN_DB`] when it
    /// chooses the taps).
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
            FilterSpec::Lowpass { cutoff, fir } => {
                positive("--lowpass", cutoff)?;
                fir.validate("--lowpass", false)?;
            }
            FilterSpec::Highpass { cutoff, fir } => {
                positive("--highpass", cutoff)?;
                fir.validate("--highpass", true)?;
            }
            FilterSpec::Bandpass { low, high, fir } => {
                positive("--bandpass", low)?;
                positive("--bandpass", high)?;
                if low >= high {
                    return Err(Error::usage(format!(
                        "--bandpass {low}:{high}: the low edge must be below the high edge"
                    )));
                }
                // Even is fine: a band-pass stops the Nyquist frequency,
                // where an even symmetric design has its zero (as firwin).
                fir.validate("--bandpass", false)?;
            }
        }
        Ok(())
    }

    /// A designed filter's band, checked against the sample rate; `None`
    /// for a kernel or a moving average.
    fn band(&self, sample_rate: Option<f64>) -> Result<Option<SincDesign>> {
        let need_rate = |what: &str| {
            sample_rate.ok_or_else(|| {
                Error::usage(format!(
                    "{what} needs a sample rate: the input has none, give --sample-rate HZ"
                ))
            })
        };
        Ok(Some(match *self {
            FilterSpec::Kernel(_)
            | FilterSpec::ComplexKernel { .. }
            | FilterSpec::MovingAverage(_) => {
                return Ok(None);
            }
            FilterSpec::Lowpass { cutoff, fir } => {
                let fs = need_rate("--lowpass")?;
                let wc = check_cutoff("--lowpass", cutoff, fs)?;
                SincDesign {
                    option: "--lowpass",
                    fir,
                    fs,
                    cutoffs: vec![cutoff],
                    pass: [0.0, wc],
                    scale: 0.0,
                    odd: false,
                }
            }
            FilterSpec::Highpass { cutoff, fir } => {
                let fs = need_rate("--highpass")?;
                let wc = check_cutoff("--highpass", cutoff, fs)?;
                SincDesign {
                    option: "--highpass",
                    fir,
                    fs,
                    cutoffs: vec![cutoff],
                    pass: [wc, 1.0],
                    scale: 1.0,
                    odd: true,
                }
            }
            FilterSpec::Bandpass { low, high, fir } => {
                let fs = need_rate("--bandpass")?;
                let (lo, hi) = (
                    check_cutoff("--bandpass", low, fs)?,
                    check_cutoff("--bandpass", high, fs)?,
                );
                SincDesign {
                    option: "--bandpass",
                    fir,
                    fs,
                    cutoffs: vec![low, high],
                    pass: [lo, hi],
                    scale: (lo + hi) / 2.0,
                    odd: false,
                }
            }
        }))
    }

    /// A designed filter's length and window at `sample_rate` Hz, without
    /// computing its taps (so that its memory can be checked first); `None`
    /// for a kernel or a moving average. Without `--taps` the taps are
    /// [`FirWindow::taps_for_transition`] of the transition band
    /// (`--transition`, else [`default_transition`]), rounded up to odd.
    ///
    /// # Errors
    /// [`Error::Usage`] for what [`FilterSpec::validate`] refuses, a
    /// designed filter without a sample rate, a cutoff not strictly between
    /// 0 and the Nyquist frequency, a `--transition` not below the Nyquist
    /// frequency, or a transition band that needs more than
    /// [`MAX_DESIGN_TAPS`] taps.
    pub fn fir_plan(&self, sample_rate: Option<f64>) -> Result<Option<FirPlan>> {
        self.validate()?;
        let Some(band) = self.band(sample_rate)? else {
            return Ok(None);
        };
        Ok(Some(band.plan()?))
    }

    /// How many taps the filter has at `sample_rate` (needed by designed
    /// filters only), known before it is designed (so that its memory can be
    /// checked first).
    ///
    /// # Errors
    /// As [`FilterSpec::fir_plan`].
    pub fn num_taps(&self, sample_rate: Option<f64>) -> Result<usize> {
        if let Some(plan) = self.fir_plan(sample_rate)? {
            return Ok(plan.taps);
        }
        Ok(match *self {
            FilterSpec::Kernel(ref k) => k.len(),
            FilterSpec::ComplexKernel { ref re, .. } => re.len(),
            FilterSpec::MovingAverage(n) => n,
            FilterSpec::Lowpass { .. }
            | FilterSpec::Highpass { .. }
            | FilterSpec::Bandpass { .. } => {
                unreachable!("a designed filter has a plan")
            }
        })
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
    /// ([`FirWindow::transition_width`]) is wider than the band between a
    /// cutoff and its neighbour (the narrowest such band when there are
    /// several). A designed filter is `scipy.signal.firwin(numtaps, cutoff,
    /// window, pass_zero, scale=True, fs=fs)` with the length and window of
    /// [`FilterSpec::fir_plan`] (`window=('kaiser', β)` for a Kaiser
    /// window).
    ///
    /// # Errors
    /// As [`FilterSpec::fir_plan`].
    pub fn design(&self, sample_rate: Option<f64>) -> Result<DesignedFilter> {
        self.validate()?;
        let band = self.band(sample_rate)?;
        let (taps, fir, warnings) = match (self, band) {
            (FilterSpec::Kernel(k), _) => (k.clone(), None, Vec::new()),
            (FilterSpec::ComplexKernel { re, .. }, _) => (re.clone(), None, Vec::new()),
            (FilterSpec::MovingAverage(n), _) => (vec![1.0 / *n as f64; *n], None, Vec::new()),
            (_, None) => unreachable!("a designed filter has a band"),
            (_, Some(band)) => {
                let plan = band.plan()?;
                let taps = firwin(
                    plan.taps,
                    &band.pass,
                    band.scale,
                    &plan.window.values(plan.taps),
                );
                let warnings = band.warning(&plan).into_iter().collect();
                (taps, Some(plan), warnings)
            }
        };
        let taps_imag = match self {
            FilterSpec::ComplexKernel { im, .. } => Some(im.iter().map(|&t| t as f32).collect()),
            _ => None,
        };
        Ok(DesignedFilter {
            taps: taps.into_iter().map(|t| t as f32).collect(),
            taps_imag,
            fir,
            warnings,
        })
    }
}

impl SincDesign {
    /// The band between each cutoff and its neighbours.
    fn rooms(&self) -> Vec<(f64, Neighbour, f64)> {
        rooms(&self.cutoffs, self.fs)
    }

    /// The length and window (see [`FilterSpec::fir_plan`]).
    fn plan(&self) -> Result<FirPlan> {
        let window = self.fir.resolved_window();
        if let Some(taps) = self.fir.taps {
            return Ok(FirPlan {
                taps,
                window,
                transition: None,
            });
        }
        let nyquist = self.fs / 2.0;
        let (transition, which) = match self.fir.transition {
            Some(t) if t >= nyquist => {
                return Err(Error::usage(format!(
                    "--transition {t}: the transition band of {} must be narrower than the Nyquist frequency {nyquist} Hz",
                    self.option
                )));
            }
            Some(t) => (t, String::new()),
            None => (
                default_transition(&self.cutoffs, self.fs),
                " (the default: a quarter of the lowest cutoff, at most the band next to a cutoff)"
                    .to_owned(),
            ),
        };
        let mut taps = window.taps_for_transition(transition, self.fs);
        if taps.is_multiple_of(2) {
            taps += 1;
        }
        if taps > MAX_DESIGN_TAPS {
            let formula = match window {
                FirWindow::Hamming => "the Hamming window's width".to_owned(),
                FirWindow::Kaiser { attenuation, .. } => {
                    format!("scipy.signal.kaiserord at --attenuation {attenuation} dB")
                }
            };
            return Err(Error::usage(format!(
                "{}: a transition band of {transition} Hz{which} at {} Hz needs {} taps ({formula}), more than the {MAX_DESIGN_TAPS} a designed filter may have; give a wider --transition",
                self.option,
                self.fs,
                if taps == usize::MAX {
                    "too many".to_owned()
                } else {
                    taps.to_string()
                },
            )));
        }
        Ok(FirPlan {
            taps,
            window,
            transition: Some(transition),
        })
    }

    /// The warning of a design whose transition band is wider than the
    /// narrowest band next to a cutoff.
    fn warning(&self, plan: &FirPlan) -> Option<FilterWarning> {
        let (cutoff, neighbour, room) = narrowest(&self.rooms());
        // Fewer taps than the least that fit is the same as a transition
        // wider than the room, without a second rounding.
        let mut suggested_taps = plan.window.taps_for_transition(room, self.fs);
        if plan.taps >= suggested_taps {
            return None;
        }
        let odd = self.odd || plan.transition.is_some();
        if odd && suggested_taps.is_multiple_of(2) {
            suggested_taps = suggested_taps.saturating_add(1);
        }
        Some(FilterWarning::WideTransition {
            option: self.option,
            cutoff,
            neighbour,
            room,
            taps: plan.taps,
            window: plan.window,
            transition: plan.window.transition_width(plan.taps, self.fs),
            asked: plan.transition,
            suggested_taps,
        })
    }
}

/// The band next to each cutoff (`cutoffs` ascending): down to 0 Hz from
/// the lowest, between consecutive cutoffs, up to Nyquist from the
/// highest, as `(cutoff, neighbour, room)`.
fn rooms(cutoffs: &[f64], fs: f64) -> Vec<(f64, Neighbour, f64)> {
    let mut edges = vec![(cutoffs[0], Neighbour::Dc, cutoffs[0])];
    for pair in cutoffs.windows(2) {
        edges.push((pair[0], Neighbour::Cutoff(pair[1]), pair[1] - pair[0]));
    }
    let top = cutoffs[cutoffs.len() - 1];
    edges.push((top, Neighbour::Nyquist(fs / 2.0), fs / 2.0 - top));
    edges
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

/// `scipy.signal.firwin(numtaps, cutoff, window, scale=True)` for one pass
/// band `[band[0], band[1]]` (fractions of Nyquist, 0 and 1 meaning the band
/// edge is DC or Nyquist) with the window's `numtaps` values `window`,
/// normalised to unit gain at `scale_freq` (fraction of Nyquist), as firwin
/// does: 0 for low-pass, 1 for high-pass, the band centre for band-pass.
///
/// `numtaps ≥ 1` ([`FilterSpec::validate`] checks it), `window.len() ==
/// numtaps`.
fn firwin(numtaps: usize, band: &[f64; 2], scale_freq: f64, window: &[f64]) -> Vec<f64> {
    debug_assert_eq!(window.len(), numtaps);
    let alpha = 0.5 * (numtaps - 1) as f64;
    let sinc = |x: f64| {
        if x == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
        }
    };
    let mut h: Vec<f64> = window
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let m = i as f64 - alpha;
            let (left, right) = (band[0], band[1]);
            (right * sinc(right * m) - left * sinc(left * m)) * w
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
                    fir: FirDesign::taps(11),
                },
                &SCIPY_LOWPASS_11_10HZ,
            ),
            (
                FilterSpec::Highpass {
                    cutoff: 10.0,
                    fir: FirDesign::taps(11),
                },
                &SCIPY_HIGHPASS_11_10HZ,
            ),
            (
                FilterSpec::Bandpass {
                    low: 5.0,
                    high: 20.0,
                    fir: FirDesign::taps(12),
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
            fir: FirDesign::taps(11),
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
            fir: FirDesign::taps(10),
        }
        .taps(Some(100.0))
        .unwrap_err();
        assert!(even.to_string().contains("odd number of taps"), "{even}");
        let above = FilterSpec::Lowpass {
            cutoff: 60.0,
            fir: FirDesign::taps(11),
        }
        .taps(Some(100.0))
        .unwrap_err();
        assert!(above.to_string().contains("Nyquist"), "{above}");
        let inverted = FilterSpec::Bandpass {
            low: 20.0,
            high: 5.0,
            fir: FirDesign::taps(11),
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
    /// cutoff where the response is more than `db` dB from ideal (1 at or
    /// beyond the cutoff on the pass side, 0 on the stop side).
    fn measured_transition(
        taps: &[f32],
        db: f64,
        fs: f64,
        cutoff: f64,
        pass_above: bool,
        step: f64,
        top: f64,
    ) -> f64 {
        let dev = 10f64.powf(-db / 20.0);
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
            fir: FirDesign::taps(101),
        };
        let designed = spec.design(Some(100.0)).unwrap();
        let [
            FilterWarning::WideTransition {
                option,
                cutoff,
                neighbour,
                room,
                taps,
                window,
                transition,
                asked,
                suggested_taps,
            },
        ] = designed.warnings[..]
        else {
            panic!("one warning expected: {:?}", designed.warnings);
        };
        assert_eq!(
            (option, cutoff, neighbour, room, taps, window, asked),
            (
                "--highpass",
                0.2,
                Neighbour::Dc,
                0.2,
                101,
                FirWindow::Hamming,
                None
            )
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
        let wide = measured_transition(
            &designed.taps,
            HAMMING_ATTENUATION_DB,
            100.0,
            0.2,
            true,
            step,
            5.0,
        );
        assert!(wide > 1.0, "101 taps: transition {wide} Hz");
        for (spec, pass_above) in [
            (
                FilterSpec::Highpass {
                    cutoff: 0.2,
                    fir: FirDesign::taps(suggested_taps),
                },
                true,
            ),
            (
                FilterSpec::Lowpass {
                    cutoff: 0.2,
                    fir: FirDesign::taps(suggested_taps),
                },
                false,
            ),
        ] {
            let fitted = spec.design(Some(100.0)).unwrap();
            assert!(fitted.warnings.is_empty(), "{:?}", fitted.warnings);
            let width = measured_transition(
                &fitted.taps,
                HAMMING_ATTENUATION_DB,
                100.0,
                0.2,
                pass_above,
                step,
                1.0,
            );
            assert!(width < 0.2, "{spec:?}: transition {width} Hz");
        }
        // One tap fewer warns again.
        let short = FilterSpec::Lowpass {
            cutoff: 0.2,
            fir: FirDesign::taps(1700),
        };
        assert_eq!(short.design(Some(100.0)).unwrap().warnings.len(), 1);
    }

    #[test]
    fn comfortable_designs_do_not_warn() {
        for spec in [
            FilterSpec::Lowpass {
                cutoff: 10.0,
                fir: FirDesign::taps(101),
            },
            FilterSpec::Highpass {
                cutoff: 10.0,
                fir: FirDesign::taps(101),
            },
            FilterSpec::Bandpass {
                low: 5.0,
                high: 20.0,
                fir: FirDesign::taps(101),
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
            fir: FirDesign::taps(101),
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
            fir: FirDesign::taps(101),
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
                    fir: FirDesign::taps(51),
                },
                87,
            ),
            (
                FilterSpec::Lowpass {
                    cutoff: 4.0,
                    fir: FirDesign::taps(51),
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
                fir: FirDesign::taps(0),
            },
            FilterSpec::Lowpass {
                cutoff: -1.0,
                fir: FirDesign::taps(11),
            },
            FilterSpec::Highpass {
                cutoff: 10.0,
                fir: FirDesign::taps(10),
            },
            FilterSpec::Bandpass {
                low: 20.0,
                high: 5.0,
                fir: FirDesign::taps(11),
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
                fir: FirDesign::taps(12)
            }
            .validate()
            .is_ok(),
            "the Nyquist check waits for the sample rate"
        );
    }

    /// The designs of `tests/fixtures/fir_kaiser.json`, printed by scipy
    /// (`tests/fixtures/make_fir_kaiser.py`: kaiserord, kaiser_beta and
    /// firwin with `window=('kaiser', beta)`), as the spec the CLI builds.
    fn scipy_cases() -> Vec<(String, FilterSpec, f64, serde_json::Value)> {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/fir_kaiser.json"))
                .expect("the fixture is JSON");
        let cases = fixture["cases"].as_array().expect("cases").clone();
        cases
            .into_iter()
            .map(|c| {
                let o = &c["options"];
                let fir = FirDesign {
                    taps: o["taps"].as_u64().map(|n| n as usize),
                    window: o["window"].as_str().map(|w| match w {
                        "hamming" => WindowKind::Hamming,
                        "kaiser" => WindowKind::Kaiser,
                        other => panic!("window {other}"),
                    }),
                    transition: o["transition"].as_f64(),
                    attenuation: o["attenuation"].as_f64(),
                };
                let cutoffs: Vec<f64> = c["cutoffs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let spec = match c["band"].as_str().unwrap() {
                    "lowpass" => FilterSpec::Lowpass {
                        cutoff: cutoffs[0],
                        fir,
                    },
                    "highpass" => FilterSpec::Highpass {
                        cutoff: cutoffs[0],
                        fir,
                    },
                    "bandpass" => FilterSpec::Bandpass {
                        low: cutoffs[0],
                        high: cutoffs[1],
                        fir,
                    },
                    other => panic!("band {other}"),
                };
                let fs = c["fs"].as_f64().unwrap();
                (c["name"].as_str().unwrap().to_owned(), spec, fs, c)
            })
            .collect()
    }

    /// f64 values computed here and by scipy with the same formulas in a
    /// different order of operations (the transition's `min`, kaiser_beta's
    /// arithmetic): within a few ulps of values up to ~1e3.
    const F64_ULPS: f64 = 1e-12;

    #[test]
    fn designs_without_taps_match_scipy_kaiserord_and_firwin() {
        for (name, spec, fs, want) in scipy_cases() {
            let plan = spec.fir_plan(Some(fs)).unwrap().expect("a designed filter");
            assert_eq!(
                plan.taps as u64,
                want["numtaps"].as_u64().unwrap(),
                "{name}: taps"
            );
            assert_eq!(spec.num_taps(Some(fs)).unwrap(), plan.taps, "{name}");
            match (plan.window.beta(), want["beta"].as_f64()) {
                (Some(got), Some(w)) => {
                    assert!((got - w).abs() <= F64_ULPS, "{name}: beta {got} vs {w}")
                }
                (None, None) => assert_eq!(plan.window, FirWindow::Hamming, "{name}"),
                other => panic!("{name}: beta {other:?}"),
            }
            match (plan.transition, want["transition"].as_f64()) {
                (Some(got), Some(w)) => assert!(
                    (got - w).abs() <= F64_ULPS,
                    "{name}: transition {got} vs {w}"
                ),
                (None, None) => {}
                other => panic!("{name}: transition {other:?}"),
            }
            // scipy's kaiserord itself, before the count is made odd.
            if let (Some(t), FirWindow::Kaiser { attenuation, .. }, Some(n)) =
                (plan.transition, plan.window, want["kaiserord"].as_u64())
            {
                assert_eq!(kaiserord(attenuation, t / (fs / 2.0)) as u64, n, "{name}");
            }
            let designed = spec.design(Some(fs)).unwrap();
            assert_eq!(designed.fir, Some(plan), "{name}");
            let taps = want["taps"].as_array().unwrap();
            assert_eq!(designed.taps.len(), taps.len(), "{name}");
            for (i, (g, w)) in designed.taps.iter().zip(taps).enumerate() {
                let w = w.as_f64().unwrap();
                assert!(
                    (f64::from(*g) - w).abs() <= F32_ROUNDING,
                    "{name} tap {i}: {g} vs scipy {w}"
                );
            }
            // The default transition fits by construction: no warning.
            if plan.transition.is_some() {
                assert!(
                    designed.warnings.is_empty(),
                    "{name}: {:?}",
                    designed.warnings
                );
            }
        }
    }

    #[test]
    fn the_default_transition_is_a_quarter_of_the_lowest_cutoff_within_the_room() {
        for (cutoffs, fs, want) in [
            (&[10.0][..], 100.0, 2.5),
            (&[45.0][..], 100.0, 5.0),
            (&[49.9][..], 100.0, 50.0 - 49.9),
            (&[0.2][..], 100.0, 0.05),
            (&[5.0, 20.0][..], 100.0, 1.25),
            (&[5.0, 6.0][..], 100.0, 1.0),
            (&[40.0, 48.0][..], 100.0, 2.0),
            (&[300.0, 6000.0][..], 30_000.0, 75.0),
        ] {
            assert_eq!(default_transition(cutoffs, fs), want, "{cutoffs:?} at {fs}");
        }
        // The two defaults together: --lowpass 10 at 100 Hz is 147 taps
        // (kaiserord(60, 2.5/50), printed by scipy), Kaiser, β 5.65326.
        let plan = FilterSpec::Lowpass {
            cutoff: 10.0,
            fir: FirDesign::default(),
        }
        .fir_plan(Some(100.0))
        .unwrap()
        .unwrap();
        assert_eq!(plan.taps, 147);
        assert_eq!(
            plan.window,
            FirWindow::Kaiser {
                attenuation: 60.0,
                beta: window::kaiser_beta(60.0)
            }
        );
        assert_eq!(plan.transition, Some(2.5));
    }

    /// Kaiser's formula is empirical (Oppenheim & Schafer: within ±2 of the
    /// order needed); on scipy's own designs the measured transition at the
    /// attenuation asked is 0.976–1.008 of the width asked (freqz, seven
    /// designs from 30 to 100 dB). 2 % of the width, plus one grid step
    /// either side of the measured band.
    const KAISER_FORMULA_REL: f64 = 0.02;

    #[test]
    fn kaiser_designs_reach_their_attenuation_within_the_transition() {
        for (cutoff, transition, attenuation, pass_above) in [
            (10.0, 2.5, 60.0, false),
            (5.0, 1.25, 60.0, true),
            (10.0, 4.0, 80.0, true),
            (45.0, 5.0, 60.0, false),
            (10.0, 2.5, 30.0, false),
        ] {
            let fir = FirDesign {
                transition: Some(transition),
                attenuation: Some(attenuation),
                ..FirDesign::default()
            };
            let spec = if pass_above {
                FilterSpec::Highpass { cutoff, fir }
            } else {
                FilterSpec::Lowpass { cutoff, fir }
            };
            let designed = spec.design(Some(100.0)).unwrap();
            let plan = designed.fir.unwrap();
            let step = transition / 500.0;
            let top = (cutoff + 2.0 * transition).min(50.0 - step);
            let width = measured_transition(
                &designed.taps,
                attenuation,
                100.0,
                cutoff,
                pass_above,
                step,
                top,
            );
            let tol = KAISER_FORMULA_REL * transition + 2.0 * step;
            assert!(
                width <= transition + tol,
                "{spec:?}: measured {width} Hz, asked {transition}"
            );
            // And the width the warning uses is the formula inverted.
            let formula = plan.window.transition_width(plan.taps, 100.0);
            assert!(
                (formula - width).abs() <= tol && formula <= transition,
                "{spec:?}: formula {formula} Hz, measured {width}"
            );
        }
    }

    #[test]
    fn a_kaiser_window_warns_with_its_own_taps() {
        // 101 Kaiser taps at 60 dB: (60 − 7.95) / (2.285·2π) · 100 / 100 =
        // 3.63 Hz of transition against 0.2 Hz of room.
        let spec = FilterSpec::Highpass {
            cutoff: 0.2,
            fir: FirDesign {
                window: Some(WindowKind::Kaiser),
                ..FirDesign::taps(101)
            },
        };
        let designed = spec.design(Some(100.0)).unwrap();
        let [
            FilterWarning::WideTransition {
                transition,
                suggested_taps,
                asked: None,
                ..
            },
        ] = designed.warnings[..]
        else {
            panic!("{:?}", designed.warnings);
        };
        assert!((transition - 3.6254).abs() < 1e-4, "{transition}");
        // scipy.signal.kaiserord(60, 0.2/50)[0] = 1814, odd for a high-pass.
        assert_eq!(suggested_taps, 1815);
        let text = designed.warnings[0].to_string();
        assert!(
            text.contains("Kaiser window of β 5.65") && text.contains("--taps 1815"),
            "{text}"
        );
        let fitted = FilterSpec::Highpass {
            cutoff: 0.2,
            fir: FirDesign {
                window: Some(WindowKind::Kaiser),
                ..FirDesign::taps(1815)
            },
        }
        .design(Some(100.0))
        .unwrap();
        assert!(fitted.warnings.is_empty(), "{:?}", fitted.warnings);
        let step = 0.0005;
        let width = measured_transition(&fitted.taps, 60.0, 100.0, 0.2, true, step, 1.0);
        assert!(
            width <= 0.2 * (1.0 + KAISER_FORMULA_REL) + 2.0 * step,
            "{width}"
        );

        // A --transition wider than the room: the warning names the
        // transition that fits, and its taps.
        let wide = FilterSpec::Lowpass {
            cutoff: 45.0,
            fir: FirDesign {
                transition: Some(10.0),
                ..FirDesign::default()
            },
        }
        .design(Some(100.0))
        .unwrap();
        let [
            FilterWarning::WideTransition {
                neighbour,
                room,
                taps,
                asked,
                suggested_taps,
                ..
            },
        ] = wide.warnings[..]
        else {
            panic!("{:?}", wide.warnings);
        };
        // kaiserord(60, 10/50) = 38 -> 39; kaiserord(60, 5/50) = 74 -> 75.
        assert_eq!(
            (neighbour, room, taps, asked, suggested_taps),
            (Neighbour::Nyquist(50.0), 5.0, 39, Some(10.0), 75)
        );
        let text = wide.warnings[0].to_string();
        assert!(
            text.contains("--transition 10 Hz")
                && text.contains("--transition 5 or narrower (75 taps)"),
            "{text}"
        );
    }

    #[test]
    fn a_hamming_window_without_taps_takes_the_taps_that_fit_its_width() {
        // ceil(3.4 · 100 / 2.5 + 1) = 137, odd already; and 0.2 Hz of room
        // at 100 Hz: 1701 (the count the Hamming warning suggests).
        for (cutoff, want) in [(10.0, 137), (0.8, 1701)] {
            let plan = FilterSpec::Lowpass {
                cutoff,
                fir: FirDesign {
                    window: Some(WindowKind::Hamming),
                    ..FirDesign::default()
                },
            }
            .fir_plan(Some(100.0))
            .unwrap()
            .unwrap();
            assert_eq!((plan.taps, plan.window), (want, FirWindow::Hamming));
        }
    }

    #[test]
    fn bad_lengths_windows_and_attenuations_are_refused() {
        let lowpass = |fir: FirDesign| FilterSpec::Lowpass { cutoff: 10.0, fir };
        let refused = [
            (
                FirDesign {
                    transition: Some(0.0),
                    ..FirDesign::default()
                },
                "--transition 0",
            ),
            (
                FirDesign {
                    transition: Some(f64::NAN),
                    ..FirDesign::default()
                },
                "--transition NaN",
            ),
            (
                FirDesign {
                    transition: Some(-1.0),
                    ..FirDesign::default()
                },
                "--transition -1",
            ),
            (
                FirDesign {
                    transition: Some(1.0),
                    ..FirDesign::taps(11)
                },
                "--transition 1 with --taps 11",
            ),
            (
                FirDesign {
                    attenuation: Some(60.0),
                    ..FirDesign::taps(11)
                },
                "--attenuation 60 shapes a Kaiser window",
            ),
            (
                FirDesign {
                    attenuation: Some(60.0),
                    window: Some(WindowKind::Hamming),
                    ..FirDesign::default()
                },
                "--attenuation 60 shapes a Kaiser window",
            ),
            (
                FirDesign {
                    attenuation: Some(0.0),
                    ..FirDesign::default()
                },
                "--attenuation 0",
            ),
            (
                FirDesign {
                    attenuation: Some(f64::INFINITY),
                    ..FirDesign::default()
                },
                "--attenuation inf",
            ),
            (
                FirDesign {
                    attenuation: Some(301.0),
                    ..FirDesign::default()
                },
                "at most 300",
            ),
            (
                FirDesign {
                    attenuation: Some(7.0),
                    ..FirDesign::default()
                },
                "kaiserord) needs at least 8 dB",
            ),
            (FirDesign::taps(MAX_DESIGN_TAPS + 1), "at most 8388608 taps"),
            (FirDesign::taps(usize::MAX), "at most 8388608 taps"),
        ];
        for (fir, phrase) in refused {
            let e = lowpass(fir).validate().unwrap_err();
            assert!(matches!(e, Error::Usage { .. }), "{fir:?}: {e}");
            assert!(e.to_string().contains(phrase), "{fir:?}: {e}");
        }
        // Below 8 dB a Kaiser window still works with given taps (β 0:
        // kaiser_beta is 0 up to 21 dB, a rectangular window).
        let rect = lowpass(FirDesign {
            window: Some(WindowKind::Kaiser),
            attenuation: Some(7.0),
            ..FirDesign::taps(11)
        });
        assert_eq!(
            rect.fir_plan(Some(100.0)).unwrap().unwrap().window.beta(),
            Some(0.0)
        );

        // What needs the sample rate: a transition at or above Nyquist, and
        // one so narrow that its taps pass MAX_DESIGN_TAPS, refused before
        // anything is allocated.
        let at_rate = |transition: f64| {
            lowpass(FirDesign {
                transition: Some(transition),
                ..FirDesign::default()
            })
            .fir_plan(Some(100.0))
            .unwrap_err()
            .to_string()
        };
        assert!(
            at_rate(50.0).contains("narrower than the Nyquist"),
            "{}",
            at_rate(50.0)
        );
        // kaiserord(60, 1e-5/50) = 36,253,897 taps.
        let e = at_rate(1e-5);
        assert!(
            e.contains("36253897 taps") && e.contains("give a wider --transition"),
            "{e}"
        );
        let e = at_rate(f64::MIN_POSITIVE);
        assert!(e.contains("too many taps"), "{e}");
        let e = FilterSpec::Highpass {
            cutoff: 1e-4,
            fir: FirDesign::default(),
        }
        .design(Some(100.0))
        .unwrap_err();
        assert!(e.to_string().contains("(the default: a quarter"), "{e}");
        // The default needs a sample rate as every design does.
        let e = lowpass(FirDesign::default()).num_taps(None).unwrap_err();
        assert!(
            e.to_string().contains("--lowpass needs a sample rate"),
            "{e}"
        );
    }
}
