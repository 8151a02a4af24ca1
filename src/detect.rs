//! Event detection: characteristic functions and ObsPy's trigger logic.
//!
//! INTERFACE (filled in by the detection implementation).

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
    /// The input has ended: appends any event still open.
    fn finish(&mut self, events: &mut Vec<Event>);
}

/// The built-in detectors and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorSpec {
    /// Characteristic function |y|.
    Threshold {
        /// Trigger-on level.
        on: f64,
        /// Trigger-off level.
        off: f64,
        /// Longest event in samples.
        max_len: Option<u64>,
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
    },
}

impl DetectorSpec {
    /// A fresh detector for one channel.
    pub fn build(&self) -> Box<dyn Detector> {
        unimplemented!("detect is being written")
    }
}
