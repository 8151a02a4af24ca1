"""MemoryPool: arrays reused by shape and type, bounded, thread-safe."""

import threading

import numpy as np
import pytest

import sigstream


def test_arrays_are_reused_by_shape_and_type():
    pool = sigstream.MemoryPool(max_size=2)
    a = pool.get((1000,), np.float32)
    assert a.shape == (1000,) and a.dtype == np.float32 and pool.misses == 1
    pool.put(a)
    b = pool.get(1000, "float32")
    assert b is a and pool.hits == 1 and pool.size == 0
    c = pool.get((1000,), np.float64)  # another type: a new array
    assert c is not a and pool.misses == 2
    pool.put(a)
    pool.put(c)
    pool.put(np.empty(5))  # beyond max_size: let go
    assert pool.size == 2
    pool.clear()
    assert pool.size == 0


def test_only_owning_arrays_go_back():
    pool = sigstream.MemoryPool()
    a = pool.get((10, 10))
    with pytest.raises(sigstream.OptionError, match="not a view"):
        pool.put(a[2:])
    with pytest.raises(ValueError, match="max_size"):
        sigstream.MemoryPool(max_size=-1)


def test_threads_share_a_pool():
    pool = sigstream.MemoryPool(max_size=8)
    seen = []

    def work():
        for _ in range(200):
            a = pool.get((64,))
            seen.append(id(a))
            pool.put(a)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pool.hits + pool.misses == 800
    assert pool.misses <= 8  # at most one new array per array in flight
