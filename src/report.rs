//! One JSON vocabulary for every report: what an input is, what a run did.
//!
//! Why a module of its own: `info --json`, `process`, `fft`, `spectrogram`
//! and `psd` reports (and the Python front) must use the same words for the
//! same things, and a report must have one shape whatever the number of
//! inputs. Building every report here keeps that true by construction:
//!
//! ```text
//! {
//!   "sigstream": "0.1.0",          crate version
//!   "command": "process",
//!   "backend": "cpu", "device": "x86_64 (2 cores)",
//!   "seconds": 1.23,               wall time of the whole run
//!   "peak_rss_mb": 14.2,           see crate::pipeline::stats::peak_rss_bytes
//!   "inputs": [ {input, format, dtype, channels, samples, sample_rate,
//!                duration_s, seconds, bytes, throughput_mb_s, outputs, ...}
//!               | {input, error} ],
//!   "totals": {inputs, succeeded, failed, samples, bytes, events?, throughput_mb_s}
//! }
//! ```
//!
//! The README's "JSON reports" table lists every key with its meaning and
//! unit.

use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::source::SignalInfo;

/// The keys that describe an input, in every JSON output: `input`,
/// `format`, `dtype`, `channels`, `samples` (per channel), `sample_rate`
/// (Hz, `null` when unknown) and `duration_s` (`null` without a rate or a
/// length). `samples` is the count read when given, else the input's own.
pub fn describe_input(info: &SignalInfo, samples: Option<u64>) -> Map<String, Value> {
    let samples = samples.or(info.frames);
    let duration = match (samples, info.sample_rate) {
        (Some(n), Some(fs)) => Some(n as f64 / fs),
        _ => None,
    };
    let mut m = Map::new();
    m.insert("input".into(), json!(info.path.display().to_string()));
    m.insert("format".into(), json!(info.format));
    m.insert("dtype".into(), json!(info.sample_type()));
    m.insert("channels".into(), json!(info.signal_channels()));
    m.insert("complex".into(), json!(info.complex));
    if info.complex {
        m.insert("center_frequency".into(), json!(info.center_frequency));
    }
    m.insert("samples".into(), json!(samples));
    m.insert("sample_rate".into(), json!(info.sample_rate));
    m.insert("duration_s".into(), json!(duration));
    m.insert("start_time".into(), json!(info.start_time));
    m.insert(
        "channel_names".into(),
        if info.channel_names.is_empty() {
            Value::Null
        } else {
            json!(info.channel_names)
        },
    );
    m
}

/// The `outputs` object: role → path (`-` for standard output), `null` for
/// an output not asked for.
pub fn outputs<'a>(roles: impl IntoIterator<Item = (&'a str, Option<&'a Path>)>) -> Value {
    Value::Object(
        roles
            .into_iter()
            .map(|(role, path)| {
                (
                    role.to_owned(),
                    json!(path.map(|p| p.display().to_string())),
                )
            })
            .collect(),
    )
}

/// A report being built: one entry per input, then the run's figures.
#[derive(Debug)]
pub struct Report {
    command: String,
    started: Instant,
    backend: Option<(String, String)>,
    inputs: Vec<Value>,
}

impl Report {
    /// A report for `command`, timed from now.
    pub fn new(command: &str) -> Self {
        Report {
            command: command.to_owned(),
            started: Instant::now(),
            backend: None,
            inputs: Vec::new(),
        }
    }

    /// Sets where the run computed: backend name and device.
    pub fn set_backend(&mut self, backend: &str, device: &str) {
        self.backend = Some((backend.to_owned(), device.to_owned()));
    }

    /// Adds a processed input's entry (an object starting with
    /// [`describe_input`]'s keys).
    pub fn push(&mut self, entry: Map<String, Value>) {
        self.inputs.push(Value::Object(entry));
    }

    /// Adds an input that failed: `{input, error}`.
    pub fn push_error(&mut self, input: &Path, error: &Error) {
        self.inputs.push(json!({
            "input": input.display().to_string(),
            "error": error.to_string(),
        }));
    }

    /// The entries so far.
    pub fn inputs(&self) -> &[Value] {
        &self.inputs
    }

    /// The finished report, with the run's figures and the totals summed
    /// over the inputs (`events` only when the entries have events).
    pub fn finish(self) -> Value {
        let seconds = self.started.elapsed().as_secs_f64();
        let ok: Vec<&Value> = self
            .inputs
            .iter()
            .filter(|v| v.get("error").is_none())
            .collect();
        let sum = |key: &str| ok.iter().filter_map(|v| v[key].as_u64()).sum::<u64>();
        let bytes = sum("bytes");
        let mut totals = Map::new();
        totals.insert("inputs".into(), json!(self.inputs.len()));
        totals.insert("succeeded".into(), json!(ok.len()));
        totals.insert("failed".into(), json!(self.inputs.len() - ok.len()));
        totals.insert("samples".into(), json!(sum("samples")));
        totals.insert("bytes".into(), json!(bytes));
        if ok.iter().any(|v| v.get("events").is_some()) {
            totals.insert("events".into(), json!(sum("events")));
        }
        totals.insert(
            "throughput_mb_s".into(),
            json!(bytes as f64 / seconds.max(1e-9) / 1e6),
        );
        let (backend, device) = match self.backend {
            Some((b, d)) => (json!(b), json!(d)),
            None => (Value::Null, Value::Null),
        };
        json!({
            "sigstream": env!("CARGO_PKG_VERSION"),
            "command": self.command,
            "backend": backend,
            "device": device,
            "seconds": seconds,
            "peak_rss_mb": crate::pipeline::stats::peak_rss_mib(),
            "inputs": self.inputs,
            "totals": totals,
        })
    }
}
