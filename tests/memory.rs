//! Peak memory does not grow with the file: the process's real peak RSS
//! (`ru_maxrss`, file-backed pages included), as the report gives it, for a
//! 64 MiB and a 512 MiB input.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The bound on the growth of peak RSS from a 64 MB to a 512 MB
/// input. Anything proportional to the file (a whole-file mapping, a
/// growing buffer) would add hundreds of MiB.
const MAX_GROWTH_MIB: f64 = 2.0;

/// Writes `mib` MiB of f32 noise (a 1 MiB block of varied values, repeated).
fn write_signal(path: &Path, mib: usize) {
    let block: Vec<f32> = (0..1 << 18)
        .map(|i| ((i as f32) * 0.618_034).sin() * if i % 50_000 < 300 { 30.0 } else { 1.0 })
        .collect();
    let bytes: &[u8] = bytemuck::cast_slice(&block);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..mib {
        f.write_all(bytes).unwrap();
    }
    f.flush().unwrap();
}

/// Peak RSS in MiB of one `sigstream process` run.
fn peak_rss(input: &Path, dir: &Path, extra: &[&str]) -> f64 {
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .arg("process")
        .arg(input)
        .args(extra)
        .arg("--report")
        .arg(&report)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    v["peak_rss_mb"].as_f64().unwrap()
}

#[test]
fn peak_rss_stays_flat_as_the_input_grows() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.f32");
    let large = dir.path().join("large.f32");
    write_signal(&small, 64);
    write_signal(&large, 512);
    let jobs: [&[&str]; 2] = [
        &[
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "10",
        ],
        &[
            "--lowpass",
            "10",
            "--sample-rate",
            "100",
            "--taps",
            "1025",
            "--detect",
            "sta-lta",
            "--sta",
            "50",
            "--lta",
            "1000",
            "--on",
            "4",
            "--off",
            "1.5",
            "--events",
        ],
    ];
    for job in jobs {
        let mut args: Vec<String> = job.iter().map(|s| s.to_string()).collect();
        if args.last().is_some_and(|a| a == "--events") {
            args.push(dir.path().join("events.csv").display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let a = peak_rss(&small, dir.path(), &args);
        let b = peak_rss(&large, dir.path(), &args);
        assert!(
            (b - a).abs() < MAX_GROWTH_MIB,
            "{job:?}: peak RSS {a:.2} MiB for 64 MiB but {b:.2} MiB for 512 MiB"
        );
    }
}
