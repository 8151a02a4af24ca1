//! Hostile outputs and options: sigstream never writes over an input,
//! never replaces a device, a FIFO or a symlink, refuses a bad output path
//! before reading anything, and refuses absurd options instead of
//! crashing or taking the machine.

#[path = "common/cli.rs"]
mod cli;

use std::path::Path;
use std::process::Command;

use cli::{sigstream, stderr};

/// Exit 2, one line `sigstream: ...` saying `phrase`, no panic.
fn assert_refused(out: &std::process::Output, phrase: &str, what: &str) {
    cli::assert_refused(out, "", phrase, what);
}

fn write_f32(path: &Path, n: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| ((i as f32 * 0.1).sin() * 3.0).to_le_bytes())
        .collect();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// The names in `dir`, sorted (temp files would show up here).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn an_output_is_never_an_input_however_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let original = write_f32(&d.join("a.f32"), 4096);
    std::os::unix::fs::symlink("a.f32", d.join("link.f32")).unwrap();
    std::fs::hard_link(d.join("a.f32"), d.join("hard.f32")).unwrap();
    let cases: [&[&str]; 7] = [
        &["process", "a.f32", "--moving-average", "3", "-o", "a.f32"],
        &["process", "a.f32", "--moving-average", "3", "-o", "./a.f32"],
        &[
            "process",
            "a.f32",
            "--moving-average",
            "3",
            "-o",
            "link.f32",
        ],
        &[
            "process",
            "a.f32",
            "--moving-average",
            "3",
            "-o",
            "hard.f32",
        ],
        &[
            "process",
            "link.f32",
            "--detect",
            "threshold",
            "--on",
            "1",
            "--events",
            "a.f32",
        ],
        &["fft", "a.f32", "-o", "a.f32"],
        &["psd", "./a.f32", "--nperseg", "64", "-o", "a.f32"],
    ];
    for args in cases {
        let out = sigstream(d, args);
        assert_refused(&out, "never writes over an input", &args.join(" "));
        assert_eq!(
            std::fs::read(d.join("a.f32")).unwrap(),
            original,
            "{args:?}"
        );
        assert!(
            std::fs::symlink_metadata(d.join("link.f32"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(
        names(d),
        ["a.f32", "hard.f32", "link.f32"],
        "nothing left behind"
    );
    // Two outputs that are one file under two names.
    let out = sigstream(
        d,
        &[
            "process",
            "a.f32",
            "--detect",
            "threshold",
            "--on",
            "1",
            "-o",
            "y.f32",
            "--events",
            "./y.f32",
        ],
    );
    assert_refused(&out, "write the same file", "./y.f32 and y.f32");
}

#[test]
fn a_directory_or_a_missing_directory_as_output_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("a.f32"), 4096);
    std::fs::create_dir(d.join("outdir")).unwrap();
    let out = sigstream(
        d,
        &["process", "a.f32", "--moving-average", "3", "-o", "outdir"],
    );
    assert_refused(&out, "outdir: is a directory", "-o a directory");
    let out = sigstream(
        d,
        &[
            "process",
            "a.f32",
            "--moving-average",
            "3",
            "-o",
            "no/such/dir/y.f32",
        ],
    );
    assert_refused(
        &out,
        "no such file or directory",
        "-o in a missing directory",
    );
    let out = sigstream(d, &["fft", "a.f32", "-o", "outdir"]);
    assert_refused(&out, "is a directory", "fft -o a directory");
    assert_eq!(names(d), ["a.f32", "outdir"]);
}

#[cfg(unix)]
#[test]
fn a_fifo_output_is_written_in_place_and_a_symlink_is_followed() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("a.f32"), 50_000);
    // The reference: the filtered signal as a file.
    let out = sigstream(
        d,
        &["process", "a.f32", "--moving-average", "3", "-o", "ref.f32"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let want = std::fs::read(d.join("ref.f32")).unwrap();

    let fifo = d.join("out.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        })
    };
    let out = sigstream(
        d,
        &[
            "process",
            "a.f32",
            "--moving-average",
            "3",
            "-o",
            "out.fifo",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        reader.join().unwrap(),
        want,
        "the FIFO's reader gets the signal"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "still a FIFO"
    );
    // A header format cannot be completed on a FIFO: refused before reading.
    std::fs::rename(&fifo, d.join("out.npy")).unwrap();
    let out = sigstream(
        d,
        &["process", "a.f32", "--moving-average", "3", "-o", "out.npy"],
    );
    assert_refused(&out, "needs a regular file", "-o fifo.npy");

    // A symlink output: the file it points to is replaced, the link stays.
    std::fs::write(d.join("target.f32"), b"old").unwrap();
    std::os::unix::fs::symlink("target.f32", d.join("via.f32")).unwrap();
    let out = sigstream(
        d,
        &["process", "a.f32", "--moving-average", "3", "-o", "via.f32"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::symlink_metadata(d.join("via.f32"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(d.join("target.f32")).unwrap(), want);
}

#[test]
fn absurd_options_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_f32(&d.join("a.f32"), 10_000);
    // Found by the fuzzer (fuzz/regressions/npy-kernel-header-length): an
    // npy header that declares 4 GiB, in a 12-byte file.
    std::fs::write(
        d.join("k.npy"),
        [
            0x93, b'N', b'U', b'M', b'P', b'Y', 2, 0, 0x74, 0x01, 0x03, 0xff,
        ],
    )
    .unwrap();
    let max = u64::MAX.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Found by the fuzzer: frames whose size overflows (it wrapped to
        // a few bytes: an 8-byte file opened as 2 frames of 4.6e18
        // channels), and an --lta whose memory estimate overflowed to 32
        // KiB before the detector's allocation panicked.
        (
            vec!["info", "a.f32", "--channels", "9223372036854775807"],
            "--channels 9223372036854775807",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--dtype",
                "i32",
                "--channels",
                "4611686018427387905",
                "--moving-average",
                "3",
            ],
            "--channels 4611686018427387905",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--detect",
                "sta-lta",
                "--sta",
                "1",
                "--lta",
                "2305843009213693952",
                "--on",
                "3",
            ],
            "--memory-limit",
        ),
        (
            vec!["process", "a.f32", "--kernel", "k.npy"],
            "past the end of the file",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--moving-average",
                "3",
                "--threads",
                "100000",
            ],
            "--threads 100000: at most",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--moving-average",
                "3",
                "--chunk-size",
                &max,
            ],
            "--chunk-size",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--lowpass",
                "10",
                "--sample-rate",
                "100",
                "--taps",
                &max,
            ],
            "--taps 18446744073709551615: a designed filter has at most 8388608 taps",
        ),
        // The most taps a design may have: refused by the memory budget
        // (8,388,607 taps need about 160 MiB), before it is designed.
        (
            vec![
                "process",
                "a.f32",
                "--lowpass",
                "10",
                "--sample-rate",
                "100",
                "--taps",
                "8388607",
            ],
            "--memory-limit",
        ),
        // Taps chosen from a transition band: counted, then refused before
        // any is computed, by their maximum and by the memory budget.
        (
            vec![
                "process",
                "a.f32",
                "--lowpass",
                "10",
                "--sample-rate",
                "100",
                "--transition",
                "1e-300",
            ],
            "give a wider --transition",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--highpass",
                "1e-6",
                "--sample-rate",
                "100",
            ],
            "give a wider --transition",
        ),
        (
            vec![
                "process",
                "a.f32",
                "--highpass",
                "0.001",
                "--sample-rate",
                "100",
            ],
            "a wider --transition, or a lower --attenuation, needs fewer",
        ),
        (vec!["process", "a.f32", "--moving-average", &max], "taps"),
        (
            vec![
                "process",
                "a.f32",
                "--detect",
                "sta-lta",
                "--sta",
                "10",
                "--lta",
                "1000000000000",
                "--on",
                "3",
            ],
            "--memory-limit",
        ),
        (
            vec![
                "psd",
                "a.f32",
                "--nperseg",
                "64",
                "--png",
                "p.png",
                "--width",
                "100000",
                "--height",
                "100000",
            ],
            "at most 16384 pixels",
        ),
        (
            vec![
                "spectrogram",
                "a.f32",
                "--nfft",
                "64",
                "--png",
                "s.png",
                "--width",
                "100000",
            ],
            "at most 16384 pixels",
        ),
    ];
    for (args, phrase) in cases {
        // Under a bounded address space: a regression that allocates what
        // the option asks for fails here instead of taking the machine.
        #[cfg(unix)]
        let out = cli::sigstream_bounded(d, &args);
        #[cfg(not(unix))]
        let out = sigstream(d, &args);
        assert_refused(&out, phrase, &args.join(" "));
    }
    assert_eq!(names(d), ["a.f32", "k.npy"], "nothing written");
}

/// An npy header whose dictionary nests `depth` brackets deep.
fn deep_npy(depth: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': {}'<f4'{}, 'fortran_order': False, 'shape': (4,), }}",
        "{".repeat(depth),
        "}".repeat(depth)
    );
    let mut h = dict.into_bytes();
    let pad = 64 - (10 + h.len() + 1) % 64;
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend(h);
    out.extend([0u8; 16]);
    out
}

#[test]
fn a_deeply_nested_npy_header_is_refused_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 40 levels: npyz's parser would take hours (it doubles per level).
    std::fs::write(d.join("deep.npy"), deep_npy(40)).unwrap();
    let out = sigstream(d, &["info", "deep.npy"]);
    assert_refused(&out, "nest deeper than 8 levels", "info deep.npy");
    // The same header as a kernel file.
    std::fs::write(d.join("a.f32"), [0u8; 64]).unwrap();
    let out = sigstream(
        d,
        &["process", "a.f32", "--kernel", "deep.npy", "-o", "y.f32"],
    );
    assert_refused(&out, "nest deeper than 8 levels", "--kernel deep.npy");
    assert!(!d.join("y.f32").exists());
}

#[cfg(unix)]
#[test]
fn an_endless_kernel_file_is_refused_after_its_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.f32"), [0u8; 64]).unwrap();
    let out = sigstream(
        d,
        &["process", "a.f32", "--kernel", "/dev/zero", "-o", "y.f32"],
    );
    assert_refused(
        &out,
        "a kernel file is at most 64 MiB",
        "--kernel /dev/zero",
    );
    assert!(!d.join("y.f32").exists());
}

#[test]
fn a_frame_too_long_for_the_budget_is_refused_on_a_stream_too() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    for args in [
        [
            "spectrogram",
            "-",
            "--dtype",
            "f32",
            "--nfft",
            "1000000000",
            "-o",
            "s.npy",
        ],
        [
            "psd",
            "-",
            "--dtype",
            "f32",
            "--nperseg",
            "1000000000",
            "-o",
            "p.csv",
        ],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigstream"))
            .current_dir(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It may refuse before reading: a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(&[0u8; 4096]);
        let out = child.wait_with_output().unwrap();
        assert_refused(&out, "give --memory-limit", &args.join(" "));
    }
    assert_eq!(names(dir.path()), Vec::<String>::new(), "nothing written");
}

/// Headers and options that claim huge channel counts run (or are refused)
/// within a bounded address space: per-channel state is planned against
/// the budget, never allocated as the header asks.
#[cfg(unix)]
#[test]
fn huge_channel_counts_stay_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 3 MB npy of shape (3, 1000000) uint8: three frames of a million
    // channels (C order: one row per frame).
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut header =
        "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1000000), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend(std::iter::repeat_n(7u8, 3_000_000));
    std::fs::write(d.join("wide.npy"), &npy).unwrap();
    // A WAV of 65,535 u8 channels, three frames.
    let channels: u16 = 65_535;
    let data = vec![128u8; 3 * usize::from(channels)];
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(4 + 24 + 8 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&(8000 * u32::from(channels)).to_le_bytes());
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&8u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(d.join("many.wav"), &wav).unwrap();
    write_f32(&d.join("a.f32"), 300_000);

    for (args, frames, channels) in [
        (
            vec![
                "process",
                "wide.npy",
                "--moving-average",
                "3",
                "-o",
                "w.npy",
            ],
            3,
            1_000_000,
        ),
        (
            vec![
                "process",
                "many.wav",
                "--moving-average",
                "3",
                "-o",
                "m.npy",
            ],
            3,
            65_535,
        ),
        (
            vec![
                "process",
                "a.f32",
                "--channels",
                "100000",
                "--moving-average",
                "3",
                "-o",
                "c.npy",
            ],
            3,
            100_000,
        ),
    ] {
        let what = args.join(" ");
        let mut args = args;
        args.extend(["--backend", "cpu", "-q"]);
        let out = cli::sigstream_bounded(d, &args);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        let npy =
            std::fs::read(d.join(args[args.iter().position(|a| *a == "-o").unwrap() + 1])).unwrap();
        // f32 output of `frames` × `channels`: the header and the samples.
        assert!(
            npy.len() >= frames * channels * 4,
            "{what}: {} bytes written",
            npy.len()
        );
    }
    // A transform of one of a million channels is refused without --channel.
    let out = cli::sigstream_bounded(d, &["fft", "wide.npy", "-o", "f.npy", "--backend", "cpu"]);
    assert_refused(&out, "--channel", "fft of a million channels");
}

