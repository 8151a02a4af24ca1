//! `sigstream bench`: the same job on every backend, timed and compared.
//!
//! Why each backend runs in a child process: peak RSS is a per-process
//! high-water mark, so backends run one after the other in one process would
//! each report the largest peak so far. The child is this very binary running
//! `sigstream process` with the user's options, `--backend NAME`, and outputs
//! in a temporary directory; its JSON report gives time, throughput and peak
//! RSS, and its outputs are then compared to the first backend's, streaming
//! (constant memory, like everything else).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use sigstream::error::{Error, Result};

/// One backend's run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Backend name as passed to `--backend`.
    pub backend: String,
    /// What ran it (from the report).
    pub device: String,
    /// Median wall time over the repeats, seconds.
    pub seconds: f64,
    /// Input MB/s at that time.
    pub mb_s: f64,
    /// Peak RSS of the child process, MiB (largest over the repeats).
    pub peak_rss_mib: f64,
    /// Events found.
    pub events: u64,
}

/// How a backend's outputs differ from the reference backend's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Diff {
    /// Largest |a − b| over the filtered signals.
    pub max_abs: f64,
    /// `max_abs` over the largest |a| of the reference signal (the error
    /// relative to the signal's scale).
    pub max_rel: f64,
    /// Whether the event lists agree on channel, start, end and peak index.
    pub events_identical: bool,
    /// Largest relative difference of the events' peak values.
    pub peak_rel: f64,
}

/// The backends this machine can run: always `cpu`, and `gpu` when an
/// adapter exists (software adapters included, named as such in the device
/// column).
pub fn available_backends() -> Vec<String> {
    let cpu = "cpu".to_owned();
    #[cfg(feature = "gpu")]
    if !sigstream::backend::gpu::context::adapters().is_empty() {
        return vec![cpu, "gpu".to_owned()];
    }
    vec![cpu]
}

/// Runs `sigstream process INPUT OPS --backend B` for each backend `repeat`
/// times, and compares each backend's outputs with the first's.
///
/// # Errors
/// When a child fails (its message is passed on) or the outputs cannot be
/// read.
pub fn run(
    input: &Path,
    ops: &[String],
    backends: &[String],
    repeat: usize,
) -> Result<Vec<(Run, Option<Diff>)>> {
    let dir = sigstream::sink::TempDir::new("bench")?;
    let exe = std::env::current_exe().map_err(|e| Error::io("sigstream", e))?;
    let mut results: Vec<(Run, Option<Diff>)> = Vec::new();
    let mut reference: Option<(PathBuf, PathBuf)> = None;
    for backend in backends {
        let signal = dir.path().join(format!("{backend}.f32"));
        let events = dir.path().join(format!("{backend}.csv"));
        let report = dir.path().join(format!("{backend}.json"));
        let mut times = Vec::with_capacity(repeat);
        let mut peak: f64 = 0.0;
        let mut last = Value::Null;
        for _ in 0..repeat.max(1) {
            let out = Command::new(&exe)
                .arg("process")
                .arg(input)
                .args(ops)
                .args(["--backend", backend, "--quiet"])
                .arg("-o")
                .arg(&signal)
                .arg("--events")
                .arg(&events)
                .arg("--report")
                .arg(&report)
                .output()
                .map_err(|e| Error::io(&exe, e))?;
            if !out.status.success() {
                let msg = String::from_utf8_lossy(&out.stderr);
                // The child's first line says what is wrong (clap adds usage
                // lines after it).
                let msg = msg
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("failed")
                    .trim()
                    .trim_start_matches("sigstream: ")
                    .trim_start_matches("error: ");
                // The child's own verdict: bad input or options (2) stay
                // bad input, anything else is a failure at run time.
                let msg = format!("backend {backend}: {msg}");
                return Err(if out.status.code() == Some(2) {
                    Error::Usage { msg }
                } else {
                    Error::Runtime { msg }
                });
            }
            let text = std::fs::read_to_string(&report).map_err(|e| Error::io(&report, e))?;
            last = serde_json::from_str(&text)
                .map_err(|e| Error::format(&report, format!("bad report: {e}")))?;
            times.push(last["inputs"][0]["seconds"].as_f64().unwrap_or(f64::NAN));
            peak = peak.max(last["peak_rss_mb"].as_f64().unwrap_or(0.0));
        }
        times.sort_by(f64::total_cmp);
        let seconds = times[times.len() / 2];
        let bytes = last["inputs"][0]["bytes"].as_f64().unwrap_or(0.0);
        let run = Run {
            backend: backend.clone(),
            device: last["device"].as_str().unwrap_or("").to_owned(),
            seconds,
            mb_s: bytes / seconds.max(1e-9) / 1e6,
            peak_rss_mib: peak,
            events: last["inputs"][0]["events"].as_u64().unwrap_or(0),
        };
        let diff = match &reference {
            None => {
                reference = Some((signal, events));
                None
            }
            Some((ref_signal, ref_events)) => {
                let (max_abs, max_rel) = compare_signals(ref_signal, &signal)?;
                let (events_identical, peak_rel) = compare_events(ref_events, &events)?;
                Some(Diff {
                    max_abs,
                    max_rel,
                    events_identical,
                    peak_rel,
                })
            }
        };
        results.push((run, diff));
    }
    Ok(results)
}

