"""sigstream: filter, detect events in and take spectra of signal recordings
of any size, with constant memory, on the GPU or the CPU.

The Python front of the ``sigstream`` library (the same engine as the
``sigstream`` command): every option of ``sigstream process`` is a keyword
of :meth:`StreamProcessor.process_file`, with the CLI's names (``_`` for
``-``), defaults, checks and messages.

>>> import sigstream
>>> sp = sigstream.StreamProcessor(backend="cpu")
>>> result = sp.process_file("rec.f32", lowpass=10, sample_rate=100,
...                          detect="sta-lta", sta_seconds=1, lta_seconds=10,
...                          on=3.5, off=1, events="events.csv")
>>> result.events_found, result.throughput_mb_s

Arrays in memory go through the same chunk engine (:func:`convolve`), and
:func:`chunks` iterates over a file's frames as numpy views of a mapping,
with constant memory.
"""

import json
import os

from . import _sigstream
from ._errors import Error, FileError, GpuError, OptionError, RunError
from ._pool import MemoryPool

__all__ = [
    "MemoryPool",
    "Error",
    "FileError",
    "GpuError",
    "OptionError",
    "RunError",
    "ProcessResult",
    "StreamProcessor",
    "chunks",
    "convolve",
    "detect",
    "fft",
    "psd",
    "spectrogram",
]

__version__ = _sigstream.__version__


