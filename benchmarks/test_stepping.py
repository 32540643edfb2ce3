"""The stepping API at the paper's size (N = 100, Nin = Nout = 2, tanh, alpha = 0.1):
time per call of one Euler step of B = 1, 100 and 1000 agents, as agent
simulators call it once per simulated step.

- ``c_call``: ``lib.grc_step`` called straight through cffi with prepared
  pointers: the C step plus cffi's call overhead (a few hundred ns), an
  upper bound on the C time per call;
- ``stepper``: ``gridcore.Stepper.step`` on the C core: the Python
  overhead on top (argument checks, the copy of y);
- ``stepper_numpy``: the NumPy fallback (the reference's forward pass, one
  step per call).

``extra_info["gflops"]`` counts the step's products, 2 B N (N + Nout) flops,
to compare with the batched forward pass of ``test_kernels.py``. Every
result is checked against the reference's forward pass first. One thread:
the stepper splits agents over threads only in blocks of 32.
"""

import numpy as np
import pytest

from gridcore import init_params
from gridcore.backends import reference
from gridcore.sim.stepper import C_MISSING, Stepper

N, N_IN = 100, 2
AGENTS = [1, 100, 1000]
KINDS = ["c_call", "stepper", "stepper_numpy"]


def _flops(n_agents):
    return 2.0 * n_agents * N * (N + 2)


def _c_call(params, inputs, stepper):
    """A closure calling ``grc_step`` on a C stepper of its own, from ``stepper``'s state."""
    from gridcore.backends.c.backend import model_struct
    from gridcore.backends.c.ccore import ffi, lib

    n_agents = len(inputs)
    shape = {"n_units": N, "n_in": N_IN, "n_out": 2, "n_trials": n_agents, "n_steps": 1, "n_code": 0}
    out = ffi.new("grc_stepper **")
    assert lib.grc_stepper_create(shape, model_struct(stepper.spec), ffi.from_buffer("double[]", params.flat),
                                  1, lib.GRC_ISA_AUTO, out) == 0
    handle = ffi.gc(out[0], lib.grc_stepper_destroy)
    x, u, y = (np.array(np.atleast_2d(a)) for a in (stepper.x, stepper.u, stepper.y))
    ptrs = [ffi.from_buffer("double[]", a) for a in (inputs, x, u, y)]
    noise = ffi.new("grc_noise *")[0]

    def call():
        return lib.grc_step(handle, n_agents, ptrs[0], noise, *ptrs[1:])
    return call


@pytest.mark.parametrize("n_agents", AGENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_step(benchmark, kind, n_agents):
    if kind != "stepper_numpy" and C_MISSING:
        pytest.skip(C_MISSING)
    params = init_params(N, N_IN, seed=0)
    params = params.with_flat(params.flat + 0.05 * np.random.default_rng(1).standard_normal(params.flat.size))
    rng = np.random.default_rng(2)
    inputs = np.ascontiguousarray(0.1 * rng.standard_normal((n_agents, N_IN)))
    stepper = Stepper(params, backend="numpy" if kind == "stepper_numpy" else "c")
    stepper.reset(n_agents=n_agents)
    want = reference.forward(params, np.repeat(inputs[:, None], 2, axis=1)).y[:, 1]
    assert np.allclose(stepper.step(inputs), want, rtol=0, atol=1e-12)
    if kind == "c_call":
        call = _c_call(params, inputs, stepper)
    else:
        def call():
            return stepper.step(inputs)
    benchmark.extra_info.update(n_agents=n_agents, n_units=N, kind=kind)
    benchmark(call)
    if benchmark.stats is not None:
        benchmark.extra_info["gflops"] = _flops(n_agents) / benchmark.stats.stats.median / 1e9
