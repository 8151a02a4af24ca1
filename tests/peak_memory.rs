//! The reported peak memory includes the child processes the run waited
//! for (the `--backend auto` adapter probe runs in one): a child that
//! touches 64 MiB raises `peak_rss_bytes` to at least that, while this
//! process's own peak stays far below it. A file of its own so that no
//! other test's allocations raise this process's peak.

use std::process::Command;

use sigstream::pipeline::stats;

/// What the child allocates and touches.
const CHILD_MIB: usize = 64;

/// Set in the child's environment: it allocates instead of testing.
const CHILD_ENV: &str = "SIGSTREAM_PEAK_MEMORY_CHILD";

/// This test binary's own peak must stay under half the child's for the
/// test to show anything: the harness and the test take a few MiB.
const OWN_PEAK_LIMIT_MIB: u64 = (CHILD_MIB / 2) as u64;

#[test]
fn children_peak_is_included() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The child: touch every page so that it is resident, then exit.
        let mut big = vec![0u8; CHILD_MIB << 20];
        for (i, page) in big.chunks_mut(4096).enumerate() {
            page[0] = i as u8;
        }
        std::hint::black_box(&big);
        return;
    }
    let before = stats::children_peak_rss_bytes();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "children_peak_is_included",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let child = stats::children_peak_rss_bytes();
    let own = stats::own_peak_rss_bytes();
    let total = stats::peak_rss_bytes();
    assert!(
        child >= (CHILD_MIB as u64) << 20,
        "children's peak {:.1} MiB (before the child: {:.1} MiB)",
        mib(child),
        mib(before)
    );
    assert!(
        own < OWN_PEAK_LIMIT_MIB << 20,
        "own peak {:.1} MiB",
        mib(own)
    );
    assert_eq!(total, own.max(child));
    assert!((stats::peak_rss_mib() - mib(total)).abs() < 1.0);
}
