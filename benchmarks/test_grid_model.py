"""The positive-control model (``harness.GRID``): Sorscher et al.'s discrete ReLU
RNN with a softmax readout over 512 place cells and an encoded initial state,
N = 512, M = 200, T = 50, no noise, float64.

Forward, gradient and Gauss-Newton product of every backend on 1 and 2
threads and of PyTorch on the same model (``peers.TorchPeer``) in the same
groups, so the table shows the ratios; and the C core's gradient and GN
product on the paper's tanh model at its size, so that the GFLOP/s of the two
models come from one run. Each result is checked against the NumPy
reference. ``benchmarks/report.py`` turns them into the positive-control
section of ``docs/performance.md``.
"""

import pytest
from harness import GRID, PAPER, Problem, quick, record, run_kernel, size_info, time_call
from peers import make_peer

from gridcore.backends import BACKEND_NAMES

# PyTorch's own modules warn on import; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

SIZES = [GRID]
KERNELS = ("forward", "gradient", "gn_product")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", BACKEND_NAMES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_grid_kernel(benchmark, kernel, name, threads, problem):
    run_kernel(benchmark, problem, kernel, name, threads, rounds=5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kernel", KERNELS)
def test_grid_torch(benchmark, kernel, threads, problem):
    torch = pytest.importorskip("torch")
    small = Problem(problem.size.shrunk(), seed=3)
    small.check(kernel, getattr(make_peer("torch", small, threads), kernel)())   # same maths first
    impl = make_peer("torch", problem, threads)
    size = problem.size
    record(benchmark, f"{kernel} {size}", kernel=kernel, backend="torch", threads=threads,
           **size_info(kernel, size), version=torch.__version__)
    problem.check(kernel, time_call(benchmark, getattr(impl, kernel), rounds=5, warmup=1))


@pytest.fixture(scope="module")
def paper_problem(request):
    return Problem(PAPER.shrunk() if quick(request.config) else PAPER)


@pytest.mark.parametrize("kernel", ("gradient", "gn_product"))
def test_paper_model_rate(benchmark, kernel, paper_problem):
    # The tanh model's rate on the same run: the positive control's target is measured against it.
    run_kernel(benchmark, paper_problem, kernel, "c", 2, rounds=5)
