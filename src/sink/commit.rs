//! The temporary files behind every output, and how a run's outputs are
//! committed together.
//!
//! Why a process-wide register: three promises need to know every temporary
//! file this process has open, wherever it was created.
//! - **Interruptions.** On SIGINT or SIGTERM the front calls
//!   [`abandon_all`], which removes every temporary file (outputs being
//!   written and outputs waiting to be committed) and stops any further
//!   rename, so that an interrupted run leaves nothing behind.
//! - **All outputs or none.** While a [`Transaction`] is open, a finished
//!   output ([`AtomicFile::commit`](super::AtomicFile::commit)) is flushed to
//!   disk but not renamed; [`Transaction::commit`] renames them all at the
//!   end, so that a run that fails on its last output (a full disk while
//!   writing the PNG) leaves none of the others under their names either.
//!   The register is process-wide, not per thread, because outputs are
//!   finished on the pipeline's writer thread.
//! - **Concurrent runs.** [`Transaction::commit`] renames under an exclusive
//!   lock (`flock`) on each directory it writes into, taken in a fixed order,
//!   so two sigstream runs writing the same outputs each commit their whole
//!   set: the result is one run's set, never a mix.
//!
//! Temporary files are named `.sigstream-<pid>-<random>.tmp`. After a
//! `kill -9` nothing can clean up, so the next run that writes into a
//! directory removes the ones whose process is gone (Unix only: elsewhere
//! the README says how to remove them by hand).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// What is registered.
#[derive(Debug, Default)]
struct Register {
    /// The next id handed out.
    next_id: u64,
    /// Temporary files (and directories) being written: id and path.
    live: Vec<(u64, PathBuf, Kind)>,
    /// Finished outputs waiting for [`Transaction::commit`].
    staged: Vec<Staged>,
    /// Open transactions.
    open: usize,
    /// Set by [`abandon_all`]: nothing is renamed any more.
    closing: bool,
    /// Directories already swept of stale temporary files.
    swept: Vec<PathBuf>,
}

/// A temporary file or a temporary directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// A finished output: flushed to disk under its temporary name.
#[derive(Debug)]
pub(super) struct Staged {
    pub(super) tmp: tempfile::NamedTempFile,
    pub(super) target: PathBuf,
}

static REGISTER: Mutex<Register> = Mutex::new(Register {
    next_id: 0,
    live: Vec::new(),
    staged: Vec::new(),
    open: 0,
    closing: false,
    swept: Vec::new(),
});

/// The register, even after a panic on another thread (its data stays
/// consistent: every change is a single push or removal).
fn register() -> MutexGuard<'static, Register> {
    REGISTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The prefix of this process's temporary files: `.sigstream-<pid>-`.
pub(super) fn temp_prefix() -> String {
    format!(".sigstream-{}-", std::process::id())
}

/// Creates a temporary file with `create` and registers it; returns it
/// and the id to [`forget`] it by.
///
/// It is created while the register is held, so that an interruption
/// either comes first (and nothing is created) or finds it registered.
pub(super) fn create_file(
    create: impl FnOnce() -> std::io::Result<tempfile::NamedTempFile>,
) -> std::io::Result<(tempfile::NamedTempFile, u64)> {
    create_tracked(create, |f| f.path(), Kind::File)
}

fn create_tracked<T>(
    create: impl FnOnce() -> std::io::Result<T>,
    path: impl Fn(&T) -> &Path,
    kind: Kind,
) -> std::io::Result<(T, u64)> {
    let mut reg = register();
    if reg.closing {
        return Err(std::io::Error::other("interrupted"));
    }
    let made = create()?;
    reg.next_id += 1;
    let id = reg.next_id;
    reg.live.push((id, path(&made).to_path_buf(), kind));
    Ok((made, id))
}

/// Removes a temporary file from the register (it was removed or renamed).
pub(super) fn forget(id: u64) {
    register().live.retain(|(i, _, _)| *i != id);
}

/// A temporary directory (the demo's and the bench's data), removed with
/// its contents when dropped, and by [`abandon_all`] on an interruption.
#[derive(Debug)]
pub struct TempDir {
    dir: Option<tempfile::TempDir>,
    id: u64,
}

impl TempDir {
    /// Creates a directory named `.sigstream-<pid>-<what>-<random>` in the
    /// system's temporary directory.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be created.
    pub fn new(what: &str) -> Result<Self> {
        let base = std::env::temp_dir();
        let prefix = format!("{}{what}-", temp_prefix());
        let (dir, id) = create_tracked(
            || tempfile::Builder::new().prefix(&prefix).tempdir_in(&base),
            |d| d.path(),
            Kind::Dir,
        )
        .map_err(|e| Error::io(&base, e))?;
        Ok(TempDir { dir: Some(dir), id })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Removed (by tempfile) before it is forgotten, so that an
        // interruption in between still removes it.
        drop(self.dir.take());
        forget(self.id);
    }
}

/// Finishes an output: renames it now, or stages it when a [`Transaction`]
/// is open. The data is already on disk.
pub(super) fn finish(staged: Staged) -> Result<()> {
    {
        let mut reg = register();
        if reg.closing {
            return Err(interrupted());
        }
        if reg.open > 0 {
            reg.staged.push(staged);
            return Ok(());
        }
    }
    // Locked before the register, as in Transaction::commit.
    let _locks = lock_dirs([staged.target.as_path()]);
    let reg = register();
    if reg.closing {
        return Err(interrupted());
    }
    let result = persist(staged);
    drop(reg);
    result
}

