"""convolve against numpy.convolve, and chunks against numpy.memmap."""

import numpy as np
import pytest

import sigstream

# float32 samples and taps, sums accumulated in float64 by numpy: the
# engine's float32 arithmetic (direct or FFT) stays within a few ulps of the
# largest output value.
CONV_TOL = 2e-6


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("taps", [1, 4, 31, 1025])
def test_convolve_equals_numpy(rng, mode, taps):
    x = rng.normal(0, 1, 50_000).astype(np.float32)
    k = rng.normal(0, 1, taps).astype(np.float32)
    got = sigstream.convolve(x, k, mode=mode, chunk_size=4096)
    want = np.convolve(x.astype(np.float64), k.astype(np.float64), mode=mode)
    assert got.dtype == np.float32 and got.shape == want.shape
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=CONV_TOL * scale * np.sqrt(taps))


def test_convolve_does_not_depend_on_the_chunk_size(rng):
    x = rng.normal(0, 1, 30_000).astype(np.float32)
    k = rng.normal(0, 1, 101).astype(np.float32)
    first = sigstream.convolve(x, k, chunk_size=1000)
    for chunk in (999, 4096, 30_000):
        assert np.array_equal(sigstream.convolve(x, k, chunk_size=chunk), first)


@pytest.mark.parametrize("dtype", [np.float64, np.int16, np.int32, np.uint8])
def test_convolve_takes_other_types_as_float32(rng, dtype):
    x = (rng.normal(0, 50, 20_000)).astype(dtype)
    k = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    got = sigstream.convolve(x, k, mode="same")
    # The samples converted to float32 first, as the engine does.
    want = sigstream.convolve(x.astype(np.float32), k, mode="same")
    assert np.array_equal(got, want)


def test_convolve_takes_strided_arrays(rng):
    x = rng.normal(0, 1, 40_000).astype(np.float32)
    k = rng.normal(0, 1, 9).astype(np.float32)
    assert np.array_equal(sigstream.convolve(x[::2], k), sigstream.convolve(x[::2].copy(), k))


def test_convolve_refusals(rng):
    x = rng.normal(0, 1, 100).astype(np.float32)
    with pytest.raises(ValueError, match="mode"):
        sigstream.convolve(x, [1.0], mode="middle")
    with pytest.raises(ValueError, match="one-dimensional"):
        sigstream.convolve(x.reshape(10, 10), [1.0])
    with pytest.raises(sigstream.OptionError):
        sigstream.convolve(x, np.array([], dtype=np.float32))
    with pytest.raises(TypeError):
        sigstream.convolve(x.astype(np.complex64), [1.0])


def test_chunks_are_views_of_the_file(tmp_path, rng):
    x = rng.normal(0, 1, (10_001, 3)).astype(np.float32)
    path = tmp_path / "x.f32"
    x.tofile(path)
    seen = []
    for offset, a in sigstream.chunks(path, 1000, overlap=10, channels=3):
        assert a.dtype == np.float32 and a.shape[1] == 3
        assert not a.flags.writeable and not a.flags.owndata
        first = max(0, len(seen) * 1000 - 10)
        assert offset == first
        assert np.array_equal(a, x[first:min((len(seen) + 1) * 1000, len(x))])
        with pytest.raises(ValueError):
            a[0, 0] = 1
        seen.append(offset)
    assert len(seen) == 11


@pytest.mark.parametrize("dtype", ["<i2", "<f8", "<u2"])
def test_chunks_of_npy_files_keep_their_type(tmp_path, rng, dtype):
    x = (rng.normal(0, 100, (5000, 2))).astype(dtype)
    path = tmp_path / "x.npy"
    np.save(path, x)
    parts = [a for _, a in sigstream.chunks(path, 777)]
    assert all(p.dtype == np.dtype(dtype) for p in parts)
    assert np.array_equal(np.concatenate(parts), x)


def test_chunks_of_complex_iq(tmp_path, rng):
    z = (rng.normal(0, 1, 4000) + 1j * rng.normal(0, 1, 4000)).astype(np.complex64)
    path = tmp_path / "iq.cf32"
    z.tofile(path)
    parts = [a for _, a in sigstream.chunks(path, 1500)]
    assert parts[0].dtype == np.complex64
    assert np.array_equal(np.concatenate(parts)[:, 0], z)


def test_chunks_refusals(tmp_path):
    path = tmp_path / "x.f32"
    np.zeros(10, dtype=np.float32).tofile(path)
    with pytest.raises(ValueError, match="chunk_size"):
        sigstream.chunks(path, 0)
    with pytest.raises(sigstream.FileError):
        sigstream.chunks(tmp_path / "none.f32", 10)
    big = tmp_path / "big.i16"
    np.arange(10, dtype=">i2").tofile(big)
    with pytest.raises(OSError, match="byte order"):
        sigstream.chunks(big, 4, endian="big")


def test_chunks_refuse_samples_numpy_has_no_type_for(tmp_path):
    import wave

    path = tmp_path / "x24.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(8000)
        w.writeframes(b"\x01\x02\x03" * 100)
    with pytest.raises(sigstream.FileError, match="no numpy type"):
        sigstream.chunks(path, 10)
