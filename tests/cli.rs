//! End-to-end tests of the `sigstream` binary: every check runs the real
//! executable in a temporary directory and looks only at what a user sees —
//! exit codes, stderr, and the files written.
//!
//! The references are independent of the crate: numpy.convolve's three modes
//! written out in `f64` below, ObsPy's trigger rules as a plain loop over the
//! whole signal, numpy-printed literals, and outputs read back with `npyz`
//! and `hound`. Inputs are built byte by byte (raw f32, hand-made `.npy`
//! headers) or with `hound`, so a bug in sigstream's readers cannot cancel a
//! bug in its writers.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

// ---------------------------------------------------------------- running

/// What a run of the binary left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Builds the argument list of a run from paths and strings alike.
macro_rules! args {
    ($($a:expr),* $(,)?) => { Vec::<OsString>::from([$(OsString::from($a)),*]) };
}

/// Runs `sigstream args` in `dir`, with `stdin` piped in when given (written
/// from a thread, so a child that stops reading early cannot block us).
fn sigstream_in(dir: &Path, args: &[OsString], stdin: Option<&[u8]>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sigstream"));
    // Mesa's drivers print a warning on every device creation when
    // XDG_RUNTIME_DIR is unset; a private temporary directory will do.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        command.env("XDG_RUNTIME_DIR", dir);
    }
    let mut child = command
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sigstream binary starts");
    let feeder = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A child that fails early closes its end: the broken pipe is expected.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().expect("sigstream runs to the end");
    if let Some(f) = feeder {
        f.join().expect("the stdin feeder does not panic");
    }
    Run {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("sigstream {args:?} was killed by a signal")),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `sigstream args` in `dir` without input on stdin.
fn sigstream(dir: &Path, args: &[OsString]) -> Run {
    sigstream_in(dir, args, None)
}

/// Asserts a successful run.
fn assert_ok(run: &Run, what: &str) {
    assert_eq!(
        run.code, 0,
        "{what}: expected success, got exit {}; stderr:\n{}",
        run.code, run.stderr
    );
    assert_no_panic(run, what);
}

/// Asserts that nothing on stderr looks like a crash.
fn assert_no_panic(run: &Run, what: &str) {
    for bad in ["panicked", "backtrace", "internal error"] {
        assert!(
            !run.stderr.to_lowercase().contains(bad),
            "{what}: stderr mentions '{bad}':\n{}",
            run.stderr
        );
    }
}

/// Asserts the error contract: exit `code`, and stderr exactly one line
/// `sigstream: ...` that names `subject` (the file, or the option when the
/// error is about options alone) and says `phrase`.
fn assert_error(run: &Run, code: i32, subject: &str, phrase: &str, what: &str) {
    assert_eq!(
        run.code, code,
        "{what}: expected exit {code}, got {}; stderr:\n{}",
        run.code, run.stderr
    );
    assert_no_panic(run, what);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: stderr must be exactly one line, got:\n{}",
        run.stderr
    );
    let line = lines[0];
    assert!(
        line.starts_with("sigstream: "),
        "{what}: stderr must start with 'sigstream: ', got: {line}"
    );
    assert!(
        line.contains(subject),
        "{what}: stderr must name '{subject}', got: {line}"
    );
    assert!(
        line.contains(phrase),
        "{what}: stderr must say '{phrase}', got: {line}"
    );
}

/// Asserts the error contract for an error about a file: the line is
/// `sigstream: <path>: <what is wrong>`.
fn assert_file_error(run: &Run, code: i32, path: &str, phrase: &str, what: &str) {
    assert_error(run, code, path, phrase, what);
    let prefix = format!("sigstream: {path}: ");
    assert!(
        run.stderr.starts_with(&prefix),
        "{what}: stderr must start with '{prefix}', got: {}",
        run.stderr
    );
}

// ---------------------------------------------------------------- data

/// SplitMix64: a seeded generator, so every run tests the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    /// `n` values uniform in [-scale, scale), as f32.
    fn signal(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-scale, scale) as f32).collect()
    }
}

/// Little-endian f32 bytes, as raw input.
fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes `x` as raw little-endian f32.
fn write_f32(path: &Path, x: &[f32]) {
    std::fs::write(path, f32_bytes(x)).expect("write raw input");
}

/// Interleaves per-channel signals into frames.
fn interleave(channels: &[Vec<f32>]) -> Vec<f32> {
    let n = channels[0].len();
    (0..n)
        .flat_map(|i| channels.iter().map(move |c| c[i]))
        .collect()
}

/// A version 1.0 `.npy` file built by hand: magic, version, header length,
/// the header dict padded with spaces to a multiple of 64 bytes, then `data`.
fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A 1-D `<f8` `.npy` file.
fn npy_f64(x: &[f64]) -> Vec<u8> {
    let data: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes("<f8", &[x.len()], &data)
}

/// Reads a float32 `.npy` output with npyz: its shape and values.
fn read_npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("a valid npy file");
    match npy.dtype() {
        npyz::DType::Plain(ty) => assert_eq!(ty.to_string(), "<f4", "output dtype"),
        other => panic!("output dtype {other:?} is not plain"),
    }
    assert_eq!(npy.order(), npyz::Order::C, "output is C order");
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().expect("npy data"))
}

/// Reads a raw little-endian f32 output.
fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "raw output is whole f32 samples");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The file names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- references

/// numpy.convolve's modes.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Full,
    Same,
    Valid,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Same => "same",
            Mode::Valid => "valid",
        }
    }
}

/// numpy.convolve(x, k, mode) in f64, with, for every output, the sum of
/// |k[j]·x[i−j]| over the same terms (the scale of its rounding error):
/// full[i] = Σ_j k[j]·x[i−j]; same = full[(m−1)/2 .. (m−1)/2 + n];
/// valid = full[m−1 .. n].
fn convolve(x: &[f64], k: &[f64], mode: Mode) -> (Vec<f64>, Vec<f64>) {
    let (n, m) = (x.len(), k.len());
    assert!(m <= n, "the reference assumes the kernel is not longer");
    let mut full = vec![0.0; n + m - 1];
    let mut scale = vec![0.0; n + m - 1];
    for (i, (f, s)) in full.iter_mut().zip(&mut scale).enumerate() {
        for (j, kj) in k.iter().enumerate() {
            if i >= j && i - j < n {
                *f += kj * x[i - j];
                *s += (kj * x[i - j]).abs();
            }
        }
    }
    let range = match mode {
        Mode::Full => 0..n + m - 1,
        Mode::Same => (m - 1) / 2..(m - 1) / 2 + n,
        Mode::Valid => m - 1..n,
    };
    (full[range.clone()].to_vec(), scale[range].to_vec())
}

/// Filtered outputs are f32: taps rounded to f32 (≤ 2^-24 relative each),
/// each product and each partial sum of at most 5 taps rounded in f32
/// (≤ 2^-24 each, relative to the sum of |terms| seen so far), and the
/// result rounded once more. That is under 12·2^-24 ≈ 7e-7 of Σ|k·x|.
const CONV_REL_TOL: f64 = 1e-6;

/// Asserts `got` (f32 output) equals the f64 reference within
/// [`CONV_REL_TOL`] of each output's Σ|k·x|; non-finite values must match
/// exactly (NaN where the reference has NaN, infinities of the same sign).
fn assert_conv_close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let g = f64::from(g);
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            g.is_finite() && (g - w).abs() <= CONV_REL_TOL * s
        };
        assert!(
            ok,
            "{what}: first difference at output {i}: got {g}, want {w} (tolerance {})",
            CONV_REL_TOL * s
        );
    }
}

