"""What the benchmark modules share: sizes, flop counts, problems and their
reference results, the environment recorded with every result, and the one
way a call is timed.

Every result carries in ``extra_info`` what the report needs to place it
(``kernel``, ``backend``, ``threads``, ``n``, ``m``, ``t``, ``gflop``) and
what it depends on (OpenMP, instruction set, CPU, BLAS and its environment).
"""

import functools
import os
from dataclasses import dataclass

import numpy as np
import pytest
from idle import wait_for_idle
from problems import random_problem

from gridcore.backends import blas_limits, blas_threads, get_backend, reference
from gridcore.cli.info import collect
from gridcore.model.spec import PAPER as PAPER_SPEC
from gridcore.model.spec import ModelSpec

N_IN = 2                   # inputs of the timed networks (speed and heading; velocity for the grid model)
MU = 0.1                   # structural damping weight of the timed GN products
# float32 results against the reference, relative to the largest entry: seen 1e-6 at paper size,
# 4e-5 (gradient) and 8e-5 (GN product) at the positive control's (N = Np = 512, sums over M T = 1e4 steps)
RTOL_FLOAT32 = 2e-4
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS")

# Leading-order flops in units of F, one per-step product over the batch
# (docs/math.md section 5): each kernel makes as many products with Wout as
# with Wrec, which only matters when Nout is of the order of N.
PRODUCTS = {"forward": 1, "forward_stream": 1, "gradient": 3, "gradient_sq": 3, "gn_product": 4}


def grid_spec(n_place_cells):
    """The positive-control model of Sorscher et al.: discrete ReLU RNN, place-cell readout, x_0 = Wenc c."""
    return ModelSpec(alpha=1.0, nonlinearity="relu", readout="place-cells", initial_state="encoded",
                     n_place_cells=n_place_cells)


