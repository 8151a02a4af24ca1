"""``MemoryPool``: numpy arrays reused instead of allocated, for users who
drive chunks themselves (the seed's ``MemoryPool(max_size)``).

Why in Python: the arrays it hands out are numpy's own, so nothing they
point to can be freed while Python holds them; the engine's pool
(``sigstream::pool::MemoryPool``) recycles its blocks under the engine's
control and never lends them to Python code.
"""

import threading


class MemoryPool:
    """A pool of numpy arrays, by shape and dtype.

    ``get(shape, dtype)`` returns an array from the pool when one of that
    shape and type was put back, else a new one (uninitialised, as
    ``np.empty``); ``put(arr)`` offers it back, kept while the pool holds
    fewer than ``max_size`` arrays (else let go). ``hits``, ``misses`` and
    ``size`` say how it went. Thread-safe.

    An array put back must not be used any more by its former holder: the
    next ``get`` of its shape hands it out again, contents and all.
    """

    def __init__(self, max_size=10):
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 0:
            from ._errors import OptionError

            raise OptionError(f"max_size {max_size!r}: a whole number, at least 0")
        self.max_size = max_size
        self.hits = 0
        self.misses = 0
        self._free = {}
        self._count = 0
        self._lock = threading.Lock()

    @property
    def size(self):
        """Arrays held, ready for ``get``."""
        return self._count

    def get(self, shape, dtype="float32"):
        import numpy as np

        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        key = (shape, dtype.str)
        with self._lock:
            free = self._free.get(key)
            if free:
                self.hits += 1
                self._count -= 1
                return free.pop()
            self.misses += 1
        return np.empty(shape, dtype=dtype)

    def put(self, arr):
        import numpy as np

        if not isinstance(arr, np.ndarray) or not arr.flags.owndata or not arr.flags.c_contiguous:
            from ._errors import OptionError

            raise OptionError("put: an array from get (C-contiguous, owning its data), not a view")
        key = (arr.shape, arr.dtype.str)
        with self._lock:
            if self._count >= self.max_size:
                return
            self._free.setdefault(key, []).append(arr)
            self._count += 1

    def clear(self):
        """Lets every held array go."""
        with self._lock:
            self._free.clear()
            self._count = 0
