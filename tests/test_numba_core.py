"""What is specific to the Numba core: compiled signatures, the on-disk cache, threads, the helpers.

Equality with the reference, determinism and bad-input errors are in the
shared contract, ``tests/test_backends.py``.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from numba import njit
from problems import SPECS, random_problem

from gridcore import ModelSpec
from gridcore.backends import get_backend
from gridcore.backends.numba import kernels as nk
from gridcore.backends.numba.backend import NumbaBackend

KERNELS = ("forward_kernel", "loss_kernel", "gradient_kernel", "gn_kernel")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_compiled_signature_per_kernel(dtype):
    # Every kind of input the wrappers accept must reach the kernels as the same types: one
    # signature per kernel and dtype (a float32 backend compiles its own).
    be = NumbaBackend(threads=1, dtype=dtype)
    params, batch, reg = random_problem(n_trials=3, n_steps=4, seed=1)
    _, no_noise, _ = random_problem(n_trials=3, n_steps=4, seed=1, noise=False)
    read_only = batch.inputs.copy()
    read_only.flags.writeable = False
    for inputs, noise, x0 in [
        (batch.inputs, batch.noise, None),
        (np.asfortranarray(batch.inputs), None, np.ones((3, 6), dtype=np.float32)),
        (np.zeros((3, 4, 2), dtype=np.int64), batch.noise[:, :, :].tolist(), np.zeros((3, 6))),
        (read_only, None, None),
    ]:
        be.forward(params, inputs, noise, x0=x0, spec=ModelSpec(alpha=np.float32(0.5)))
        be.forward_stream(params, inputs, noise, x0=x0, keep_u=True)
        be.forward_stream(params, inputs, noise, x0=x0, spec=ModelSpec(alpha=1))
    for b in (batch, no_noise):
        st = be.forward(params, b.inputs, b.noise)
        be.loss(params, b, reg)
        be.gradient(params, b, reg)
        be.gradient(params, b, reg, sq_grad=True, spec=ModelSpec(alpha=np.float64(0.2)))
        be.gn_product(params, b, st, np.arange(params.flat.size), reg, mu=1)
        be.gn_product(params, b, st, params.flat.astype(np.float32), reg, mu=np.float32(0.5))
    # Every model variant too: the readout and the initial state reach the kernels as codes and arrays.
    for spec in SPECS:
        params, batch, reg = random_problem(n_trials=3, n_steps=4, seed=2, spec=spec)
        st = be.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
        be.loss(params, batch, reg, spec=spec)
        be.gradient(params, batch, reg, spec=spec, sq_grad=True)
        be.gn_product(params, batch, st, params.flat, reg, mu=0.5, spec=spec)
    for name in KERNELS:
        ours = [sig for sig in getattr(nk, name).signatures if sig[0].dtype == numba.from_dtype(be.dtype)]
        assert len(ours) == 1, name


_CHILD = """
import json, numpy as np
from gridcore.backends.numba import kernels as nk
from gridcore import Batch, Params, Regularization
from gridcore.backends.numba.backend import NumbaBackend
rng = np.random.default_rng(0)
params = Params(rng.standard_normal((4, 4)), rng.standard_normal((4, 2)), np.zeros(4),
                rng.standard_normal((2, 4)))
batch = Batch(rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2)))
be, reg = NumbaBackend(threads=1), Regularization(0.1, 0.1)
st = be.forward(params, batch.inputs)
be.loss(params, batch, reg)
be.gradient(params, batch, reg)
be.gn_product(params, batch, st, params.flat, reg)
print(json.dumps({k: [sum(getattr(nk, k).stats.cache_hits.values()),
                      sum(getattr(nk, k).stats.cache_misses.values())] for k in %r}))
