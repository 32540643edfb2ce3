"""The benchmark suites still run: every benchmark once, at a tiny size, as a test."""

import os
import subprocess
import sys

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def test_benchmark_suites_run_once(tmp_path):
    # Outside the source tree, so the installed package is the one benchmarked.
    proc = subprocess.run([sys.executable, "-m", "pytest", BENCHMARKS, "--benchmark-disable", "-q",
                           "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout
