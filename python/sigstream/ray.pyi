import os
from typing import Any, List, Sequence, Union

from .distributed import ShardedResult

def process(paths: Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]],
            **options: Any) -> List[ShardedResult]: ...
