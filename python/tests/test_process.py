"""StreamProcessor.process_file: the CLI's job with the CLI's options,
checks and messages, its outputs byte for byte the CLI's."""

import _thread
import json

import numpy as np
import pytest

import sigstream
from conftest import run_cli

JOB = dict(channels=2, sample_rate=100, moving_average=5, detect="threshold", on=4, off=2,
           dead_samples=1000)
CLI_JOB = ["--channels", "2", "--sample-rate", "100", "--moving-average", "5",
           "--detect", "threshold", "--on", "4", "--off", "2", "--dead-samples", "1000"]


def test_outputs_equal_the_cli_byte_for_byte(bursts, tmp_path):
    path, x = bursts
    sp = sigstream.StreamProcessor(backend="cpu", chunk_size=7_000)
    result = sp.process_file(path, output=tmp_path / "py.f32", events=tmp_path / "py.csv",
                             report=tmp_path / "py.json", **JOB)
    cli = run_cli(path, *CLI_JOB, "--backend", "cpu", "--chunk-size", "7000",
                  "-o", tmp_path / "cli.f32", "--events", tmp_path / "cli.csv", "-q")
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "py.f32").read_bytes() == (tmp_path / "cli.f32").read_bytes()
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "cli.csv").read_text()
    assert result.samples == x.shape[0]
    assert result.chunks == -(-x.shape[0] // 7_000)
    assert result.chunk_size == 7_000
    # Five bursts, one event each (the dead time merges a burst's
    # oscillations): the events the CSV lists.
    rows = (tmp_path / "py.csv").read_text().splitlines()[1:]
    assert result.events_found == len(rows) == 5
    report = json.loads((tmp_path / "py.json").read_text())
    assert report["inputs"][0]["events"] == 5
    assert result.peak_rss_mb > 0 and result.throughput_mb_s > 0


def test_the_filtered_signal_is_numpys_moving_average(bursts, tmp_path):
    path, x = bursts
    sigstream.StreamProcessor(backend="cpu").process_file(
        path, output=tmp_path / "y.f32", channels=2, moving_average=5)
    y = np.fromfile(tmp_path / "y.f32", dtype=np.float32).reshape(-1, 2)
    for c in range(2):
        want = np.convolve(x[:, c].astype(np.float64), np.full(5, 0.2), mode="same")
        # One float32 rounding of each tap and of the sum: a few ulps of
        # the largest values (about 10).
        np.testing.assert_allclose(y[:, c], want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_options_are_refused_with_the_clis_messages(bursts):
    path, _ = bursts
    sp = sigstream.StreamProcessor(backend="cpu")
    with pytest.raises(sigstream.OptionError) as e:
        sp.process_file(path, order="four", iir="butter", lowpass=1, channels=2)
    assert isinstance(e.value, ValueError)
    cli = run_cli(path, "--order", "four")
    assert str(e.value) in cli.stderr
    with pytest.raises(ValueError, match="lowpas: no such option of process"):
        sp.process_file(path, lowpas=10)
    # A check the library makes after parsing: the same message as the CLI.
    with pytest.raises(sigstream.OptionError) as e:
        sp.process_file(path, channels=2, detect="threshold", on=-1)
    cli = run_cli(path, "--channels", "2", "--detect", "threshold", "--on=-1")
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"sigstream: {e.value}"
    with pytest.raises(sigstream.OptionError, match="threads"):
        sigstream.StreamProcessor(threads=0)
    with pytest.raises(sigstream.OptionError, match="backend"):
        sigstream.StreamProcessor(backend="tpu")


def test_file_errors_are_oserrors_with_the_path(tmp_path):
    missing = tmp_path / "missing.f32"
    with pytest.raises(sigstream.FileError) as e:
        sigstream.StreamProcessor(backend="cpu").process_file(missing)
    assert isinstance(e.value, OSError)
    assert e.value.filename == str(missing)
    assert str(missing) in str(e.value)
    assert e.value.exit_code == 2
    odd = tmp_path / "odd.f32"
    odd.write_bytes(b"\0" * 10)
    with pytest.raises(OSError, match="odd.f32"):
        sigstream.StreamProcessor(backend="cpu").process_file(odd)


def test_progress_is_reported_after_every_chunk(bursts, tmp_path):
    path, x = bursts
    seen = []
    sigstream.StreamProcessor(backend="cpu", chunk_size=10_000).process_file(
        path, progress=lambda done, total: seen.append((done, total)), channels=2)
    frames = x.shape[0]
    assert seen == [(min((i + 1) * 10_000, frames), frames) for i in range(len(seen))]
    assert seen[-1][0] == frames


def test_an_exception_in_the_callback_stops_the_run_and_leaves_no_output(bursts, tmp_path):
    path, _ = bursts

    def fail(done, total):
        if done >= 50_000:
            raise ZeroDivisionError("stop here")

    with pytest.raises(ZeroDivisionError, match="stop here"):
        sigstream.StreamProcessor(backend="cpu", chunk_size=10_000).process_file(
            path, progress=fail, output=tmp_path / "y.f32", events=tmp_path / "e.csv",
            **JOB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bursts.f32"]


def test_ctrl_c_interrupts_and_leaves_no_output(bursts, tmp_path):
    path, _ = bursts

    def interrupt(done, total):
        # As Ctrl-C does: the next check for signals raises.
        _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        sigstream.StreamProcessor(backend="cpu", chunk_size=10_000).process_file(
            path, progress=interrupt, output=tmp_path / "y.f32", **JOB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bursts.f32"]


def test_a_directory_gives_one_result_per_file(tmp_path, rng):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        rng.normal(0, 1, 1000 * (i + 1)).astype(np.float32).tofile(d / f"{i}.f32")
    results = sigstream.StreamProcessor(backend="cpu").process_file(d, moving_average=3)
    assert [r.samples for r in results] == [1000, 2000, 3000]


def test_warnings_are_python_warnings(tmp_path, rng):
    path = tmp_path / "x.f32"
    rng.normal(0, 1, 10_000).astype(np.float32).tofile(path)
    with pytest.warns(UserWarning, match="x.f32"):
        # A transition band wider than the room below the cutoff.
        sigstream.StreamProcessor(backend="cpu").process_file(
            path, sample_rate=100, lowpass=1, taps=11)


def test_events_are_a_pyarrow_table_with_the_csvs_rows(bursts, tmp_path):
    import pyarrow as pa
    import pyarrow.csv

    path, _ = bursts
    result = sigstream.StreamProcessor(backend="cpu", chunk_size=9_000).process_file(
        path, events=tmp_path / "e.csv", **JOB)
    table = result.events
    assert isinstance(table, pa.Table)
    assert table.num_rows == result.events_found == 5
    csv = pyarrow.csv.read_csv(tmp_path / "e.csv")
    assert table.column_names == csv.column_names
    for name in table.column_names:
        assert table.column(name).to_pylist() == csv.column(name).to_pylist(), name
    # The same table as the CLI's Arrow events file, types included.
    cli = run_cli(path, *CLI_JOB, "--backend", "cpu", "--events", tmp_path / "cli.arrow", "-q")
    assert cli.returncode == 0, cli.stderr
    with pa.memory_map(str(tmp_path / "cli.arrow")) as source:
        assert pa.ipc.open_file(source).read_all().equals(table)
    df = table.to_pandas()
    assert list(df["channel"]) == [0, 1, 0, 1, 0]


def test_events_come_without_an_events_file_and_not_without_detection(bursts):
    path, _ = bursts
    sp = sigstream.StreamProcessor(backend="cpu")
    assert sp.process_file(path, **JOB).events.num_rows == 5
    assert sp.process_file(path, channels=2, moving_average=3).events is None


def test_detect_on_an_array_equals_the_file_run(bursts, tmp_path):
    path, x = bursts
    opts = {k: v for k, v in JOB.items() if k not in ("channels", "sample_rate")}
    table = sigstream.detect(x, fs=100, **opts, chunk_size=3_000)
    from_file = sigstream.StreamProcessor(backend="cpu").process_file(path, **JOB).events
    assert table.equals(from_file)
    # Other types are converted as the file readers convert them.
    ints = np.round(x * 100).astype(np.int16)
    on_ints = sigstream.detect(ints, fs=100, **{**opts, "on": 400, "off": 200})
    on_floats = sigstream.detect(ints.astype(np.float32), fs=100, **{**opts, "on": 400, "off": 200})
    assert on_ints.equals(on_floats) and on_ints.num_rows == 5


def test_detect_with_noise_levels_on_an_array(rng):
    x = rng.normal(0, 2, (60_000, 3)).astype(np.float32)
    x[30_000, 1] -= 40
    table = sigstream.detect(x, fs=1000, detect="threshold", polarity="neg", on_noise=8)
    assert table.column("channel").to_pylist() == [1]
    assert table.column("peak_index").to_pylist() == [30_000]


def test_detect_refusals(rng):
    x = rng.normal(0, 1, 1000).astype(np.float32)
    with pytest.raises(sigstream.OptionError, match="channels: an input option"):
        sigstream.detect(x, channels=2, detect="threshold", on=1)
    with pytest.raises(sigstream.OptionError, match="give fs"):
        sigstream.detect(x, sample_rate=10, detect="threshold", on=1)
    with pytest.raises(sigstream.OptionError, match="detect"):
        sigstream.detect(x, on=1)
    with pytest.raises(sigstream.OptionError, match="the array: --lowpass needs a sample rate"):
        sigstream.detect(x, lowpass=10, detect="threshold", on=1)


def test_a_custom_detector_sees_every_sample_once_and_its_events_are_written(bursts, tmp_path):
    path, x = bursts
    seen = []
    kept = []

    def above(chunk, offset):
        assert chunk.dtype == np.float32 and not chunk.flags.writeable
        seen.append((offset, len(chunk)))
        # Kept past the call: a view of the engine's block, which copies
        # its storage before it writes to it again.
        kept.append((offset, chunk))
        return [(offset + int(i), offset + int(i)) for i in np.flatnonzero(chunk > 7.9)]

    result = sigstream.StreamProcessor(backend="cpu", chunk_size=10_000).process_file(
        path, custom_detector=above, channels=2, events=tmp_path / "e.csv")
    frames = x.shape[0]
    # Every chunk of both channels, each sample once.
    for channel_offsets in (sorted(seen)[0::2], sorted(seen)[1::2]):
        assert [o for o, _ in channel_offsets] == list(range(0, frames, 10_000))
    assert sum(n for _, n in seen) == 2 * frames
    want = sorted((int(i), c) for c in range(2) for i in np.flatnonzero(x[:, c] > 7.9))
    got = sorted(zip(result.events.column("start").to_pylist(),
                     result.events.column("channel").to_pylist()))
    assert got == want and len(want) > 0
    assert result.report["detector"] == {"kind": "custom"}
    # Every chunk kept is still the samples it was (no filter: the input's),
    # of one channel or the other, each channel's chunks once.
    matched = sorted(
        (offset, c) for offset, chunk in kept for c in range(2)
        if np.array_equal(chunk, x[offset:offset + len(chunk), c]))
    assert matched == sorted((o, c) for o in range(0, frames, 10_000) for c in range(2))


def test_a_custom_detectors_chunk_is_a_read_only_view_of_the_engines_block(bursts, tmp_path):
    path, x = bursts
    addresses = []
    copies = []

    def look(chunk, offset):
        assert not chunk.flags.owndata and type(chunk.base).__name__ == "ChunkSamples"
        # Its base has no buffer of its own to write to: numpy refuses.
        with pytest.raises(ValueError, match="WRITEABLE"):
            chunk.setflags(write=True)
        addresses.append(chunk.__array_interface__["data"][0])
        copies.append((offset, chunk.copy()))
        return []

    sigstream.StreamProcessor(backend="cpu", chunk_size=1_000).process_file(
        path, custom_detector=look, channels=2, moving_average=5,
        output=tmp_path / "y.f32")
    # Every sample of both channels, once (the filter's 2-sample delay
    # makes one more, shorter, chunk at each end).
    assert sum(len(chunk) for _, chunk in copies) == 2 * x.shape[0]
    assert len(addresses) >= 400
    # Not an array per call: the chunks lie in the engine's pooled blocks,
    # whose storage comes back chunk after chunk (a handful of blocks, two
    # channels each, for 400 calls).
    assert len(set(addresses)) <= 16
    # And what the detector saw is the filtered output, chunk by chunk.
    y = np.fromfile(tmp_path / "y.f32", dtype=np.float32).reshape(-1, 2)
    for offset, chunk in copies:
        assert any(np.array_equal(chunk, y[offset:offset + len(chunk), c]) for c in range(2))


def test_a_custom_detectors_exception_stops_the_run(bursts, tmp_path):
    path, _ = bursts

    def broken(chunk, offset):
        if offset >= 50_000:
            raise ArithmeticError("detector broke")
        return []

    with pytest.raises(ArithmeticError, match="detector broke"):
        sigstream.StreamProcessor(backend="cpu", chunk_size=10_000).process_file(
            path, custom_detector=broken, channels=2, output=tmp_path / "y.f32")
    assert not (tmp_path / "y.f32").exists()
    with pytest.raises(ValueError, match="outside the chunk"):
        sigstream.StreamProcessor(backend="cpu").process_file(
            path, custom_detector=lambda c, o: [o + len(c)], channels=2)
    with pytest.raises(TypeError, match="an event is an index"):
        sigstream.StreamProcessor(backend="cpu").process_file(
            path, custom_detector=lambda c, o: ["x"], channels=2)
    with pytest.raises(sigstream.OptionError, match="in place of --detect"):
        sigstream.StreamProcessor(backend="cpu").process_file(
            path, custom_detector=lambda c, o: [], channels=2, detect="threshold", on=1)


def test_the_events_table_is_the_same_object_each_time(bursts):
    path, _ = bursts
    result = sigstream.StreamProcessor(backend="cpu").process_file(path, **JOB)
    assert result.events is result.events and result.events.num_rows == 5


def test_a_custom_detector_failing_in_the_last_samples_leaves_no_output(bursts, tmp_path):
    path, x = bursts
    frames = x.shape[0]

    def fails_at_the_end(chunk, offset):
        # The 'same' filter's last two outputs come after the last chunk's
        # progress: the failure there must still abandon the outputs.
        if offset + len(chunk) == frames:
            raise LookupError("failed on the tail")
        return []

    with pytest.raises(LookupError, match="failed on the tail"):
        sigstream.StreamProcessor(backend="cpu", chunk_size=10_000).process_file(
            path, custom_detector=fails_at_the_end, channels=2, moving_average=5,
            output=tmp_path / "y.f32", events=tmp_path / "e.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bursts.f32"]
