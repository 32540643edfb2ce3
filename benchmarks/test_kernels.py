"""Every kernel of every backend at the paper's size (N=100, M=500, T=500,
Nin = Nout = 2, float64), on 1 and 2 threads.

Forward, streaming forward (no states kept), gradient, gradient with the
per-trial squares HF's preconditioner needs, and the Gauss-Newton product;
each result is checked against the NumPy reference. One group per kernel, so
the table shows the backends' and thread counts' ratios. For the NumPy
reference, ``threads`` caps its BLAS threads, and the C and Numba cores get
one BLAS thread, as in training (``gridcore.backends.blas_threads``; recorded as
``blas_threads``). The command that runs every suite and writes
the report is in ``docs/performance.md``.
"""

import pytest
from harness import PAPER, run_kernel

from gridcore.backends import BACKEND_NAMES

SIZES = [PAPER]
KERNELS = ("forward", "forward_stream", "gradient", "gradient_sq", "gn_product")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", BACKEND_NAMES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel(benchmark, kernel, name, threads, problem):
    run_kernel(benchmark, problem, kernel, name, threads, rounds=7)