/// One event, as the CSV has it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ev {
    channel: usize,
    start: u64,
    end: u64,
    peak_index: u64,
    peak_value: f64,
}

const CSV_HEADER: &str = "channel,start,end,peak_index,peak_value";

/// Parses an events CSV, checking that it is well-formed: the header, then
/// rows of exactly five fields of the right types, with start ≤ peak ≤ end.
fn parse_events(text: &str) -> Vec<Ev> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER), "events CSV header");
    assert!(text.ends_with('\n'), "events CSV ends with a newline");
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 5, "events CSV row '{line}' has 5 fields");
            let int = |s: &str| -> u64 {
                s.parse()
                    .unwrap_or_else(|_| panic!("'{s}' in row '{line}' is not an index"))
            };
            let ev = Ev {
                channel: int(f[0]) as usize,
                start: int(f[1]),
                end: int(f[2]),
                peak_index: int(f[3]),
                peak_value: f[4]
                    .parse()
                    .unwrap_or_else(|_| panic!("'{}' in row '{line}' is not a number", f[4])),
            };
            assert!(
                ev.start <= ev.peak_index && ev.peak_index <= ev.end,
                "row '{line}': start <= peak_index <= end"
            );
            ev
        })
        .collect()
}

/// The threshold detector's events, as a plain loop over whole channels:
/// cft = |y|; an onset is the first index with cft >= on; the event ends at
/// the last index of the run with cft >= off that starts there (or at the
/// last sample); the peak is the first maximum of cft in [start, end].
/// Sorted by start, then channel.
fn threshold_events(channels: &[Vec<f32>], on: f64, off: f64) -> Vec<Ev> {
    assert!(off <= on, "this reference covers off <= on");
    let mut all = Vec::new();
    for (channel, y) in channels.iter().enumerate() {
        let cft: Vec<f64> = y.iter().map(|v| f64::from(v.abs())).collect();
        let mut i = 0;
        while i < cft.len() {
            if cft[i] >= on {
                let mut end = i;
                while end + 1 < cft.len() && cft[end + 1] >= off {
                    end += 1;
                }
                let mut peak = i;
                for j in i..=end {
                    if cft[j] > cft[peak] {
                        peak = j;
                    }
                }
                all.push(Ev {
                    channel,
                    start: i as u64,
                    end: end as u64,
                    peak_index: peak as u64,
                    peak_value: cft[peak],
                });
                i = end + 1;
            } else {
                i += 1;
            }
        }
    }
    all.sort_by_key(|e| (e.start, e.channel));
    all
}

/// Splits interleaved frames into channels.
fn deinterleave(x: &[f32], channels: usize) -> Vec<Vec<f32>> {
    (0..channels)
        .map(|c| x.iter().skip(c).step_by(channels).copied().collect())
        .collect()
}

// ---------------------------------------------------------------- 1. errors

#[test]
fn bad_inputs_give_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name);
    let s = |name: &str| p(name).display().to_string();

    // Missing file, a directory, an empty file.
    let run = sigstream(d, &args!["info", p("missing.f32")]);
    assert_file_error(&run, 2, &s("missing.f32"), "no such file", "missing file");
    std::fs::create_dir(p("adir")).unwrap();
    let run = sigstream(d, &args!["info", p("adir")]);
    assert_file_error(&run, 2, &s("adir"), "is a directory", "directory to info");
    std::fs::write(p("empty.f32"), b"").unwrap();
    let run = sigstream(d, &args!["info", p("empty.f32")]);
    assert_file_error(&run, 2, &s("empty.f32"), "empty", "empty file");
    let run = sigstream(
        d,
        &args!["process", p("empty.f32"), "--moving-average", "3"],
    );
    assert_file_error(&run, 2, &s("empty.f32"), "empty", "empty file to process");

    // Raw size not a whole number of samples.
    std::fs::write(p("ten.f32"), [0u8; 10]).unwrap();
    let run = sigstream(d, &args!["info", p("ten.f32")]);
    assert_file_error(
        &run,
        2,
        &s("ten.f32"),
        "not a whole number of 4-byte f32 samples",
        "10-byte f32 file",
    );

    // .npy whose header declares more data than there is.
    let full = npy_f64(&[1.0; 50]);
    std::fs::write(p("short.npy"), &full[..full.len() - 8 * 20]).unwrap();
    let run = sigstream(d, &args!["info", p("short.npy")]);
    assert_file_error(&run, 2, &s("short.npy"), "declares 50 samples", "short npy");

    // .npy cut inside its header.
    std::fs::write(p("cut.npy"), &full[..40]).unwrap();
    let run = sigstream(d, &args!["info", p("cut.npy")]);
    assert_file_error(
        &run,
        2,
        &s("cut.npy"),
        "truncated npy header",
        "cut npy header",
    );

    // .npy of complex256 (complex64 and complex128 are read: tests/complex.rs).
    std::fs::write(p("complex.npy"), npy_bytes("<c32", &[4], &[0u8; 128])).unwrap();
    let run = sigstream(d, &args!["info", p("complex.npy")]);
    assert_file_error(
        &run,
        2,
        &s("complex.npy"),
        "unsupported dtype",
        "complex256 npy",
    );
    assert!(
        run.stderr.contains("<c32"),
        "names the dtype: {}",
        run.stderr
    );

    // .wav whose data chunk runs past the end of the file.
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(p("whole.wav"), spec).unwrap();
        for i in 0..100i16 {
            w.write_sample(i).unwrap();
        }
        w.finalize().unwrap();
        let bytes = std::fs::read(p("whole.wav")).unwrap();
        std::fs::write(p("trunc.wav"), &bytes[..bytes.len() - 50]).unwrap();
    }
    let run = sigstream(
        d,
        &args!["process", p("trunc.wav"), "--moving-average", "3"],
    );
    assert_file_error(
        &run,
        2,
        &s("trunc.wav"),
        "truncated WAV",
        "wav data too long",
    );

    // A 10-sample signal and a 20-tap kernel: from a file, and from stdin,
    // whose length is known only at its end.
    write_f32(&p("s10.f32"), &[1.0; 10]);
    let run = sigstream(d, &args!["process", p("s10.f32"), "--moving-average", "20"]);
    assert_file_error(
        &run,
        2,
        &s("s10.f32"),
        "kernel has 20 taps but the signal only 10 samples",
        "kernel longer than the file",
    );
    let run = sigstream_in(
        d,
        &args!["process", "-", "--dtype", "f32", "--moving-average", "20"],
        Some(&f32_bytes(&[1.0; 10])),
    );
    assert_file_error(
        &run,
        2,
        "-",
        "kernel has 20 taps but the signal only 10 samples",
        "kernel longer than stdin",
    );

    // A designed filter on raw input needs a sample rate; the input is named.
    let run = sigstream(d, &args!["process", p("s10.f32"), "--lowpass", "10"]);
    assert_file_error(
        &run,
        2,
        &s("s10.f32"),
        "--lowpass needs a sample rate",
        "lowpass without rate",
    );
    let run = sigstream(
        d,
        &args![
            "process",
            p("s10.f32"),
            "--highpass",
            "5",
            "--taps",
            "10",
            "--sample-rate",
            "100"
        ],
    );
    // Checked before any input is opened: the option is named, not the file.
    assert_error(
        &run,
        2,
        "--highpass",
        "needs an odd number of taps",
        "highpass with even taps",
    );
    assert!(
        !run.stderr.contains("s10.f32"),
        "highpass with even taps: {}",
        run.stderr
    );

    // Errors about options alone name the option (there is no file to name).
    let option_errors: [(&[&str], &str, &str); 5] = [
        (&["info", "--channels", "0"], "--channels", "at least 1"),
        (&["process", "--detect", "sta-lta"], "--detect", "--on"),
        (
            &[
                "process", "--detect", "sta-lta", "--on", "3", "--sta", "10", "--lta", "10",
            ],
            "--lta",
            "longer than --sta",
        ),
        (
            &[
                "process", "--detect", "sta-lta", "--on", "3", "--sta", "10", "--lta", "5",
            ],
            "--lta",
            "longer than --sta",
        ),
        (
            &["process", "--bandpass", "5"],
            "--bandpass",
            "expected LO:HI",
        ),
    ];
    for (opts, subject, phrase) in option_errors {
        let mut a: Vec<OsString> = opts.iter().map(OsString::from).collect();
        a.push(p("s10.f32").into());
        let run = sigstream(d, &a);
        assert_error(&run, 2, subject, phrase, &format!("{opts:?}"));
    }

    // Unknown flag: clap's usage error, exit 2.
    let run = sigstream(d, &args!["process", p("s10.f32"), "--bogus"]);
    assert_eq!(run.code, 2, "unknown flag: exit 2; stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("--bogus"),
        "names the flag: {}",
        run.stderr
    );
    assert_no_panic(&run, "unknown flag");
}

