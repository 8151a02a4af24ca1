import os
from typing import Any, Dict, List, Optional, Sequence, Union

import pyarrow as pa

from . import OptionError as OptionError

_Path = Union[str, "os.PathLike[str]"]

class Shard:
    path: str
    index: int
    start: int
    end: int
    def __init__(self, path: str, index: int, start: int, end: int) -> None: ...

class ShardedResult:
    path: str
    events: Optional[pa.Table]
    output: Optional[str]
    snippets: Optional[str]
    samples: int
    seconds: float
    shards: List[Dict[str, Any]]

def plan(paths: Sequence[_Path], shards_per_file: int, **options: Any) -> List[Shard]: ...
def process(
    paths: Union[_Path, Sequence[_Path]],
    *,
    client: Any = None,
    ray: bool = False,
    shards_per_file: Optional[int] = None,
    output: Optional[_Path] = None,
    snippets: Optional[_Path] = None,
    threads: Optional[int] = 1,
    backend: str = "cpu",
    chunk_size: Optional[int] = None,
    memory_limit_mb: Optional[float] = None,
    **options: Any,
) -> List[ShardedResult]: ...
