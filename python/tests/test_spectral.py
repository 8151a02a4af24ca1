"""psd, spectrogram and fft against scipy.signal and numpy.fft."""

import numpy as np
import pytest
import scipy.signal

import sigstream

# The frames are transformed in float32 (as the CLI's spectral commands),
# scipy works in float64: a float32 FFT's rounding, relative to the largest
# value (the averages of many segments keep it there).
SPECTRAL_TOL = 2e-5
# An N-point float32 transform (out of core: several passes) against
# numpy's float64 one: rounding grows like log2(N) ulps of the largest bin.
FFT_TOL = 1e-5


def close(got, want, tol):
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("nperseg,noverlap", [(256, None), (1000, 100), (64, 63)])
def test_psd_equals_scipy_welch(rng, nperseg, noverlap):
    x = rng.normal(0, 1, (30_000, 3)).astype(np.float32)
    x[:, 1] += np.sin(np.arange(30_000) * 0.2).astype(np.float32)
    f, p = sigstream.psd(x, fs=500.0, nperseg=nperseg, noverlap=noverlap)
    fw, pw = scipy.signal.welch(x.T.astype(np.float64), fs=500.0, nperseg=nperseg,
                                noverlap=noverlap)
    np.testing.assert_allclose(f, fw, rtol=1e-12)
    assert p.shape == pw.shape == (3, nperseg // 2 + 1)
    close(p, pw, SPECTRAL_TOL)


def test_psd_options_and_one_channel(rng):
    x = rng.normal(0, 1, 20_000).astype(np.float64)
    f, p = sigstream.psd(x, fs=100, nperseg=512, window="hamming", detrend=None,
                         scaling="spectrum")
    fw, pw = scipy.signal.welch(x, fs=100, nperseg=512, window="hamming", detrend=False,
                                scaling="spectrum")
    assert p.shape == pw.shape
    close(p, pw, SPECTRAL_TOL)


def test_psd_of_a_file_equals_that_of_the_array(rng, tmp_path):
    x = (rng.normal(0, 300, (12_345, 2))).astype(np.int16)
    path = tmp_path / "x.i16"
    x.tofile(path)
    f1, p1 = sigstream.psd(path, nperseg=128, channels=2, sample_rate=1000)
    f2, p2 = sigstream.psd(x, fs=1000, nperseg=128)
    assert np.array_equal(f1, f2) and np.array_equal(p1, p2)


def test_spectrogram_equals_scipy(rng):
    x = rng.normal(0, 1, 10_000).astype(np.float32)
    f, t, s = sigstream.spectrogram(x, fs=200, nperseg=256, hop=64)
    # scipy's own default window is tukey(0.25); sigstream's is hann.
    fw, tw, sw = scipy.signal.spectrogram(x.astype(np.float64), fs=200, nperseg=256,
                                          noverlap=256 - 64, window="hann")
    np.testing.assert_allclose(f, fw, rtol=1e-12)
    np.testing.assert_allclose(t, tw, rtol=1e-12)
    assert s.shape == sw.shape
    close(s, sw, SPECTRAL_TOL)
    # Two channels: (channels, bins, frames).
    y = np.stack([x, 2 * x], axis=1)
    _, _, s2 = sigstream.spectrogram(y, fs=200, nperseg=256, hop=64)
    assert s2.shape == (2,) + sw.shape
    close(s2[1], 4 * sw, SPECTRAL_TOL)
    _, _, m = sigstream.spectrogram(x, fs=200, nperseg=256, hop=64, scale="magnitude")
    _, _, mw = scipy.signal.spectrogram(x.astype(np.float64), fs=200, nperseg=256,
                                        noverlap=192, window="hann", mode="magnitude",
                                        scaling="spectrum")
    close(m, mw, SPECTRAL_TOL)


@pytest.mark.parametrize("n", [4096, 3 * 5 * 7 * 64, 100_003])
def test_fft_equals_numpy(rng, n):
    x = rng.normal(0, 1, n).astype(np.float32)
    got = sigstream.fft(x)
    want = np.fft.rfft(x.astype(np.float64))
    assert got.dtype == np.complex64 and got.shape == want.shape
    close(got, want, FFT_TOL)
    full = sigstream.fft(x, full=True)
    close(full, np.fft.fft(x.astype(np.float64)), FFT_TOL)


def test_fft_out_of_core_to_a_file(rng, tmp_path):
    # 2^22 samples within 20 MiB: the four-step transform through a scratch file.
    x = rng.normal(0, 1, 1 << 22).astype(np.float32)
    path = tmp_path / "x.f32"
    x.tofile(path)
    out = tmp_path / "spectrum.npy"
    got = sigstream.fft(path, output=out, memory_limit_mb=20)
    assert isinstance(got, np.memmap)
    close(got, np.fft.rfft(x.astype(np.float64)), FFT_TOL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spectrum.npy", "x.f32"]


def test_spectral_refusals(rng, tmp_path):
    x = rng.normal(0, 1, 1000).astype(np.float32)
    with pytest.raises(sigstream.OptionError, match="overlap"):
        sigstream.psd(x, nperseg=100, noverlap=100)
    with pytest.raises(ValueError, match="window"):
        sigstream.psd(x, window="kaiser")
    with pytest.raises(sigstream.OptionError, match="describe files"):
        sigstream.psd(x, channels=2)
    with pytest.raises(sigstream.OptionError, match="shape"):
        sigstream.psd(np.zeros((2, 2, 2)))
    with pytest.raises(sigstream.FileError):
        sigstream.fft(tmp_path / "missing.f32")
    with pytest.raises(ValueError, match="scale"):
        sigstream.spectrogram(x, scale="loud")


def test_a_wide_file_is_read_in_blocks_planned_within_the_budget(tmp_path):
    """100,000 channels: the block is planned as the CLI plans it (budget
    and the transform's state), not a fixed 256 frames (100 MB)."""
    import subprocess
    import sys

    path = tmp_path / "wide.f32"
    np.zeros(100_000 * 10, dtype=np.float32).tofile(path)
    # VmHWM, not ru_maxrss: the latter keeps the forked pytest's peak
    # across exec.
    code = ("import sigstream; "
            f"f, p = sigstream.psd({str(path)!r}, nperseg=8, channels=100000); "
            "assert p.shape == (100000, 5); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    peak_mib = int(out.stdout) / 1024
    # The interpreter with numpy and the module (~27 MiB) plus sigstream's
    # default 24 MiB budget, with room for the result (4 MiB twice); a
    # fixed 256-frame block alone was 100 MB (the peak was 129 MiB).
    assert peak_mib < 70, f"peak RSS {peak_mib:.0f} MiB"