#[test]
fn outputs_that_cannot_be_created_are_bad_usage_exit_2() {
    // An output that cannot be created (its directory does not exist) is
    // reported like an input that cannot be opened: Error::Open, exit 2, the
    // message naming the output. Nothing else is left behind.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &[1.0; 100]);
    for (flag, name) in [
        ("-o", "x.npy"),
        ("--events", "ev.csv"),
        ("--report", "r.json"),
    ] {
        let target = d.join("no-such-dir").join(name);
        let run = sigstream(
            d,
            &args![
                "process",
                d.join("x.f32"),
                "--moving-average",
                "3",
                "--detect",
                "threshold",
                "--on",
                "1",
                flag,
                &target
            ],
        );
        assert_file_error(
            &run,
            2,
            &target.display().to_string(),
            "no such file or directory",
            &format!("{flag} into a missing directory"),
        );
    }
    assert_eq!(names_in(d), ["x.f32"], "nothing else was written");
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_to_stdout_is_a_runtime_error_exit_1() {
    // /dev/full accepts the open and fails every write with ENOSPC: an I/O
    // failure while running (Error::Io), not bad input.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.f32");
    write_f32(&input, &[1.0; 16]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .args([OsString::from("info"), input.into()])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().expect("exited"),
        stdout: String::new(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert_file_error(&run, 1, "<stdout>", "no space left", "info > /dev/full");
}

// ---------------------------------------------------------------- 2. NaN/Inf

#[test]
fn nan_and_inf_propagate_like_numpy_convolve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 1000;
    let mut x = Rng(2).signal(n, 1.0);
    // NaN at both ends and inside; +Inf and -Inf close enough to meet in one
    // 3-tap window (Inf − Inf = NaN there); a lone -Inf.
    for i in [0, 100, 500, n - 1] {
        x[i] = f32::NAN;
    }
    x[300] = f32::INFINITY;
    x[302] = f32::NEG_INFINITY;
    x[700] = f32::NEG_INFINITY;
    write_f32(&d.join("x.f32"), &x);

    let xf: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let (want, scale) = convolve(&xf, &[1.0 / 3.0; 3], Mode::Same);
    // The reference itself: NaN exactly at the outputs whose taps touch a NaN
    // sample or meet +Inf and -Inf.
    let nan_at: Vec<usize> = (0..n).filter(|&i| want[i].is_nan()).collect();
    assert_eq!(
        nan_at,
        [0, 1, 99, 100, 101, 301, 499, 500, 501, n - 2, n - 1]
    );

    let mut outputs = Vec::new();
    for chunk in ["7", "262144"] {
        let out = d.join(format!("y{chunk}.npy"));
        let ev = d.join(format!("ev{chunk}.csv"));
        let run = sigstream(
            d,
            &args![
                "process",
                d.join("x.f32"),
                "--moving-average",
                "3",
                "--detect",
                "threshold",
                "--on",
                "5",
                "--chunk-size",
                chunk,
                "-o",
                &out,
                "--events",
                &ev,
                "-q"
            ],
        );
        assert_ok(&run, "NaN/Inf input");
        let (shape, y) = read_npy_f32(&out);
        assert_eq!(shape, [n as u64]);
        assert_conv_close(&y, &want, &scale, "NaN/Inf moving average");

        // Only the infinite outputs reach 5; NaN never triggers and ends an
        // event (outputs 299..=300 are +Inf, 301 NaN, 302..=303 -Inf).
        let events = parse_events(&std::fs::read_to_string(&ev).unwrap());
        let expected = threshold_events(std::slice::from_ref(&y), 5.0, 5.0);
        assert_eq!(events, expected, "events on the NaN/Inf signal");
        let spans: Vec<(u64, u64)> = events.iter().map(|e| (e.start, e.end)).collect();
        assert_eq!(spans, [(299, 300), (302, 303), (699, 701)]);
        assert!(events.iter().all(|e| e.peak_value == f64::INFINITY));
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1], "output independent of chunking");
}

// ---------------------------------------------------------------- 3. atomic outputs

#[test]
fn a_failed_run_leaves_no_output_and_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 4·N + 2 bytes on stdin: the stream ends inside a sample, which is
    // known only at its end, after outputs were started.
    let n = 10_000;
    let mut bytes = f32_bytes(&Rng(3).signal(n, 10.0));
    bytes.extend_from_slice(&[0, 0]);
    let run = sigstream_in(
        d,
        &args![
            "process",
            "-",
            "--dtype",
            "f32",
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "1",
            "--chunk-size",
            "1000",
            "-o",
            "out.npy",
            "--events",
            "ev.csv",
            "--report",
            "r.json"
        ],
        Some(&bytes),
    );
    assert_file_error(
        &run,
        2,
        "-",
        "middle of a sample",
        "partial sample on stdin",
    );
    assert_eq!(
        names_in(d),
        ["r.json"],
        "no outputs, no .sigstream-*.tmp left; only the report"
    );
    // The report is complete, and records the failure instead of results.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let report = &report["inputs"][0];
    assert_eq!(report["input"], "-");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("middle of a sample"),
        "{report}"
    );
    assert!(report.get("samples").is_none(), "no results: {report}");
    std::fs::remove_file(d.join("r.json")).unwrap();

    // A pre-existing output is left exactly as it was.
    let old = b"precious contents".to_vec();
    std::fs::write(d.join("out.npy"), &old).unwrap();
    std::fs::write(d.join("ev.csv"), &old).unwrap();
    let run = sigstream_in(
        d,
        &args![
            "process",
            "-",
            "--dtype",
            "f32",
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "1",
            "-o",
            "out.npy",
            "--events",
            "ev.csv"
        ],
        Some(&bytes),
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(std::fs::read(d.join("out.npy")).unwrap(), old);
    assert_eq!(std::fs::read(d.join("ev.csv")).unwrap(), old);
    // Also when the failure is found before any sample is read.
    write_f32(&d.join("s10.f32"), &[1.0; 10]);
    let run = sigstream(
        d,
        &args![
            "process",
            "s10.f32",
            "--moving-average",
            "20",
            "-o",
            "out.npy"
        ],
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert_eq!(std::fs::read(d.join("out.npy")).unwrap(), old);
    assert_eq!(names_in(d), ["ev.csv", "out.npy", "s10.f32"]);
}

#[cfg(unix)]
#[test]
fn outputs_get_the_permissions_of_any_new_file() {
    // Outputs are written under a temporary name and renamed; they must
    // still end up with the mode any newly created file gets (0666 less the
    // umask), not a private 0600.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &[1.0; 100]);
    std::fs::File::create(d.join("reference")).unwrap();
    let mode = |name: &str| {
        std::fs::metadata(d.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "0.5",
            "-o",
            "y.npy",
            "--events",
            "ev.csv",
            "--report",
            "r.json"
        ],
    );
    assert_ok(&run, "permissions run");
    for name in ["y.npy", "ev.csv", "r.json"] {
        assert_eq!(
            mode(name),
            mode("reference"),
            "{name} has mode {:o}, a new file gets {:o}",
            mode(name),
            mode("reference")
        );
    }
}

// ---------------------------------------------------------------- 4. formats

/// A 5-tap kernel as a text file: commas, tabs, spaces, comments.
const KERNEL_TXT: &str =
    "# a 5-tap kernel\n0.25, -0.5\t1.0 # trailing comment\n  0.125,\n\n0.0625\n";
const KERNEL_TXT_TAPS: [f64; 5] = [0.25, -0.5, 1.0, 0.125, 0.0625];
/// A 5-tap kernel stored as f64 `.npy` (not exact in f32, on purpose).
const KERNEL_NPY_TAPS: [f64; 5] = [0.1, 0.2, 0.4, -0.3, 0.05];

#[test]
fn npy_wav_and_raw_outputs_match_numpy_convolve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("k.txt"), KERNEL_TXT).unwrap();
    std::fs::write(d.join("k.npy"), npy_f64(&KERNEL_NPY_TAPS)).unwrap();
    let n = 1000;
    let mut rng = Rng(4);
    let mono = rng.signal(n, 5.0);
    let tri: Vec<Vec<f32>> = (0..3).map(|_| rng.signal(n, 5.0)).collect();
    write_f32(&d.join("mono.f32"), &mono);
    write_f32(&d.join("tri.f32"), &interleave(&tri));
    let as_f64 = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();

    for mode in [Mode::Full, Mode::Same, Mode::Valid] {
        for (kfile, taps) in [("k.txt", &KERNEL_TXT_TAPS), ("k.npy", &KERNEL_NPY_TAPS)] {
            let what = format!("{} with {kfile}", mode.name());
            let base = args!["--kernel", kfile, "--conv-mode", mode.name(), "-q"];

            // Mono to .npy: shape (n_out,).
            let mut a = args!["process", "mono.f32", "-o", "mono.npy"];
            a.extend(base.clone());
            assert_ok(&sigstream(d, &a), &what);
            let (want, scale) = convolve(&as_f64(&mono), taps, mode);
            let (shape, y) = read_npy_f32(&d.join("mono.npy"));
            assert_eq!(shape, [want.len() as u64], "{what}: mono shape");
            assert_conv_close(&y, &want, &scale, &format!("{what}, mono npy"));

            // Three channels to .npy: shape (n_out, 3), interleaved frames.
            let mut a = args!["process", "tri.f32", "--channels", "3", "-o", "tri.npy"];
            a.extend(base.clone());
            assert_ok(&sigstream(d, &a), &what);
            let (shape, y) = read_npy_f32(&d.join("tri.npy"));
            let refs: Vec<(Vec<f64>, Vec<f64>)> = tri
                .iter()
                .map(|c| convolve(&as_f64(c), taps, mode))
                .collect();
            assert_eq!(
                shape,
                [refs[0].0.len() as u64, 3],
                "{what}: 3-channel shape"
            );
            for (c, ((want, scale), got)) in refs.iter().zip(deinterleave(&y, 3)).enumerate() {
                assert_conv_close(&got, want, scale, &format!("{what}, channel {c} npy"));
            }

            // Three channels to .wav: IEEE float 32, channels and rate kept.
            let mut a = args![
                "process",
                "tri.f32",
                "--channels",
                "3",
                "--sample-rate",
                "8000",
                "-o",
                "tri.wav"
            ];
            a.extend(base.clone());
            assert_ok(&sigstream(d, &a), &what);
            let mut reader = hound::WavReader::open(d.join("tri.wav")).expect("hound reads it");
            let spec = reader.spec();
            assert_eq!(spec.sample_format, hound::SampleFormat::Float, "{what}");
            assert_eq!(spec.bits_per_sample, 32, "{what}");
            assert_eq!(spec.channels, 3, "{what}");
            assert_eq!(spec.sample_rate, 8000, "{what}");
            let samples: Vec<f32> = reader.samples::<f32>().map(|s| s.unwrap()).collect();
            assert_eq!(samples.len(), 3 * refs[0].0.len(), "{what}: wav length");
            for (c, ((want, scale), got)) in refs.iter().zip(deinterleave(&samples, 3)).enumerate()
            {
                assert_conv_close(&got, want, scale, &format!("{what}, channel {c} wav"));
            }

            // Mono to raw: little-endian f32, nothing else.
            let mut a = args!["process", "mono.f32", "-o", "mono.out"];
            a.extend(base);
            assert_ok(&sigstream(d, &a), &what);
            let (want, scale) = convolve(&as_f64(&mono), taps, mode);
            assert_conv_close(
                &read_f32(&d.join("mono.out")),
                &want,
                &scale,
                &format!("{what}, raw"),
            );
        }
    }
}