""" % (KERNELS,)


def test_second_process_loads_the_kernels_from_the_cache():
    # The first child compiles and writes the cache unless an earlier process did;
    # the second must only load.
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _CHILD], cwd=REPO, capture_output=True, text=True,
                             check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[1] == {name: [1, 0] for name in KERNELS}, runs


@pytest.mark.parametrize("threads", [0, -1, numba.config.NUMBA_NUM_THREADS + 1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(threads):
    with pytest.raises(ValueError, match=r"threads must be an integer in 1\.\.\d+ \(NUMBA_NUM_THREADS"):
        get_backend("numba", threads=threads)


def test_default_threads_is_numbas_thread_count():
    assert NumbaBackend().threads == numba.config.NUMBA_NUM_THREADS


def test_calls_leave_the_callers_numba_thread_count_alone():
    be = NumbaBackend(threads=1)
    params, batch, _ = random_problem()
    before = numba.get_num_threads()
    be.forward(params, batch.inputs)
    assert numba.get_num_threads() == before


def test_backends_with_different_thread_counts_in_one_pool():
    # numba.set_num_threads is per Python thread, so concurrent calls keep their own count.
    params, batch, reg = random_problem(n_units=20, n_trials=7, n_steps=15, seed=5)
    backends = [NumbaBackend(threads=1), NumbaBackend(threads=2)] * 3
    serial = [be.gradient(params, batch, reg)[1] for be in backends[:2]]
    with ThreadPoolExecutor(max_workers=6) as pool:
        threaded = list(pool.map(lambda be: be.gradient(params, batch, reg)[1], backends))
    for i, g in enumerate(threaded):
        np.testing.assert_array_equal(g, serial[i % 2])


def test_loss_terms_are_the_gradients_terms_bit_for_bit():
    # HF compares losses from both calls (the reduction ratio): they must not differ by round-off.
    params, batch, reg = random_problem(n_units=30, n_trials=5, n_steps=20, seed=7)
    be = NumbaBackend(threads=2)
    assert be.loss(params, batch, reg) == be.gradient(params, batch, reg)[0]
    assert be.gradient(params, batch, reg)[0] == be.gradient(params, batch, reg, sq_grad=True)[0]


def test_forward_state_has_no_activations():
    params, batch, _ = random_problem()
    assert NumbaBackend(threads=1).forward(params, batch.inputs).x is None


def test_chunk_steps_is_validated():
    params, batch, _ = random_problem()
    with pytest.raises(ValueError, match="chunk_steps must be a positive integer"):
        NumbaBackend(threads=1).forward_stream(params, batch.inputs, chunk_steps=0)


@njit
def _tanh_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = nk._tanh(x[i])
    return out


def test_tanh_within_two_ulp_of_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(10 ** 5) * 3, np.linspace(-25, 25, 10 ** 5),
                        rng.standard_normal(10 ** 4) * 1e-8,
                        [0.0, -0.0, 0.625, -0.625, np.nextafter(0.625, 0), 5e-324, 19.0, 20.0, 700.0,
                         -700.0]])
    got, want = _tanh_array(x), np.tanh(x)
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)))


@pytest.mark.parametrize("rows, k, cols", [(4, 1, 8), (8, 3, 16), (12, 13, 24), (4, 0, 8), (8, 150, 40)])
@pytest.mark.parametrize("transpose_a", [False, True])
def test_matmul(rows, k, cols, transpose_a):
    # Wider and taller left factors than used: the kernels pass zero-padded buffers.
    rng = np.random.default_rng(rows + k)
    a = rng.standard_normal((k + 2, rows + 3) if transpose_a else (rows + 3, k + 2))
    b, c0 = rng.standard_normal((k, cols)), rng.standard_normal((rows, cols))
    want = (a[:k, :rows].T if transpose_a else a[:rows, :k]) @ b
    c = c0.copy()
    nk._matmul(a, b, c, transpose_a, False)
    np.testing.assert_allclose(c, want, rtol=1e-13, atol=1e-13)
    c = c0.copy()
    nk._matmul(a, b, c, transpose_a, True)
    np.testing.assert_allclose(c, c0 + want, rtol=1e-13, atol=1e-13)


def test_wenc_block_and_its_per_trial_squares():
    # The wrapper's Wenc block from the kernels' g_0, with a regulariser share r on it (none today):
    # sum_m g_m c_m' + r and mean_m (M g_m c_m' + r)**2, against the (M, N, Nc) array it avoids.
    from gridcore.backends.numba.backend import _with_wenc
    rng = np.random.default_rng(3)
    m, n, nc = 5, 4, 3
    gx0, codes, head, head_sq = (rng.standard_normal(s) for s in ((m, n), (m, nc), 7, 7))
    for r in (np.zeros(n * nc), rng.standard_normal(n * nc)):
        per_trial = m * np.einsum("mi,mk->mik", gx0, codes).reshape(m, -1) + r
        out, sq = _with_wenc(head, gx0, codes, r, head_sq)
        np.testing.assert_array_equal(out[:7], head)
        np.testing.assert_array_equal(sq[:7], head_sq)
        np.testing.assert_allclose(out[7:], per_trial.sum(axis=0) / m, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(sq[7:], np.mean(per_trial ** 2, axis=0), rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(_with_wenc(head, gx0, codes, r), out)


def test_place_cell_loss_is_stable_for_large_logits():
    # lse subtracts the largest logit: logits of order 1e3 give finite terms, gradients and GN products
    # equal to the reference's.
    from gridcore.backends import reference
    spec = [s for s in SPECS if s.readout == "place-cells" and s.initial_state == "encoded"][0]
    params, batch, reg = random_problem(n_units=8, n_trials=4, n_steps=6, seed=9, spec=spec)
    flat = params.flat.copy()
    flat[params.layout["Wout"].offset:params.layout["Wout"].stop] *= 3000.0
    params = params.with_flat(flat)
    be = NumbaBackend(threads=2)
    st = be.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    assert np.max(np.abs(st.y)) > 700  # exp would overflow without the shift
    terms, g, sq = be.gradient(params, batch, reg, spec=spec, sq_grad=True)
    want_terms, want_g, want_sq = reference.gradient(params, batch, reg, spec=spec, sq_grad=True)
    assert np.isfinite(terms["E"]) and terms["E"] == pytest.approx(want_terms["E"], rel=1e-12)
    for got, want in ((g, want_g), (sq, want_sq)):
        assert np.all(np.isfinite(got))
        assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want))
    v = np.random.default_rng(0).standard_normal(params.flat.size)
    gv = be.gn_product(params, batch, st, v, reg, mu=0.1, spec=spec)
    want_gv = reference.gn_product(params, batch, st, v, reg, mu=0.1, spec=spec)
    assert np.max(np.abs(gv - want_gv)) <= 1e-10 * np.max(np.abs(want_gv))
