"""Type stubs of the sigstream package (see the module's docstrings)."""

import os
from typing import Any, Callable, Iterator, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, os.PathLike[str]]

class Error(Exception):
    exit_code: int

class OptionError(Error, ValueError): ...

class FileError(Error, OSError):
    message: str

class GpuError(Error, RuntimeError): ...
class RunError(Error, RuntimeError): ...

class ProcessResult:
    report: dict[str, Any]
    samples: int
    chunks: int
    chunk_size: int
    events_found: int
    seconds: float
    throughput_mb_s: float
    bytes: int
    peak_rss_mb: float
    outputs: dict[str, str]

class StreamProcessor:
    def __init__(
        self,
        chunk_size: Optional[int] = None,
        backend: Literal["auto", "cpu", "gpu"] = "auto",
        threads: Optional[int] = None,
        memory_limit_mb: Optional[int] = None,
        gpu_adapter: Optional[str] = None,
    ) -> None: ...
    def process_file(
        self,
        path: PathLike,
        *,
        progress: Optional[Callable[[int, Optional[int]], object]] = None,
        custom_detector: Optional[Callable[[npt.NDArray[np.float32], int], Any]] = None,
        **options: Any,
    ) -> Union[ProcessResult, list[ProcessResult]]: ...

def convolve(
    x: npt.ArrayLike,
    kernel: npt.ArrayLike,
    mode: Literal["full", "same", "valid"] = "same",
    chunk_size: Optional[int] = None,
) -> npt.NDArray[np.float32]: ...

def chunks(
    path: PathLike, chunk_size: int, overlap: int = 0, **options: Any
) -> Iterator[Tuple[int, npt.NDArray[Any]]]: ...

def psd(
    x: Union[PathLike, npt.ArrayLike],
    fs: Optional[float] = None,
    nperseg: int = 256,
    noverlap: Optional[int] = None,
    window: Literal["hann", "hamming", "blackman", "rect", "boxcar"] = "hann",
    detrend: Optional[Literal["constant"]] = "constant",
    scaling: Literal["density", "spectrum"] = "density",
    backend: Literal["auto", "cpu", "gpu"] = "cpu",
    **input_options: Any,
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...

def spectrogram(
    x: Union[PathLike, npt.ArrayLike],
    fs: Optional[float] = None,
    nperseg: int = 256,
    hop: Optional[int] = None,
    window: Literal["hann", "hamming", "blackman", "rect", "boxcar"] = "hann",
    detrend: Optional[Literal["constant"]] = "constant",
    scale: Literal["power", "db", "magnitude"] = "power",
    backend: Literal["auto", "cpu", "gpu"] = "cpu",
    **input_options: Any,
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float32]]: ...

def fft(
    x: Union[PathLike, npt.ArrayLike],
    output: Optional[PathLike] = None,
    full: bool = False,
    channel: Optional[int] = None,
    memory_limit_mb: int = 64,
    backend: Literal["auto", "cpu", "gpu"] = "cpu",
    **input_options: Any,
) -> npt.NDArray[np.complex64]: ...

def detect(
    x: npt.ArrayLike,
    fs: Optional[float] = None,
    *,
    progress: Optional[Callable[[int, Optional[int]], object]] = None,
    **options: Any,
) -> Any: ...

class MemoryPool:
    max_size: int
    hits: int
    misses: int
    @property
    def size(self) -> int: ...
    def __init__(self, max_size: int = 10) -> None: ...
    def get(self, shape: Union[int, Sequence[int]], dtype: npt.DTypeLike = "float32") -> npt.NDArray[Any]: ...
    def put(self, arr: npt.NDArray[Any]) -> None: ...
    def clear(self) -> None: ...
