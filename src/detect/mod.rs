//! Event detection: characteristic functions and ObsPy's trigger logic.
//!
//! Why this module exists: detection runs over every sample of inputs far
//! larger than memory, one chunk at a time, and its answer must not depend on
//! where the chunk boundaries fall. Every detector here therefore carries all
//! of its state across [`Detector::process`] calls (running sums, recursion
//! state, warm-up counter, the trigger's state machine and the open event's
//! peak), works through its input in fixed sub-blocks of [`BLOCK`] samples
//! with scratch space allocated once at construction, and performs the same
//! arithmetic, in the same order, for each sample whatever the split. Results
//! are bit-for-bit identical for any chunking (checked by `tests/detect.rs`,
//! and with dead time and polarity by `tests/detect_features.rs`).
//!
//! The detectors reproduce ObsPy (`obspy/signal/trigger.py`,
//! `obspy/signal/src/stalta.c`, `obspy/signal/src/recstalta.c`); the
//! characteristic function (cft) is computed in `f64` from the `f32` samples:
//!
//! * **Threshold**: cft = |y| by default; with a [`Polarity`], `y`
//!   (`pos`) or `−y` (`neg`, for negative spikes: a sample of −80 is a cft,
//!   and a reported `peak_value`, of 80). Its levels are therefore positive:
//!   `on > 0`, `off >= 0`, and a negative `--on` is refused with a pointer
//!   to `--polarity neg`.
//! * **Classic STA/LTA** (`classic_sta_lta`, C version): with `a` the sample
//!   as `f64`, `sta` and `lta` are the sums of `a²` over the last `nsta` and
//!   `nlta` samples (current included), kept as running sums
//!   `sum += a² − a_old²` exactly as `stalta.c` does (the difference is taken
//!   first, so the dependency chain is one add per sample), and
//!   cft = `sta / lta * (nlta / nsta)`. ObsPy sets cft[0 .. nlta−1) = 0; the
//!   first ratio is at index `nlta − 1`, where the long window is first full.
//!   (The Python twin `classic_sta_lta_py` uses a cumulative sum instead;
//!   same zeros, values equal up to rounding.) Where the long window holds
//!   only zeros the cft is `0/0 = NaN`, as in the C code (the Python twins
//!   clamp `lta` to the smallest normal number and give 0); neither triggers
//!   unless `on <= 0`. The same holds for the recursive detector.
//! * **Recursive STA/LTA** (`recstalta.c`): `csta = 1/nsta`, `clta = 1/nlta`,
//!   `sta = csta·a² + (1−csta)·sta` (same for `lta`), both starting at 0 and
//!   updated from index 1 on: sample 0 never enters the recursion.
//!   cft = `sta / lta`, and cft[0 .. nlta) = 0.
//! * **Trigger** ([`Trigger`], ObsPy's current `trigger_onset`): an onset is
//!   the start of a run of samples with cft `>=` on (`>=`, not `>`: older
//!   ObsPy versions compared with `>`); the event ends at the last sample of
//!   the first run with cft `>=` off that ends at or after the onset; onsets
//!   up to that end are swallowed. With `max_len` (and without
//!   `max_len_delete`, which we do not offer) an event whose end would lie
//!   more than `max_len` samples after its onset ends at `onset + max_len`
//!   (so it spans `max_len + 1` samples), and the next event needs a new run
//!   start above `on` after that cut. An event still open when the data ends
//!   ends at the last sample. The peak is the first maximum of cft within
//!   `[start, end]`.
//!
//! `off > on` is allowed, as in ObsPy, and behaves as ObsPy's code does: the
//! onset is still the start of a run `>= on`, but the event then lasts until
//! the end of the first run `>= off` that ends at or after the onset, even if
//! that run begins later, after cft has dropped below `on` in between.
//!
//! **Dead time** (a refractory period, `dead` samples; not in ObsPy): after
//! an event's onset `s`, no event starts on that channel before `s + dead`.
//! An onset that ObsPy's rules would give at `t < s + dead` (a run start
//! after the event has ended) merges into the event instead: the event goes
//! on from `t` under the same rules (it ends at the end of the first run
//! `>= off` that ends at or after `t`, and further onsets before
//! `s + dead` merge too), keeps its start `s`, and its peak is the first
//! maximum of the cft over the whole merged span `[s, end]`, the samples
//! between the merged runs included. An onset at exactly `s + dead` starts
//! a new event. An event is reported once its dead window has passed (or
//! at the end of the data), so it may be reported up to `dead` samples
//! after its end. With `max_len` the cut stays where it was: the merged
//! event ends at the latest at `s + max_len`, and once the cut index is
//! reached (whether the event is still open then, or has ended and waits in
//! its dead window) the event is final, and onsets before `s + dead` are
//! dropped: they neither merge nor start an event, and a run that begins
//! there and lasts past `s + dead` does not start one either (an onset is a
//! run start). So the onsets of one channel's events are always at least
//! `dead` samples apart. `dead = 0` (or none) is ObsPy's behaviour.
//!
//! Where we differ from ObsPy, on purpose:
//!
//! * An event open at the end whose cft never reached `off` after its onset
//!   (possible only with `off > on`) ends at the last sample; ObsPy reports
//!   `len(charfct)`, one past the data, or raises `IndexError` when no sample
//!   at all reaches `off`.
//! * Warm-up zeros do not depend on the length of the input: ObsPy's C
//!   `recstalta` zeroes cft[0 .. nlta) only when the trace is longer than
//!   `nlta`, and `stalta.c` refuses traces shorter than `nlta`; a stream's
//!   length is unknown until its end, so we always zero the warm-up.
//! * Drift: running sums over billions of samples accumulate rounding error
//!   (and keep a residue after a loud burst leaves the window, which turns a
//!   stretch of exact zeros into a ratio of two residues). The classic
//!   detector therefore recomputes both window sums from its history buffer
//!   every `nlta + BLOCK` samples, at fixed absolute sample counts (so the
//!   result still does not depend on chunking). Up to the first resync,
//!   at sample `nlta + BLOCK − 1`, the cft is bit-for-bit that of
//!   `stalta.c`; from there on it agrees to rounding (and is closer to the
//!   exact window sums).
//! * Non-finite samples (NaN, ±Inf): in ObsPy one NaN poisons the running
//!   sums, and the recursive state, for the rest of the trace (`NaN − NaN`
//!   stays NaN), so nothing after it is ever detected. Here a non-finite
//!   sample enters the sums (or the recursion) as `a² = 0`, which is exact to
//!   add and later to subtract, so the sums recover completely once it
//!   leaves the window; and the cft is NaN (never triggers, ends an open
//!   event) at that sample and the `nlta − 1` samples after it, i.e. for as
//!   long as it lies inside the long window. For the recursive detector the
//!   same `nlta`-sample NaN stretch is used. The threshold detector's cft is
//!   |y| itself: NaN never triggers, ±Inf is a (huge) value like any other.
//!   Warm-up zeros take precedence over that NaN stretch.
//!
//! Beside the detectors: [`noise`] measures each channel's noise level
//! (SpikeInterface's MAD), from which per-channel levels are set
//! ([`DetectorSpec::with_levels`]); [`coincidence`] groups the channels'
//! events into network events as ObsPy's `coincidence_trigger` does.

