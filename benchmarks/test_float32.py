"""float64 against float32: the C and Numba cores' gradient and Gauss-Newton
product at the paper's size (N=100, M=500, T=500, tanh, noise) and at the
positive-control size (``harness.GRID``: N = Np = 512, M = 200, T = 50, ReLU,
place cells, encoded initial state), on 1 and 2 threads, in one run.

Both dtypes of a kernel, backend and size share a group, so the table shows
their ratio; ``benchmarks/report.py`` turns them into the float32 section of
``docs/performance.md``. float32 results are checked against the float64
NumPy reference to ``harness.RTOL_FLOAT32`` of the largest entry, the GN
product from the float32 core's own forward state.
"""

import pytest
from harness import GRID, PAPER, run_kernel

SIZES = [PAPER, GRID]
KERNELS = ("gradient", "gn_product")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["c", "numba"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_dtype(benchmark, kernel, name, dtype, threads, problem):
    run_kernel(benchmark, problem, kernel, name, threads, rounds=5, dtype=dtype)