/// Largest absolute difference of two raw f32 files, and that over the
/// first file's largest magnitude. Files of different lengths differ
/// infinitely.
fn compare_signals(a: &Path, b: &Path) -> Result<(f64, f64)> {
    let open = |p: &Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| Error::io(p, e))
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let (mut max_abs, mut scale) = (0.0f64, 0.0f64);
    loop {
        let na = read_full(&mut ra, &mut ba).map_err(|e| Error::io(a, e))?;
        let nb = read_full(&mut rb, &mut bb).map_err(|e| Error::io(b, e))?;
        if na != nb {
            return Ok((f64::INFINITY, f64::INFINITY));
        }
        if na == 0 {
            break;
        }
        let xa: &[f32] = bytemuck::cast_slice(&ba[..na - na % 4]);
        let xb: &[f32] = bytemuck::cast_slice(&bb[..nb - nb % 4]);
        for (&x, &y) in xa.iter().zip(xb) {
            let d = (f64::from(x) - f64::from(y)).abs();
            if d > max_abs || d.is_nan() {
                max_abs = if d.is_nan() { f64::INFINITY } else { d };
            }
            scale = scale.max(f64::from(x).abs());
        }
    }
    let rel = if scale > 0.0 {
        max_abs / scale
    } else {
        max_abs
    };
    Ok((max_abs, rel))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether two events CSVs list the same events (channel, start, end, peak
/// index), and the largest relative difference of their peak values.
fn compare_events(a: &Path, b: &Path) -> Result<(bool, f64)> {
    let open = |p: &Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| Error::io(p, e))
    };
    let (la, lb) = (open(a)?.lines(), open(b)?.lines());
    let mut identical = true;
    let mut peak_rel = 0.0f64;
    let mut la = la.skip(1);
    let mut lb = lb.skip(1);
    loop {
        match (la.next(), lb.next()) {
            (None, None) => break,
            (Some(x), Some(y)) => {
                let x = x.map_err(|e| Error::io(a, e))?;
                let y = y.map_err(|e| Error::io(b, e))?;
                let (kx, vx) = x.rsplit_once(',').unwrap_or((&x, ""));
                let (ky, vy) = y.rsplit_once(',').unwrap_or((&y, ""));
                identical &= kx == ky;
                if let (Ok(vx), Ok(vy)) = (vx.parse::<f64>(), vy.parse::<f64>())
                    && vx != vy
                {
                    peak_rel = peak_rel.max((vx - vy).abs() / vx.abs().max(f64::MIN_POSITIVE));
                }
            }
            _ => {
                identical = false;
                break;
            }
        }
    }
    Ok((identical, peak_rel))
}

/// The table `sigstream bench` prints.
pub fn table(results: &[(Run, Option<Diff>)]) -> String {
    let mut s = format!(
        "{:<8} {:>9} {:>10} {:>10} {:>8} {:>11} {:>11} {:>8} {:>10}  {}\n",
        "backend",
        "seconds",
        "MB/s",
        "peak MiB",
        "events",
        "max |diff|",
        "rel diff",
        "events=",
        "peak rel",
        "device"
    );
    for (run, diff) in results {
        let (abs, rel, same, peak) = match diff {
            None => (
                "ref".to_owned(),
                "ref".to_owned(),
                "ref".to_owned(),
                "ref".to_owned(),
            ),
            Some(d) => (
                format!("{:.3e}", d.max_abs),
                format!("{:.3e}", d.max_rel),
                if d.events_identical { "yes" } else { "NO" }.to_owned(),
                format!("{:.1e}", d.peak_rel),
            ),
        };
        s += &format!(
            "{:<8} {:>9.3} {:>10.0} {:>10.1} {:>8} {:>11} {:>11} {:>8} {:>10}  {}\n",
            run.backend,
            run.seconds,
            run.mb_s,
            run.peak_rss_mib,
            run.events,
            abs,
            rel,
            same,
            peak,
            run.device
        );
    }
    s
}