mod classic;
pub mod coincidence;
pub mod dedup;
pub mod noise;
mod recursive;
pub mod snippet;
mod threshold;
mod trigger;

use crate::pool::Block;

pub use trigger::{RangeSync, Trigger};

/// Long windows of halo before a shard's recursive STA/LTA is trusted
/// ([`DetectorSpec::converge`]).
pub const RECURSIVE_HALO_LTAS: u64 = 50;

/// Samples per sub-block inside the built-in detectors: the size of their
/// scratch buffers, allocated once at construction, so `process` never
/// allocates whatever the chunk size. The classic STA/LTA's history ring
/// (and so its resync schedule) is sized from it.
pub const BLOCK: usize = 4096;

/// Sub-block of the threshold and recursive detectors, whose results do not
/// depend on how their input is cut (their state is carried sample by
/// sample): 512 `f64` values (4 KiB) per channel, against 32 KiB for a
/// [`BLOCK`], since every channel of a 385-channel probe holds one (12 MiB
/// at [`BLOCK`]) while the per-call costs (one trigger pass per sub-block)
/// are already negligible at 512 samples.
const SCRATCH_BLOCK: usize = 512;

/// One detected event, in sample indices of the detector's input stream.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Event {
    /// Channel (0-based).
    pub channel: usize,
    /// First sample of the event (onset, inclusive).
    pub start: u64,
    /// Last sample of the event (inclusive).
    pub end: u64,
    /// Index of the largest characteristic-function value in the event.
    pub peak_index: u64,
    /// That value.
    pub peak_value: f64,
}

