//! Typed errors for the library, one variant per kind of failure.
//!
//! Why a typed enum: the CLI must tell bad input (exit code 2) from a failure
//! at run time (exit code 1), and every message must name the file it is
//! about, as `sigstream: <path>: <what is wrong>`. The variants carry the path
//! so that the message is built in one place ([`std::fmt::Display`]).

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in sigstream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input could not be opened or read (missing, a directory, no
    /// permission), or an output could not be created (its directory is
    /// missing, no permission). Counts as bad input.
    #[error("{}: {}", .path.display(), io_message(.source))]
    Open {
        /// The input that failed.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The contents of an input are not what they claim to be: a header that
    /// lies or is cut short, a size that is not a whole number of samples, an
    /// unsupported sample type. Counts as bad input.
    #[error("{}: {msg}", .path.display())]
    Format {
        /// The input whose contents are wrong.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// Options that do not fit together or do not fit the input (a kernel
    /// longer than the signal, a filter that needs a sample rate, ...).
    /// Counts as bad input.
    #[error("{msg}")]
    Usage {
        /// What is wrong, with the option's name.
        msg: String,
    },
    /// Reading or writing failed while the job ran (disk full, I/O error).
    /// A failure at run time.
    #[error("{}: {}", .path.display(), io_message(.source))]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// An input shrank while it was being read (another process truncated
    /// or rewrote it). A failure at run time.
    #[error("{}: the file shrank while being read (was {was} bytes, now {now})", .path.display())]
    Shrank {
        /// The input.
        path: PathBuf,
        /// Its size when it was opened.
        was: u64,
        /// Its size now.
        now: u64,
    },
    /// The GPU failed: no adapter, an adapter that cannot run our kernels, a
    /// shader or pipeline the driver rejects, or the device lost mid-run. A
    /// failure at run time.
    #[error("gpu: {msg}")]
    Gpu {
        /// What went wrong, with the adapter's name where known.
        msg: String,
    },
    /// The front stopped the run (Python's Ctrl-C, or an exception in its
    /// progress callback). A failure at run time; the outputs are not
    /// committed.
    #[error("interrupted")]
    Interrupted,
    /// Any other failure at run time, with its context.
    #[error("{msg}")]
    Runtime {
        /// What went wrong.
        msg: String,
    },
}

impl Error {
    /// The process exit code the CLI uses for this error: 2 for bad input or
    /// usage, 1 for failures at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Open { .. } | Error::Format { .. } | Error::Usage { .. } => 2,
            Error::Io { .. }
            | Error::Shrank { .. }
            | Error::Gpu { .. }
            | Error::Runtime { .. }
            | Error::Interrupted => 1,
        }
    }

    /// Shorthand for [`Error::Format`].
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// Shorthand for [`Error::Usage`].
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage { msg: msg.into() }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Gpu`].
    pub fn gpu(msg: impl Into<String>) -> Self {
        Error::Gpu { msg: msg.into() }
    }

    /// Shorthand for [`Error::Open`].
    pub fn open(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Open {
            path: path.into(),
            source,
        }
    }
}

/// The operating system's message without the trailing "(os error N)",
/// lower-cased at the start like the rest of our messages.
fn io_message(e: &io::Error) -> String {
    let msg = match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    };
    let msg = match msg.find(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let mut chars = msg.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => msg,
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A library usage error that is about this input: name the input.
pub fn about_input(input: &std::path::Path) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Usage { msg } => Error::format(input, msg),
        e => e,
    }
}
