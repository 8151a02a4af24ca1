"""Shared helpers: the CLI binary the Python results are compared with, and
seeded signals."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cli_binary():
    """The `sigstream` binary built from the same tree (scripts/test builds
    it first); SIGSTREAM_BIN overrides."""
    path = pathlib.Path(os.environ.get("SIGSTREAM_BIN", ROOT / "target" / "release" / "sigstream"))
    if not path.exists():
        raise RuntimeError(f"{path}: build the CLI first (cargo build --release)")
    return path


def run_cli(*args):
    return subprocess.run([str(cli_binary()), "process", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def bursts(tmp_path, rng):
    """2 channels of float32 noise with 5 bursts each, at 100 Hz."""
    n = 200_000
    x = rng.normal(0, 1, (n, 2)).astype(np.float32)
    for k in range(5):
        at = 20_000 + k * 35_000
        x[at:at + 400, k % 2] += (8 * np.sin(np.arange(400) * 0.3)).astype(np.float32)
    path = tmp_path / "bursts.f32"
    x.tofile(path)
    return path, x


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test is a failed test: nothing here may be skipped for a
    missing dependency or device."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped: skips count as failures here"
