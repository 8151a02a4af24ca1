//! Sinks: where results go — the filtered signal, the events, the report.
//!
//! Why this module: every output must be all-or-nothing. Each file is
//! written to a temporary file beside its target ([`AtomicFile`]) and renamed
//! over the target only when the whole run has succeeded, so a failed or
//! killed run never leaves a half-written output under the target's name.
//!
//! Events go to CSV ([`CsvEvents`]) or, by the path's extension, to Arrow
//! IPC or Parquet ([`events`]); [`events::create`] picks.

mod array;
mod commit;
pub mod events;
pub mod network;
pub mod plot;
pub(crate) mod signal;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::detect::Event;
use crate::error::{Error, Result};
use crate::time::UtcTime;
pub use array::NpyArrayWriter;
pub use commit::{TempDir, Transaction, abandon_all};
pub use signal::{
    NPY_HEADER_LEN, SignalFormat, SignalSink, VecSink, npy_c8_header, open_signal_sink,
};

/// A file written under a temporary name (`.sigstream-<pid>-<random>.tmp`)
/// beside its target and renamed to the target by [`AtomicFile::commit`]
/// (or by the open [`Transaction`]'s commit); dropped uncommitted, it is
/// removed. An interruption removes it too ([`abandon_all`]).
#[derive(Debug)]
pub struct AtomicFile {
    /// Always `Some` until committed or dropped.
    tmp: Option<tempfile::NamedTempFile>,
    target: PathBuf,
    /// Its id in the register of temporary files.
    id: u64,
}

impl AtomicFile {
    /// Creates the temporary file in `target`'s directory.
    ///
    /// A symlink is followed: the file it points to is replaced (and the
    /// link kept). An existing target that is not a regular file (a
    /// directory, a device, a FIFO) is refused: renaming over it would
    /// replace it ([`Output::create`] writes devices and FIFOs as streams).
    ///
    /// # Errors
    /// [`Error::Open`] when the target is a directory or the temporary file
    /// cannot be created; [`Error::Usage`] for another special file.
    pub fn create(target: &Path) -> Result<Self> {
        let resolved;
        let target = match std::fs::metadata(target) {
            Ok(m) if m.is_dir() => {
                return Err(Error::open(
                    target,
                    std::io::Error::from(std::io::ErrorKind::IsADirectory),
                ));
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::usage(format!(
                    "{}: not a regular file (a device or a FIFO): this output needs a file it can complete at the end",
                    target.display()
                )));
            }
            Ok(_) => {
                // Through symlinks: write beside, and rename over, the file
                // itself.
                resolved = std::fs::canonicalize(target).map_err(|e| Error::open(target, e))?;
                resolved.as_path()
            }
            Err(_) => target,
        };
        let dir = commit::parent(target);
        commit::sweep_stale(dir);
        let mut builder = tempfile::Builder::new();
        let prefix = commit::temp_prefix();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile creates private (0600) files; an output should get the
        // mode of any new file, 0666 less the umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let (tmp, id) =
            commit::create_file(|| builder.tempfile_in(dir)).map_err(|e| Error::open(target, e))?;
        Ok(AtomicFile {
            tmp: Some(tmp),
            target: target.to_path_buf(),
            id,
        })
    }

    fn tmp(&self) -> &tempfile::NamedTempFile {
        self.tmp
            .as_ref()
            .expect("an AtomicFile holds its file until it is dropped")
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.tmp
            .as_mut()
            .expect("an AtomicFile holds its file until it is dropped")
            .as_file_mut()
    }

    /// The open temporary file, shared (for positioned reads and writes).
    pub fn as_file(&self) -> &File {
        self.tmp().as_file()
    }

    /// The target path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        self.tmp().path()
    }

    /// Flushes the data to disk and renames the file to its target, under
    /// a lock on its directory; while a [`Transaction`] is open, the rename
    /// waits for the transaction's commit.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing or renaming fails; [`Error::Runtime`]
    /// when the process is being interrupted.
    pub fn commit(mut self) -> Result<()> {
        self.tmp()
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&self.target, e))?;
        let staged = commit::Staged {
            tmp: self.tmp.take().expect("taken only here"),
            target: std::mem::take(&mut self.target),
        };
        // Registered as staged (or renamed) before it leaves the live list,
        // so that an interruption in between still finds it.
        let result = commit::finish(staged);
        commit::forget(self.id);
        result
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // The file is removed (by tempfile) before it is forgotten.
        drop(self.tmp.take());
        commit::forget(self.id);
    }
}

