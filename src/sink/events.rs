//! Events as a table: Arrow IPC (Feather v2) or Parquet, beside the CSV.
//!
//! Why: a Python user who gets events as CSV parses text back into numbers
//! and dates; Arrow and Parquet hand over typed columns (and the Python
//! front reuses [`record_batch`] to give `pyarrow.Table`s without a file).
//! The table has exactly the CSV's columns, in the CSV's order, under the
//! same conditions ([`CsvEvents`] documents them), so
//! `pandas.read_csv` and `pandas.read_parquet` give the same table apart
//! from the types:
//!
//! | column | Arrow type |
//! |---|---|
//! | `channel` | `utf8` (the channel's name) where the format names channels, else `uint64` (its index) |
//! | `start`, `end`, `peak_index`, `channel_index`, `segment` | `uint64` |
//! | `peak_value`, `start_s`, `end_s`, `peak_s` | `float64` (the CSV's decimal text is the shortest that reads back as this same value) |
//! | `start_time`, `end_time`, `peak_time` | `timestamp[us, tz=UTC]`: the CSV's ISO 8601 instant, to the same microsecond (rounded half up from the nanosecond) |
//! | `snippet_padded` | `bool`, null where an event has no snippet (the CSV's empty field) |
//!
//! Which one is written is chosen by the path's extension
//! ([`EventsFormat::from_path`]): `.arrow` or `.feather`, the Arrow IPC file
//! format, uncompressed (readable in place, by every Arrow reader);
//! `.parquet`, Parquet with Snappy-compressed pages (the pure-Rust `snap`
//! crate: no C library to build); anything else, CSV.
//!
//! Memory stays bounded however many events there are: events are held
//! until [`BATCH_ROWS`] have come, then written as one record batch (one
//! Parquet row group) and dropped. Like every output the file is written
//! under a temporary name and renamed by [`EventsFile::commit`] (see
//! [`super::AtomicFile`]): a run that fails leaves no half-written table.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use arrow_array::RecordBatch;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, StringArray, TimestampMicrosecondArray, UInt64Array,
};
pub use arrow_schema::SchemaRef;
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::{CsvEvents, EventClock, EventSink, Output};
use crate::detect::Event;
use crate::error::{Error, Result};
use crate::time::UtcTime;

/// Events per record batch (and per Parquet row group): 16 Ki rows, which
/// hold about 0.7 MiB of events and, as columns, at most 1.8 MiB more while
/// a batch is built — within the slack the memory budget keeps for what no
/// buffer accounts for, however many events a run finds.
pub const BATCH_ROWS: usize = 1 << 14;

/// The time zone of the time columns.
const UTC: &str = "UTC";

/// The file format an events path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsFormat {
    /// Comma-separated text ([`CsvEvents`]).
    Csv,
    /// The Arrow IPC file format (Feather v2), uncompressed.
    Arrow,
    /// Parquet, Snappy-compressed.
    Parquet,
}

impl EventsFormat {
    /// The format a path's extension names (case-insensitive): `.arrow`
    /// and `.feather` are Arrow, `.parquet` is Parquet, anything else
    /// (and `-`, standard output) is CSV.
    pub fn from_path(path: &Path) -> Self {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("arrow" | "feather") => EventsFormat::Arrow,
            Some("parquet") => EventsFormat::Parquet,
            _ => EventsFormat::Csv,
        }
    }
}

/// Starts the events file for `path` in the format its extension names
/// ([`EventsFormat::from_path`]), with the columns `clock` allows and a
/// last column `snippet_padded` when `snippet_column`: what the CLI calls
/// for `--events PATH`.
///
/// # Errors
/// [`Error::Open`] when the file cannot be created; [`Error::Io`] when its
/// header cannot be written.
pub fn create(path: &Path, clock: EventClock, snippet_column: bool) -> Result<EventsFile> {
    match EventsFormat::from_path(path) {
        EventsFormat::Csv => {
            CsvEvents::create_with(path, clock, snippet_column).map(EventsFile::Csv)
        }
        format => TableEvents::create(path, clock, snippet_column, format)
            .map(|t| EventsFile::Table(Box::new(t))),
    }
}

/// An events file being written: CSV, or a table (Arrow IPC or Parquet).
#[derive(Debug)]
pub enum EventsFile {
    /// CSV.
    Csv(CsvEvents),
    /// Arrow IPC or Parquet.
    Table(Box<TableEvents>),
}

impl EventsFile {
    /// Times the events that follow by `clock` (the next segment of the
    /// input); the columns stay those the file was started with. (A table
    /// writes the events it holds first; if that fails, the next event or
    /// [`EventsFile::commit`] returns the error.)
    pub fn set_clock(&mut self, clock: EventClock) {
        match self {
            EventsFile::Csv(csv) => csv.set_clock(clock),
            EventsFile::Table(table) => table.set_clock(clock),
        }
    }

