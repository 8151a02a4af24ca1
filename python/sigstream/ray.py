"""sigstream's sharded runs on Ray: :func:`sigstream.distributed.process`
with ``ray=True``.

>>> import ray, sigstream.ray
>>> ray.init(num_cpus=2)
>>> [r] = sigstream.ray.process(["rec.npy"], lowpass=10, sample_rate=100,
...                             detect="threshold", on=5, output="out.npy")
"""

from . import distributed

__all__ = ["process"]


def process(paths, **options):
    """:func:`sigstream.distributed.process` on Ray (``ray.init()`` first):
    the same arguments, without ``client``."""
    if "client" in options:
        raise distributed.OptionError("client: a Dask argument; sigstream.ray runs on Ray")
    return distributed.process(paths, ray=True, **options)
