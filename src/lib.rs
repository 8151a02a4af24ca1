//! # sigstream
//!
//! Filter and detect events in signal recordings of any size — seismic,
//! vibration, audio, RF, neural — with constant memory.
//!
//! Data flows one way: a [`source`] (memory-mapped windows of a file, or a
//! stream) fills pooled [`pool::Block`]s; the [`pipeline`] hands them to a
//! [`backend`] that filters ([`filter`]) and detects ([`detect`]) chunk by
//! chunk, carrying each stage's history across chunk boundaries; [`sink`]s
//! write the filtered signal, the events and the report. Results do not
//! depend on the chunk size, bit for bit.
//!
//! The seed's example, in Rust: process a file through mmap and read the
//! statistics.
//!
//! ```no_run
//! use sigstream::backend::{DetectorChoice, Job};
//! use sigstream::detect::{DetectorSpec, Event, Polarity};
//! use sigstream::pipeline::{Sinks, StreamConfig, StreamProcessor};
//! use sigstream::source::SourceOptions;
//!
//! # fn main() -> sigstream::Result<()> {
//! // The chunk is the largest that keeps the whole process within 32 MiB,
//! // whatever the channel count.
//! let config = StreamConfig { memory_limit: 32 << 20, ..StreamConfig::default() };
//! let job = Job {
//!     kernel: Some(vec![0.25, 0.5, 0.25]),
//!     detector: Some(DetectorChoice::Builtin(DetectorSpec::Threshold {
//!         on: 5.0,
//!         off: 2.0,
//!         max_len: None,
//!         dead: None,
//!         polarity: Polarity::Both,
//!     })),
//!     ..Job::default()
//! };
//! let processor = StreamProcessor::new(config, job);
//! let mut events: Vec<Event> = Vec::new();
//! let stats = processor.process_file(
//!     "signal.bin".as_ref(),
//!     &SourceOptions::default(), // raw little-endian f32, one channel
//!     Sinks { events: Some(&mut events), ..Sinks::default() },
//! )?;
//! println!("Peak memory: {:.1} MiB", stats.peak_rss_mb);
//! println!("Events found: {}", stats.events);
//! # Ok(())
//! # }
//! ```
//!
//! Arrays already in memory go through the same engine:
//!
//! ```
//! use sigstream::filter::ConvMode;
//! use sigstream::pipeline::chunked_convolve;
//!
//! let signal: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin()).collect();
//! let filtered = chunked_convolve(&signal, &[0.25, 0.5, 0.25], ConvMode::Same, 1000).unwrap();
//! assert_eq!(filtered.len(), signal.len());
//! ```

#![warn(missing_debug_implementations, missing_docs)]

// The crate's own tests use the paths an outside user would.
#[cfg(test)]
extern crate self as sigstream;

pub mod backend;
pub mod detect;
pub mod error;
pub mod filter;
mod io_at;
#[cfg_attr(
    not(all(test, feature = "gpu")),
    expect(
        dead_code,
        reason = "parts of the CPU twins serve only the tests that compare them with their shaders"
    )
)]
mod kernels;
pub mod options;
pub mod pipeline;
pub mod pool;
pub mod process;
pub mod report;
pub mod shard;
pub mod sink;
pub mod source;
pub mod spectral;
pub mod time;

pub use backend::{Backend, BackendChoice, DetectorChoice, Job};
pub use detect::{Detector, DetectorSpec, Event};
pub use error::{Error, Result};
pub use filter::ConvMode;
pub use pipeline::{Sinks, StreamConfig, StreamProcessor, chunked_convolve};
pub use pool::MemoryPool;
pub use source::SourceOptions;