/// A detector that consumes one channel's samples chunk by chunk and keeps
/// whatever state it needs across chunk boundaries.
pub trait Detector: Send {
    /// Looks at `samples`, whose first sample has absolute index `offset`,
    /// and appends the events that are complete to `events`.
    fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>);
    /// As [`Detector::process`], the samples being frames `frames` of
    /// channel `channel` of `block`. The engine calls this where the
    /// samples lie in a block; a detector that hands them on without
    /// copying them (Python's custom detector) overrides it and takes them
    /// with [`Block::share`]. The default reads them in place.
    fn process_in(
        &mut self,
        block: &Block,
        channel: usize,
        frames: std::ops::Range<usize>,
        offset: u64,
        events: &mut Vec<Event>,
    ) {
        self.process(block.channel_span(channel, frames), offset, events);
    }
    /// The input has ended: appends any event still open.
    fn finish(&mut self, events: &mut Vec<Event>);
    /// The onset of an event that has begun but is not finished yet, if any.
    /// The pipeline uses it to write events in order of start across
    /// channels while streaming. A detector that reports each event as soon
    /// as it is complete and never one that started before the current chunk
    /// may keep the default.
    fn open_event_start(&self) -> Option<u64> {
        None
    }
    /// The index of the running peak (first maximum so far) of the event
    /// that [`Detector::open_event_start`] reports, if any. The default,
    /// `None`, says the detector does not tell.
    fn open_event_peak(&self) -> Option<u64> {
        None
    }
}

/// Which excursions the threshold detector looks for: its cft is `y`
/// ([`Polarity::Pos`]), `−y` ([`Polarity::Neg`]) or `|y|`
/// ([`Polarity::Both`], the default). With `Neg`, an event's `peak_value` is
/// the cft's value, `−y`, so it is positive: a spike to −80 reports 80.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Positive excursions: cft = y.
    Pos,
    /// Negative excursions (extracellular spikes): cft = −y.
    Neg,
    /// Both: cft = |y|.
    #[default]
    Both,
}

/// The built-in detectors and their parameters. In JSON (the report) a
/// detector is an object whose `kind` is `threshold`, `classic_sta_lta` or
/// `recursive_sta_lta`, with the parameters beside it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorSpec {
    /// Characteristic function y, −y or |y| (see [`Polarity`]).
    Threshold {
        /// Trigger-on level (above 0).
        on: f64,
        /// Trigger-off level (0 or above).
        off: f64,
        /// Longest event in samples.
        max_len: Option<u64>,
        /// Dead time in samples (see the module docs); `None` or 0: none.
        dead: Option<u64>,
        /// Which excursions count.
        polarity: Polarity,
    },
    /// ObsPy's `classic_sta_lta`.
    ClassicStaLta {
        /// Short window in samples.
        nsta: usize,
        /// Long window in samples.
        nlta: usize,
        /// Trigger-on level.
        on: f64,
        /// Trigger-off level.
        off: f64,
        /// Longest event in samples.
        max_len: Option<u64>,
        /// Dead time in samples (see the module docs); `None` or 0: none.
        dead: Option<u64>,
    },
    /// ObsPy's `recursive_sta_lta`.
    RecursiveStaLta {
        /// Short window in samples.
        nsta: usize,
        /// Long window in samples.
        nlta: usize,
        /// Trigger-on level.
        on: f64,
        /// Trigger-off level.
        off: f64,
        /// Longest event in samples.
        max_len: Option<u64>,
        /// Dead time in samples (see the module docs); `None` or 0: none.
        dead: Option<u64>,
    },
}