    /// Finishes the file and renames it to its target (or stages it, in a
    /// [`super::Transaction`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the last rows, the footer or the rename fail.
    pub fn commit(self) -> Result<()> {
        match self {
            EventsFile::Csv(csv) => csv.commit(),
            EventsFile::Table(table) => (*table).commit(),
        }
    }

    /// The format being written.
    pub fn format(&self) -> EventsFormat {
        match self {
            EventsFile::Csv(_) => EventsFormat::Csv,
            EventsFile::Table(t) => t.format,
        }
    }
}

impl EventSink for EventsFile {
    fn event(&mut self, e: &Event) -> Result<()> {
        match self {
            EventsFile::Csv(csv) => csv.event(e),
            EventsFile::Table(table) => table.event(e),
        }
    }

    fn event_with_snippet(&mut self, e: &Event, padded: bool) -> Result<()> {
        match self {
            EventsFile::Csv(csv) => csv.event_with_snippet(e, padded),
            EventsFile::Table(table) => table.event_with_snippet(e, padded),
        }
    }
}

/// The schema of the events table for `clock`: the CSV's columns, in its
/// order (see the module docs for the types), with `snippet_padded` last
/// when `snippet_column`.
pub fn schema(clock: &EventClock, snippet_column: bool) -> SchemaRef {
    let u64_field = |name: &str| Field::new(name, DataType::UInt64, false);
    let f64_field = |name: &str| Field::new(name, DataType::Float64, false);
    let time_field = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            false,
        )
    };
    let named = !clock.channel_names.is_empty();
    let mut fields = vec![
        if named {
            Field::new("channel", DataType::Utf8, false)
        } else {
            u64_field("channel")
        },
        u64_field("start"),
        u64_field("end"),
        u64_field("peak_index"),
        f64_field("peak_value"),
    ];
    if named {
        fields.push(u64_field("channel_index"));
    }
    if clock.segment.is_some() {
        fields.push(u64_field("segment"));
    }
    if clock.sample_rate.is_some() {
        fields.extend(["start_s", "end_s", "peak_s"].map(f64_field));
        if clock.start_time.is_some() {
            fields.extend(["start_time", "end_time", "peak_time"].map(time_field));
        }
    }
    if snippet_column {
        fields.push(Field::new("snippet_padded", DataType::Boolean, true));
    }
    Arc::new(Schema::new(fields))
}

/// The events as one record batch of [`schema`]`(clock, snippet_padded.is_some())`:
/// the rows the CSV would hold, with `snippet_padded[i]` the `i`-th event's
/// flag (`None`: no snippet, a null).
///
/// # Errors
/// [`Error::Usage`] when `snippet_padded` does not have one entry per event,
/// or when an event's time is beyond the year 2261.
pub fn record_batch(
    events: &[Event],
    clock: &EventClock,
    snippet_padded: Option<&[Option<bool>]>,
) -> Result<RecordBatch> {
    build(
        schema(clock, snippet_padded.is_some()),
        events,
        clock,
        snippet_padded,
    )
}

/// [`record_batch`] with the schema already made.
fn build(
    schema: SchemaRef,
    events: &[Event],
    clock: &EventClock,
    snippet_padded: Option<&[Option<bool>]>,
) -> Result<RecordBatch> {
    if let Some(p) = snippet_padded
        && p.len() != events.len()
    {
        return Err(Error::usage(format!(
            "{} snippet flags for {} events: one flag per event",
            p.len(),
            events.len()
        )));
    }
    let u64s = |f: fn(&Event) -> u64| -> ArrayRef {
        Arc::new(events.iter().map(f).collect::<UInt64Array>())
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    if clock.channel_names.is_empty() {
        columns.push(u64s(|e| e.channel as u64));
    } else {
        let names: StringArray = events
            .iter()
            .map(|e| {
                Some(match clock.channel_names.get(e.channel) {
                    Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
                    None => std::borrow::Cow::Owned(e.channel.to_string()),
                })
            })
            .collect();
        columns.push(Arc::new(names));
    }
    columns.push(u64s(|e| e.start));
    columns.push(u64s(|e| e.end));
    columns.push(u64s(|e| e.peak_index));
    columns.push(Arc::new(
        events
            .iter()
            .map(|e| e.peak_value)
            .collect::<Float64Array>(),
    ));
    if !clock.channel_names.is_empty() {
        columns.push(u64s(|e| e.channel as u64));
    }
    if let Some(segment) = clock.segment {
        columns.push(Arc::new(UInt64Array::from(vec![
            segment as u64;
            events.len()
        ])));
    }
    let indices: [fn(&Event) -> u64; 3] = [|e| e.start, |e| e.end, |e| e.peak_index];
    if let Some(rate) = clock.sample_rate {
        for index in indices {
            let secs: Float64Array = events.iter().map(|e| index(e) as f64 / rate).collect();
            columns.push(Arc::new(secs));
        }
        if let Some(t0) = clock.start_time {
            for index in indices {
                let micros = events
                    .iter()
                    .map(|e| time_micros(t0, index(e), rate))
                    .collect::<Result<Vec<i64>>>()?;
                columns.push(Arc::new(
                    TimestampMicrosecondArray::from(micros).with_timezone(UTC),
                ));
            }
        }
    }
    if let Some(padded) = snippet_padded {
        columns.push(Arc::new(padded.iter().copied().collect::<BooleanArray>()));
    }
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Runtime {
        msg: format!("events table: {e}"),
    })
}

