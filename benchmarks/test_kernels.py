"""Kernel benchmarks at the paper's size (N=100, Nin=2, Nout=2, M=500, T=500, float64).

Every backend of the registry, threads 1 and 2, for forward, gradient,
gradient with squared per-trial gradients, and the Gauss-Newton product;
plus NumPy's own matrix product on the per-step shape (500x100)@(100x100),
the yardstick for GFLOP/s. Run (benchmarks are off in the default test run)::

    OPENBLAS_CORETYPE=Haswell python -m pytest benchmarks/test_kernels.py \
        --benchmark-enable --benchmark-group-by=group \
        --benchmark-columns=median,iqr,rounds --benchmark-json=bench.json

GFLOP/s count the N x N matrix products only: F = 2 M T N^2 per product over
the batch; forward = 1 F, gradient = 3 F (forward, backward, weight sums),
GN product = 4 F (two in the R-op forward pass). ``extra_info`` records
threads, OpenMP, instruction set and the BLAS environment with each result.
On a shared machine set ``GRIDCORE_BENCH_WAIT_IDLE=1``: every round then
waits, untimed, for idle CPUs first (see ``benchmarks/idle.py``).
For the NumPy reference, ``threads`` caps its BLAS threads when threadpoolctl
is installed (recorded as ``blas_threads``); otherwise BLAS uses its default.
"""

import contextlib
import os

import numpy as np
import pytest

from gridcore import reference
from gridcore.backends import BACKEND_NAMES, get_backend
from idle import wait_for_idle
from problems import random_problem

N, NIN, NOUT, M, T = 100, 2, 2, 500, 500
F = 2.0 * M * T * N * N
PRODUCTS = {"forward": 1, "gradient": 3, "gradient_sq": 3, "gn_product": 4}
ROUNDS, WARMUP = 7, 1

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None


def environment():
    """The BLAS/OpenMP environment a result depends on."""
    return {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
                                           "OMP_NUM_THREADS")}


@pytest.fixture(scope="module")
def problem():
    params, batch, reg = random_problem(N, NIN, NOUT, M, T, seed=0)
    state = reference.forward(params, batch.inputs, batch.noise)
    v = np.random.default_rng(1).standard_normal(params.flat.size)
    return params, batch, reg, state, v


@pytest.fixture(scope="module")
def expected(problem):
    """Reference results, computed once, to check every timed result against."""
    params, batch, reg, state, v = problem
    _, grad, sq = reference.gradient(params, batch, reg, sq_grad=True)
    return {"forward": state.y, "gradient": grad, "gradient_sq": sq,
            "gn_product": reference.gn_product(params, batch, state, v, reg, mu=0.1)}


def call(backend, kernel, problem):
    """A zero-argument call of one kernel and how to pick the checked array from its result."""
    params, batch, reg, state, v = problem
    if kernel == "forward":
        return lambda: backend.forward(params, batch.inputs, batch.noise), lambda r: r.y
    if kernel == "gradient":
        return lambda: backend.gradient(params, batch, reg), lambda r: r[1]
    if kernel == "gradient_sq":
        return lambda: backend.gradient(params, batch, reg, sq_grad=True), lambda r: r[2]
    return lambda: backend.gn_product(params, batch, state, v, reg, mu=0.1), lambda r: r


def settle():
    """Untimed, before every round: wait for idle CPUs if GRIDCORE_BENCH_WAIT_IDLE=1."""
    wait_for_idle(window=0.5)


def blas_limit(name, threads):
    if name != "numpy" or threadpool_limits is None:
        return contextlib.nullcontext(), "default"
    return threadpool_limits(limits=threads, user_api="blas"), threads


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", BACKEND_NAMES)
@pytest.mark.parametrize("kernel", list(PRODUCTS))
def test_kernel(benchmark, kernel, name, threads, problem, expected):
    try:
        backend = get_backend(name, threads=threads)
    except ImportError as err:
        pytest.skip(str(err))
    fn, pick = call(backend, kernel, problem)
    limit, blas_threads = blas_limit(name, threads)
    benchmark.group = f"{kernel} N={N} M={M} T={T}"
    info = backend.info() if hasattr(backend, "info") else {}
    benchmark.extra_info.update(
        backend=name, threads=threads, blas_threads=blas_threads,
        openmp=info.get("openmp"), isa=info.get("isa"), gflop=PRODUCTS[kernel] * F / 1e9,
        **environment())
    with limit:
        result = benchmark.pedantic(fn, setup=settle, rounds=ROUNDS, warmup_rounds=WARMUP,
                                    iterations=1)
    benchmark.extra_info["gflop_per_s"] = PRODUCTS[kernel] * F / 1e9 / benchmark.stats.stats.median
    want = expected[kernel]
    got = pick(result)
    assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want))


@pytest.mark.parametrize("threads", [1, 2])
def test_numpy_matmul(benchmark, threads):
    """NumPy's (M x N) @ (N x N) product: the per-step shape of every kernel."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, N)), rng.standard_normal((N, N))
    out = np.empty((M, N))
    reps = 200

    def run():
        for _ in range(reps):
            np.matmul(a, b, out=out)
        return out

    limit, blas_threads = blas_limit("numpy", threads)
    benchmark.group = f"matmul ({M}x{N})@({N}x{N}) x{reps}"
    benchmark.extra_info.update(backend="numpy", threads=threads, blas_threads=blas_threads,
                                gflop=2.0 * M * N * N * reps / 1e9, **environment())
    with limit:
        result = benchmark.pedantic(run, setup=settle, rounds=20, warmup_rounds=2, iterations=1)
    benchmark.extra_info["gflop_per_s"] = 2.0 * M * N * N * reps / 1e9 / benchmark.stats.stats.median
    np.testing.assert_allclose(result, a @ b, rtol=1e-12, atol=1e-12)
