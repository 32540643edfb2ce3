"""Cheap quality gates in the test run: ruff's lint, import order and docstring rules
(configured in pyproject.toml) over the package, tests, benchmarks and build script."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    # ruff is in the test extra; a missing ruff is a broken install, not a reason to skip.
    ruff = shutil.which("ruff") or [sys.executable, "-m", "ruff"]
    cmd = ([ruff] if isinstance(ruff, str) else ruff) + ["check", "--no-cache", "gridcore", "tests", "benchmarks",
                                                          "python", "setup.py"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