#[test]
fn numpy_printed_literals() {
    // Values printed by numpy (np.convolve), exact in f32, compared exactly.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &[1.0, 2.0, 3.0, 4.0, 5.0]);
    let cases: [(&str, &str, &[f32]); 5] = [
        ("1 1", "same", &[1.0, 3.0, 5.0, 7.0, 9.0]),
        ("0, 1, 0.5", "same", &[1.0, 2.5, 4.0, 5.5, 7.0]),
        ("1 2 3 4", "same", &[4.0, 10.0, 20.0, 30.0, 34.0]),
        ("1 2 3 4", "valid", &[20.0, 30.0]),
        ("0 1 0.5", "full", &[0.0, 1.0, 2.5, 4.0, 5.5, 7.0, 2.5]),
    ];
    for (kernel, mode, want) in cases {
        std::fs::write(d.join("k.txt"), kernel).unwrap();
        let run = sigstream(
            d,
            &args![
                "process",
                "x.f32",
                "--kernel",
                "k.txt",
                "--conv-mode",
                mode,
                "-o",
                "y.f32",
                "-q"
            ],
        );
        assert_ok(&run, kernel);
        assert_eq!(
            read_f32(&d.join("y.f32")),
            want,
            "np.convolve([1,2,3,4,5], [{kernel}], '{mode}')"
        );
    }
}

// ---------------------------------------------------------------- 5. events

/// Two channels of quiet noise (|x| < 1, below every level) with bursts at
/// known places: overlapping starts in both channels, dips between `off` and
/// `on` inside a burst, an isolated sample between the levels, a
/// one-sample burst, bursts at the first and last samples.
fn two_channel_bursts(n: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(5);
    let mut ch: Vec<Vec<f32>> = (0..2).map(|_| rng.signal(n, 0.9)).collect();
    let mut burst = |c: &mut Vec<f32>, start: usize, len: usize| {
        for (k, v) in c[start..start + len].iter_mut().enumerate() {
            // First sample >= on; later ones alternate between loud and a dip
            // that stays >= off.
            let mag = if k == 0 || k % 3 != 1 {
                rng.uniform(4.0, 10.0)
            } else {
                rng.uniform(1.5, 3.9)
            };
            *v = if rng.next() & 1 == 0 { mag } else { -mag } as f32;
        }
    };
    burst(&mut ch[0], 0, 5);
    burst(&mut ch[0], 100, 50);
    burst(&mut ch[1], 100, 20);
    burst(&mut ch[1], 990, 20);
    burst(&mut ch[0], 1000, 3);
    burst(&mut ch[1], 2000, 1);
    burst(&mut ch[0], 2500, 700);
    burst(&mut ch[1], n - 10, 10);
    // Between off and on, alone: no onset.
    ch[0][3000] = 3.0;
    ch[1][3001] = -2.0;
    ch
}

