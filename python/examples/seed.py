"""The seed's example (stream_processor.md), on sigstream.

A 50,000,000-sample float32 signal (~190 MB) with 1,000 events is written
to a temporary file, processed through the memory map with constant
memory, and its statistics printed as the seed's script printed them; then
an array in memory is convolved with the seed's moving average, and the
file is walked chunk by chunk with a custom detector, as the seed's
``custom_detector(chunk, offset)``.

    python python/examples/seed.py [SAMPLES]
"""

import os
import sys
import tempfile

import numpy as np

import sigstream

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000_000
EVENTS = 1_000
CHUNK = 1_000_000


def write_signal(path, rng):
    """Noise of std 1 with EVENTS spikes of amplitude 10, written a chunk at
    a time; returns the spikes' positions."""
    at = np.sort(rng.choice(np.arange(100, N - 100, 200), EVENTS, replace=False))
    with open(path, "wb") as f:
        for start in range(0, N, CHUNK):
            x = rng.normal(0, 1, min(CHUNK, N - start)).astype(np.float32)
            inside = at[(at >= start) & (at < start + len(x))] - start
            x[inside] += 10
            x.tofile(f)
    return at


def main():
    rng = np.random.default_rng(2024)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "signal.bin")
        print("=== Memory-Efficient Stream Processing ===")
        print(f"Creating {N:,} sample signal (~{N * 4 / 2**20:.0f} MB)...")
        spikes = write_signal(path, rng)
        print("Processing with memory mapping...")
        processor = sigstream.StreamProcessor(chunk_size=CHUNK, memory_limit_mb=64)
        result = processor.process_file(path, dtype="f32", detect="threshold", on=6,
                                        events=os.path.join(d, "events.csv"))
        print("Results:")
        print(f"Total samples: {result.samples:,}")
        print(f"Chunks processed: {result.chunks}")
        print(f"Events found: {result.events_found:,}")
        print(f"Peak memory: {result.peak_rss_mb:.1f} MB")
        print(f"Memory efficiency: {N * 4 / 2**20 / result.peak_rss_mb:.1f}x")

        print("=== Chunked convolution ===")
        signal = np.fromfile(path, dtype=np.float32, count=min(N, 5_000_000))
        kernel = np.array([0.25, 0.5, 0.25])  # Moving average
        filtered = sigstream.convolve(signal, kernel)
        print(f"Filtered {len(filtered):,} samples in memory")

        print("=== Custom chunk processing ===")

        def custom_detector(chunk, offset):
            # Your detection logic: samples above 6, as absolute indices.
            return offset + np.flatnonzero(chunk[:, 0] > 6)

        found = np.concatenate([custom_detector(chunk, offset)
                                for offset, chunk in sigstream.chunks(path, CHUNK, dtype="f32")])
        print(f"Custom detector: {len(found):,} samples above 6 "
              f"({np.isin(spikes, found).sum():,} of the {EVENTS:,} spikes)")
        return result, spikes, found


if __name__ == "__main__":
    main()