/// Microseconds since 1970 of sample `index` at `rate` after `t0`, rounded
/// as the CSV prints the instant (half up from the nanosecond).
fn time_micros(t0: UtcTime, index: u64, rate: f64) -> Result<i64> {
    let t = t0.at_sample(index, rate).ok_or_else(|| {
        Error::usage(format!(
            "sample {index} at {rate} Hz after {t0} is beyond the year 2261"
        ))
    })?;
    let ns = t.ns();
    Ok(ns
        .div_euclid(1000)
        .saturating_add(i64::from(ns.rem_euclid(1000) >= 500)))
}

/// The writer under a table.
enum TableWriter {
    Arrow(arrow_ipc::writer::FileWriter<BufWriter<Output>>),
    Parquet(parquet::arrow::ArrowWriter<BufWriter<Output>>),
}

/// The rows of the next record batch: events and their snippet flags,
/// timed by the current segment's clock; what [`TableEvents`] writes and
/// [`EventBatches`] keeps, [`BATCH_ROWS`] at a time.
#[derive(Debug)]
struct Rows {
    schema: SchemaRef,
    clock: EventClock,
    snippet_column: bool,
    events: Vec<Event>,
    padded: Vec<Option<bool>>,
}

impl Rows {
    fn new(clock: EventClock, snippet_column: bool) -> Self {
        Rows {
            schema: schema(&clock, snippet_column),
            clock,
            snippet_column,
            events: Vec::new(),
            padded: Vec::new(),
        }
    }

    /// Holds one row; true when a batch is full.
    fn push(&mut self, e: &Event, padded: Option<bool>) -> bool {
        if self.events.capacity() == 0 {
            self.events.reserve_exact(BATCH_ROWS);
            self.padded.reserve_exact(BATCH_ROWS);
        }
        self.events.push(*e);
        self.padded.push(padded);
        self.events.len() >= BATCH_ROWS
    }

    /// The rows held as one batch (none when there are none), and the
    /// rows cleared.
    fn take(&mut self) -> Result<Option<RecordBatch>> {
        if self.events.is_empty() {
            return Ok(None);
        }
        let padded = self.snippet_column.then_some(&self.padded[..]);
        let batch = build(self.schema.clone(), &self.events, &self.clock, padded)?;
        self.events.clear();
        self.padded.clear();
        Ok(Some(batch))
    }

    /// Times the rows that follow by `clock` (take the rows held first).
    fn set_clock(&mut self, clock: EventClock) {
        debug_assert_eq!(
            schema(&clock, self.snippet_column),
            self.schema,
            "same columns"
        );
        self.clock = clock;
    }
}

/// Writes events as an Arrow IPC file or Parquet, [`BATCH_ROWS`] at a time
/// (see the module docs).
pub struct TableEvents {
    writer: TableWriter,
    format: EventsFormat,
    /// The events not yet written.
    rows: Rows,
    /// The target, for messages.
    target: PathBuf,
    /// A failure to write the events held when the clock changed, returned
    /// by the next call that can fail.
    failed: Option<Error>,
}

impl std::fmt::Debug for TableEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableEvents")
            .field("format", &self.format)
            .field("target", &self.target)
            .field("held", &self.rows.events.len())
            .finish_non_exhaustive()
    }
}