/// A moving average of 524,289 taps (and a 600,001-tap filter) on a long
/// input runs under the default (soft) budget, and matches the running
/// mean computed in f64.
#[test]
fn very_long_kernels_run_within_the_default_budget() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 1_500_000;
    write_f32(&d.join("a.f32"), n);
    let x: Vec<f64> = (0..n)
        .map(|i| f64::from((i as f32 * 0.1).sin() * 3.0))
        .collect();
    let taps = 524_289;
    let out = sigstream(
        d,
        &[
            "process",
            "a.f32",
            "--moving-average",
            "524289",
            "-o",
            "m.f32",
            "--backend",
            "cpu",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let y: Vec<f32> = std::fs::read(d.join("m.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(y.len(), n, "same mode: one output per input");
    // `same` mode: output i is the full convolution's i + (taps - 1) / 2,
    // the mean of x[i + h - taps + 1 ..= i + h] (zeros outside).
    let h = (taps - 1) / 2;
    let mut prefix = vec![0.0f64; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + x[i];
    }
    // f32 overlap-save over 2^20-point blocks: each output sums ~5·10^5
    // inputs of magnitude ≤ 3 whose mean is ≤ 3; the FFT's relative error
    // (~log2(n)·ε_f32 on the block's energy) bounds the error at 1e-4 of
    // the inputs' scale.
    const TOL: f64 = 1e-4 * 3.0;
    for i in (0..n).step_by(997) {
        let hi = (i + h).min(n - 1);
        let lo = (i + h + 1).saturating_sub(taps);
        let want = (prefix[hi + 1] - prefix[lo]) / taps as f64;
        assert!(
            (f64::from(y[i]) - want).abs() <= TOL,
            "output {i}: {} against {want}",
            y[i]
        );
    }
    let out = sigstream(
        d,
        &[
            "process",
            "a.f32",
            "--lowpass",
            "0.1",
            "--sample-rate",
            "1",
            "--taps",
            "600001",
            "-o",
            "l.f32",
            "--backend",
            "cpu",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "600001 taps: {}", stderr(&out));
}