/// Which built-in detector (without its parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    /// |y| against the levels.
    Threshold,
    /// ObsPy's `classic_sta_lta`.
    ClassicStaLta,
    /// ObsPy's `recursive_sta_lta`.
    RecursiveStaLta,
}

impl Polarity {
    /// The name as `--polarity` takes it (`pos`, `neg`, `both`).
    pub fn name(self) -> &'static str {
        match self {
            Polarity::Pos => "pos",
            Polarity::Neg => "neg",
            Polarity::Both => "both",
        }
    }
}

/// A window length, in samples or in seconds (converted with the input's
/// sample rate, rounded to the nearest sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowLen {
    /// Samples.
    Samples(usize),
    /// Seconds.
    Seconds(f64),
}

/// A detector as a user states it: levels, and windows in samples or
/// seconds. [`DetectorSpec::from_options`] turns it into a checked
/// [`DetectorSpec`] once the sample rate is known, so every front (CLI,
/// Python) gets the same rules and messages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectorOptions {
    /// Trigger-on level (required).
    pub on: Option<f64>,
    /// Trigger-off level (default: `on`).
    pub off: Option<f64>,
    /// STA window (STA/LTA detectors).
    pub sta: Option<WindowLen>,
    /// LTA window (STA/LTA detectors).
    pub lta: Option<WindowLen>,
    /// Longest event in samples.
    pub max_len: Option<u64>,
    /// Which excursions the threshold detector looks for (default
    /// [`Polarity::Both`]); only the threshold detector takes one.
    pub polarity: Option<Polarity>,
    /// Dead time (refractory period) after each onset; 0 means none.
    pub dead: Option<WindowLen>,
}

impl DetectorSpec {
    /// The detector `kind` with `options`, windows in seconds converted
    /// with `sample_rate`, checked ([`DetectorSpec::validate`]).
    ///
    /// A dead time in seconds becomes `round(s · fs)` samples, like the
    /// windows; one of 0 samples (or 0 seconds) means none.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the option (`--on`, `--sta`,
    /// `--sta-seconds`, `--polarity`, `--dead-time`, ...) that is missing or
    /// wrong.
    pub fn from_options(
        kind: DetectorKind,
        options: &DetectorOptions,
        sample_rate: Option<f64>,
    ) -> crate::Result<Self> {
        use crate::error::Error;
        let on = options
            .on
            .ok_or_else(|| Error::usage("--detect needs a trigger-on level: give --on LEVEL"))?;
        let off = options.off.unwrap_or(on);
        let max_len = options.max_len;
        // Seconds to samples (rounded to the nearest), `None` without a
        // sample rate; `zero_ok` for lengths where 0 means "none".
        let seconds = |s: f64, name: &str, zero_ok: bool| -> crate::Result<u64> {
            let fs = sample_rate.ok_or_else(|| {
                Error::usage(format!(
                    "--{name} needs a sample rate: the input has none, give --sample-rate HZ"
                ))
            })?;
            let valid = s.is_finite() && (s > 0.0 || (zero_ok && s == 0.0));
            if !valid {
                let what = if zero_ok {
                    "0 or more"
                } else {
                    "a positive number of"
                };
                return Err(Error::usage(format!(
                    "--{name} must be {what} seconds (got {s})"
                )));
            }
            let n = (s * fs).round();
            if n > (1u64 << 40) as f64 {
                return Err(Error::usage(format!(
                    "--{name} {s}: {n} samples is more than any detector can hold"
                )));
            }
            Ok(n as u64)
        };
        let window = |w: Option<WindowLen>, name: &str| -> crate::Result<usize> {
            match w {
                Some(WindowLen::Samples(n)) => Ok(n),
                Some(WindowLen::Seconds(s)) => {
                    Ok((seconds(s, &format!("{name}-seconds"), false)? as usize).max(1))
                }
                None => Err(Error::usage(format!(
                    "this detector needs --{name} N (samples) or --{name}-seconds S"
                ))),
            }
        };
        let dead = match options.dead {
            None => None,
            Some(WindowLen::Samples(n)) => Some(n as u64),
            Some(WindowLen::Seconds(s)) => Some(seconds(s, "dead-time", true)?),
        }
        .filter(|&n| n > 0);
        if kind != DetectorKind::Threshold
            && let Some(p) = options.polarity
        {
            return Err(Error::usage(format!(
                "--polarity {}: only the threshold detector takes a polarity (an STA/LTA ratio of squares has none)",
                p.name()
            )));
        }
        let spec = match kind {
            DetectorKind::Threshold => DetectorSpec::Threshold {
                on,
                off,
                max_len,
                dead,
                polarity: options.polarity.unwrap_or_default(),
            },
            DetectorKind::ClassicStaLta => DetectorSpec::ClassicStaLta {
                nsta: window(options.sta, "sta")?,
                nlta: window(options.lta, "lta")?,
                on,
                off,
                max_len,
                dead,
            },
            DetectorKind::RecursiveStaLta => DetectorSpec::RecursiveStaLta {
                nsta: window(options.sta, "sta")?,
                nlta: window(options.lta, "lta")?,
                on,
                off,
                max_len,
                dead,
            },
        };
        spec.validate().map_err(Error::usage)?;
        Ok(spec)
    }

