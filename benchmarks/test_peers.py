"""Optional peers: the same forward pass, gradient and Gauss-Newton product in
PyTorch and JAX (``benchmarks/peers.py``), at the paper's size, in the same
groups as gridcore's kernels (``test_kernels.py``) so the table shows the
ratios (the positive-control model's are in ``test_grid_model.py``).
Skipped when the library is not installed; never a dependency.

PyTorch runs on 1 and 2 intra-op threads (``torch.set_num_threads``). JAX
fixes its thread pool at start-up, so it runs on 2 threads only, pinned by
``XLA_FLAGS`` (:func:`peers.jax_flags`) unless JAX was imported first or
``XLA_FLAGS`` is set; the flags in force are recorded with each result.
Before timing, each peer is checked against the NumPy reference on a small
problem; after timing, the timed result is checked too.
"""

import pytest
from harness import PAPER, Problem, record, size_info, time_call
from peers import make_peer

# PyTorch's own modules warn on import; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

SIZES = [PAPER]
CASES = [("torch", 1), ("torch", 2), ("jax", 2)]
KERNELS = ("forward", "gradient", "gn_product")


@pytest.fixture(scope="module")
def small(size):
    return Problem(size.shrunk(), seed=3)


@pytest.fixture(scope="module")
def peer(request, problem, small):
    name, threads = request.param
    pytest.importorskip(name)
    for kernel in KERNELS:                    # the peer computes what the reference does
        small.check(kernel, getattr(make_peer(name, small, threads), kernel)())
    return name, threads, make_peer(name, problem, threads)


@pytest.mark.parametrize("peer", CASES, ids=[f"{n}-{t}" for n, t in CASES], indirect=True)
@pytest.mark.parametrize("kernel", KERNELS)
def test_peer(benchmark, kernel, peer, problem):
    name, threads, impl = peer
    version = __import__(name).__version__
    size = problem.size
    record(benchmark, f"{kernel} {size}", kernel=kernel, backend=name, threads=threads,
           **size_info(kernel, size), version=version, **({"xla_flags": impl.flags} if name == "jax" else {}))
    result = time_call(benchmark, getattr(impl, kernel), rounds=7, warmup=2)
    problem.check(kernel, result)
