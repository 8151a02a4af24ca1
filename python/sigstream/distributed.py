"""sigstream beyond one machine: a recording, or an archive of them, cut
into shards that run as tasks on Dask distributed or on Ray.

Each input is cut into ``shards_per_file`` sample ranges. A shard is one
task, ``sigstream process INPUT --range START:END`` in a worker
(:meth:`sigstream.StreamProcessor.process_file` with ``range=``): it reads
its range plus the halo its stages need (computed by the library), writes
its slice of the filtered signal into one shared output file with
positioned writes, and returns its events, which start between its sync
points. The driver creates the output (its header, for the whole input)
before the shards run, gathers the events, sorts them as a single run does
(by start, channel and end) and renames the output into place once every
shard has succeeded; if one fails, the output is removed and the error
raised. The result equals a single-machine run: the same events, and a
byte-identical output (see the README's "Shards" for how, and what a shard
refuses).

On a real cluster the inputs and the output must be on storage that every
worker sees (a shared filesystem); the events travel back to the driver as
Arrow tables. Nothing here schedules: Dask or Ray places the tasks.

>>> from dask.distributed import Client, LocalCluster
>>> import sigstream.distributed
>>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
>>> [r] = sigstream.distributed.process(["rec.f32"], client=client,
...         dtype="f32", sample_rate=100, lowpass=10, detect="sta-lta",
...         sta_seconds=1, lta_seconds=10, on=3.5, off=1, output="out.npy")
>>> r.events.num_rows, r.seconds
"""

import os
import time
import uuid

from . import StreamProcessor, _pairs, _sigstream
from ._errors import OptionError

__all__ = ["Shard", "ShardedResult", "plan", "process"]

#: The options that read an input (they decide its length).
_INPUT_OPTIONS = ("dtype", "endian", "header_bytes", "channels", "sample_rate",
                  "start_time", "select", "gaps", "columns")

#: What a StreamProcessor takes, not process_file.
_RUN_OPTIONS = ("chunk_size", "backend", "threads", "memory_limit_mb", "gpu_adapter")


class Shard:
    """One task: samples ``start`` to ``end`` (exclusive) of ``path``, the
    ``index``-th of its input."""

    __slots__ = ("path", "index", "start", "end")

    def __init__(self, path, index, start, end):
        self.path, self.index, self.start, self.end = path, index, start, end

    def __repr__(self):
        return f"Shard({self.path!r}, {self.index}, {self.start}:{self.end})"


class ShardedResult:
    """One input's result: ``events`` (a ``pyarrow.Table`` with the events
    file's columns, in a single run's order; ``None`` without detection),
    ``output`` (the filtered signal's path, or ``None``), ``snippets`` (the
    snippets file's path, or ``None``), ``samples``,
    ``seconds`` (wall time, from submitting the first shard to the last
    result), and ``shards``: per shard, a dict with ``start``, ``end``,
    ``read_start`` (where its halo began), ``samples`` read, ``seconds`` and
    ``events``."""

    def __init__(self, path, events, output, samples, seconds, shards, snippets=None):
        self.path = path
        self.events = events
        self.output = output
        self.snippets = snippets
        self.samples = samples
        self.seconds = seconds
        self.shards = shards

    def __repr__(self):
        n = None if self.events is None else self.events.num_rows
        return (f"ShardedResult({self.path!r}, shards={len(self.shards)}, "
                f"events={n}, seconds={self.seconds:.3f})")