    /// Samples of the past the detector looks at (its longest window).
    pub fn history(&self) -> usize {
        match self {
            DetectorSpec::Threshold { .. } => 0,
            DetectorSpec::ClassicStaLta { nlta, .. }
            | DetectorSpec::RecursiveStaLta { nlta, .. } => *nlta,
        }
    }

    /// Bytes one channel's detector allocates when built (its scratch and
    /// history buffers), for the memory budget of the chunk planner.
    pub fn memory_bytes(&self) -> u64 {
        const F64: u64 = 8;
        let scratch = |n: usize| (n as u64).saturating_mul(F64);
        match *self {
            DetectorSpec::Threshold { .. } | DetectorSpec::RecursiveStaLta { .. } => {
                scratch(SCRATCH_BLOCK)
            }
            DetectorSpec::ClassicStaLta { nlta, .. } => {
                scratch(nlta.saturating_add(BLOCK)).saturating_add(scratch(BLOCK))
            }
        }
    }

    /// Checks the parameters; the message names the offending command-line
    /// option (`--sta`, `--lta`, `--on`, `--off`, `--max-len`).
    ///
    /// Requires `nsta >= 1`, `nlta > nsta`, finite `on` and `off` and
    /// `max_len >= 1`; for the threshold detector also `on > 0` and
    /// `off >= 0` (its cft is signed with [`Polarity::Pos`] and
    /// [`Polarity::Neg`]: a negative level would catch the other polarity,
    /// which is what `--polarity` is for). `off > on` is allowed (see the
    /// module docs). Any dead time is valid.
    pub fn validate(&self) -> Result<(), String> {
        let (on, off, max_len) = self.levels();
        if let Self::ClassicStaLta { nsta, nlta, .. } | Self::RecursiveStaLta { nsta, nlta, .. } =
            *self
        {
            if nsta < 1 {
                return Err("--sta must be at least 1 sample".to_owned());
            }
            if nlta <= nsta {
                return Err(format!(
                    "--lta must be longer than --sta (got --lta {nlta} and --sta {nsta} samples)"
                ));
            }
        }
        if !on.is_finite() {
            return Err(format!("--on must be a finite number (got {on})"));
        }
        if !off.is_finite() {
            return Err(format!("--off must be a finite number (got {off})"));
        }
        if let Self::Threshold { .. } = self {
            if on < 0.0 {
                return Err(format!(
                    "--on {on}: the threshold's level is positive; use --polarity neg to detect negative excursions"
                ));
            }
            if on == 0.0 {
                return Err(
                    "--on 0: the threshold's level must be above 0 (at 0 every sample of the quiet signal would trigger)"
                        .to_owned(),
                );
            }
            if off < 0.0 {
                return Err(format!(
                    "--off {off}: the threshold's off level must be 0 or above (the events end where the cft falls below it)"
                ));
            }
        }
        if max_len == Some(0) {
            return Err("--max-len must be at least 1 sample".to_owned());
        }
        Ok(())
    }

    /// A fresh detector for one channel; its events carry channel 0 (see
    /// [`DetectorSpec::build_for_channel`]).
    ///
    /// # Panics
    /// If [`DetectorSpec::validate`] fails: validate user input first.
    pub fn build(&self) -> Box<dyn Detector> {
        self.build_for_channel(0)
    }

