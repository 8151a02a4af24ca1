#!/usr/bin/env python3
"""Sharded runs on Dask and Ray against one process with --threads 1.

    python scripts/bench_python.py seed-file FILE       # the 2 GiB input
    python scripts/bench_distributed.py speedup FILE [--workload seed|fir]
    python scripts/bench_distributed.py overhead FILE [--workload seed|fir]

speedup: the same job on FILE (float32), timed three ways, best of --runs
each: StreamProcessor(threads=1).process_file (one process, one compute
thread: the issue's baseline); sigstream.distributed.process on a Dask
LocalCluster of 2 worker processes with 1 thread each, 2 shards; and
sigstream.ray.process after ray.init(num_cpus=2), 2 shards. The clusters
are started (and sigstream imported on the workers by a warm-up job)
before the clock starts. Checks that the events are equal.

overhead: the same job cut into 2, 8, 32 and 128 shards on each engine;
the time per extra shard is the slope, and the shard below which that
overhead exceeds the shard's own work is overhead x the single-thread
throughput.

Workloads: seed, the seed's (3-tap moving average, threshold detection);
fir, a 301-tap low-pass (FFT overlap-save) and threshold detection; iir, an
order-4 Butterworth band-pass (sosfilt, serial in time: one channel uses
one core) and threshold detection.
"""

import argparse
import os
import sys
import time

import sigstream
import sigstream.distributed
import sigstream.ray

WORKLOADS = {
    "seed": dict(dtype="f32", moving_average=3, detect="threshold", on=3.5),
    "fir": dict(dtype="f32", sample_rate=1000, lowpass=100, taps=301, detect="threshold",
                on=3.0),
    "iir": dict(dtype="f32", sample_rate=1000, iir="butter", bandpass=(10, 100),
                detect="threshold", on=3.0),
}


def best(f, runs):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def clusters():
    from dask.distributed import Client, LocalCluster
    import ray

    client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=None))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return client, ray


def warm_up(client, path, opts):
    # Imports sigstream on every worker and maps the file once.
    sigstream.distributed.process([path], client=client, shards_per_file=2, **opts)
    sigstream.ray.process([path], shards_per_file=2, **opts)


def speedup(args):
    opts = WORKLOADS[args.workload]
    size = os.path.getsize(args.file)
    sp = sigstream.StreamProcessor(backend="cpu", threads=1)
    t1, one = best(lambda: sp.process_file(args.file, **opts), args.runs)
    client, _ = clusters()
    warm_up(client, args.file, opts)
    td, [dask_r] = best(lambda: sigstream.distributed.process(
        [args.file], client=client, shards_per_file=2, **opts), args.runs)
    tr, [ray_r] = best(lambda: sigstream.ray.process([args.file], shards_per_file=2, **opts),
                       args.runs)
    print(f"{args.file}: {size / 1e9:.2f} GB, workload {args.workload}, best of {args.runs}")
    print(f"  one process, --threads 1   {t1:7.3f} s  {size / t1 / 1e6:7.0f} MB/s"
          f"  ({one.events_found} events)")
    for name, t, r in (("Dask, 2 workers, 2 shards", td, dask_r),
                       ("Ray, 2 CPUs, 2 shards", tr, ray_r)):
        same = r.events.equals(one.events)
        print(f"  {name:26} {t:7.3f} s  {size / t / 1e6:7.0f} MB/s  {t1 / t:5.2f}x"
              f"  same events: {same}")


def overhead(args):
    opts = WORKLOADS[args.workload]
    size = os.path.getsize(args.file)
    sp = sigstream.StreamProcessor(backend="cpu", threads=1)
    t1, one = best(lambda: sp.process_file(args.file, **opts), args.runs)
    rate = one.samples / t1
    client, _ = clusters()
    warm_up(client, args.file, opts)
    counts = [2, 8, 32, 128]
    print(f"{args.file}: {size / 1e9:.2f} GB, workload {args.workload}, best of {args.runs};"
          f" one thread: {rate / 1e6:.1f} M samples/s")
    for name, run in (
            ("Dask", lambda n: sigstream.distributed.process(
                [args.file], client=client, shards_per_file=n, **opts)),
            ("Ray", lambda n: sigstream.ray.process([args.file], shards_per_file=n, **opts))):
        times = [best(lambda n=n: run(n), args.runs)[0] for n in counts]
        for n, t in zip(counts, times):
            print(f"  {name:4} {n:4} shards  {t:7.3f} s")
        # Slope over the counts: 2 workers run the extra shards two at a time.
        slope = (times[-1] - times[0]) / (counts[-1] - counts[0]) * 2
        print(f"  {name}: {slope * 1e3:.1f} ms per shard; it dominates below"
              f" {slope * rate / 1e6:.1f} M samples ({slope * rate * 4 / 1e6:.0f} MB of float32)"
              f" per shard")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("speedup", "overhead"):
        p = sub.add_parser(name)
        p.add_argument("file")
        p.add_argument("--workload", choices=sorted(WORKLOADS), default="seed")
        p.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    {"speedup": speedup, "overhead": overhead}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
