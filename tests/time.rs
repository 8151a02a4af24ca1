//! Absolute time on the outputs: `--start-time`, the events CSV's
//! seconds and UTC columns, `info` and the reports' `start_time`. The UTC
//! times are checked against Python's `datetime` (an independent
//! implementation of the calendar), which `./scripts/test` has.

#[path = "common/cli.rs"]
mod cli;

use std::path::Path;
use std::process::Command;

use cli::{sigstream, stderr};

/// A quiet signal with loud bursts at `at` (each 20 samples of 5.0).
fn write_bursts(path: &Path, n: usize, at: &[usize]) {
    let mut x = vec![0.01f32; n];
    for &a in at {
        x[a..a + 20].fill(5.0);
    }
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// `start + index / rate` printed by Python's datetime, to the microsecond.
fn python_times(start: &str, rate: f64, indices: &[u64]) -> Vec<String> {
    let script = format!(
        "import datetime as d\n\
         t0 = d.datetime.fromisoformat({start:?}.replace('Z', '+00:00'))\n\
         for i in {indices:?}:\n\
         \x20   t = t0 + d.timedelta(microseconds=round(i * 1e6 / {rate:?}))\n\
         \x20   print(t.astimezone(d.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ'))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn events_carry_seconds_and_utc_times() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let at = [1_000, 77_777, 250_003];
    write_bursts(&d.join("x.f32"), 300_000, &at);
    let start = "2024-02-29T23:59:58.123456Z";
    let rate = 250.0;
    let run = |extra: &[&str]| -> String {
        let mut args = vec![
            "process",
            "x.f32",
            "--detect",
            "threshold",
            "--on",
            "1",
            "--events",
            "ev.csv",
            "-q",
        ];
        args.extend_from_slice(extra);
        let out = sigstream(d, &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        std::fs::read_to_string(d.join("ev.csv")).unwrap()
    };

    // No rate: the indices only.
    let plain = run(&[]);
    assert_eq!(
        plain.lines().next(),
        Some("channel,start,end,peak_index,peak_value")
    );
    assert_eq!(plain.lines().count(), 1 + at.len());

    // A rate: seconds from the start.
    let timed = run(&["--sample-rate", "250"]);
    let mut lines = timed.lines();
    assert_eq!(
        lines.next(),
        Some("channel,start,end,peak_index,peak_value,start_s,end_s,peak_s")
    );
    for (line, &a) in lines.zip(&at) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 8, "{line}");
        assert_eq!(f[1].parse::<u64>().unwrap(), a as u64, "{line}");
        for (index, secs) in [(f[1], f[5]), (f[2], f[6]), (f[3], f[7])] {
            let want = index.parse::<u64>().unwrap() as f64 / rate;
            assert_eq!(secs.parse::<f64>().unwrap(), want, "{line}");
        }
    }

    // A rate and a start time: UTC times too, across a leap day.
    let utc = run(&["--sample-rate", "250", "--start-time", start]);
    let mut lines = utc.lines();
    assert_eq!(
        lines.next(),
        Some(
            "channel,start,end,peak_index,peak_value,start_s,end_s,peak_s,\
             start_time,end_time,peak_time"
        )
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    let indices: Vec<u64> = rows
        .iter()
        .flat_map(|r| [1, 2, 3].map(|i| r[i].parse::<u64>().unwrap()))
        .collect();
    let want = python_times(start, rate, &indices);
    let got: Vec<String> = rows.iter().flat_map(|r| r[8..11].to_vec()).collect();
    assert_eq!(got, want);
    assert!(got[0].starts_with("2024-03-01T00:00:02."), "{}", got[0]);
}

#[test]
fn info_and_reports_carry_the_start_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_bursts(&d.join("x.f32"), 10_000, &[100]);
    let out = sigstream(
        d,
        &[
            "info",
            "x.f32",
            "--json",
            "--start-time",
            "2024-03-01T13:00:00+01:00",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"][0]["start_time"], "2024-03-01T12:00:00.000000Z");
    let out = sigstream(
        d,
        &[
            "process",
            "x.f32",
            "--moving-average",
            "3",
            "--report",
            "r.json",
            "--start-time",
            "2024-03-01T12:00:00Z",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    assert_eq!(v["inputs"][0]["start_time"], "2024-03-01T12:00:00.000000Z");
    // Without one, null.
    let out = sigstream(d, &["info", "x.f32", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["inputs"][0]["start_time"].is_null());
    // A bad one: exit 2, naming the option.
    let out = sigstream(d, &["info", "x.f32", "--start-time", "yesterday"]);
    cli::assert_refused(
        &out,
        "",
        "--start-time \"yesterday\" is not a UTC time",
        "bad time",
    );
}
