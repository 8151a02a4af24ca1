//! Helpers for the tests that run the `sigstream` binary (integration tests
//! only: the binary's path is known there).

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `sigstream args` in `dir`, without input on stdin.
pub fn sigstream(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("sigstream runs")
}

/// The run's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The error contract for bad input: exit 2, no panic, and one line
/// starting `sigstream: <subject>` that says `phrase` (`subject` may be
/// empty when the message is about options).
pub fn assert_refused(out: &Output, subject: &str, phrase: &str, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    assert!(
        err.starts_with(&format!("sigstream: {subject}")),
        "{what}: names {subject}: {err}"
    );
    assert!(err.contains(phrase), "{what}: says {phrase:?}: {err}");
}

/// Limits for a child process (Unix): its address space and the size of
/// any file it writes, so that a regression that allocates without bound
/// fails (an allocation error) instead of eating the machine, and a full
/// disk can be had without filling one.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// RLIMIT_AS in bytes.
    pub address_space: Option<u64>,
    /// RLIMIT_FSIZE in bytes (SIGXFSZ is ignored, so a write past it fails
    /// with EFBIG, as on a full disk).
    pub file_size: Option<u64>,
}

/// The address space the allocation-bounded tests run under: 3 GiB, room
/// for the process itself (thread stacks, allocator arenas) and its default
/// budgets (at most 1 GiB), far below what each refused case would take.
#[cfg(unix)]
pub const BOUNDED_ADDRESS_SPACE: u64 = 3 << 30;

/// A `sigstream args` command in `dir` that runs under `limits`.
#[cfg(unix)]
pub fn limited(dir: &Path, args: &[&str], limits: Limits) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigstream"));
    cmd.current_dir(dir).args(args);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe calls (setrlimit, signal) on values copied
    // into it.
    unsafe {
        cmd.pre_exec(move || {
            let set = |resource, bytes: u64| {
                let lim = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            if let Some(b) = limits.address_space {
                set(libc::RLIMIT_AS, b)?;
            }
            if let Some(b) = limits.file_size {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                set(libc::RLIMIT_FSIZE, b)?;
            }
            Ok(())
        });
    }
    cmd
}

/// Runs `sigstream args` in `dir` under an address-space limit of
/// [`BOUNDED_ADDRESS_SPACE`].
#[cfg(unix)]
pub fn sigstream_bounded(dir: &Path, args: &[&str]) -> Output {
    limited(
        dir,
        args,
        Limits {
            address_space: Some(BOUNDED_ADDRESS_SPACE),
            file_size: None,
        },
    )
    .output()
    .expect("sigstream runs")
}

/// Writes `data` (frames × channels, interleaved) as a C-order float32
/// `.npy`, through npyz.
pub fn write_npy(path: &Path, frames: usize, channels: usize, data: &[f32]) {
    use npyz::WriterBuilder;
    assert_eq!(data.len(), frames * channels);
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[frames as u64, channels as u64])
        .writer(std::fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}