#[test]
fn threshold_events_match_the_reference_for_any_chunking_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 5000;
    let ch = two_channel_bursts(n);
    write_f32(&d.join("x.f32"), &interleave(&ch));
    let (on, off) = (4.0, 1.5);
    let expected = threshold_events(&ch, on, off);
    // The reference sees the bursts as built.
    let spans: Vec<(usize, u64, u64)> = expected
        .iter()
        .map(|e| (e.channel, e.start, e.end))
        .collect();
    assert_eq!(
        spans,
        [
            (0, 0, 4),
            (0, 100, 149),
            (1, 100, 119),
            (1, 990, 1009),
            (0, 1000, 1002),
            (1, 2000, 2000),
            (0, 2500, 3199),
            (1, 4990, 4999)
        ]
    );

    let mut texts = Vec::new();
    for (chunk, threads) in [
        ("7", "2"),
        ("1000", "2"),
        ("5000", "2"),
        ("1000", "1"),
        ("7", "1"),
    ] {
        let ev = d.join(format!("ev-{chunk}-{threads}.csv"));
        let run = sigstream(
            d,
            &args![
                "process",
                "x.f32",
                "--channels",
                "2",
                "--detect",
                "threshold",
                "--on",
                on.to_string(),
                "--off",
                off.to_string(),
                "--chunk-size",
                chunk,
                "--threads",
                threads,
                "--events",
                &ev,
                "-q"
            ],
        );
        assert_ok(&run, "threshold events");
        let text = std::fs::read_to_string(&ev).unwrap();
        assert_eq!(
            parse_events(&text),
            expected,
            "events with --chunk-size {chunk} --threads {threads}"
        );
        texts.push(text);
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "identical CSV text");
}

// ---------------------------------------------------------------- 6. report

#[test]
fn report_json_is_consistent_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 10_000;
    let mut x = Rng(6).signal(n, 0.5);
    for i in [10, 2999, 3000, 7777, 9999] {
        x[i] = 3.0;
    }
    write_f32(&d.join("x.f32"), &x);
    let chunk = 3000;
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--detect",
            "threshold",
            "--on",
            "2",
            "--chunk-size",
            chunk.to_string(),
            "--events",
            "ev.csv",
            "--report",
            "r.json",
            "-q"
        ],
    );
    assert_ok(&run, "report run");
    let events = parse_events(&std::fs::read_to_string(d.join("ev.csv")).unwrap());
    assert_eq!(events.len(), 4, "2999 and 3000 are one event");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    // One shape whatever the number of inputs: the run's figures at the top,
    // one entry per input, totals.
    for key in [
        "sigstream",
        "command",
        "backend",
        "device",
        "seconds",
        "peak_rss_mb",
        "inputs",
        "totals",
    ] {
        assert!(report.get(key).is_some(), "report has '{key}': {report}");
    }
    let entry = &report["inputs"][0];
    for key in [
        "input",
        "format",
        "dtype",
        "channels",
        "samples",
        "sample_rate",
        "duration_s",
        "chunks",
        "events",
        "seconds",
        "throughput_mb_s",
        "outputs",
        "detector",
    ] {
        assert!(entry.get(key).is_some(), "entry has '{key}': {entry}");
    }
    assert_eq!(report["command"], "process");
    assert_eq!(entry["input"], "x.f32");
    assert_eq!(entry["samples"], n as u64);
    assert_eq!(entry["channels"], 1);
    assert_eq!(entry["chunks"], n.div_ceil(chunk) as u64);
    assert_eq!(entry["events"], events.len() as u64);
    assert_eq!(entry["outputs"]["events"], "ev.csv");
    assert!(entry["outputs"]["signal"].is_null());
    // The detector is plain JSON, not a Debug string.
    assert_eq!(
        entry["detector"],
        serde_json::json!({
            "kind": "threshold",
            "on": 2.0,
            "off": 2.0,
            "max_len": null,
            "dead": null,
            "polarity": "both"
        })
    );
    assert_eq!(report["backend"], "cpu");
    assert_eq!(report["totals"]["events"], events.len() as u64);
    let peak = report["peak_rss_mb"].as_f64().unwrap();
    assert!(peak > 0.0 && peak < 200.0, "peak_rss_mb {peak}");
    let seconds = entry["seconds"].as_f64().unwrap();
    assert!(seconds > 0.0 && seconds.is_finite(), "seconds {seconds}");
    let mbs = entry["throughput_mb_s"].as_f64().unwrap();
    // throughput = input bytes / seconds / 1e6; the JSON keeps both to f64
    // round-trip precision, so only the division's rounding separates them.
    const RATIO_REL_TOL: f64 = 1e-12;
    let want = (4 * n) as f64 / seconds / 1e6;
    assert!(
        (mbs - want).abs() <= RATIO_REL_TOL * want,
        "throughput {mbs} vs bytes/seconds {want}"
    );
}

// ---------------------------------------------------------------- 7. batch

#[test]
fn batch_with_a_broken_input_processes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rng = Rng(7);
    let a = rng.signal(400, 2.0);
    let b: Vec<f64> = rng.signal(300, 2.0).iter().map(|&v| f64::from(v)).collect();
    write_f32(&d.join("a.f32"), &a);
    std::fs::write(d.join("b.npy"), npy_f64(&b)).unwrap();
    let good = npy_f64(&b);
    std::fs::write(d.join("bad.npy"), &good[..good.len() - 100]).unwrap();

    let run = sigstream(
        d,
        &args![
            "process",
            "a.f32",
            "b.npy",
            "bad.npy",
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "1",
            "--off",
            "0.5",
            "-o",
            "filtered.npy",
            "--events",
            "events.csv",
            "--output-dir",
            "out",
            "--report",
            "r.json",
            "-q"
        ],
    );
    assert_file_error(&run, 2, "bad.npy", "npy header declares", "batch");
    assert_eq!(
        names_in(&d.join("out")),
        [
            "a.events.csv",
            "a.filtered.npy",
            "b.events.csv",
            "b.filtered.npy"
        ],
        "outputs for the good inputs only"
    );
    let a64: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    let mut total_events = 0;
    for (stem, x) in [("a", &a64), ("b", &b)] {
        let (shape, y) = read_npy_f32(&d.join(format!("out/{stem}.filtered.npy")));
        assert_eq!(shape, [x.len() as u64]);
        // The f64 input of b.npy is read as f32 first.
        let x32: Vec<f64> = x.iter().map(|&v| f64::from(v as f32)).collect();
        let (want, scale) = convolve(&x32, &[1.0 / 3.0; 3], Mode::Same);
        assert_conv_close(&y, &want, &scale, stem);
        let events = parse_events(
            &std::fs::read_to_string(d.join(format!("out/{stem}.events.csv"))).unwrap(),
        );
        assert_eq!(events, threshold_events(&[y], 1.0, 0.5), "{stem} events");
        assert!(!events.is_empty(), "{stem}: the test signal has events");
        total_events += events.len();
    }

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let files = report["inputs"].as_array().expect("report.inputs");
    assert_eq!(files.len(), 3);
    let inputs: Vec<&str> = files.iter().map(|f| f["input"].as_str().unwrap()).collect();
    assert_eq!(inputs, ["a.f32", "b.npy", "bad.npy"]);
    assert!(files[0].get("error").is_none() && files[1].get("error").is_none());
    assert!(
        files[2]["error"].as_str().unwrap().contains("declares"),
        "{}",
        files[2]
    );
    let totals = &report["totals"];
    assert_eq!(totals["inputs"], 3);
    assert_eq!(totals["succeeded"], 2);
    assert_eq!(totals["failed"], 1);
    assert_eq!(totals["samples"], (a.len() + b.len()) as u64);
    assert_eq!(totals["events"], total_events as u64);
}

