//! Runs cut short from outside: an input that shrinks while it is read, a
//! SIGINT or SIGTERM, a `kill -9`, a disk that fills on the last output,
//! another run writing the same outputs. Each case runs the binary in a
//! child process and checks what is left on disk: no output, no temporary
//! file, a clear message and the exit code the README promises.

#![cfg(unix)]

#[path = "common/cli.rs"]
mod cli;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli::{Limits, limited, stderr};

/// Frames of the large input: 400 MB of f32, enough that every command
/// below is still reading it when it is cut short.
const BIG: usize = 100_000_000;

/// Writes `n` f32 samples (a cheap, non-constant signal) to `path`.
fn write_f32(path: &Path, n: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut buf = Vec::with_capacity(1 << 16);
    for i in 0..n {
        buf.extend_from_slice(&(((i % 1000) as f32) * 0.001 - 0.5).to_le_bytes());
        if buf.len() >= 1 << 16 {
            f.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    f.write_all(&buf).unwrap();
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sigstream starts")
}

/// Waits until `dir` holds a temporary output of `child`
/// (`.sigstream-<pid>-*.tmp`): the run has started writing. Panics when the
/// child ends first.
fn wait_for_temp(dir: &Path, child: &mut Child) {
    let prefix = format!(".sigstream-{}-", child.id());
    let start = Instant::now();
    loop {
        if names(dir).iter().any(|n| n.starts_with(&prefix)) {
            return;
        }
        if child.try_wait().unwrap().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the run ended before it wrote anything: {err}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no temp file");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The whole stderr of a finished child, and its exit code.
fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.code(), stderr(&out))
}

#[test]
fn an_input_that_shrinks_while_read_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("big.f32"), BIG);
    let commands: [&[&str]; 4] = [
        &[
            "process",
            "in.f32",
            "--lowpass",
            "0.1",
            "--sample-rate",
            "1",
            "--taps",
            "1025",
            "--detect",
            "sta-lta",
            "--sta",
            "10",
            "--lta",
            "100",
            "--on",
            "3",
            "-o",
            "out.f32",
            "--events",
            "ev.csv",
        ],
        &["fft", "in.f32", "-o", "f.npy", "--memory-limit", "16"],
        &[
            "spectrogram",
            "in.f32",
            "--nfft",
            "256",
            "-o",
            "s.npy",
            "--png",
            "s.png",
        ],
        &["psd", "in.f32", "--nperseg", "256", "-o", "p.csv"],
    ];
    for args in commands {
        let what = args[0];
        std::fs::copy(d.join("big.f32"), d.join("in.f32")).unwrap();
        let mut args = args.to_vec();
        args.extend(["--backend", "cpu"]);
        if what != "fft" {
            // Small chunks: many reads, so the truncation lands mid-run.
            args.extend(["--chunk-size", "4096"]);
        }
        let mut child = spawn(d, &args);
        if what == "psd" {
            // psd writes nothing before its end: cut it 200 ms in (it reads
            // 400 MB in 4096-frame chunks for over a second here).
            std::thread::sleep(Duration::from_millis(200));
            assert!(child.try_wait().unwrap().is_none(), "psd still running");
        } else {
            wait_for_temp(d, &mut child);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("in.f32"))
            .unwrap()
            .set_len(1_000_000)
            .unwrap();
        let (code, err) = finish(child);
        assert_eq!(
            code,
            Some(1),
            "{what}: a runtime failure, not a signal: {err}"
        );
        assert!(
            err.starts_with("sigstream: in.f32: the file shrank while being read (was 400000000 bytes, now 1000000)"),
            "{what}: {err}"
        );
        assert_eq!(
            names(d),
            ["big.f32", "in.f32"],
            "{what}: no output, no temporary file"
        );
    }
}

#[test]
fn an_interrupted_run_removes_its_temp_files_and_exits_128_plus_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("in.f32"), BIG);
    let process: &[&str] = &[
        "process",
        "in.f32",
        "--moving-average",
        "64",
        "--chunk-size",
        "4096",
        "-o",
        "out.f32",
        "--events",
        "ev.csv",
        "--detect",
        "threshold",
        "--on",
        "9",
    ];
    let fft: &[&str] = &["fft", "in.f32", "-o", "f.npy", "--memory-limit", "16"];
    for (args, signal, code) in [
        (process, libc::SIGINT, 130),
        (process, libc::SIGTERM, 143),
        (fft, libc::SIGINT, 130),
        (fft, libc::SIGTERM, 143),
    ] {
        let what = format!("{} on signal {signal}", args[0]);
        let mut args = args.to_vec();
        args.extend(["--backend", "cpu"]);
        let mut child = spawn(d, &args);
        wait_for_temp(d, &mut child);
        // SAFETY: sends a signal to our own child, which is still running
        // (it has not been waited for).
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let (got, err) = finish(child);
        assert_eq!(got, Some(code), "{what}: {err}");
        assert!(err.contains("interrupted"), "{what}: {err}");
        assert_eq!(names(d), ["in.f32"], "{what}: nothing left behind");
    }
}

