"""How the gradient and the Gauss-Newton product scale: sweeps over N (50, 200,
400), M (50, 2000) and T (100, 2000) around the paper's size, every backend on
2 threads; the paper's point itself comes from ``test_kernels.py``.

The flops grow as M T N^2 (docs/math.md section 5), so a kernel whose time
follows that count is running at a constant rate; the report plots time
against each axis on log-log scales.
"""

import pytest
from harness import PAPER, Size, run_kernel

from gridcore.backends import BACKEND_NAMES

SIZES = ([Size(n, PAPER.m, PAPER.t) for n in (50, 200, 400)]
         + [Size(PAPER.n, m, PAPER.t) for m in (50, 2000)]
         + [Size(PAPER.n, PAPER.m, t) for t in (100, 2000)])


@pytest.mark.parametrize("name", BACKEND_NAMES)
@pytest.mark.parametrize("kernel", ["gradient", "gn_product"])
def test_sweep(benchmark, kernel, name, problem):
    # Fewer rounds above the paper's size: the NumPy reference takes seconds there.
    rounds = 5 if problem.size.flop_unit <= PAPER.flop_unit else 3
    run_kernel(benchmark, problem, kernel, name, threads=2, rounds=rounds)