    /// A fresh detector whose events carry `channel`.
    ///
    /// Allocates everything it will ever need here: a scratch buffer of
    /// [`BLOCK`] values, plus, for the classic STA/LTA, a history of
    /// `nlta + BLOCK` values (8 bytes each).
    ///
    /// # Panics
    /// If [`DetectorSpec::validate`] fails: validate user input first.
    pub fn build_for_channel(&self, channel: usize) -> Box<dyn Detector> {
        self.build_in(channel, None)
    }

    /// A fresh detector for one shard of a longer stream
    /// ([`crate::shard`]): its trigger reports the events between the
    /// shard's sync points only, and its sample count starts at `origin`,
    /// the stream index of the shard's first sample, so that the classic
    /// STA/LTA resynchronises its sums at the same absolute sample counts
    /// as a run over the whole stream (and the warm-up applies at the
    /// stream's start only).
    ///
    /// # Panics
    /// As [`DetectorSpec::build_for_channel`], and if `off > on`
    /// ([`DetectorSpec::syncs`] is false).
    pub fn build_ranged(&self, origin: u64, sync: RangeSync) -> Box<dyn Detector> {
        self.build_in(0, Some((origin, sync)))
    }

    fn build_in(&self, channel: usize, range: Option<(u64, RangeSync)>) -> Box<dyn Detector> {
        if let Err(msg) = self.validate() {
            panic!("invalid detector parameters: {msg}");
        }
        let (on, off, max_len) = self.levels();
        let mut trigger = Trigger::new(on, off, max_len)
            .with_channel(channel)
            .with_dead(self.dead().unwrap_or(0));
        let mut origin = 0;
        if let Some((o, sync)) = range {
            trigger = trigger.with_sync(sync);
            origin = o;
        }
        match *self {
            Self::Threshold { polarity, .. } => {
                Box::new(threshold::Threshold::new(trigger, polarity))
            }
            Self::ClassicStaLta { nsta, nlta, .. } => {
                Box::new(classic::ClassicStaLta::new(nsta, nlta, trigger).starting_at(origin))
            }
            Self::RecursiveStaLta { nsta, nlta, .. } => {
                Box::new(recursive::RecursiveStaLta::new(nsta, nlta, trigger).starting_at(origin))
            }
        }
    }