#[test]
fn the_fft_scratch_never_has_a_name_so_kill_9_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("in.f32"), BIG / 4);
    let mut child = spawn(
        d,
        &[
            "fft",
            "in.f32",
            "-o",
            "f.npy",
            "--memory-limit",
            "16",
            "--backend",
            "cpu",
        ],
    );
    wait_for_temp(d, &mut child);
    // Out of core and running: its scratch (beside the output, 2·M·8 =
    // 400 MB) is created after the output's temporary file, and never has
    // a name. The only name is the output's temporary file.
    let output_temp =
        |d: &Path| -> Vec<String> { names(d).into_iter().filter(|n| n != "in.f32").collect() };
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(output_temp(d).len(), 1, "{:?}", names(d));
    }
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
    // kill -9 leaves the output's temporary file (nothing can remove it
    // then), never the scratch; the next run writing into the directory
    // removes the stale temporary file.
    let left = output_temp(d);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".sigstream-") && left[0].ends_with(".tmp"));
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(d)
        .args(["psd", "in.f32", "--nperseg", "64", "-o", "p.csv", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(d), ["in.f32", "p.csv"]);
}

#[test]
fn stale_temp_files_of_dead_processes_only_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("in.f32"), 10_000);
    // A process that has exited: its pid is free (until reused).
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let alive = std::process::id();
    let stale = format!(".sigstream-{dead}-AbC123.tmp");
    let kept = [
        format!(".sigstream-{alive}-XyZ789.tmp"),
        format!(".sigstream-{dead}-AbC123.npy"),
        ".sigstream-notes.tmp".to_string(),
        "mine.tmp".to_string(),
    ];
    for name in kept.iter().chain([&stale]) {
        std::fs::write(d.join(name), b"x").unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(d)
        .args([
            "process",
            "in.f32",
            "--moving-average",
            "3",
            "-o",
            "o.f32",
            "-q",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let left = names(d);
    assert!(!left.contains(&stale), "{left:?}");
    for name in &kept {
        assert!(left.contains(name), "{name} kept: {left:?}");
    }
}

#[test]
fn a_run_that_fails_on_its_last_output_commits_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("in.f32"), 20_000);
    let args = [
        "spectrogram",
        "in.f32",
        "--nfft",
        "256",
        "-o",
        "s.npy",
        "--png",
        "s.png",
        "--width",
        "4000",
        "--height",
        "3000",
        "--report",
        "r.json",
        "--backend",
        "cpu",
    ];
    // The .npy (a few KB) fits under the file size limit; the 4000×3000
    // PNG does not: its write fails as on a full disk.
    let limits = Limits {
        address_space: None,
        file_size: Some(300_000),
    };
    let out = limited(d, &args, limits).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("s.png"), "the failing output is named: {err}");
    assert_eq!(names(d), ["in.f32"], "neither the .npy nor the report");
    // The same run without the limit writes all three.
    let out = limited(d, &args, Limits::default()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(d), ["in.f32", "r.json", "s.npy", "s.png"]);
}

#[test]
fn outputs_are_renamed_into_place_under_a_lock_on_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("out")).unwrap();
    write_f32(&d.join("in.f32"), 10_000);
    // Another run's commit in progress: it holds the directory's lock.
    let lock = std::fs::File::open(d.join("out")).unwrap();
    lock.lock().unwrap();
    let mut child = spawn(
        d,
        &[
            "process",
            "in.f32",
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "0.4",
            "-o",
            "out/o.f32",
            "--events",
            "out/ev.csv",
            "--backend",
            "cpu",
        ],
    );
    // The run computes its outputs, then waits for the lock to commit them.
    wait_for_temp(&d.join("out"), &mut child);
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "waits for the lock");
    assert!(
        !names(&d.join("out"))
            .iter()
            .any(|n| !n.starts_with(".sigstream-")),
        "nothing renamed while another commit holds the lock"
    );
    lock.unlock().unwrap();
    let (code, err) = finish(child);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(names(&d.join("out")), ["ev.csv", "o.f32"]);
}
