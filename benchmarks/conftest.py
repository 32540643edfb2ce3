"""Shared set-up of the benchmark modules.

The problems come from the tests' generator (tests/problems.py). A module
lists its sizes in ``SIZES``; a test that takes ``size`` (or ``problem``) runs
once per size, tests grouped by size so one problem is in memory at a time.
When benchmarks are off (``--benchmark-disable``, the default) or
``GRIDCORE_BENCH_QUICK=1``, every size is shrunk (:meth:`harness.Size.shrunk`)
so the whole directory runs as a smoke test in a minute or two.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import Problem, quick  # noqa: E402  (needs tests/ on the path)


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        sizes = metafunc.module.SIZES
        if quick(metafunc.config):
            sizes = [s.shrunk() for s in sizes]
        metafunc.parametrize("size", sizes, ids=str, scope="module")


@pytest.fixture(scope="module")
def problem(size):
    return Problem(size)