#[test]
fn several_inputs_need_output_dir_and_directories_expand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inputs = d.join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    let mut rng = Rng(8);
    let x = rng.signal(100, 1.0);
    let y = rng.signal(120, 1.0);
    write_f32(&inputs.join("x.f32"), &x);
    write_f32(&inputs.join("y.f32"), &y);
    write_f32(&inputs.join(".hidden.f32"), &[1.0; 3]);

    // Several inputs with -o but no --output-dir: refused before anything runs.
    for a in [
        args!["process", "inputs/x.f32", "inputs/y.f32", "-o", "f.npy"],
        args![
            "process",
            "inputs",
            "--events",
            "e.csv",
            "--detect",
            "threshold",
            "--on",
            "1"
        ],
    ] {
        let run = sigstream(d, &a);
        assert_error(&run, 2, "--output-dir", "several inputs", &format!("{a:?}"));
    }
    assert_eq!(names_in(d), ["inputs"], "nothing written");

    // A directory expands to its files (sorted, hidden ones skipped).
    let run = sigstream(
        d,
        &args![
            "process",
            "inputs",
            "--moving-average",
            "3",
            "-o",
            "f.npy",
            "--output-dir",
            "out",
            "--report",
            "r.json",
            "-q"
        ],
    );
    assert_ok(&run, "directory input");
    assert_eq!(names_in(&d.join("out")), ["x.f.npy", "y.f.npy"]);
    for (stem, sig) in [("x", &x), ("y", &y)] {
        let (shape, got) = read_npy_f32(&d.join(format!("out/{stem}.f.npy")));
        assert_eq!(shape, [sig.len() as u64]);
        let s64: Vec<f64> = sig.iter().map(|&v| f64::from(v)).collect();
        let (want, scale) = convolve(&s64, &[1.0 / 3.0; 3], Mode::Same);
        assert_conv_close(&got, &want, &scale, stem);
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    assert_eq!(report["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(report["totals"]["succeeded"], 2);
}

// ---------------------------------------------------------------- 8. info

#[test]
fn info_describes_wav_npy_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(d.join("s.wav"), spec).unwrap();
    for i in 0..2 * 12_000 {
        w.write_sample((i % 100) as i16).unwrap();
    }
    w.finalize().unwrap();
    let run = sigstream(d, &args!["info", "s.wav"]);
    assert_ok(&run, "info wav");
    let field = |name: &str| -> String {
        run.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no '{name}:' line in:\n{}", run.stdout))
            .trim()
            .to_string()
    };
    assert_eq!(run.stdout.lines().next(), Some("s.wav"));
    assert_eq!(field("format"), "wav");
    assert_eq!(field("channels"), "2");
    assert_eq!(field("samples"), "12,000 per channel");
    assert_eq!(field("sample rate"), "8000 Hz");
    assert_eq!(field("duration"), "1.500 s");

    // JSON for an npy of 3 channels.
    let data: Vec<u8> = (0..250 * 3)
        .flat_map(|i| (i as i16).to_le_bytes())
        .collect();
    let npy = npy_bytes("<i2", &[250, 3], &data);
    std::fs::write(d.join("m.npy"), &npy).unwrap();
    let check = |run: &Run, path: &str| {
        assert_ok(run, path);
        let all: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("info --json is JSON ({e}):\n{}", run.stdout));
        assert_eq!(all["command"], "info");
        let v = &all["inputs"][0];
        assert_eq!(v["input"], path);
        assert_eq!(v["format"], "npy");
        assert_eq!(v["dtype"], "i16");
        assert_eq!(v["channels"], 3);
        assert_eq!(v["samples"], 250);
        assert_eq!(v["data_offset"], (npy.len() - data.len()) as u64);
        assert!(v["sample_rate"].is_null() && v["duration_s"].is_null());
    };
    check(&sigstream(d, &args!["info", "--json", "m.npy"]), "m.npy");
    // The same file through stdin: the header alone tells the length.
    check(
        &sigstream_in(d, &args!["info", "--json", "-"], Some(&npy)),
        "-",
    );
}

// ---------------------------------------------------------------- 9. stdin

#[test]
fn stdin_gives_the_same_output_as_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = Rng(9).signal(300_000, 1.0);
    write_f32(&d.join("x.f32"), &x);
    let common = args!["--moving-average", "3", "--chunk-size", "65536", "-q"];
    let mut a = args!["process", "x.f32", "-o", "from-file.npy"];
    a.extend(common.clone());
    assert_ok(&sigstream(d, &a), "from file");
    let mut a = args!["process", "-", "--dtype", "f32", "-o", "from-stdin.npy"];
    a.extend(common);
    assert_ok(&sigstream_in(d, &a, Some(&f32_bytes(&x))), "from stdin");
    let from_file = std::fs::read(d.join("from-file.npy")).unwrap();
    assert!(
        from_file == std::fs::read(d.join("from-stdin.npy")).unwrap(),
        "stdin and file outputs differ"
    );
    let (shape, _) = read_npy_f32(&d.join("from-stdin.npy"));
    assert_eq!(shape, [x.len() as u64]);
}

// ---------------------------------------------------------------- 10. demo

#[test]
fn demo_recovers_every_injected_event() {
    let dir = tempfile::tempdir().unwrap();
    let run = sigstream(
        dir.path(),
        &args!["demo", "--samples", "2000000", "--events", "100", "-q"],
    );
    assert_ok(&run, "small demo");
    assert!(
        run.stdout
            .contains("100 of 100 injected recovered, 0 missed, 0 spurious"),
        "{}",
        run.stdout
    );
}

#[test]
fn default_demo_recovers_every_injected_event() {
    // 50,000,000 samples (200 MB in the temporary directory), about 2 s.
    let dir = tempfile::tempdir().unwrap();
    let run = sigstream(dir.path(), &args!["demo", "-q"]);
    assert_ok(&run, "default demo");
    assert!(
        run.stdout
            .contains("1,000 of 1,000 injected recovered, 0 missed, 0 spurious"),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------- 11. broken pipe

#[test]
fn a_closed_stdout_is_not_an_error() {
    // `sigstream info ... | head -c 1`: the output is far larger than a pipe
    // buffer, so sigstream is still writing when the reader goes away.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &[1.0; 8]);
    let mut a = args!["info"];
    a.extend(std::iter::repeat_n(OsString::from("x.f32"), 2000));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .args(&a)
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"x");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().expect("not killed by SIGPIPE"),
        stdout: String::new(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert_no_panic(&run, "broken pipe");
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "", "nothing on stderr");
}

#[test]
fn version_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let run = sigstream(dir.path(), &args!["--version"]);
    assert_ok(&run, "--version");
    assert!(run.stdout.starts_with("sigstream "), "{}", run.stdout);
}

// ---------------------------------------------------------------- GPU

/// Whether `sigstream info --gpus` lists an adapter; without one, GPU tests
/// skip, unless `REQUIRE_GPU=1` (set by scripts/test) makes that a failure.
fn have_gpu(d: &Path) -> bool {
    if !cfg!(feature = "gpu") {
        // A CPU-only build: `info --gpus` lists none, by design (see
        // tests/promises.rs for what `--backend gpu` says there).
        return false;
    }
    let run = sigstream(d, &args!["info", "--gpus", "--json"]);
    assert_ok(&run, "info --gpus");
    let list: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("info --gpus --json is JSON");
    let any = list["gpus"].as_array().is_some_and(|a| !a.is_empty());
    if !any && std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_GPU=1 but sigstream info --gpus lists no adapter");
    }
    any
}

