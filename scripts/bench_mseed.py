#!/usr/bin/env python3
"""miniSEED benchmark: sigstream against ObsPy on one Steim-2 file.

    pip install obspy            # once
    cargo build --release
    python3 scripts/bench_mseed.py [--gb 1.0] [--keep DIR]

Writes (with ObsPy) a Steim-2 miniSEED file of about --gb gigabytes: three
channels (XX.BENCH.00.HHZ/HHN/HHE) at 100 Hz, 4096-byte records, channel
after channel as an FDSN dataselect request returns them, of band-limited
noise with quakes. Then times, each in a fresh process:

- sigstream: `process FILE --bandpass 1:10 --taps 101 --detect sta-lta
  --sta-seconds 1 --lta-seconds 10 --on 3.5 --off 1.5 --events ...`
  (decode, FIR band-pass, classic STA/LTA and triggers, all channels);
- ObsPy: `read(FILE)`, `Stream.filter("bandpass", freqmin=1, freqmax=10,
  corners=4)` (its usual Butterworth) and `classic_sta_lta` +
  `trigger_onset` on every trace.

and prints wall time, MB/s (file bytes / wall time) and peak RSS (the
child's ru_maxrss) of both. The data is generated in a temporary
directory and removed afterwards (unless --keep).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGSTREAM = os.path.join(ROOT, "target", "release", "sigstream")

OBSPY_RUN = r"""
import sys, time, resource
from obspy import read
from obspy.signal.trigger import classic_sta_lta, trigger_onset
t = time.perf_counter()
st = read(sys.argv[1])
st.filter("bandpass", freqmin=1.0, freqmax=10.0, corners=4)
events = 0
for tr in st:
    sr = tr.stats.sampling_rate
    cft = classic_sta_lta(tr.data, int(1 * sr), int(10 * sr))
    events += len(trigger_onset(cft, 3.5, 1.5))
print(time.perf_counter() - t, events)
"""


def generate(path, gb):
    import numpy as np
    from obspy import Stream, Trace, UTCDateTime

    rng = np.random.default_rng(1)
    fs = 100.0
    # Band-limited noise of a few hundred counts: Steim-2 packs it in
    # about 1.4 bytes a sample.
    per_day = int(86400 * fs)
    bytes_per_sample = 1.4
    days = max(1, round(gb * 1e9 / (3 * per_day * bytes_per_sample)))
    t0 = UTCDateTime("2024-01-01T00:00:00Z")
    with open(path, "wb") as f:
        for cha in ("HHZ", "HHN", "HHE"):
            for d in range(days):
                x = rng.normal(0, 300, per_day).cumsum()
                x -= np.convolve(x, np.ones(200) / 200, mode="same")
                for q in rng.integers(0, per_day - 6000, 20):
                    n = np.arange(6000)
                    x[q : q + 6000] += 20000 * np.sin(n * 0.6) * np.exp(-n / 800)
                tr = Trace(data=np.round(x).astype("i4"))
                tr.id = "XX.BENCH.00." + cha
                tr.stats.sampling_rate = fs
                tr.stats.starttime = t0 + d * 86400
                Stream([tr]).write(f, format="MSEED", encoding="STEIM2", reclen=4096)
    return days


def timed(cmd):
    """Runs `cmd`; returns (wall seconds, its stdout). ru_maxrss of the
    children is a maximum over all of them, so each run gets its own
    Python wrapper process that reports its child's peak."""
    wrapper = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "w = time.perf_counter() - t;"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps({'rc': p.returncode, 'wall': w, 'peak_kib': r, 'out': p.stdout, 'err': p.stderr}))"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    if r["rc"] != 0:
        raise SystemExit(f"{cmd[0]} failed: {r['err']}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--keep", help="write the data here and keep it")
    ap.add_argument("--skip-obspy", action="store_true")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="sigstream-bench-mseed-")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "bench.mseed")
    try:
        if not os.path.exists(path):
            t = time.perf_counter()
            days = generate(path, a.gb)
            print(f"wrote {path}: {os.path.getsize(path) / 1e9:.2f} GB, 3 channels × {days} days at 100 Hz, "
                  f"in {time.perf_counter() - t:.0f} s")
        size = os.path.getsize(path)
        # The page cache holds the file for both runs alike: read it once.
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
        ev = os.path.join(work, "events.csv")
        s = timed([SIGSTREAM, "process", path, "--bandpass", "1:10", "--taps", "101",
                   "--detect", "sta-lta", "--sta-seconds", "1", "--lta-seconds", "10",
                   "--on", "3.5", "--off", "1.5", "--events", ev, "-q"])
        rows = [("sigstream", s["wall"], s["peak_kib"] / 1024.0)]
        if not a.skip_obspy:
            o = timed([sys.executable, "-c", OBSPY_RUN, path])
            rows.append(("ObsPy", o["wall"], o["peak_kib"] / 1024.0))
        print(f"\n{'':<10} {'seconds':>9} {'MB/s':>8} {'peak RSS MiB':>13}")
        for name, wall, peak in rows:
            print(f"{name:<10} {wall:>9.2f} {size / wall / 1e6:>8.1f} {peak:>13.0f}")
        if len(rows) == 2:
            print(f"\nsigstream is {rows[1][1] / rows[0][1]:.1f}x ObsPy's speed, "
                  f"at {rows[0][2] / rows[1][2] * 100:.1f}% of its peak memory")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