impl TableEvents {
    /// Starts the table (under a temporary name) for `path`, in `format`
    /// (Arrow or Parquet).
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created, [`Error::Io`] when
    /// its header cannot be written; [`Error::Usage`] for
    /// [`EventsFormat::Csv`].
    pub fn create(
        path: &Path,
        clock: EventClock,
        snippet_column: bool,
        format: EventsFormat,
    ) -> Result<Self> {
        let schema = schema(&clock, snippet_column);
        let out = BufWriter::with_capacity(64 * 1024, Output::create(path)?);
        let writer = match format {
            EventsFormat::Arrow => TableWriter::Arrow(
                arrow_ipc::writer::FileWriter::try_new(out, &schema)
                    .map_err(|e| arrow_error(path, e))?,
            ),
            EventsFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(BATCH_ROWS))
                    .build();
                TableWriter::Parquet(
                    parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))
                        .map_err(|e| parquet_error(path, e))?,
                )
            }
            EventsFormat::Csv => {
                return Err(Error::usage(format!(
                    "{}: CSV events are written by CsvEvents",
                    path.display()
                )));
            }
        };
        Ok(TableEvents {
            writer,
            format,
            rows: Rows::new(clock, snippet_column),
            target: path.to_path_buf(),
            failed: None,
        })
    }

    /// Times the events that follow by `clock` (the next segment of the
    /// input); the events held so far are written first, with their own.
    /// If that fails, the next event or [`TableEvents::commit`] returns the
    /// error.
    pub fn set_clock(&mut self, clock: EventClock) {
        if let Err(e) = self.flush() {
            self.failed.get_or_insert(e);
        }
        self.rows.set_clock(clock);
    }

    /// Writes the events held as one record batch.
    fn flush(&mut self) -> Result<()> {
        let Some(batch) = self.rows.take()? else {
            return Ok(());
        };
        match &mut self.writer {
            TableWriter::Arrow(w) => w.write(&batch).map_err(|e| arrow_error(&self.target, e))?,
            TableWriter::Parquet(w) => {
                w.write(&batch)
                    .map_err(|e| parquet_error(&self.target, e))?;
                // One row group per batch, so that nothing accumulates.
                w.flush().map_err(|e| parquet_error(&self.target, e))?;
            }
        }
        Ok(())
    }

    fn push(&mut self, e: &Event, padded: Option<bool>) -> Result<()> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        if self.rows.push(e, padded) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the events held and the footer, and renames the file to its
    /// target.
    ///
    /// # Errors
    /// [`Error::Io`] when writing or renaming fails.
    pub fn commit(mut self) -> Result<()> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        self.flush()?;
        let target = self.target;
        let out = match self.writer {
            TableWriter::Arrow(w) => w.into_inner().map_err(|e| arrow_error(&target, e))?,
            TableWriter::Parquet(w) => w.into_inner().map_err(|e| parquet_error(&target, e))?,
        };
        let mut out = out.into_inner().map_err(|e| {
            let (err, _) = e.into_parts();
            Error::io(&target, err)
        })?;
        out.flush().map_err(|e| Error::io(&target, e))?;
        out.commit()
    }
}

impl EventSink for TableEvents {
    fn event(&mut self, e: &Event) -> Result<()> {
        self.push(e, None)
    }

    fn event_with_snippet(&mut self, e: &Event, padded: bool) -> Result<()> {
        self.push(e, Some(padded))
    }
}

/// An Arrow writer's failure as an I/O error on `path`.
fn arrow_error(path: &Path, e: arrow_schema::ArrowError) -> Error {
    match e {
        arrow_schema::ArrowError::IoError(_, err) => Error::io(path, err),
        e => Error::io(path, std::io::Error::other(e.to_string())),
    }
}

/// A Parquet writer's failure as an I/O error on `path`.
fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::io(path, std::io::Error::other(e.to_string()))
}

/// Events kept in memory as record batches of [`schema`], [`BATCH_ROWS`]
/// rows each, every batch timed by its segment's clock: for a front that
/// hands the events over as a table (the Python package's
/// `ProcessResult.events`, a `pyarrow.Table` that takes these buffers
/// without copying them). They grow with the events found: the front asked
/// for them in memory.
#[derive(Debug)]
pub struct EventBatches {
    rows: Rows,
    batches: Vec<RecordBatch>,
}

impl EventBatches {
    /// An empty table with the CSV's columns for `clock`.
    pub fn new(clock: EventClock, snippet_column: bool) -> Self {
        EventBatches {
            rows: Rows::new(clock, snippet_column),
            batches: Vec::new(),
        }
    }

    /// Times the events that follow by `clock` (the next segment).
    ///
    /// # Errors
    /// As [`record_batch`], for the events held.
    pub fn set_clock(&mut self, clock: EventClock) -> Result<()> {
        self.flush()?;
        self.rows.set_clock(clock);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.batches.extend(self.rows.take()?);
        Ok(())
    }

    fn push(&mut self, e: &Event, padded: Option<bool>) -> Result<()> {
        if self.rows.push(e, padded) {
            self.flush()?;
        }
        Ok(())
    }

    /// The schema and every batch.
    ///
    /// # Errors
    /// As [`record_batch`], for the events held.
    pub fn finish(mut self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.flush()?;
        Ok((self.rows.schema, self.batches))
    }
}

impl EventSink for EventBatches {
    fn event(&mut self, e: &Event) -> Result<()> {
        self.push(e, None)
    }

    fn event_with_snippet(&mut self, e: &Event, padded: bool) -> Result<()> {
        self.push(e, Some(padded))
    }
}
