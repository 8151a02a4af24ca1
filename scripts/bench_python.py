#!/usr/bin/env python3
"""Benchmarks of the Python package against what its users run today.

    python scripts/bench_python.py convolve [--samples 100000000] [--taps 1025]
    python scripts/bench_python.py seed-file FILE   # the 2 GiB file of `overhead`
    python scripts/bench_python.py overhead FILE [--runs 3]

convolve: sigstream.convolve(x, k, mode="same") against
scipy.signal.oaconvolve(x, k, mode="same") on the same float32 array
(scipy computes in float32 for float32 input), each timed over the whole
call, --runs calls each, alternated; prints the medians (and the spread:
scipy's time swings by 2x from call to call on the development VM), their
ratio, and the largest difference relative to the output's scale.

overhead: StreamProcessor.process_file against the CLI (`sigstream
process`, a fresh process, its own wall time from its report) on the
seed's workload (3-tap moving average, threshold detection, events
written), same options, best of --runs each.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import sigstream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, "target", "release", "sigstream")


def best(f, runs):
    times = []
    out = None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def convolve(args):
    import scipy.signal

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, args.samples).astype(np.float32)
    k = (np.hanning(args.taps) / np.hanning(args.taps).sum()).astype(np.float32)
    # Alternated, each result dropped before the next call: the two share
    # the machine's state (free huge pages, page cache) as evenly as can be.
    times = {"sigstream": [], "scipy": []}
    for _ in range(args.runs):
        for name, f in (("sigstream", lambda: sigstream.convolve(x, k, mode="same")),
                        ("scipy", lambda: scipy.signal.oaconvolve(x, k, mode="same"))):
            t = time.perf_counter()
            y = f()
            times[name].append(time.perf_counter() - t)
            del y
    ys = sigstream.convolve(x, k, mode="same")
    yc = scipy.signal.oaconvolve(x, k, mode="same")
    err = float(np.abs(ys.astype(np.float64) - yc).max() / np.abs(yc).max())
    print(f"{args.samples:,} float32 samples, {args.taps} taps, mode='same', "
          f"{args.runs} runs each, alternated")
    med = {n: float(np.median(t)) for n, t in times.items()}
    for name, label in (("sigstream", "sigstream.convolve     "),
                        ("scipy", "scipy.signal.oaconvolve")):
        t = times[name]
        print(f"  {label}  median {med[name]:7.3f} s  (min {min(t):.3f}, max {max(t):.3f})"
              f"  {args.samples / med[name] / 1e6:7.1f} Msamples/s")
    print(f"  ratio of medians {med['scipy'] / med['sigstream']:.2f}x; "
          f"max |difference| / max |y| = {err:.2e}")


def overhead(args):
    opts = dict(dtype="f32", moving_average=3, detect="threshold", on=args.on)
    cli_opts = ["--dtype", "f32", "--moving-average", "3", "--detect", "threshold",
                "--on", str(args.on)]
    with tempfile.TemporaryDirectory() as d:
        ev_py, ev_cli, rep = (os.path.join(d, n) for n in ("py.csv", "cli.csv", "r.json"))
        sp = sigstream.StreamProcessor(backend="cpu")
        tp, result = best(lambda: sp.process_file(args.file, events=ev_py, **opts), args.runs)

        def cli():
            subprocess.run([CLI, "process", args.file, *cli_opts, "--backend", "cpu",
                            "--events", ev_cli, "--report", rep, "-q"], check=True)
            with open(rep) as f:
                return json.load(f)

        def cli_wall():
            t = time.perf_counter()
            cli()
            return time.perf_counter() - t

        tc = min(cli_wall() for _ in range(args.runs))
        same = open(ev_py).read() == open(ev_cli).read()
    size = os.path.getsize(args.file)
    print(f"{args.file}: {size / 1e9:.2f} GB, seed's workload, best of {args.runs}")
    print(f"  StreamProcessor.process_file  {tp:7.3f} s  {size / tp / 1e6:7.0f} MB/s"
          f"  ({result.events_found} events)")
    print(f"  sigstream process (CLI)       {tc:7.3f} s  {size / tc / 1e6:7.0f} MB/s")
    print(f"  Python overhead {100 * (tp / tc - 1):+.1f} %; same events: {same}")


def seed_file(args):
    """2 GiB of float32: 64 blocks of 2^23 normal samples (seeded), +12 on
    every 100,000th."""
    rng = np.random.default_rng(3)
    with open(args.file, "wb") as f:
        for _ in range(64):
            x = rng.normal(0, 1, 1 << 23).astype(np.float32)
            x[::100_000] += 12
            x.tofile(f)
    print(f"wrote {args.file}: {os.path.getsize(args.file):,} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("convolve")
    c.add_argument("--samples", type=int, default=100_000_000)
    c.add_argument("--taps", type=int, default=1025)
    c.add_argument("--runs", type=int, default=7)
    o = sub.add_parser("overhead")
    o.add_argument("file")
    o.add_argument("--on", type=float, default=6.0)
    o.add_argument("--runs", type=int, default=3)
    m = sub.add_parser("seed-file")
    m.add_argument("file")
    args = ap.parse_args()
    {"convolve": convolve, "overhead": overhead, "seed-file": seed_file}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