#[test]
fn the_gpu_backend_matches_the_cpu_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if !have_gpu(d) {
        return;
    }
    let channels = two_channel_bursts(20_000);
    write_f32(&d.join("x.f32"), &interleave(&channels));
    let job = args![
        "process",
        "x.f32",
        "--channels",
        "2",
        "--moving-average",
        "5",
        "--detect",
        "threshold",
        "--on",
        "6",
        "--off",
        "3",
        "--chunk-size",
        "3000",
        "-q"
    ];
    for backend in ["cpu", "gpu"] {
        let mut a = job.clone();
        a.extend(args![
            "--backend",
            backend,
            "-o",
            format!("{backend}.f32"),
            "--events",
            format!("{backend}.csv"),
            "--report",
            format!("{backend}.json")
        ]);
        assert_ok(&sigstream(d, &a), backend);
    }
    let (cpu, gpu) = (read_f32(&d.join("cpu.f32")), read_f32(&d.join("gpu.f32")));
    assert_eq!(cpu.len(), gpu.len());
    // A 5-tap moving average in f32, direct sums in both backends: a few
    // ulps of the largest |x| apart at most.
    const MA_ABS_TOL: f32 = 1e-5;
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in cpu.iter().zip(&gpu).enumerate() {
        assert!(
            (a - b).abs() <= MA_ABS_TOL * scale,
            "sample {i}: cpu {a} gpu {b}"
        );
    }
    let ev = |name: &str| parse_events(&std::fs::read_to_string(d.join(name)).unwrap());
    let (ev_cpu, ev_gpu) = (ev("cpu.csv"), ev("gpu.csv"));
    assert!(!ev_cpu.is_empty());
    let key = |e: &Ev| (e.channel, e.start, e.end, e.peak_index);
    assert_eq!(
        ev_cpu.iter().map(key).collect::<Vec<_>>(),
        ev_gpu.iter().map(key).collect::<Vec<_>>(),
        "same events"
    );
    for (a, b) in ev_cpu.iter().zip(&ev_gpu) {
        // Peaks are |y| of the filtered samples compared above.
        assert!((a.peak_value - b.peak_value).abs() <= f64::from(MA_ABS_TOL * scale));
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("gpu.json")).unwrap()).unwrap();
    assert_eq!(report["backend"], "gpu");
    assert!(
        report["device"].as_str().is_some_and(|s| !s.is_empty()),
        "{report}"
    );
}

#[cfg(feature = "gpu")]
#[test]
fn a_missing_gpu_adapter_is_a_runtime_error_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &[0.0; 100]);
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--backend",
            "gpu",
            "--gpu-adapter",
            "no-such-gpu-xyz",
            "-o",
            "y.f32"
        ],
    );
    assert_error(
        &run,
        1,
        "gpu",
        "no GPU adapter named like \"no-such-gpu-xyz\"",
        "missing adapter",
    );
    assert!(!d.join("y.f32").exists(), "no output after a failed start");
}

#[test]
fn bench_compares_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpu = have_gpu(d);
    write_f32(&d.join("x.f32"), &interleave(&two_channel_bursts(20_000)));
    let run = sigstream(
        d,
        &args![
            "bench",
            "x.f32",
            "--channels",
            "2",
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "6"
        ],
    );
    assert_ok(&run, "bench");
    let rows: Vec<&str> = run.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), if gpu { 2 } else { 1 }, "{}", run.stdout);
    assert!(rows[0].starts_with("cpu "), "{}", run.stdout);
    if gpu {
        let cols: Vec<&str> = rows[1].split_whitespace().collect();
        assert_eq!(cols[0], "gpu");
        assert_eq!(cols[7], "yes", "identical events: {}", run.stdout);
        let rel: f64 = cols[6].parse().expect("a relative difference");
        assert!(rel <= 1e-5, "{}", run.stdout);
    }
    let bad = sigstream(d, &args!["bench", "x.f32", "-o", "y.f32"]);
    assert_error(&bad, 2, "-o", "bench sets -o itself", "bench with -o");
    // A job option `process` refuses: its first line, and its exit code.
    let bad = sigstream(d, &args!["bench", "x.f32", "--moving-average", "0"]);
    assert_error(
        &bad,
        2,
        "--moving-average",
        "backend cpu",
        "bench with a bad job",
    );
    let missing = sigstream(d, &args!["bench", "nope.f32", "--moving-average", "3"]);
    assert_file_error(
        &missing,
        2,
        "nope.f32",
        "no such file",
        "bench on a missing file",
    );
}

#[test]
fn narrow_designed_filters_warn_with_the_taps_that_fit() {
    // A 0.2 Hz high-pass at 100 Hz with 101 taps (Hamming, the window of
    // --taps): the transition band (3.4 Hz) is far wider than the 0.2 Hz
    // down to 0 Hz. The run goes on, with one warning line naming the taps
    // that fit (1701: see filter::tests for the formula and the measured
    // response).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &Rng(7).signal(2000, 1.0));
    let base = args![
        "process",
        d.join("x.f32"),
        "--sample-rate",
        "100",
        "--highpass",
        "0.2",
        "--backend",
        "cpu",
        "-o",
        d.join("y.f32")
    ];
    let mut taps101 = base.clone();
    taps101.extend(args!["--taps", "101"]);
    let mut quiet = taps101.clone();
    quiet.push("--quiet".into());
    let run = sigstream(d, &quiet);
    assert_ok(&run, "quiet narrow high-pass");
    assert!(
        !run.stderr.contains("warning"),
        "--quiet prints no warning: {}",
        run.stderr
    );
    let run = sigstream(d, &taps101);
    assert_ok(&run, "narrow high-pass");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("sigstream: warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    for phrase in [
        "--highpass",
        "101 taps and a Hamming window",
        "0.2 Hz",
        "--taps 1701",
    ] {
        assert!(
            warnings[0].contains(phrase),
            "'{phrase}' in {}",
            warnings[0]
        );
    }
    // Enough taps: no warning.
    let mut fitted = base.clone();
    fitted.extend(args!["--taps", "1701"]);
    let run = sigstream(d, &fitted);
    assert_ok(&run, "fitted high-pass");
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    // Without --taps the taps fit the corner by design (a 0.05 Hz
    // transition band: 7253 Kaiser taps), so there is nothing to warn
    // about; the signal is longer than the kernel.
    write_f32(&d.join("x.f32"), &Rng(7).signal(8000, 1.0));
    let run = sigstream(d, &base);
    assert_ok(&run, "high-pass with the default taps");
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    // A --transition wider than the corner warns, naming the one that fits.
    let mut wide = base.clone();
    wide.extend(args!["--transition", "1"]);
    let run = sigstream(d, &wide);
    assert_ok(&run, "wide --transition");
    assert!(
        run.stderr.contains("--transition 1 Hz")
            && run.stderr.contains("--transition 0.2 or narrower"),
        "{}",
        run.stderr
    );
}

/// Outputs of FFT overlap-save (kernels over 16 taps) against the f64
/// reference: the rounding error of an output is bounded by
/// O(log2 nfft)·2^-24·‖k‖₁·max|x| (tests/pipeline.rs), not by the output's
/// own Σ|k·x|; 1e-5 of ‖k‖₁·max|x| covers it with a wide margin and still
/// catches a wrong tap, shift or dropped sample (those err by ~|k_j|·|x|).
const FFT_CONV_REL_TOL: f64 = 1e-5;

