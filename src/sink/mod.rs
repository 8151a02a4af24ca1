//! Sinks: where results go — the filtered signal, the events, the report.
//!
//! Why this module: every output must be all-or-nothing. Each file is
//! written to a temporary file beside its target ([`AtomicFile`]) and renamed
//! over the target only when the whole run has succeeded, so a failed or
//! killed run never leaves a half-written output under the target's name.

mod array;
pub mod plot;
mod signal;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::detect::Event;
use crate::error::{Error, Result};
pub use array::NpyArrayWriter;
pub use signal::{
    NPY_HEADER_LEN, SignalFormat, SignalSink, VecSink, npy_c8_header, open_signal_sink,
};

/// A file written under a temporary name beside its target and renamed to the
/// target by [`AtomicFile::commit`]; dropped uncommitted, it is removed.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file in `target`'s directory.
    pub fn create(target: &Path) -> Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".sigstream-").suffix(".tmp");
        // tempfile creates private (0600) files; an output should get the
        // mode of any new file, 0666 less the umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(dir)
            .map_err(|e| Error::open(target, e))?;
        Ok(AtomicFile {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The open temporary file, shared (for positioned reads and writes).
    pub fn as_file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The target path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the data to disk and renames the file to its target.
    pub fn commit(self) -> Result<()> {
        let target = self.target;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&target, e))?;
        self.tmp
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        Ok(())
    }
}

/// Whether an output path means standard output (`-`).
pub fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

/// Where a streamed output goes: a file committed atomically
/// ([`AtomicFile`]), or standard output for the path `-`.
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
}

impl Output {
    /// Opens `path`: standard output for `-`, else an [`AtomicFile`].
    ///
    /// # Errors
    /// [`Error::Open`] when the temporary file cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        if is_stdout(path) {
            Ok(Output::Stdout(std::io::stdout()))
        } else {
            AtomicFile::create(path).map(Output::File)
        }
    }

    /// The path written (`-` for standard output), for messages.
    pub fn target(&self) -> &Path {
        match self {
            Output::File(f) => f.target(),
            Output::Stdout(_) => Path::new(STDOUT_NAME),
        }
    }

    /// The file, when it is one (for seeking back to a header).
    pub fn file_mut(&mut self) -> Option<&mut File> {
        match self {
            Output::File(f) => Some(f.file()),
            Output::Stdout(_) => None,
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
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Stdout(s) => s.flush(),
        }
    }
}

/// Receives events as they are found, in order of start (then channel).
pub trait EventSink: Send {
    /// One event.
    fn event(&mut self, e: &Event) -> Result<()>;
}

impl EventSink for Vec<Event> {
    fn event(&mut self, e: &Event) -> Result<()> {
        self.push(*e);
        Ok(())
    }
}

/// Writes events as CSV with the header
/// `channel,start,end,peak_index,peak_value` (0-based sample indices).
#[derive(Debug)]
pub struct CsvEvents {
    out: BufWriter<Output>,
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

impl CsvEvents {
    /// Starts the CSV file (under a temporary name) for `path`; `-` writes
    /// to standard output.
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        let mut out = BufWriter::with_capacity(64 * 1024, Output::create(path)?);
        out.write_all(b"channel,start,end,peak_index,peak_value\n")
            .map_err(|e| Error::io(path, e))?;
        Ok(CsvEvents { out })
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
        writeln!(
            self.out,
            "{},{},{},{},{}",
            e.channel, e.start, e.end, e.peak_index, e.peak_value
        )
        .map_err(|err| Error::io(self.out.get_ref().target(), err))
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