fn persist(staged: Staged) -> Result<()> {
    let target = staged.target;
    staged
        .tmp
        .persist(&target)
        .map(drop)
        .map_err(|e| Error::io(&target, e.error))
}

fn interrupted() -> Error {
    Error::Runtime {
        msg: "interrupted: no output was written".into(),
    }
}

/// A run's outputs, committed together: while it is open, outputs are
/// written to disk under temporary names and renamed only by
/// [`Transaction::commit`]. Dropped uncommitted (the run failed), it
/// removes them all.
///
/// It is process-wide: open one per run, not one per thread.
#[derive(Debug)]
#[must_use = "a transaction's outputs are written only by Transaction::commit"]
pub struct Transaction {
    done: bool,
}

impl Transaction {
    /// Opens a transaction.
    pub fn begin() -> Self {
        register().open += 1;
        Transaction { done: false }
    }

    /// Renames every output finished since [`Transaction::begin`] to its
    /// target, under a lock on each directory written into (taken in the
    /// order of the directories' paths, so that concurrent runs cannot
    /// deadlock).
    ///
    /// # Errors
    /// [`Error::Io`] when a rename fails (the outputs not yet renamed are
    /// removed); [`Error::Runtime`] when the process is being interrupted.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let staged = {
            let mut reg = register();
            reg.open -= 1;
            std::mem::take(&mut reg.staged)
        };
        // The directory locks are taken without holding the register, so
        // that an interruption while another run holds them is not delayed.
        let _locks = lock_dirs(staged.iter().map(|s| s.target.as_path()));
        let reg = register();
        if reg.closing {
            return Err(interrupted());
        }
        let mut result = Ok(());
        for s in staged {
            if result.is_ok() {
                result = persist(s);
            }
            // Else `s` is dropped: its temporary file is removed.
        }
        drop(reg);
        result
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.done {
            let staged = {
                let mut reg = register();
                reg.open -= 1;
                std::mem::take(&mut reg.staged)
            };
            drop(staged);
        }
    }
}

/// Removes every temporary file and directory this process has registered
/// and stops any further rename: for a signal handler's thread, just
/// before the process exits. Returns how many were removed.
pub fn abandon_all() -> usize {
    let mut reg = register();
    reg.closing = true;
    let mut removed = 0;
    for s in std::mem::take(&mut reg.staged) {
        removed += usize::from(std::fs::remove_file(s.tmp.path()).is_ok());
        // The file is gone; keep tempfile from trying again.
        std::mem::forget(s);
    }
    for (_, path, kind) in std::mem::take(&mut reg.live) {
        let gone = match kind {
            Kind::File => std::fs::remove_file(&path),
            Kind::Dir => std::fs::remove_dir_all(&path),
        };
        removed += usize::from(gone.is_ok());
    }
    // Later finishes and commits see `closing` and rename nothing.
    removed
}

/// Exclusive locks on the directories of `targets`, in path order. Best
/// effort: a directory that cannot be locked (a filesystem without `flock`)
/// is not waited for.
fn lock_dirs<'a>(targets: impl IntoIterator<Item = &'a Path>) -> Vec<File> {
    // One lock per directory, whatever the spelling of its path: a
    // target that exists is named by its canonical path, a new one as
    // given, so `.` and `/abs/dir` can be the same directory (and locking
    // it twice would wait forever on our own lock).
    let mut dirs: Vec<PathBuf> = targets
        .into_iter()
        .map(|t| {
            let dir = parent(t);
            std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter().filter_map(|d| lock_dir(d)).collect()
}

#[cfg(unix)]
fn lock_dir(dir: &Path) -> Option<File> {
    let f = File::open(dir).ok()?;
    f.lock().ok()?;
    Some(f)
}

#[cfg(not(unix))]
fn lock_dir(_dir: &Path) -> Option<File> {
    // A directory cannot be opened as a File here.
    None
}

/// The directory a path's file goes in (`.` for a bare name).
pub(super) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes, once per run and directory, the temporary files that processes
/// which no longer exist left in `dir` (killed with `kill -9`, or by a
/// power cut). Only names sigstream makes are touched:
/// `.sigstream-<pid>-*.tmp` whose `<pid>` is not a running process.
pub(super) fn sweep_stale(dir: &Path) {
    {
        let mut reg = register();
        if reg.swept.iter().any(|d| d == dir) {
            return;
        }
        reg.swept.push(dir.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_pid) else {
            continue;
        };
        if pid != own && !process_exists(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid in a name `.sigstream-<pid>-<random>.tmp`, if it is one.
fn stale_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".sigstream-")?.strip_suffix(".tmp")?;
    let (pid, random) = rest.split_once('-')?;
    if random.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; kill only checks that the process
    // exists (and that we may signal it).
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    // Not checked here: never remove another process's file.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_sigstream_makes_are_stale_candidates() {
        assert_eq!(stale_pid(".sigstream-123-abcDEF.tmp"), Some(123));
        for name in [
            "sigstream-123-abc.tmp",
            ".sigstream-123-.tmp",
            ".sigstream-12a-abc.tmp",
            ".sigstream-123-abc.npy",
            ".sigstream-fft-abc.scratch",
            ".sigstream-123.tmp",
            "data.f32",
        ] {
            assert_eq!(stale_pid(name), None, "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_running_process_exists_and_a_reaped_one_does_not() {
        assert!(process_exists(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_exists(pid));
    }
}