/// Whether an output path means standard output (`-`).
pub fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

/// Whether `path` is written as a stream rather than a file completed at the
/// end: standard output (`-`), or an existing device or FIFO.
pub fn is_stream_target(path: &Path) -> bool {
    is_stdout(path) || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Where a streamed output goes: a file committed atomically
/// ([`AtomicFile`]), standard output for the path `-`, or an existing
/// device or FIFO, written directly as a stream (renaming a file over
/// `/dev/null` or a FIFO would replace it, and the FIFO's reader would get
/// nothing).
///
/// Why both behind one type: every writer (signal, events CSV, report, PSD
/// CSV) then takes `-` the same way. Standard output cannot be taken back,
/// so what went there stays there when a run fails; a file output still
/// appears only when the run succeeds.
#[derive(Debug)]
pub enum Output {
    /// A file, under a temporary name until committed.
    File(AtomicFile),
    /// Standard output.
    Stdout(std::io::Stdout),
    /// An existing device or FIFO, written in place.
    Stream {
        /// The open file.
        file: File,
        /// Its path, for messages.
        path: PathBuf,
    },
}

impl Output {
    /// Opens `path`: standard output for `-`, else an [`AtomicFile`].
    ///
    /// # Errors
    /// [`Error::Open`] when the temporary file cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        if is_stdout(path) {
            return Ok(Output::Stdout(std::io::stdout()));
        }
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let file = File::options()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::open(path, e))?;
                Ok(Output::Stream {
                    file,
                    path: path.to_path_buf(),
                })
            }
            _ => AtomicFile::create(path).map(Output::File),
        }
    }

    /// The path written (`-` for standard output), for messages.
    pub fn target(&self) -> &Path {
        match self {
            Output::File(f) => f.target(),
            Output::Stdout(_) => Path::new(STDOUT_NAME),
            Output::Stream { path, .. } => path,
        }
    }

    /// The file, when it is one (for seeking back to a header).
    pub fn file_mut(&mut self) -> Option<&mut File> {
        match self {
            Output::File(f) => Some(f.file()),
            Output::Stdout(_) | Output::Stream { .. } => None,
        }
    }

    /// Commits a file (see [`AtomicFile::commit`]); flushes standard output.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing or renaming fails.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::File(f) => f.commit(),
            Output::Stdout(mut s) => s.flush().map_err(|e| Error::io(STDOUT_NAME, e)),
            Output::Stream { mut file, path } => file.flush().map_err(|e| Error::io(path, e)),
        }
    }
}

/// How standard output is named in messages.
pub const STDOUT_NAME: &str = "<stdout>";

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::File(f) => f.write(buf),
            Output::Stdout(s) => s.write(buf),
            Output::Stream { file, .. } => file.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Stdout(s) => s.flush(),
            Output::Stream { file, .. } => file.flush(),
        }
    }
}

/// Receives events as they are found, in order of start (then channel).
pub trait EventSink: Send {
    /// One event.
    fn event(&mut self, e: &Event) -> Result<()>;
    /// One event whose snippet (`--snippets`) was written, `padded` when its
    /// window reached past the signal's start or end and was zero-padded
    /// there. A sink with no column for it takes the event alone.
    fn event_with_snippet(&mut self, e: &Event, padded: bool) -> Result<()> {
        let _ = padded;
        self.event(e)
    }
}

/// Where the snippets go, one per event in the events' order: the values
/// of one snippet at a time ([`crate::detect::snippet::Snippets::take`]).
pub trait SnippetSink: Send {
    /// One snippet.
    fn snippet(&mut self, values: &[f32]) -> Result<()>;
}

impl SnippetSink for Vec<f32> {
    fn snippet(&mut self, values: &[f32]) -> Result<()> {
        self.extend_from_slice(values);
        Ok(())
    }
}

impl SnippetSink for NpyArrayWriter {
    fn snippet(&mut self, values: &[f32]) -> Result<()> {
        self.write(values)
    }
}

impl EventSink for Vec<Event> {
    fn event(&mut self, e: &Event) -> Result<()> {
        self.push(*e);
        Ok(())
    }
}