def plan(paths, shards_per_file, **options):
    """The shards of ``paths``: each input's samples cut into
    ``shards_per_file`` ranges of nearly equal length (fewer for a short
    input), read with ``options``' input options (``dtype``, ``channels``,
    ...). Raises :class:`sigstream.OptionError` for an input that cannot be
    cut (a stream, a miniSEED file split at gaps)."""
    if shards_per_file < 1:
        raise OptionError(f"shards_per_file {shards_per_file}: at least 1")
    read = _pairs({k: v for k, v in options.items() if k in _INPUT_OPTIONS})
    shards = []
    for path in paths:
        path = os.fspath(path)
        frames = _sigstream.input_frames(path, read)
        if frames is None:
            raise OptionError(
                f"{path}: has no length to cut into shards (a stream, or miniSEED split at gaps)")
        n = max(1, min(shards_per_file, frames))
        shards.extend(Shard(path, k, frames * k // n, frames * (k + 1) // n)
                      for k in range(n) if frames * k // n < frames * (k + 1) // n)
    return shards


def _run_shard(path, start, end, output, run, options, snippets=None):
    """A worker's task: one shard, its events as a pyarrow Table (its
    snippets, if asked for, in the file ``snippets``, one per event in the
    table's order)."""
    if snippets is not None:
        options = dict(options, snippets=snippets)
    result = StreamProcessor(**run).process_file(
        path, range=f"{start}:{end}", output=output, **options)
    entry = result.report
    return {
        "events": result.events,
        "start": start,
        "end": end,
        "read_start": entry["range"]["read_start"],
        "samples": result.samples,
        "seconds": result.seconds,
        "events_found": result.events_found,
    }


def _output_for(output, path, many):
    if output is None:
        return None
    output = os.fspath(output)
    if many and "{stem}" not in output:
        raise OptionError(
            f"output {output!r}: several inputs need one output each: put {{stem}} in the name")
    stem = os.path.splitext(os.path.basename(path))[0]
    return output.replace("{stem}", stem)


def _partial_name(final):
    """A temporary name beside ``final``, with its extension (which says the
    format)."""
    head, tail = os.path.split(final)
    stem, ext = os.path.splitext(tail)
    return os.path.join(head, f".{stem}.sigstream-shards-{uuid.uuid4().hex[:12]}{ext}")


def _submitter(client, ray):
    """``submit(args) -> handle`` and ``gather(handles) -> results`` for the
    engine asked for."""
    if ray:
        import ray as ray_mod

        if not ray_mod.is_initialized():
            raise OptionError("ray=True: call ray.init() first")
        task = ray_mod.remote(_run_shard)
        return (lambda args: task.remote(*args)), ray_mod.get
    if client is None:
        raise OptionError("give client= (a dask.distributed.Client), or ray=True")
    return (lambda args: client.submit(_run_shard, *args, pure=False)), client.gather


def _cores(client, ray):
    if ray:
        import ray as ray_mod

        return max(1, int(ray_mod.cluster_resources().get("CPU", 1)))
    return max(1, sum(client.nthreads().values()))


def process(paths, *, client=None, ray=False, shards_per_file=None, output=None,
            snippets=None, threads=1, backend="cpu", chunk_size=None, memory_limit_mb=None,
            **options):
    """Processes ``paths`` (a path or a list) as ``sigstream process`` does,
    each input cut into ``shards_per_file`` shards (default: the cluster's
    cores) that run as tasks on Dask (``client=``, a
    ``dask.distributed.Client``) or Ray (``ray=True``, after
    ``ray.init()``). Returns a :class:`ShardedResult` per input.

    ``options`` are :meth:`sigstream.StreamProcessor.process_file`'s
    keywords (the CLI's options). ``output``: the filtered signal's path
    (``.npy``, ``.wav`` or raw; with several inputs, a name with ``{stem}``),
    written by the shards in place and renamed into place when all have
    succeeded. ``snippets``: the snippets ``.npy`` (``snippet_samples=``
    and ``snippet_channels=`` as for :meth:`process_file`; with several
    inputs, a name with ``{stem}``): each shard writes its own beside it,
    and the driver merges them in the events' order into this one, renamed
    into place when every shard has succeeded. ``dedup_window=`` or
    ``dedup_samples=`` (with ``dedup_radius=``) is applied by the driver
    to the merged events, as a single run decides it (a shard cannot: it
    decides across channels over windows a shard boundary may split).
    ``threads`` (default 1: one
    task per core), ``backend`` and ``chunk_size`` apply to each shard.
    ``events=`` is not taken: the events come back as the result's table
    (``result.events.to_pandas()``, or pyarrow's writers).

    Raises the first shard's error (and leaves no output) if one fails.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    for name in ("events", "report", "network_events", "range", "output_dir"):
        if options.get(name) is not None:
            raise OptionError(
                f"{name}: not for sharded runs (events come back as the result's table; "
                "ranges are the driver's)")
    submit, gather = _submitter(client, ray)
    if shards_per_file is None:
        shards_per_file = _cores(client, ray)
    run = {"chunk_size": chunk_size, "backend": backend, "threads": threads,
           "memory_limit_mb": memory_limit_mb}
    # Checked before anything runs, as the CLI checks them.
    StreamProcessor(**run)
    # De-duplication decides across channels over windows a shard boundary
    # may split, so the shards run without it and the driver applies it to
    # the merged events (every event competes, so the decisions are a
    # function of the whole set: a single run's).
    dedup = None
    if options.get("dedup_window") is not None or options.get("dedup_samples") is not None:
        dedup = _pairs(options)
        options = {k: v for k, v in options.items()
                   if k not in ("dedup_window", "dedup_samples", "dedup_radius")}
        for path in paths:
            _sigstream.dedup_keep(path, dedup, *_no_events())
    shards = plan(paths, shards_per_file, **options)
    finals = {path: _output_for(output, path, len(paths) > 1) for path in paths}
    snippet_finals = {path: _output_for(snippets, path, len(paths) > 1) for path in paths}
    for path, final in snippet_finals.items():
        for p in paths:
            if final is not None and os.path.exists(final) and os.path.samefile(final, p):
                raise OptionError(f"{final}: is an input; an output never overwrites an input")
    # Each shard's snippets, in a temporary file beside the merged one.
    shard_snippets = [None if snippet_finals[s.path] is None
                      else _partial_name(snippet_finals[s.path]) for s in shards]
    outputs = {}
    try:
        for path, final in finals.items():
            if final is None:
                continue
            for p in paths:
                if os.path.exists(final) and os.path.samefile(final, p):
                    raise OptionError(f"{final}: is an input; an output never overwrites an input")
            partial = _partial_name(final)
            outputs[path] = (partial, final)
            _sigstream.create_shared_output(path, partial, _pairs(
                {k: v for k, v in options.items() if k in _INPUT_OPTIONS or k == "decimate"}))
        started = time.perf_counter()
        handles = [submit((s.path, s.start, s.end, outputs.get(s.path, (None,))[0], run, options,
                           snip))
                   for s, snip in zip(shards, shard_snippets)]
        done = gather(handles)
        seconds = time.perf_counter() - started
        results = []
        for path in paths:
            mine = [(r, snip) for s, r, snip in zip(shards, done, shard_snippets)
                    if s.path == path]
            events, order = _merge_events([r["events"] for r, _ in mine])
            if dedup is not None and events is not None:
                events, order = _deduplicate(path, dedup, events, order)
            if snippet_finals[path] is not None:
                partial = _partial_name(snippet_finals[path])
                outputs[("snippets", path)] = (partial, snippet_finals[path])
                _merge_snippets([snip for _, snip in mine], order, partial)
            for r, _ in mine:
                del r["events"]
            results.append(ShardedResult(path, events, finals[path],
                                         sum(r["end"] - r["start"] for r, _ in mine), seconds,
                                         [r for r, _ in mine], snippet_finals[path]))
        for partial, final in outputs.values():
            os.replace(partial, final)
        outputs = {}
    finally:
        for partial in [p for p, _ in outputs.values()] + [p for p in shard_snippets if p]:
            try:
                os.remove(partial)
            except FileNotFoundError:
                pass
    return results


def _merge_events(tables):
    """The shards' events (``None`` for a shard without detection) as one
    table in a single run's order (start, channel, end), and where each of
    its rows came from: ``(shard, row)`` arrays, or ``None`` without
    events. Sync points are per channel, so neighbouring shards' events may
    interleave near their boundary."""
    if all(t is None for t in tables):
        return None, None
    import numpy as np
    import pyarrow as pa

    marked = [t.append_column("_shard", pa.array(np.full(t.num_rows, k, np.int64)))
               .append_column("_row", pa.array(np.arange(t.num_rows, dtype=np.int64)))
              for k, t in enumerate(tables) if t is not None]
    merged = pa.concat_tables(marked).sort_by(
        [("start", "ascending"), ("channel", "ascending"), ("end", "ascending")])
    order = (merged.column("_shard").to_numpy(), merged.column("_row").to_numpy())
    return merged.drop_columns(["_shard", "_row"]), order


def _no_events():
    import numpy as np

    empty = np.zeros(0, np.int64)
    return empty, empty, empty, empty, np.zeros(0, np.float64)


def _deduplicate(path, pairs, events, order):
    """The merged ``events`` (and their ``order``) less those the
    de-duplication asked for in ``pairs`` drops (the library's rule,
    ``dedup_keep``)."""
    import numpy as np
    import pyarrow as pa

    column = lambda name, t: events.column(name).to_numpy().astype(t)  # noqa: E731
    keep = _sigstream.dedup_keep(
        path, pairs, column("channel", np.int64), column("start", np.int64),
        column("end", np.int64), column("peak_index", np.int64),
        column("peak_value", np.float64))
    return events.filter(pa.array(keep)), (order[0][keep], order[1][keep])


#: Snippets copied at a time while merging (bounded memory).
_MERGE_ROWS = 1 << 14


def _merge_snippets(files, order, path):
    """Writes the shards' snippet files ``files`` merged into ``path``, row
    ``i`` being row ``order[1][i]`` of shard ``order[0][i]``: the events'
    order (rows of no event, dropped by the de-duplication, left out).
    Reads and writes through maps, a bounded number of rows at a time."""
    import numpy as np

    parts = [np.load(f, mmap_mode="r") for f in files]
    shard, row = order if order is not None else (np.zeros(0, np.int64),) * 2
    out = np.lib.format.open_memmap(path, mode="w+", dtype=parts[0].dtype,
                                    shape=(shard.size,) + parts[0].shape[1:])
    for k, part in enumerate(parts):
        # Where this shard's rows go, and which they are (a shard's rows
        # keep their order in the merge).
        dest = np.flatnonzero(shard == k)
        for a in range(0, dest.size, _MERGE_ROWS):
            at = dest[a:a + _MERGE_ROWS]
            out[at] = part[row[at]]
    out.flush()
    del out
