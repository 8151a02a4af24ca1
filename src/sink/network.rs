//! Network events (`--coincidence-sum`): ObsPy's `coincidence_trigger`
//! over the per-channel events, as they stream, into a CSV of its own.
//!
//! Why a sink: coincidence needs every channel's triggers in order of
//! onset, which is exactly the order the pipeline hands events to its
//! sink. So [`CoincidenceSink`] is an events sink (beside the events CSV,
//! if any) that feeds [`Coincidence`] and writes its finished groups as
//! rows.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::{EventClock, EventSink, Output};
use crate::detect::Event;
use crate::detect::coincidence::{Coincidence, NetworkEvent};
use crate::error::{Error, Result};

/// The network events CSV: one row per coincidence group, with the columns
/// `start,end,duration,channels,coincidence_sum,peak_index,peak_value`
/// (sample indices; `duration` = `end − start` in samples; `channels`:
/// the member channels' names or indices, `;`-separated, in ObsPy's order:
/// the group's first trigger, then the others by onset), then, with a
/// sample rate, `start_s,end_s,duration_s,peak_s`, and, with a start time,
/// `start_time,end_time,peak_time` (ISO 8601 UTC), as in the events CSV.
pub struct CoincidenceSink {
    coincidence: Coincidence,
    out: BufWriter<Output>,
    clock: EventClock,
    found: Vec<NetworkEvent>,
    /// Rows written.
    written: u64,
}

impl std::fmt::Debug for CoincidenceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoincidenceSink")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl CoincidenceSink {
    /// Starts the CSV at `path` (`-`: standard output).
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created.
    pub fn create(path: &Path, coincidence: Coincidence, clock: EventClock) -> Result<Self> {
        let mut out = BufWriter::with_capacity(64 * 1024, Output::create(path)?);
        let mut header =
            String::from("start,end,duration,channels,coincidence_sum,peak_index,peak_value");
        if clock.sample_rate.is_some() {
            header.push_str(",start_s,end_s,duration_s,peak_s");
            if clock.start_time.is_some() {
                header.push_str(",start_time,end_time,peak_time");
            }
        }
        writeln!(out, "{header}").map_err(|e| Error::io(path, e))?;
        Ok(CoincidenceSink {
            coincidence,
            out,
            clock,
            found: Vec::new(),
            written: 0,
        })
    }

    /// Groups written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn write_found(&mut self) -> Result<()> {
        use std::fmt::Write as _;
        let mut line = String::new();
        for g in self.found.drain(..) {
            line.clear();
            let names: Vec<String> = g
                .channels
                .iter()
                .map(|&c| {
                    self.clock
                        .channel_names
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| c.to_string())
                })
                .collect();
            let _ = write!(
                line,
                "{},{},{},{},{},{},{}",
                g.start,
                g.end,
                g.end - g.start,
                names.join(";"),
                g.coincidence_sum,
                g.peak_index,
                g.peak_value
            );
            if let Some(rate) = self.clock.sample_rate {
                let secs = |i: u64| i as f64 / rate;
                let _ = write!(
                    line,
                    ",{},{},{},{}",
                    secs(g.start),
                    secs(g.end),
                    (g.end - g.start) as f64 / rate,
                    secs(g.peak_index)
                );
                if let Some(t0) = self.clock.start_time {
                    let time = |i: u64| {
                        t0.at_sample(i, rate).ok_or_else(|| {
                            Error::usage(format!(
                                "sample {i} at {rate} Hz after {t0} is beyond the year 2261"
                            ))
                        })
                    };
                    let _ = write!(
                        line,
                        ",{},{},{}",
                        time(g.start)?,
                        time(g.end)?,
                        time(g.peak_index)?
                    );
                }
            }
            line.push('\n');
            self.out
                .write_all(line.as_bytes())
                .map_err(|err| Error::io(self.out.get_ref().target(), err))?;
            self.written += 1;
        }
        Ok(())
    }

    /// The last groups, then the file renamed to its target.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn commit(mut self) -> Result<u64> {
        self.coincidence.finish(&mut self.found);
        self.write_found()?;
        let written = self.written;
        let file = self.out.into_inner().map_err(|e| {
            let (err, writer) = e.into_parts();
            Error::io(writer.get_ref().target(), err)
        })?;
        file.commit()?;
        Ok(written)
    }
}

impl EventSink for CoincidenceSink {
    fn event(&mut self, e: &Event) -> Result<()> {
        self.coincidence.push(e, &mut self.found)?;
        self.write_found()
    }
}

/// Each event to every sink of a list (the events CSV and the network
/// events, say).
pub struct Tee<'a>(pub Vec<&'a mut dyn EventSink>);

impl std::fmt::Debug for Tee<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tee({} sinks)", self.0.len())
    }
}

impl EventSink for Tee<'_> {
    fn event(&mut self, e: &Event) -> Result<()> {
        for sink in self.0.iter_mut() {
            sink.event(e)?;
        }
        Ok(())
    }

    fn event_with_snippet(&mut self, e: &Event, padded: bool) -> Result<()> {
        for sink in self.0.iter_mut() {
            sink.event_with_snippet(e, padded)?;
        }
        Ok(())
    }
}
