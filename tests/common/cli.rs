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
