"""The benchmarks build their problems with the tests' generator (tests/problems.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
