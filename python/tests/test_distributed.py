"""Sharded runs on Dask distributed (a LocalCluster of 2 worker processes)
and on Ray (ray.init(num_cpus=2)): for any number of shards, the events
equal a single run's and the filtered output is byte-identical."""

import os

import numpy as np
import pyarrow as pa
import pytest

import sigstream
import sigstream.distributed
import sigstream.ray

# The spike pipeline: IIR band-pass, median reference, per-channel noise
# levels, negative threshold with a dead time.
SPIKES = dict(sample_rate=30000, iir="butter", bandpass=(300, 6000), reference="median",
              detect="threshold", on_noise=5, polarity="neg", dead_samples=30)
# The spike pipeline with the band-pass at zero phase (sosfiltfilt,
# streamed; its restarts let a shard reproduce it bit for bit).
ZERO_PHASE = dict(SPIKES, zero_phase=True)
# Seismology: FIR low-pass (overlap-save), recursive STA/LTA, whose halo is
# 50 long windows.
QUAKES = dict(sample_rate=100, lowpass=10, taps=301, detect="recursive-sta-lta",
              sta_seconds=0.5, lta_seconds=5, on=3, off=1.2)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """4 channels, 400,000 samples of noise with spikes of both signs and
    long loud stretches (which push sync points far from the cuts)."""
    rng = np.random.default_rng(7)
    n, c = 400_000, 4
    x = rng.normal(0, 1, (n, c)).astype(np.float32)
    for at in rng.integers(0, n - 10, 1500):
        x[at:at + 6, rng.integers(0, c)] -= np.float32(25) * np.linspace(1, 0, 6, dtype=np.float32)
    for at in (90_000, 250_000):
        x[at:at + 30_000, 1] *= 20
    path = tmp_path_factory.mktemp("rec") / "rec.npy"
    np.save(path, x)
    return path


@pytest.fixture(scope="module")
def dask_client(tmp_path_factory):
    import dask
    from dask.distributed import Client, LocalCluster

    # Dask's scratch space in the test's temporary directory.
    scratch = str(tmp_path_factory.mktemp("dask"))
    with dask.config.set({"temporary-directory": scratch}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, local_directory=scratch)
        client = Client(cluster)
        yield client
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    import ray

    # Ray's session files (logs, sockets) in the test's temporary directory,
    # not left in /tmp/ray.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield ray
    ray.shutdown()


def whole(path, out, **options):
    result = sigstream.StreamProcessor(backend="cpu").process_file(path, output=out, **options)
    return result.events, out.read_bytes()


def check_equal(results, events, output_bytes):
    [r] = results
    assert r.events.num_rows > 50
    assert r.events.equals(events), (r.events.num_rows, events.num_rows)
    assert open(r.output, "rb").read() == output_bytes
    # The shards tile the input, in order.
    assert r.shards[0]["start"] == 0
    assert all(a["end"] == b["start"] for a, b in zip(r.shards, r.shards[1:]))


@pytest.mark.parametrize("options", [SPIKES, QUAKES, ZERO_PHASE],
                         ids=["spikes", "quakes", "zero-phase"])
def test_dask_shards_equal_a_single_run(dask_client, recording, tmp_path, options):
    events, output = whole(recording, tmp_path / "whole.npy", **options)
    for shards in (1, 2, 7):
        out = tmp_path / f"dask-{shards}.npy"
        results = sigstream.distributed.process(
            [recording], client=dask_client, shards_per_file=shards, output=out, **options)
        check_equal(results, events, output)
        assert len(results[0].shards) == shards
    # No temporary file is left beside the outputs.
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_ray_shards_equal_a_single_run(ray_session, recording, tmp_path):
    events, output = whole(recording, tmp_path / "whole.npy", **SPIKES)
    for shards in (2, 5):
        out = tmp_path / f"ray-{shards}.npy"
        results = sigstream.ray.process([recording], shards_per_file=shards, output=out, **SPIKES)
        check_equal(results, events, output)
    events, output = whole(recording, tmp_path / "whole-q.npy", **QUAKES)
    results = sigstream.ray.process([recording], output=tmp_path / "ray-q.npy", **QUAKES)
    check_equal(results, events, output)
    # The default: one shard per core of the cluster.
    assert len(results[0].shards) == 2


def test_snippets_merge_in_the_events_order(dask_client, ray_session, recording, tmp_path):
    # The spike pipeline with each spike's waveform on every channel: the
    # merged snippets equal a single run's, row for row, in its events'
    # order (neighbouring shards' events interleave near their boundary).
    options = dict(SPIKES, snippet_samples=(30, 60), snippet_channels="all")
    whole = sigstream.StreamProcessor(backend="cpu").process_file(
        recording, snippets=tmp_path / "whole.npy", **options)
    want = np.load(tmp_path / "whole.npy")
    assert want.shape == (whole.events.num_rows, 90, 4)
    for shards in (2, 7):
        [r] = sigstream.distributed.process(
            [recording], client=dask_client, shards_per_file=shards,
            snippets=tmp_path / f"dask-{shards}.npy", **options)
        assert r.events.equals(whole.events)
        assert r.snippets == str(tmp_path / f"dask-{shards}.npy")
        got = np.load(r.snippets)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    [r] = sigstream.ray.process([recording], shards_per_file=5,
                                snippets=tmp_path / "ray.npy", **options)
    assert np.array_equal(np.load(r.snippets), want)
    # The shards' own files are gone; only the merged ones are left.
    assert sorted(os.listdir(tmp_path)) == ["dask-2.npy", "dask-7.npy", "ray.npy", "whole.npy"]