/// One design of `tests/fixtures/fir_kaiser.json` (scipy's kaiserord and
/// firwin, `tests/fixtures/make_fir_kaiser.py`): its taps and the case.
fn scipy_fir(name: &str) -> (Vec<f64>, serde_json::Value) {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/fir_kaiser.json")).unwrap();
    let case = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone();
    let taps = case["taps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    (taps, case)
}

#[test]
fn a_lowpass_without_taps_is_scipys_kaiser_design() {
    // --lowpass 10 at 100 Hz, nothing else: a 2.5 Hz transition band,
    // kaiserord(60, 0.05) = 147 taps, firwin(147, 10, window=('kaiser',
    // 5.65326), fs=100); the output is numpy.convolve(x, taps, 'same').
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 3000;
    let mut rng = Rng(12);
    let chans: Vec<Vec<f32>> = (0..2).map(|_| rng.signal(n, 4.0)).collect();
    write_f32(&d.join("x.f32"), &interleave(&chans));
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--channels",
            "2",
            "--sample-rate",
            "100",
            "--lowpass",
            "10",
            "--backend",
            "cpu",
            "-o",
            "y.f32",
            "--report",
            "r.json",
            "-q"
        ],
    );
    assert_ok(&run, "lowpass with the default taps");
    let (taps, case) = scipy_fir("lowpass_10");
    assert_eq!(taps.len(), 147);
    let y = read_f32(&d.join("y.f32"));
    let norm1: f64 = taps.iter().map(|t| t.abs()).sum();
    for (c, (x, got)) in chans.iter().zip(deinterleave(&y, 2)).enumerate() {
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let (want, _) = convolve(&x64, &taps, Mode::Same);
        let max_x = x64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = FFT_CONV_REL_TOL * norm1 * max_x;
        assert_eq!(got.len(), want.len(), "channel {c}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() <= tol,
                "channel {c}: first difference at output {i}: got {g}, want {w} (tolerance {tol})"
            );
        }
    }
    // The report says what was designed.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let filter = &report["inputs"][0]["filter"];
    assert_eq!(filter["taps"], 147, "{filter}");
    assert_eq!(filter["window"], "kaiser", "{filter}");
    assert_eq!(filter["beta"].as_f64(), case["beta"].as_f64(), "{filter}");
    assert_eq!(filter["attenuation_db"], 60.0, "{filter}");
    assert_eq!(filter["transition_hz"], 2.5, "{filter}");
    // With --taps, the window is Hamming (firwin's default) and no
    // transition or beta is reported.
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--sample-rate",
            "100",
            "--lowpass",
            "10",
            "--taps",
            "101",
            "--report",
            "-",
            "-q"
        ],
    );
    assert_ok(&run, "lowpass with --taps");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let filter = &report["inputs"][0]["filter"];
    assert_eq!(
        (
            &filter["taps"],
            &filter["window"],
            &filter["beta"],
            &filter["transition_hz"],
            &filter["attenuation_db"]
        ),
        (
            &serde_json::json!(101),
            &serde_json::json!("hamming"),
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::Value::Null
        ),
        "{filter}"
    );
}

#[test]
fn fir_design_options_that_would_be_ignored_or_are_absurd_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("x.f32"), &Rng(3).signal(1000, 1.0));
    std::fs::write(d.join("k.txt"), "1 2 1").unwrap();
    // Checked before any input is opened: the option is named.
    let before_input: [(&[&str], &str, &str); 11] = [
        (
            &["--lowpass", "10", "--transition", "0"],
            "--transition 0",
            "positive number of Hz",
        ),
        (
            &["--lowpass", "10", "--transition", "nan"],
            "--transition NaN",
            "positive",
        ),
        (
            &["--lowpass", "10", "--taps", "11", "--transition", "1"],
            "--transition 1 with --taps 11",
            "give one",
        ),
        (
            &["--lowpass", "10", "--attenuation=-3"],
            "--attenuation -3",
            "above 0",
        ),
        (
            &["--lowpass", "10", "--attenuation", "5"],
            "--attenuation 5",
            "at least 8 dB",
        ),
        (
            &["--lowpass", "10", "--taps", "11", "--attenuation", "80"],
            "--attenuation 80",
            "add --window kaiser",
        ),
        (
            &["--kernel", "k.txt", "--window", "kaiser"],
            "--window",
            "--kernel and --moving-average give their taps",
        ),
        (
            &["--moving-average", "3", "--taps", "5"],
            "--taps",
            "give their taps",
        ),
        (
            &["--iir", "butter", "--lowpass", "10", "--transition", "2"],
            "--transition",
            "an --iir design has no taps",
        ),
        (
            &["--iir", "butter", "--lowpass", "10", "--taps", "11"],
            "--taps",
            "an --iir design has no taps",
        ),
        (
            &["--detect", "threshold", "--on", "1", "--transition", "2"],
            "--transition",
            "there is no filter",
        ),
    ];
    for (opts, subject, phrase) in before_input {
        let mut a = args!["process", "x.f32", "--sample-rate", "100"];
        a.extend(opts.iter().map(OsString::from));
        let run = sigstream(d, &a);
        assert_error(&run, 2, subject, phrase, &format!("{opts:?}"));
        assert!(!run.stderr.contains("x.f32"), "{opts:?}: {}", run.stderr);
    }
    // What needs the sample rate names the input.
    let at_rate: [(&[&str], &str); 3] = [
        (
            &["--lowpass", "10", "--transition", "50"],
            "narrower than the Nyquist frequency 50 Hz",
        ),
        (
            &["--lowpass", "10", "--transition", "1e-6"],
            "give a wider --transition",
        ),
        (
            &["--highpass", "1e-5"],
            "(the default: a quarter of the lowest cutoff",
        ),
    ];
    for (opts, phrase) in at_rate {
        let mut a = args!["process", "x.f32", "--sample-rate", "100"];
        a.extend(opts.iter().map(OsString::from));
        let run = sigstream(d, &a);
        assert_file_error(&run, 2, "x.f32", phrase, &format!("{opts:?}"));
    }
    // --attenuation is the IIR families' too, and --sos has no use for it.
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--sample-rate",
            "100",
            "--iir",
            "cheby2",
            "--lowpass",
            "10",
            "--attenuation",
            "40",
            "-q"
        ],
    );
    assert_ok(&run, "cheby2 --attenuation");
    let run = sigstream(
        d,
        &args![
            "process",
            "x.f32",
            "--moving-average",
            "3",
            "--attenuation",
            "40"
        ],
    );
    assert_error(
        &run,
        2,
        "--attenuation 40",
        "give their taps",
        "moving average --attenuation",
    );
}

/// Regression: two outputs in one directory, one already there (named by
/// its canonical path when committed) and one new (named as given), made
/// the commit lock that directory twice, under two spellings, and wait
/// forever on its own lock. The run must finish (within a generous
/// minute; it takes milliseconds) and write both.
#[test]
fn an_existing_and_a_new_output_in_one_directory_commit() {
    let dir = tempfile::tempdir().unwrap();
    write_f32(&dir.path().join("x.f32"), &[0.0, 5.0, 0.0, 5.0]);
    std::fs::write(dir.path().join("ev.csv"), "old\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .args([
            "process",
            "x.f32",
            "--dtype",
            "f32",
            "--detect",
            "threshold",
            "--on",
            "1",
            "--events",
            "ev.csv",
            "-o",
            "y.f32",
            "-q",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("sigstream starts");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run did not finish: it waits on its own directory lock");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success());
    let events = std::fs::read_to_string(dir.path().join("ev.csv")).unwrap();
    assert!(events.starts_with("channel,start,end"), "{events}");
    assert_eq!(read_f32(&dir.path().join("y.f32")).len(), 4);
}