@dataclass(frozen=True)
class Size:
    """Network and batch size: N units, M trials, T steps, and the model (the paper's by default)."""

    n: int
    m: int
    t: int
    spec: ModelSpec = PAPER_SPEC

    @property
    def model(self):
        """"paper" or "grid" (the positive control, :func:`grid_spec`): the results' model label."""
        return "paper" if self.spec == PAPER_SPEC else "grid"

    def __str__(self):
        if self.model == "paper":
            return f"N={self.n} M={self.m} T={self.t}"
        return f"grid-model N={self.n} Np={self.spec.n_place_cells} M={self.m} T={self.t}"

    @property
    def flop_unit(self):
        """F = 2 M T N (N + Nout'): one per-step (M x N)(N x N) product over the batch, plus, for
        the place-cell readout (Nout' = Nout), the (M x N)(N x Nout) one; the paper's 2 outputs
        are left out (2% there)."""
        n_out = self.spec.n_out if self.spec.readout == "place-cells" else 0
        return 2.0 * self.m * self.t * self.n * (self.n + n_out)

    def shrunk(self):
        """The smoke-test stand-in: every axis cut (N/10, M/50, T/50, Np/10), sweeps stay distinct."""
        spec = self.spec
        if spec.n_place_cells:
            spec = grid_spec(max(2, spec.n_place_cells // 10))
        return Size(max(2, self.n // 10), max(2, self.m // 50), max(2, self.t // 50), spec)


PAPER = Size(100, 500, 500)
# The positive control's size (issue 18): N = Np = 512, M = 200, T = 50, no noise.
GRID = Size(512, 200, 50, grid_spec(512))


def gflop(kernel, size):
    return PRODUCTS[kernel] * size.flop_unit / 1e9


def quick(config):
    """Tiny sizes when benchmarks are off (each runs once, as a smoke test) or
    when ``GRIDCORE_BENCH_QUICK=1``."""
    disabled = config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")
    return disabled or os.environ.get("GRIDCORE_BENCH_QUICK", "") not in ("", "0")


@functools.cache
def machine():
    """CPU, BLAS as loaded, and the environment variables that change threading or BLAS."""
    info = collect()
    # The loaded OpenBLAS and its core type; its thread count at the first call would mislead.
    blas = [s.split(", ")[0] for s in info["numpy_blas"]["loaded_openblas"]]
    return {"cpu": info["cpu"]["model"], "numpy_blas": blas,
            **{k: os.environ.get(k) for k in ENV_VARS}}


class Problem:
    """Random parameters, batch, regularisation, forward state and GN direction
    of one size, with the reference's results computed once, on demand."""

    def __init__(self, size, seed=0):
        self.size = size
        self.spec = spec = size.spec
        # The paper's model with its noise; the positive control, like Sorscher et al.'s, without.
        self.params, self.batch, self.reg = random_problem(size.n, N_IN, None, size.m, size.t, seed=seed,
                                                           noise=size.model == "paper", spec=spec)
        self.state = reference.forward(self.params, self.batch.inputs, self.batch.noise, spec=spec,
                                       start_codes=self.batch.start_codes)
        self.v = np.random.default_rng(seed + 1).standard_normal(self.params.flat.size)
        self._expected = {}
        self._states = {np.dtype(np.float64): self.state}

    def state_for(self, backend):
        """The forward state a GN product of ``backend`` takes: the reference's, or for a
        float32 core its own forward pass's (made once, untimed). The reference module has no dtype."""
        dtype = getattr(backend, "dtype", np.dtype(np.float64))
        if dtype not in self._states:
            b = self.batch
            self._states[dtype] = backend.forward(self.params, b.inputs, b.noise, spec=self.spec,
                                                  start_codes=b.start_codes)
        return self._states[dtype]

    def call(self, backend, kernel):
        """A zero-argument call of ``kernel`` and how to pick the checked array from its result."""
        p, b, reg, spec, codes = self.params, self.batch, self.reg, self.spec, self.batch.start_codes
        if kernel == "forward":
            return lambda: backend.forward(p, b.inputs, b.noise, spec=spec, start_codes=codes), lambda r: r.y
        if kernel == "forward_stream":
            # Chunks of 100 steps: the reference streams; the fast cores never hold the states.
            return (lambda: backend.forward_stream(p, b.inputs, b.noise, chunk_steps=100, spec=spec,
                                                   start_codes=codes),
                    lambda r: r.y)
        if kernel == "gradient":
            return lambda: backend.gradient(p, b, reg, spec=spec), lambda r: r[1]
        if kernel == "gradient_sq":
            return lambda: backend.gradient(p, b, reg, spec=spec, sq_grad=True), lambda r: r[2]
        if kernel == "gn_product":
            state = self.state_for(backend)
            return lambda: backend.gn_product(p, b, state, self.v, reg, mu=MU, spec=spec), lambda r: r
        raise ValueError(f"unknown kernel {kernel!r}")

    def expected(self, kernel):
        """The reference's result of ``kernel`` (the checked array)."""
        if kernel not in self._expected:
            if kernel in ("forward", "forward_stream"):
                self._expected[kernel] = self.state.y
            else:
                fn, pick = self.call(reference, kernel)
                self._expected[kernel] = pick(fn())
        return self._expected[kernel]

    def check(self, kernel, got, rtol=1e-10):
        assert_close(got, self.expected(kernel), rtol)


def assert_close(got, want, rtol):
    """Equal to ``rtol`` of the largest entry: kernels differ from the reference by round-off."""
    err = np.max(np.abs(got - want))
    assert err <= rtol * np.max(np.abs(want)), f"max error {err:.3g} vs max entry {np.max(np.abs(want)):.3g}"


def load_backend(name, threads, dtype="float64"):
    """A backend of the registry, or a skip when it is not built here."""
    try:
        return get_backend(name, threads=threads, dtype=dtype)
    except ImportError as err:
        pytest.skip(str(err))


def blas_limit(backend):
    """NumPy's BLAS threads as in training (:func:`gridcore.backends.blas_limits`).

    Returns the context and the BLAS thread count to record.
    """
    return blas_limits(backend), blas_threads(backend) or "default"


def size_info(kernel, size):
    """The ``extra_info`` that places a result: model, N, M, T (Np for the grid model), GFLOP."""
    info = {"model": size.model, "n": size.n, "m": size.m, "t": size.t, "gflop": gflop(kernel, size)}
    if size.model != "paper":
        info["n_place_cells"] = size.spec.n_place_cells
    return info


def record(benchmark, group, **info):
    """Set the group and ``extra_info``: what places the result and what it depends on."""
    benchmark.group = group
    benchmark.extra_info.update(**info, **machine())


def backend_info(backend):
    """How a fast core runs: OpenMP and instruction set (C), threading layer (Numba)."""
    info = backend.info() if hasattr(backend, "info") else {}
    return {k: info.get(k) for k in ("openmp", "isa", "threading_layer")}


def settle():
    """Untimed, before every round: wait for idle CPUs if GRIDCORE_BENCH_WAIT_IDLE=1."""
    wait_for_idle(window=0.25)


def time_call(benchmark, fn, rounds, warmup=1, setup=None):
    """Time ``fn`` with ``pedantic``: one call per round, warm-up rounds untimed
    (JIT compilation), :func:`settle` before every round. ``setup`` (optional)
    returns ``fn``'s positional arguments, made fresh for every round."""
    def prepare():
        settle()
        return (setup() if setup else ()), {}
    return benchmark.pedantic(fn, setup=prepare, rounds=rounds, warmup_rounds=warmup, iterations=1)


def run_kernel(benchmark, problem, kernel, name, threads, rounds, dtype="float64"):
    """Time one kernel of one backend on ``problem``, then check it against the reference
    (float32: to RTOL_FLOAT32)."""
    backend = load_backend(name, threads, dtype)
    fn, pick = problem.call(backend, kernel)
    limit, blas = blas_limit(backend)
    size = problem.size
    record(benchmark, f"{kernel} {size}", kernel=kernel, backend=name, threads=threads, dtype=dtype,
           blas_threads=blas, **size_info(kernel, size), **backend_info(backend))
    with limit:
        result = time_call(benchmark, fn, rounds)
    problem.check(kernel, pick(result), 1e-10 if dtype == "float64" else RTOL_FLOAT32)
