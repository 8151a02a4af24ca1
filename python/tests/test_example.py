"""The README's Python example (python/examples/seed.py) runs and finds
every event."""

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "seed.py"


def test_the_seed_example_finds_every_event():
    out = subprocess.run([sys.executable, str(EXAMPLE), "2000000"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "Total samples: 2,000,000" in lines
    assert "Chunks processed: 2" in lines
    assert "Events found: 1,000" in lines
    assert "Custom detector: 1,000 samples above 6 (1,000 of the 1,000 spikes)" in lines