/// Writes events as CSV, one row per event, with the columns
/// `channel,start,end,peak_index,peak_value` (0-based sample indices, end
/// inclusive; `channel` is the channel's name where the format names it,
/// and a column `channel_index` then keeps its index), then, when the recording's sample rate is known,
/// `start_s,end_s,peak_s` (seconds from the recording's start: index /
/// rate), and, when its start time is known, `start_time,end_time,peak_time`
/// (ISO 8601 UTC with microseconds: start + index / rate, as ObsPy's
/// `stats.starttime + index / stats.sampling_rate`).
#[derive(Debug)]
pub struct CsvEvents {
    out: BufWriter<Output>,
    clock: EventClock,
    /// A last column `snippet_padded` (0 or 1; `--snippets`).
    snippet_column: bool,
    /// One row, reused (no allocation per event).
    line: String,
}

/// What the events CSV can say about when, and on which named channel,
/// each event happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventClock {
    /// The channels' names, or empty.
    pub channel_names: Vec<String>,
    /// Samples per second.
    pub sample_rate: Option<f64>,
    /// When sample 0 was taken (only used with a sample rate).
    pub start_time: Option<UtcTime>,
    /// The contiguous segment of the input the indices count from (inputs
    /// read in segments: miniSEED with `--gaps split`); adds a `segment`
    /// column.
    pub segment: Option<usize>,
}

impl EventClock {
    /// The clock of a recording.
    pub fn of(info: &crate::source::SignalInfo) -> Self {
        EventClock {
            channel_names: info.channel_names.clone(),
            sample_rate: info.sample_rate,
            start_time: info.start_time,
            segment: info.segment,
        }
    }

    /// The CSV header line (without the newline).
    fn header(&self) -> String {
        let mut h = String::from("channel,start,end,peak_index,peak_value");
        if !self.channel_names.is_empty() {
            h.push_str(",channel_index");
        }
        if self.segment.is_some() {
            h.push_str(",segment");
        }
        if self.sample_rate.is_some() {
            h.push_str(",start_s,end_s,peak_s");
            if self.start_time.is_some() {
                h.push_str(",start_time,end_time,peak_time");
            }
        }
        h
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file().flush()
    }
}

impl CsvEvents {
    /// Starts the CSV file (under a temporary name) for `path`; `-` writes
    /// to standard output.
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created.
    pub fn create(path: &Path, clock: EventClock) -> Result<Self> {
        Self::create_with(path, clock, false)
    }

    /// As [`CsvEvents::create`], with a last column `snippet_padded` when
    /// `snippet_column`: 1 where the event's snippet was zero-padded at the
    /// signal's start or end, else 0.
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created.
    pub fn create_with(path: &Path, clock: EventClock, snippet_column: bool) -> Result<Self> {
        let mut out = BufWriter::with_capacity(64 * 1024, Output::create(path)?);
        let extra = if snippet_column {
            ",snippet_padded"
        } else {
            ""
        };
        writeln!(out, "{}{extra}", clock.header()).map_err(|e| Error::io(path, e))?;
        Ok(CsvEvents {
            out,
            clock,
            snippet_column,
            line: String::with_capacity(256),
        })
    }

    /// Times the events that follow by `clock` (the next segment of the
    /// input); the columns stay those of the header already written.
    pub fn set_clock(&mut self, clock: EventClock) {
        debug_assert_eq!(clock.header(), self.clock.header(), "same columns");
        self.clock = clock;
    }

    /// Finishes the file and renames it to its target.
    pub fn commit(self) -> Result<()> {
        let file = self.out.into_inner().map_err(|e| {
            let (err, writer) = e.into_parts();
            Error::io(writer.get_ref().target(), err)
        })?;
        file.commit()
    }
}

impl EventSink for CsvEvents {
    fn event(&mut self, e: &Event) -> Result<()> {
        self.row(e, None)
    }

    fn event_with_snippet(&mut self, e: &Event, padded: bool) -> Result<()> {
        self.row(e, Some(padded))
    }
}

impl CsvEvents {
    /// Writes one row; `padded` fills the `snippet_padded` column (empty
    /// without a snippet).
    fn row(&mut self, e: &Event, padded: Option<bool>) -> Result<()> {
        use std::fmt::Write as _;
        let line = &mut self.line;
        line.clear();
        let (s, en, p) = (e.start, e.end, e.peak_index);
        match self.clock.channel_names.get(e.channel) {
            Some(name) => {
                let _ = write!(line, "{name},{s},{en},{p},{},{}", e.peak_value, e.channel);
            }
            None => {
                let _ = write!(line, "{},{s},{en},{p},{}", e.channel, e.peak_value);
            }
        }
        if let Some(segment) = self.clock.segment {
            let _ = write!(line, ",{segment}");
        }
        if let Some(rate) = self.clock.sample_rate {
            let secs = |i: u64| i as f64 / rate;
            let _ = write!(line, ",{},{},{}", secs(s), secs(en), secs(p));
            if let Some(t0) = self.clock.start_time {
                let time = |i: u64| {
                    t0.at_sample(i, rate).ok_or_else(|| {
                        Error::usage(format!(
                            "sample {i} at {rate} Hz after {t0} is beyond the year 2261"
                        ))
                    })
                };
                let (ts, te, tp) = (time(s)?, time(en)?, time(p)?);
                let _ = write!(line, ",{ts},{te},{tp}");
            }
        }
        if self.snippet_column {
            line.push(',');
            if let Some(padded) = padded {
                line.push(if padded { '1' } else { '0' });
            }
        }
        line.push('\n');
        let result = self.out.write_all(line.as_bytes());
        result.map_err(|err| Error::io(self.out.get_ref().target(), err))
    }
}