def test_the_driver_deduplicates_the_merged_events(dask_client, recording, tmp_path):
    # Spikes reported once across neighbouring channels: decided by the
    # driver over the merged events, equal to a single run's decisions,
    # the snippets of the dropped events left out.
    options = dict(SPIKES, dedup_samples=15, dedup_radius=2, snippet_samples=(10, 20))
    single = sigstream.StreamProcessor(backend="cpu").process_file(
        recording, snippets=tmp_path / "whole.npy", **options)
    plain = sigstream.StreamProcessor(backend="cpu").process_file(recording, **SPIKES)
    assert 0 < single.events.num_rows < plain.events.num_rows, "events were dropped"
    for shards in (2, 7):
        [r] = sigstream.distributed.process(
            [recording], client=dask_client, shards_per_file=shards,
            snippets=tmp_path / f"d{shards}.npy", **options)
        assert r.events.equals(single.events)
        assert np.array_equal(np.load(r.snippets), np.load(tmp_path / "whole.npy"))
    # The library's checks, before any shard runs.
    with pytest.raises(sigstream.OptionError, match="--dedup-radius 0"):
        sigstream.distributed.process([recording], client=dask_client,
                                      **dict(SPIKES, dedup_samples=15, dedup_radius=0))


def test_an_archive_runs_file_by_file(dask_client, tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for k in range(3):
        x = rng.normal(0, 1, 50_000 + 1000 * k).astype(np.float32)
        x[rng.integers(0, x.size - 1, 40)] += 9
        p = tmp_path / f"day{k}.f32"
        x.tofile(p)
        paths.append(p)
    opts = dict(dtype="f32", sample_rate=100, moving_average=3, detect="threshold", on=4, off=2,
                snippet_samples=(5, 5))
    results = sigstream.distributed.process(
        paths, client=dask_client, shards_per_file=3, output=tmp_path / "{stem}.out.f32",
        snippets=tmp_path / "{stem}.snippets.npy", **opts)
    assert [r.path for r in results] == [str(p) for p in paths]
    for p, r in zip(paths, results):
        one = sigstream.StreamProcessor(backend="cpu").process_file(
            p, output=tmp_path / "one.f32", snippets=tmp_path / "one.npy", **opts)
        assert r.events.equals(one.events)
        assert open(r.output, "rb").read() == (tmp_path / "one.f32").read_bytes()
        assert r.output == str(tmp_path / f"{p.stem}.out.f32")
        # Each input its own snippets, named after it.
        assert r.snippets == str(tmp_path / f"{p.stem}.snippets.npy")
        assert np.array_equal(np.load(r.snippets), np.load(tmp_path / "one.npy"))


def test_a_failing_shard_leaves_no_output(dask_client, recording, tmp_path):
    # A zero-phase filter with too little memory to stream cannot be cut
    # into shards: the workers refuse it, the driver raises that error and
    # removes the output it had created.
    with pytest.raises(sigstream.OptionError, match="--range with --zero-phase"):
        sigstream.distributed.process(
            [recording], client=dask_client, shards_per_file=2, output=tmp_path / "o.npy",
            sample_rate=100, iir="cheby1", order=6, highpass=0.5, zero_phase=True,
            memory_limit_mb=8)
    assert os.listdir(tmp_path) == []


def test_what_the_driver_refuses(dask_client, recording, tmp_path):
    with pytest.raises(sigstream.OptionError, match="events come back"):
        sigstream.distributed.process([recording], client=dask_client, events="e.csv")
    with pytest.raises(sigstream.OptionError, match="is an input"):
        sigstream.distributed.process([recording], client=dask_client, output=recording,
                                      moving_average=3)
    with pytest.raises(sigstream.OptionError, match="give client="):
        sigstream.distributed.process([recording], moving_average=3)
    with pytest.raises(sigstream.OptionError, match="shards_per_file"):
        sigstream.distributed.process([recording], client=dask_client, shards_per_file=0,
                                      moving_average=3)
    with pytest.raises(sigstream.OptionError, match=r"\{stem\}"):
        sigstream.distributed.process([recording, recording], client=dask_client,
                                      output=tmp_path / "o.npy", moving_average=3)
    assert os.listdir(tmp_path) == []
    # The events table survives the trip through the workers intact.
    [r] = sigstream.distributed.process([recording], client=dask_client, shards_per_file=2,
                                        moving_average=3, detect="threshold", on=20)
    assert isinstance(r.events, pa.Table) and r.output is None
