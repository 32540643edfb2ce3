"""The float32 kernels of the C and Numba cores against the float64 NumPy reference.

float32 rounds each operation to a relative 6e-8, so the kernels agree with
the reference to about 1e-6 of the largest entry on these small problems
(T <= 50): the tolerance RTOL leaves a margin of 10 over what was seen, and
a wrong term (a missing noise, a dropped Wout product) is off by far more.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from problems import SPECS, random_problem, spec_id

from gridcore import Batch, CounterNoise
from gridcore.backends import get_backend, reference
from gridcore.backends.c.backend import CBackend, noise_struct
from gridcore.backends.c.ccore import ffi, lib
from gridcore.backends.numba.backend import NumbaBackend

CORES = ("c", "numba")
RTOL = 1e-5
# (N, Nin, M, T): odd sizes, M not a multiple of the thread count; the paper's N.
SIZES = [(17, 3, 5, 23), (100, 2, 3, 12)]


def assert_close(got, want, rtol=RTOL):
    """Norm-wise relative agreement with the float64 reference."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want)
    assert got.shape == want.shape
    err = np.max(np.abs(got - want))
    assert err <= rtol * np.max(np.abs(want)), err / np.max(np.abs(want))


@pytest.fixture(params=CORES)
def core(request):
    return get_backend(request.param, threads=2, dtype="float32")


def check_against_reference(core, spec, sizes, noise=True, seed=0):
    n, n_in, m, t = sizes
    params, batch, reg = random_problem(n, n_in, None, m, t, seed=seed + n, noise=noise, spec=spec)
    if noise == "counter":
        batch = Batch(batch.inputs, batch.targets, CounterNoise(seed=7, std=0.5), batch.start_codes)
    want = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    got = core.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    for key in ("u", "y", "x_end"):
        assert getattr(got, key).dtype == np.float32
        assert_close(getattr(got, key), getattr(want, key))
    want_terms, want_g, want_sq = reference.gradient(params, batch, reg, spec=spec, sq_grad=True)
    terms, g, sq = core.gradient(params, batch, reg, spec=spec, sq_grad=True)
    assert g.dtype == sq.dtype == np.float64
    assert_close(g, want_g)
    assert_close(sq, want_sq)
    assert_close(core.gradient(params, batch, reg, spec=spec)[1], want_g)
    loss = core.loss(params, batch, reg, spec=spec)
    for key in want_terms:
        assert terms[key] == pytest.approx(want_terms[key], rel=RTOL)
        assert loss[key] == pytest.approx(want_terms[key], rel=RTOL)
    v = np.random.default_rng(n).standard_normal(params.flat.size)
    for mu in (0.0, 0.3):
        gv = core.gn_product(params, batch, got, v, reg, mu=mu, spec=spec)
        assert gv.dtype == np.float64
        assert_close(gv, reference.gn_product(params, batch, want, v, reg, mu=mu, spec=spec))


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_spec_equals_reference(core, spec):
    check_against_reference(core, spec, SIZES[0])


@pytest.mark.parametrize("sizes", SIZES, ids=str)
@pytest.mark.parametrize("noise", [True, False, "counter"], ids=["array", "none", "counter"])
def test_paper_model_equals_reference(core, sizes, noise):
    check_against_reference(core, SPECS[0], sizes, noise)


def test_counter_noise_is_the_float64_noise_rounded(core):
    # In-kernel noise is computed in float64 and rounded: the same bits as passing
    # the float64 array of the same noise (which the backend rounds at its boundary).
    params, batch, _ = random_problem(17, 3, None, 5, 23, seed=2)
    noise = CounterNoise(seed=11, std=0.4, trial0=3, step0=5)
    a = core.forward(params, batch.inputs, noise)
    b = core.forward(params, batch.inputs, noise.array(5, 23, 17))
    np.testing.assert_array_equal(a.u, b.u)
    np.testing.assert_array_equal(a.x_end, b.x_end)


def test_float32_differs_from_float64(core):
    # Guard: the float32 kernels ran, not the float64 ones (whose error is ~1e-15).
    params, batch, reg = random_problem(17, 3, None, 5, 23, seed=5)
    g64 = get_backend(core.name, threads=2).gradient(params, batch, reg)[1]
    g32 = core.gradient(params, batch, reg)[1]
    err = np.max(np.abs(g32 - g64)) / np.max(np.abs(g64))
    assert 1e-9 < err < RTOL


def run_all(backend, params, batch, reg, v, spec):
    state = backend.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    terms, g, sq = backend.gradient(params, batch, reg, spec=spec, sq_grad=True)
    gv = backend.gn_product(params, batch, state, v, reg, mu=0.2, spec=spec)
    return [state.u, state.y, g, sq, gv, np.array(list(terms.values()))]


@pytest.mark.parametrize("name", CORES)
@pytest.mark.parametrize("spec", [SPECS[0], SPECS[-1]], ids=spec_id)
def test_deterministic_for_a_thread_count(name, spec):
    params, batch, reg = random_problem(40, 2, None, 9, 30, seed=3, spec=spec)
    v = np.random.default_rng(1).standard_normal(params.flat.size)
    runs = {threads: [run_all(get_backend(name, threads=threads, dtype="float32"), params, batch, reg, v, spec)
                      for _ in range(2)] for threads in (1, 2)}
    for first, again in runs.values():
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)                 # same thread count: same bits
    for a, b in zip(runs[1][0], runs[2][0]):
        assert_close(a, b)                                      # other counts: round-off