/// Writes `value` as pretty JSON to `path`, atomically (`-`: standard
/// output).
///
/// # Errors
/// [`Error::Open`] or [`Error::Io`] when the file cannot be written.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut file = Output::create(path)?;
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Runtime {
        msg: format!("{}: cannot encode the report: {e}", path.display()),
    })?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .map_err(|e| Error::io(path, e))?;
    file.commit()
}

/// Checks a run's outputs before anything is read or written: none is an
/// input (the same file, however named: `./a.f32`, a symlink, a hard link),
/// no two are the same file, at most one goes to standard output (`-`),
/// none is a directory, and each can be created where it is asked for.
/// `inputs` are the run's input paths (`-` for standard input), `outputs`
/// (option name, path) for each output asked for.
///
/// Why here, before the run: an output that is an input would destroy the
/// recording it is computed from, and a bad output path found only at the
/// end would throw away the whole run's work.
///
/// # Errors
/// [`Error::Usage`] for an output that is an input, two outputs on one
/// file, or two on standard output; [`Error::Open`] for an output that is
/// a directory or whose directory does not exist.
pub fn check_outputs(inputs: &[&Path], outputs: &[(&str, &Path)]) -> Result<()> {
    let stdout: Vec<&str> = outputs
        .iter()
        .filter(|(_, p)| is_stdout(p))
        .map(|(name, _)| *name)
        .collect();
    if stdout.len() > 1 {
        return Err(Error::usage(format!(
            "{} all write to standard output (-): at most one output may go there",
            stdout.join(", ")
        )));
    }
    let files: Vec<(&str, &Path, FileKey)> = outputs
        .iter()
        .filter(|(_, p)| !is_stdout(p))
        .map(|&(name, path)| Ok((name, path, output_key(path)?)))
        .collect::<Result<_>>()?;
    for (i, (a, pa, ka)) in files.iter().enumerate() {
        for (b, pb, kb) in &files[i + 1..] {
            if ka == kb {
                let same = if pa == pb {
                    format!("both write {}", pa.display())
                } else {
                    format!(
                        "write the same file ({} and {})",
                        pa.display(),
                        pb.display()
                    )
                };
                return Err(Error::usage(format!(
                    "{a} and {b} {same}: give each output its own path"
                )));
            }
        }
    }
    for input in inputs.iter().filter(|p| !is_stdout(p)) {
        let Some(key) = existing_key(input) else {
            continue;
        };
        if let Some((name, path, _)) = files.iter().find(|(_, _, k)| *k == key) {
            return Err(Error::usage(format!(
                "{name} {}: that is the input {}; sigstream never writes over an input",
                path.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// What makes two paths the same file: (device, inode) on Unix; elsewhere
/// the canonical path (for a file that exists).
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileKey {
    #[cfg(unix)]
    Inode(u64, u64),
    Path(PathBuf),
}

/// The key of an existing file (symlinks followed), if it exists.
fn existing_key(path: &Path) -> Option<FileKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| FileKey::Inode(m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::canonicalize(path).ok().map(FileKey::Path)
    }
}

/// The key of an output path: the existing file's, or, for a new file, its
/// directory's canonical path joined with its name (two new outputs named
/// differently but in one place, `a.npy` and `./a.npy`, are one file).
fn output_key(path: &Path) -> Result<FileKey> {
    if let Ok(m) = std::fs::metadata(path)
        && m.is_dir()
    {
        return Err(Error::open(
            path,
            std::io::Error::from(std::io::ErrorKind::IsADirectory),
        ));
    }
    if let Some(key) = existing_key(path) {
        return Ok(key);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::open(path, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::usage(format!("{}: not a file name", path.display())))?;
    Ok(FileKey::Path(dir.join(name)))
}