def _value(value):
    """One option value as the command line spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        # A band or a window: (300, 6000) is "300:6000".
        return ":".join(_value(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _pairs(options):
    """Keyword options as (name, value) pairs: None leaves an option out, a
    list repeats it (``select=["XX.A..HHZ", "XX.B..HHZ"]``, ``weights=[1, 2]``)."""
    pairs = []
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, list):
            pairs.extend((name, _value(v)) for v in value)
        else:
            pairs.append((name, _value(value)))
    return pairs


class ProcessResult:
    """What :meth:`StreamProcessor.process_file` returns: the statistics the
    CLI reports for the input, and its report entry (``report``, the CLI's
    ``--report`` JSON for that input).

    Attributes: ``samples`` (frames read), ``chunks``, ``chunk_size``,
    ``events_found`` (events written), ``seconds``, ``throughput_mb_s``,
    ``bytes``, ``peak_rss_mb`` (the process's peak resident memory),
    ``report`` (a dict) and ``outputs`` (the files written, by kind).

    ``events``: with detection, the events as a ``pyarrow.Table`` with the
    events CSV's columns (``channel``, ``start``, ``end``, ``peak_index``,
    ``peak_value``, the times, ...), whose buffers pyarrow takes from
    sigstream without copying (the Arrow C stream interface);
    ``events.to_pandas()`` is a step away. ``None`` without detection.
    Needs pyarrow (``pip install pyarrow``).
    """

    def __init__(self, entry, peak_rss_mb, table=None):
        self.report = entry
        self.samples = entry["samples"]
        self.chunks = entry["chunks"]
        self.chunk_size = entry["chunk_size"]
        self.events_found = entry["events"]
        self.seconds = entry["seconds"]
        self.throughput_mb_s = entry["throughput_mb_s"]
        self.bytes = entry["bytes"]
        self.peak_rss_mb = peak_rss_mb
        self.outputs = entry.get("outputs") or {}
        self._table = table
        self._events = None

    @property
    def events(self):
        if self._events is None and self._table is not None:
            import pyarrow as pa

            self._events = pa.table(self._table)
            self._table = None
        return self._events

    def __repr__(self):
        return (
            f"ProcessResult(samples={self.samples}, chunks={self.chunks}, "
            f"events_found={self.events_found}, seconds={self.seconds:.3f}, "
            f"throughput_mb_s={self.throughput_mb_s:.1f}, peak_rss_mb={self.peak_rss_mb:.1f})"
        )


class StreamProcessor:
    """Runs ``sigstream process`` jobs (the seed's ``StreamProcessor``).

    ``chunk_size``: frames per chunk (default: the largest that fits the
    memory limit); ``memory_limit_mb``: a hard limit on the process's peak
    memory (default: sigstream's budget); ``backend``: ``"auto"`` (a
    hardware GPU if there is one, else the CPU), ``"cpu"`` or ``"gpu"``;
    ``threads``: compute threads (default: every core); ``gpu_adapter``: a
    part of the GPU's name, when there are several.
    """

    def __init__(self, chunk_size=None, backend="auto", threads=None,
                 memory_limit_mb=None, gpu_adapter=None):
        self._run = {
            "chunk_size": chunk_size,
            "backend": backend,
            "threads": threads,
            "memory_limit": memory_limit_mb,
            "gpu_adapter": gpu_adapter,
        }
        # Checked now, by the library, as the CLI checks them.
        _sigstream.check_run(_pairs(self._run))

    def process_file(self, path, *, progress=None, custom_detector=None, **options):
        """Processes one input (a file, or a directory's files) as
        ``sigstream process PATH --OPTION VALUE ...`` does, and returns a
        :class:`ProcessResult` (a list of them for a directory).

        Every option of ``sigstream process`` is a keyword, named as its
        long option with ``_`` for ``-``: ``lowpass=10``,
        ``bandpass=(300, 6000)`` (a tuple is ``LO:HI``), ``zero_phase=True``
        (a flag), ``detect="threshold"``, ``on_noise=5``, ``events="ev.csv"``,
        ``select=["XX.A..HHZ", "XX.B..HHZ"]`` (a list repeats the option).
        ``progress(frames_done, frames_total_or_None)`` is called after
        every chunk.

        ``custom_detector(chunk, offset)`` (the seed's), instead of
        ``detect=``, is called for every chunk of every channel of the
        filtered signal: ``chunk`` a read-only float32 array, a view of the
        engine's block, not a copy (kept past the call, it keeps its values
        and its whole block alive: ``chunk.copy()`` keeps only it),
        ``offset`` the absolute index of its
        first sample. It returns the events complete in the chunk: sample
        indices, ``(start, end)`` pairs (inclusive; the peak is the first
        largest value) or ``(start, end, peak_index, peak_value)`` tuples,
        all within the chunk; they are written and returned as the built-in
        detectors' are. The GIL is released while sigstream works; Ctrl-C
        stops it (and leaves no output behind).

        Raises :class:`OptionError` (a ``ValueError``) for options,
        :class:`FileError` (an ``OSError``) for files, :class:`GpuError`
        and :class:`RunError` for failures while running.
        """
        for name in self._run:
            if name in options:
                raise OptionError(
                    f"{name}: a setting of the StreamProcessor, not of process_file")
        report_path = options.pop("report", None)
        pairs = _pairs({**self._run, **options})
        text, tables = _sigstream.process([os.fspath(path)], pairs, progress, custom_detector)
        report = json.loads(text)
        if report_path is not None:
            with open(report_path, "w") as f:
                json.dump(report, f, indent=2)
        results = [ProcessResult(e, report["peak_rss_mb"], t)
                   for e, t in zip(report["inputs"], tables)]
        if os.path.isdir(path):
            return results
        return results[0]


def convolve(x, kernel, mode="same", chunk_size=None):
    """``numpy.convolve(x, kernel, mode)`` through sigstream's chunk engine,
    ``chunk_size`` samples at a time (default: the largest chunk that fits
    sigstream's memory budget): the same result for any chunk size.

    ``x``: a one-dimensional array of float32 (read in place when
    contiguous), float64 or integers (converted to float32 a chunk at a
    time); ``kernel``: converted to float32. ``mode``: ``"full"``,
    ``"same"`` (the default, the signal's length, centred as numpy's) or
    ``"valid"``. Returns a float32 array, computed as the CLI computes a
    filter: directly for short kernels, by FFT overlap-save for long ones.
    """
    import numpy as np

    x = np.asarray(x)
    if x.ndim != 1:
        raise OptionError(f"x: one-dimensional, got shape {x.shape}")
    kernel = np.ascontiguousarray(kernel, dtype=np.float32)
    if kernel.ndim != 1:
        raise OptionError(f"kernel: one-dimensional, got shape {kernel.shape}")
    if chunk_size is not None:
        if chunk_size < 1:
            raise OptionError(f"chunk_size {chunk_size}: at least 1")
        chunk_size = int(chunk_size)
    return _sigstream.convolve(x, kernel, mode, chunk_size)


def chunks(path, chunk_size, overlap=0, **options):
    """Iterates over ``path``'s frames, ``chunk_size`` at a time, each chunk
    preceded by ``overlap`` frames of the one before: yields ``(offset,
    array)``, ``offset`` the index of the array's first frame and ``array``
    a read-only numpy array of shape (frames, channels) in the file's own
    sample type, pointing into a mapping of that part of the file (no
    copy). Memory stays flat as long as the arrays are let go.

    The input options are ``process``'s: ``dtype``, ``channels``,
    ``offset``, ``endian`` for raw files; .npy, .wav, SAC, SigMF and
    SpikeGLX files describe themselves. Formats that are decoded
    (miniSEED, FLAC) cannot be viewed in place.
    """
    return _sigstream.chunks(os.fspath(path), int(chunk_size), int(overlap), _pairs(options))


def _input(x):
    """A path stays a path; anything else becomes a C-contiguous array of
    shape (frames,) or (frames, channels)."""
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    import numpy as np

    a = np.ascontiguousarray(x)
    if a.ndim not in (1, 2):
        raise OptionError(f"x: shape (frames,) or (frames, channels), got {a.shape}")
    return a


def psd(x, fs=None, nperseg=256, noverlap=None, window="hann", detrend="constant",
        scaling="density", backend="cpu", **input_options):
    """Welch's power spectral density, as ``scipy.signal.welch`` computes it
    (same window, overlap, detrending, scaling and frequencies), streamed
    with constant memory: of a file (any size; input options as
    ``process``'s, the rate from the file or ``fs``), or of an array of
    shape (frames,) or (frames, channels).

    Returns ``(f, Pxx)``: ``Pxx`` has shape (bins,) for one channel, else
    (channels, bins) (scipy's ``welch(x.T)``). I/Q files give two-sided
    spectra in increasing frequency (scipy's ``return_onesided=False`` then
    ``fftshift``). ``window``: hann, hamming, blackman or rect; ``detrend``:
    ``"constant"`` or ``None``; ``scaling``: ``"density"`` or
    ``"spectrum"``; ``backend``: cpu, gpu or auto.
    """
    if scaling not in ("density", "spectrum"):
        raise OptionError(f"scaling {scaling!r}: density or spectrum")
    f, values = _sigstream.psd(_input(x), None if fs is None else float(fs), int(nperseg),
                               None if noverlap is None else int(noverlap), window, detrend,
                               scaling == "density", backend, _pairs(input_options))
    return f, (values[0] if values.shape[0] == 1 else values)


def spectrogram(x, fs=None, nperseg=256, hop=None, window="hann", detrend="constant",
                scale="power", backend="cpu", **input_options):
    """The power spectrogram, as ``scipy.signal.spectrogram`` computes it
    with ``noverlap = nperseg - hop`` (frames only where a whole window
    fits), streamed: of a file or of an array of shape (frames,) or
    (frames, channels). ``hop`` defaults to ``nperseg // 4``.

    Returns ``(f, t, Sxx)``: ``t`` the frames' centres in seconds,
    ``Sxx`` of shape (bins, frames) for one channel, else (channels, bins,
    frames), as scipy's. ``scale``: ``"power"`` (scipy's default density),
    ``"db"`` (10·log10 of it) or ``"magnitude"`` (scipy's
    ``mode="magnitude"``). The whole spectrogram is returned in memory; the
    CLI's ``spectrogram`` writes larger ones to a file as they are computed.
    """
    f, t, values = _sigstream.spectrogram(_input(x), None if fs is None else float(fs),
                                          int(nperseg), None if hop is None else int(hop),
                                          window, detrend, scale, backend, _pairs(input_options))
    import numpy as np

    values = np.moveaxis(values, 0, -1)  # (channels, bins, frames), no copy
    return f, t, (values[0] if values.shape[0] == 1 else values)


def fft(x, output=None, full=False, channel=None, memory_limit_mb=64, backend="cpu",
        **input_options):
    """The exact DFT of one channel of a whole signal, larger than memory if
    need be (the CLI's out-of-core ``fft``): ``np.fft.rfft``'s N/2+1 bins
    of a real signal (all N with ``full=True``, as ``np.fft.fft``; always
    all N for I/Q). ``x``: a file (input options as ``process``'s) or an
    array; ``channel``: which one when there are several.

    With ``output`` (a ``.npy`` path) the spectrum is written there and
    returned memory-mapped (``np.load(output, mmap_mode="r")``); without it,
    it is returned in memory (complex64). ``memory_limit_mb`` bounds the
    transform's memory (the spectrum returned in memory comes on top).
    """
    import tempfile

    import numpy as np

    x = _input(x)
    if output is not None:
        _sigstream.fft(x, os.fspath(output), bool(full), channel, int(memory_limit_mb),
                       backend, _pairs(input_options))
        return np.load(output, mmap_mode="r")
    with tempfile.TemporaryDirectory(prefix="sigstream-fft-") as d:
        path = os.path.join(d, "spectrum.npy")
        _sigstream.fft(x, path, bool(full), channel, int(memory_limit_mb), backend,
                       _pairs(input_options))
        return np.load(path)


#: The input options of ``process`` that describe files: an array describes
#: itself (its shape and type), and its rate is ``fs``.
_FILE_OPTIONS = {"dtype", "endian", "offset", "channels", "sample_rate", "normalize",
                 "start_time", "select", "gaps", "columns"}


def detect(x, fs=None, *, progress=None, **options):
    """Runs ``process``'s job on an array in memory and returns its events
    as a ``pyarrow.Table`` (the events file's columns and types).

    ``x``: shape (frames,) or (frames, channels), float32 (read in place
    when C-contiguous), float64 or integers (converted a chunk at a time);
    ``fs``: its sample rate in Hz. ``options`` are ``process``'s, as for
    :meth:`StreamProcessor.process_file` (a filter, ``reference``,
    ``detect="threshold"``, ``on``/``on_noise``, ``polarity``,
    ``dead_time``, ``snippets``, ``output``, ...), plus ``backend``,
    ``threads``, ``chunk_size`` and ``memory_limit``. The noise of
    ``on_noise`` comes from the first chunks of the array, as for standard
    input. The same checks and messages as the CLI.
    """
    for name in options:
        if name in _FILE_OPTIONS:
            raise OptionError(f"{name}: an input option for files; an array describes itself"
                              + (" (give fs)" if name == "sample_rate" else ""))
    if "detect" not in options:
        raise OptionError("detect: give the detector (detect=\"threshold\", \"sta-lta\", ...)")
    import numpy as np

    a = np.ascontiguousarray(x)
    if a.ndim not in (1, 2):
        raise OptionError(f"x: shape (frames,) or (frames, channels), got {a.shape}")
    text, table = _sigstream.detect(a, None if fs is None else float(fs), _pairs(options),
                                    progress)
    import pyarrow as pa

    return pa.table(table)