@pytest.mark.parametrize("name", CORES)
def test_thread_pool_equals_serial(name):
    backend = get_backend(name, threads=2, dtype="float32")
    problems = [random_problem(17, 3, None, 5, 23, seed=s) for s in range(4)]
    serial = [backend.gradient(*p)[1] for p in problems]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda p: backend.gradient(*p)[1], problems))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["c", "numba", "numpy", "auto"])
@pytest.mark.parametrize("bad", ["float16", "double32", None, 32, np.int32])
def test_unknown_dtype_names_the_allowed(name, bad):
    with pytest.raises(ValueError, match=r"dtype must be one of 'float64', 'float32'"):
        get_backend(name, dtype=bad)


@pytest.mark.parametrize("dtype", ["float32", np.float32])
def test_reference_refuses_float32(dtype):
    with pytest.raises(ValueError, match="'float64' for the NumPy reference.*'c' and 'numba'"):
        get_backend("numpy", dtype=dtype)


@pytest.mark.parametrize("cls", [CBackend, NumbaBackend])
def test_dtype_is_accepted_in_any_spelling(cls):
    for spelling in ("float32", np.float32, np.dtype("float32")):
        assert cls(threads=1, dtype=spelling).dtype == np.float32
    assert cls(threads=1).dtype == np.float64


def test_gn_product_refuses_a_state_of_the_other_dtype(core):
    params, batch, reg = random_problem(seed=1)
    v = np.zeros(params.flat.size)
    state64 = reference.forward(params, batch.inputs, batch.noise)
    with pytest.raises(ValueError, match="float32 .from a backend of that dtype"):
        core.gn_product(params, batch, state64, v, reg)
    state32 = core.forward(params, batch.inputs, batch.noise)
    with pytest.raises(ValueError, match="float64 .from a backend of that dtype"):
        get_backend(core.name, threads=1).gn_product(params, batch, state32, v, reg)


def test_batch_arrays_are_cast_once():
    _, batch, _ = random_problem(seed=3)
    assert batch.arrays(np.float64) == (batch.inputs, batch.targets, batch.noise, batch.start_codes)
    first = batch.arrays(np.float32)
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in first[:3])
    assert first[3] is None
    assert all(a is b for a, b in zip(first[:3], batch.arrays("float32")))
    np.testing.assert_array_equal(first[0], batch.inputs.astype(np.float32))


def test_c_f32_entry_points_check_their_arrays():
    # The float32 ABI checks the float arrays as the float64 one does (gridcore.h).
    params, batch, reg = random_problem(seed=4)
    ws = ffi.new("grc_workspace **")
    assert lib.grc_workspace_create(1, lib.GRC_ISA_AUTO, ws) == lib.GRC_OK
    ws = ffi.gc(ws[0], lib.grc_workspace_destroy)
    n, n_in, n_out = params.shape
    shape = {"n_units": n, "n_in": n_in, "n_out": n_out, "n_trials": batch.n_trials,
             "n_steps": batch.n_steps, "n_code": 0}
    model = {"alpha": 0.1, "nonlinearity": 0, "readout": 0, "initial_state": 0}
    inputs, targets, xi, _ = batch.arrays(np.float32)
    terms, grad = ffi.new("double[5]"), np.empty(params.flat.size)

    def call(inputs, noise):
        return lib.grc_gradient_f32(ws, shape, model, ffi.from_buffer("double[]", params.flat),
                                    ffi.from_buffer("float[]", inputs), ffi.from_buffer("float[]", targets),
                                    noise, ffi.NULL, {"lam_l2": 0.1, "lam_fr": 0.1, "lam_rec": 0.0},
                                    terms, ffi.from_buffer("double[]", grad), ffi.NULL)

    assert call(inputs, noise_struct(xi)) == lib.GRC_OK
    bad = inputs.copy()
    bad[1, 2, 0] = np.nan
    assert call(bad, noise_struct(xi)) == lib.GRC_ENONFINITE
    both = dict(noise_struct(xi), std=0.5)
    assert call(inputs, both) == lib.GRC_ENOISE


@pytest.mark.parametrize("optimizer", ["hf", "adam"])
def test_training_runs_in_float32(tmp_path, optimizer):
    # --dtype reaches the run's backend: a few iterations of a small run lower the loss, and
    # config.json records the dtype (runs written before it load as float64, test_training.py).
    from gridcore.cli.train import main
    out = tmp_path / optimizer
    assert main(["--out", str(out), "--preset", "quick", "--optimizer", optimizer, "--backend", "c",
                 "--threads", "2", "--dtype", "float32", "--n-units", "20", "--n-trials", "40",
                 "--curvature-trials", "20", "--n-steps", "30", "--iterations", "6", "--eval-every", "0",
                 "--checkpoint-every", "0", "--snapshot-at", "0", "--quiet"]) == 0
    assert json.load(open(out / "config.json"))["dtype"] == "float32"
    log = [json.loads(line) for line in open(out / "log.jsonl")]
    assert log[-1]["loss"] < log[0]["loss"]
    assert np.isfinite(json.load(open(out / "final_metrics.json"))["nerr_heldout"])