    /// Whether a shard's events can be cut at sync points: `off <= on`.
    /// With `off > on` an event lasts until a later run `>= off`, however
    /// long the quiet before it, so no stretch of data closes it.
    #[expect(
        clippy::neg_cmp_op_on_partial_ord,
        reason = "NaN levels (from a NaN noise level) trigger nothing and sync anywhere"
    )]
    pub fn syncs(&self) -> bool {
        let (on, off, _) = self.levels();
        !(off > on)
    }

    /// Samples a shard's detector must see before its cft equals a run
    /// over the whole stream from the same input ([`crate::shard`]):
    /// - threshold: none (the cft is the sample);
    /// - classic STA/LTA: the long window, then up to one resync period
    ///   (`nlta + BLOCK`), after which its sums are recomputed from the
    ///   window alone and are the whole run's, bit for bit;
    /// - recursive STA/LTA: [`RECURSIVE_HALO_LTAS`] long windows. Its memory
    ///   never ends; a difference in its state shrinks by `1 − 1/nlta` per
    ///   sample, so after `k·nlta` samples by `e^−k`: at 50 windows,
    ///   `2·10^−22`, far below one f64 rounding (`1.1·10^−16`), after which
    ///   the two recursions round alike and in practice agree bit for bit
    ///   (not a proof: the tests check events equal).
    ///
    /// Plus `max(dead, 1)` samples: the quiet stretch before a sync point.
    pub fn converge(&self) -> u64 {
        let lead = match *self {
            DetectorSpec::Threshold { .. } => 0,
            DetectorSpec::ClassicStaLta { nlta, .. } => 2 * nlta as u64 + BLOCK as u64,
            DetectorSpec::RecursiveStaLta { nlta, .. } => RECURSIVE_HALO_LTAS * nlta as u64,
        };
        lead + self.dead().unwrap_or(0).max(1)
    }

    /// The trigger parameters shared by every variant.
    fn levels(&self) -> (f64, f64, Option<u64>) {
        match *self {
            Self::Threshold {
                on, off, max_len, ..
            }
            | Self::ClassicStaLta {
                on, off, max_len, ..
            }
            | Self::RecursiveStaLta {
                on, off, max_len, ..
            } => (on, off, max_len),
        }
    }

    /// The dead time in samples, `None` when there is none (`Some(0)` is
    /// none as well).
    pub fn dead(&self) -> Option<u64> {
        match *self {
            Self::Threshold { dead, .. }
            | Self::ClassicStaLta { dead, .. }
            | Self::RecursiveStaLta { dead, .. } => dead.filter(|&n| n > 0),
        }
    }

    /// The threshold detector's polarity; [`Polarity::Both`] for the
    /// STA/LTA detectors, whose cft does not depend on the sign.
    pub fn polarity(&self) -> Polarity {
        match *self {
            Self::Threshold { polarity, .. } => polarity,
            Self::ClassicStaLta { .. } | Self::RecursiveStaLta { .. } => Polarity::Both,
        }
    }

    /// The trigger-on and trigger-off levels.
    pub fn on_off(&self) -> (f64, f64) {
        match self {
            Self::Threshold { on, off, .. }
            | Self::ClassicStaLta { on, off, .. }
            | Self::RecursiveStaLta { on, off, .. } => (*on, *off),
        }
    }

    /// The same detector with trigger levels `on` and `off` (for instance
    /// a multiple of each channel's noise level, see [`noise`]). Not
    /// validated: call [`DetectorSpec::validate`] on the result.
    #[must_use]
    pub fn with_levels(&self, on: f64, off: f64) -> DetectorSpec {
        let mut spec = self.clone();
        match &mut spec {
            Self::Threshold { on: o, off: f, .. }
            | Self::ClassicStaLta { on: o, off: f, .. }
            | Self::RecursiveStaLta { on: o, off: f, .. } => (*o, *f) = (on, off),
        }
        spec
    }
}

/// Squares of `samples` as `f64` into `out` (same length), with non-finite
/// samples entering as 0 (see the module docs); returns whether any sample
/// was non-finite. Written branch-free so that it vectorises.
fn squares_into(out: &mut [f64], samples: &[f32]) -> bool {
    debug_assert_eq!(out.len(), samples.len());
    let mut any_bad = false;
    for (o, &x) in out.iter_mut().zip(samples) {
        let a = f64::from(x);
        let finite = x.is_finite();
        // Squares of f32 values are exact in f64 (48 significant bits).
        *o = if finite { a * a } else { 0.0 };
        any_bad |= !finite;
    }
    any_bad
}

/// Tracks where the cft must be NaN because a non-finite sample lies in the
/// long window, and where it must be 0 for the warm-up. Shared by both
/// STA/LTA detectors; counts are detector-internal (samples seen since
/// construction), not stream offsets.
#[derive(Debug, Clone)]
struct Masks {
    /// Samples whose cft is forced to 0 (ObsPy's warm-up zeros).
    warm_up: u64,
    /// How many samples a non-finite sample poisons (itself included).
    poison_len: u64,
    /// The cft is NaN for sample counts below this.
    bad_until: u64,
}

impl Masks {
    /// Applies NaN stretches and warm-up zeros to `cft`, the cft of
    /// `samples`, whose first sample is sample number `seen`. `any_bad` says
    /// whether `samples` holds a non-finite value.
    fn apply(&mut self, cft: &mut [f64], samples: &[f32], seen: u64, any_bad: bool) {
        if any_bad || self.bad_until > seen {
            for (k, (c, x)) in cft.iter_mut().zip(samples).enumerate() {
                let count = seen + k as u64;
                if !x.is_finite() {
                    self.bad_until = count + self.poison_len;
                }
                if count < self.bad_until {
                    *c = f64::NAN;
                }
            }
        }
        if seen < self.warm_up {
            let zeros =
                usize::try_from(self.warm_up - seen).map_or(cft.len(), |z| z.min(cft.len()));
            cft[..zeros].fill(0.0);
        }
    }
}
