#!/usr/bin/env python3
"""SigMF benchmark: `sigstream psd` against scipy.signal.welch on one
complex recording.

    pip install numpy scipy sigmf   # once
    cargo build --release
    python3 scripts/bench_sigmf.py [--seconds 40] [--keep DIR]

Writes a SigMF recording (cf32_le at 2 Msps, centre 100 MHz, meta written
by the `sigmf` package) of --seconds seconds: tones and noise, generated
chunk by chunk. Then times, each in a fresh process:

- sigstream: `psd REC.sigmf-meta --nperseg 1024` (two-sided, fftshifted,
  offset by the centre frequency);
- scipy: `numpy.fromfile` + `scipy.signal.welch(x, fs, nperseg=1024,
  return_onesided=False)` (the anchor's workload), plus fftshift;

and prints wall time, MB/s (data bytes / wall time) and peak RSS (the
child's ru_maxrss) of both, and the largest difference between the two
spectra relative to their peak. The recording is made in a temporary
directory and removed afterwards (unless --keep).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import bench_mseed  # scripts/: its `timed` runs a command in a wrapper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGSTREAM = os.path.join(ROOT, "target", "release", "sigstream")
FS = 2e6
NPERSEG = 1024

SCIPY_RUN = r"""
import sys, time
import numpy as np
from scipy.signal import welch
t = time.perf_counter()
x = np.fromfile(sys.argv[1], dtype=np.complex64)
f, p = welch(x, fs=float(sys.argv[2]), nperseg=int(sys.argv[3]), return_onesided=False)
f, p = np.fft.fftshift(f), np.fft.fftshift(p)
np.save(sys.argv[4], np.stack([f, p]))
print(time.perf_counter() - t)
"""


def generate(base, seconds):
    import numpy as np
    import sigmf

    rng = np.random.default_rng(1)
    n = int(seconds * FS)
    step = 1 << 22
    with open(base + ".sigmf-data", "wb") as f:
        for at in range(0, n, step):
            k = np.arange(at, min(n, at + step))
            x = (
                np.exp(2j * np.pi * 0.1 * k)
                + 0.3 * np.exp(-2j * np.pi * 0.27 * k)
                + 0.05 * (rng.standard_normal(len(k)) + 1j * rng.standard_normal(len(k)))
            ).astype(np.complex64)
            f.write(x.tobytes())
    meta = sigmf.SigMFFile(
        data_file=base + ".sigmf-data",
        global_info={
            sigmf.DATATYPE_KEY: "cf32_le",
            sigmf.SAMPLE_RATE_KEY: FS,
        },
        skip_checksum=True,
    )
    meta.add_capture(0, metadata={sigmf.FREQUENCY_KEY: 100e6})
    meta.tofile(base + ".sigmf-meta")
    return n * 8


def timed(cmd):
    """Wall time, peak RSS (MiB) and stdout of one command, each run in a
    wrapper process of its own (see scripts/bench_mseed.py's `timed`)."""
    r = bench_mseed.timed(cmd)
    return r["wall"], r["peak_kib"] / 1024, r["out"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--keep", help="make the recording in DIR and keep it")
    args = ap.parse_args()
    import numpy as np

    tmp = args.keep or tempfile.mkdtemp(prefix="sigstream-bench-sigmf-")
    os.makedirs(tmp, exist_ok=True)
    try:
        base = os.path.join(tmp, "rec")
        data_bytes = generate(base, args.seconds)
        csv = os.path.join(tmp, "psd.csv")
        ours, ours_rss, _ = timed(
            [SIGSTREAM, "psd", base + ".sigmf-meta", "--nperseg", str(NPERSEG),
             "-o", csv, "--quiet"]
        )
        ref = os.path.join(tmp, "scipy.npy")
        theirs, theirs_rss, _ = timed(
            [sys.executable, "-c", SCIPY_RUN, base + ".sigmf-data", str(FS),
             str(NPERSEG), ref]
        )
        got = np.loadtxt(csv, delimiter=",", skiprows=1)
        want = np.load(ref)
        # Our frequencies are offset by the centre frequency.
        freq_err = np.abs(got[:, 0] - (want[0] + 100e6)).max()
        rel = np.abs(got[:, 1] - want[1]).max() / want[1].max()
        print(json.dumps({
            "data_mb": round(data_bytes / 1e6, 1),
            "sigstream": {"seconds": round(ours, 2), "mb_s": round(data_bytes / 1e6 / ours),
                          "peak_rss_mib": round(ours_rss, 1)},
            "scipy": {"seconds": round(theirs, 2), "mb_s": round(data_bytes / 1e6 / theirs),
                      "peak_rss_mib": round(theirs_rss, 1)},
            "speedup": round(theirs / ours, 1),
            "max_freq_diff_hz": freq_err,
            "max_rel_psd_diff": rel,
        }, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
