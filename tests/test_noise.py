"""Counter-based noise (docs/math.md section 8): the same bits in every core,
the statistics of a standard normal, global counters, and checked arguments."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from problems import SPECS, random_problem, spec_id

from gridcore import Batch, CounterNoise
from gridcore.backends import BACKEND_NAMES, get_backend, reference
from gridcore.model import noise as nz

CSRC = Path(__file__).resolve().parents[1] / "csrc"
FAST = [name for name in BACKEND_NAMES if name != "numpy"]


def _counter_problem(spec=None, seed=0, **kw):
    """random_problem with its noise array replaced by counter-based noise."""
    params, batch, reg = random_problem(spec=spec, seed=seed, noise=False, **kw)
    cn = CounterNoise(seed=1234 + seed, std=0.5, trial0=3, step0=11)
    return params, dataclasses.replace(batch, noise=cn), reg


def test_table_makes_exact_products_and_unit_variance():
    q, d = nz.TABLE_Q, nz.TABLE_D
    assert q.shape == d.shape == (1 << nz.TABLE_BITS,)
    for v in (q, d):            # 32 significant bits: D f (20 bits) is exact, so FMA changes nothing
        m, _ = np.frexp(v)
        assert np.array_equal(m * 2.0**nz.SIG_BITS, np.round(m * 2.0**nz.SIG_BITS))
    assert np.all(d > 0) and q[0] == pytest.approx(-(q[-1] + d[-1]), rel=1e-9)     # symmetric ends
    k = float(1 << nz.FRAC_BITS)   # exact moments of z = Q_j + D_j f, f uniform on k/2**20
    ef, ef2 = (k - 1) / (2 * k), (k - 1) * (2 * k - 1) / (6 * k * k)
    mean = np.mean(q + d * ef)
    var = np.mean(q * q + 2 * q * d * ef + d * d * ef2) - mean**2
    assert abs(mean) < 1e-8 and abs(var - 1.0) < 1e-6


def test_c_table_is_the_python_table():
    text = (CSRC / "grc_normal_table.h").read_text()
    assert text == nz.c_header(), "regenerate: python -m gridcore.model.noise > csrc/grc_normal_table.h"
    q, d = (np.array([float.fromhex(x) for x in re.findall(r"-?0x[0-9a-f.]+p[-+]\d+", block)])
            for block in text.split("grc__normal_d"))
    assert np.array_equal(q, nz.TABLE_Q) and np.array_equal(d, nz.TABLE_D)


def test_draws_look_standard_normal_and_independent():
    a = CounterNoise(seed=2024, std=1.0).array(400, 50, 100)
    z = a.ravel()
    assert abs(z.mean()) < 0.003 and abs(z.var() - 1.0) < 0.003          # 2 million draws
    assert abs(np.mean(z**4) - 3.0) < 0.03 and abs(np.mean(z**3)) < 0.01
    assert np.abs(z).max() < 3.993
    for axis in range(3):           # neighbouring trials, steps and units are uncorrelated
        x, y = np.moveaxis(a, axis, 0)[:-1].ravel(), np.moveaxis(a, axis, 0)[1:].ravel()
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.005
    other = CounterNoise(seed=2025, std=1.0).array(400, 50, 100)
    assert abs(np.corrcoef(z, other.ravel())[0, 1]) < 0.005
    assert np.array_equal(CounterNoise(seed=2024, std=2.0).array(3, 4, 5), 2.0 * a[:3, :4, :5])


def test_counters_are_global():
    whole = CounterNoise(7, 0.3).array(8, 12, 5)
    part = CounterNoise(7, 0.3, trial0=2, step0=5).array(4, 3, 5)
    assert np.array_equal(part, whole[2:6, 5:8])
    assert np.array_equal(CounterNoise(7, 0.3).shifted(5).array(8, 3, 5), whole[:, 5:8])


def test_c_fill_is_bit_identical():
    c = pytest.importorskip("gridcore.backends.c.ccore")
    cn = CounterNoise(2**64 - 5, 0.7, trial0=9, step0=2**40)
    out = np.empty((5, 6, 37))
    shape = {"n_units": 37, "n_in": 1, "n_out": 1, "n_trials": 5, "n_steps": 6, "n_code": 0}
    rc = c.lib.grc_noise_fill({"xi": c.ffi.NULL, "std": cn.std, "seed": cn.seed, "trial0": cn.trial0,
                               "step0": cn.step0}, shape, c.ffi.cast("double *", out.ctypes.data))
    assert rc == 0 and np.array_equal(out, cn.array(5, 6, 37))


def test_c_noise_arguments_are_checked():
    c = pytest.importorskip("gridcore.backends.c.ccore")
    out = np.empty(4)
    shape = {"n_units": 2, "n_in": 1, "n_out": 1, "n_trials": 1, "n_steps": 2, "n_code": 0}
    good = {"xi": c.ffi.NULL, "std": 1.0, "seed": 1, "trial0": 0, "step0": 0}
    fill = lambda z: c.lib.grc_noise_fill(z, shape, c.ffi.cast("double *", out.ctypes.data))  # noqa: E731
    assert fill(good) == 0
    for bad in ({"std": -1.0}, {"std": float("nan")}, {"std": float("inf")}, {"trial0": -1}, {"step0": -1},
                {"xi": c.ffi.cast("double *", out.ctypes.data)}):
        assert fill({**good, **bad}) == c.lib.GRC_ENOISE, bad
    assert "noise.std" in c.ffi.string(c.lib.grc_strerror(c.lib.GRC_ENOISE)).decode()


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_forward_equals_the_materialised_array(name):
    be = get_backend(name, threads=2) if name != "numpy" else get_backend(name)
    params, batch, _ = _counter_problem(n_units=13, n_trials=5, n_steps=9)
    arr = batch.noise.array(5, 9, 13)
    got, want = be.forward(params, batch.inputs, batch.noise), be.forward(params, batch.inputs, arr)
    if name == "c":     # C may fuse std z into the sum (one rounding fewer): round-off
        np.testing.assert_allclose(got.u, want.u, rtol=0, atol=1e-13)
    else:               # the same operations on the same bits
        assert np.array_equal(got.u, want.u) and np.array_equal(got.y, want.y)
    assert not np.allclose(got.u, be.forward(params, batch.inputs).u)     # the noise does something


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
@pytest.mark.parametrize("name", FAST)
def test_loss_and_gradient_match_the_reference(name, spec):
    params, batch, reg = _counter_problem(spec=spec, seed=3)
    be = get_backend(name, threads=2)
    terms, grad = be.gradient(params, batch, reg, spec)
    want_terms, want = reference.gradient(params, batch, reg, spec)
    np.testing.assert_allclose(grad, want, rtol=0, atol=1e-10 * np.abs(want).max())
    assert be.loss(params, batch, reg, spec)["loss"] == pytest.approx(want_terms["loss"], rel=1e-12)


@pytest.mark.parametrize("name", FAST)
def test_thread_counts_and_sub_batches_see_the_same_noise(name):
    params, batch, reg = _counter_problem(n_units=9, n_trials=7, n_steps=6)
    one, two = (get_backend(name, threads=k).forward(params, batch.inputs, batch.noise) for k in (1, 2))
    np.testing.assert_allclose(one.u, two.u, rtol=0, atol=1e-13)
    sub = batch.subset(3)       # the curvature sub-batch: the first trials, their own noise
    assert sub.noise == batch.noise
    part = get_backend(name, threads=2).forward(params, sub.inputs, sub.noise)
    np.testing.assert_allclose(part.u, two.u[:3], rtol=0, atol=1e-13)


def test_streaming_in_chunks_continues_the_noise():
    params, batch, _ = _counter_problem(n_units=8, n_trials=4, n_steps=23)
    whole = reference.forward(params, batch.inputs, batch.noise)
    chunked = reference.forward_stream(params, batch.inputs, batch.noise, keep_u=True, chunk_steps=5)
    assert np.array_equal(chunked.u, whole.u) and np.array_equal(chunked.x_end, whole.x_end)


def test_zero_std_is_no_noise():
    params, batch, _ = _counter_problem()
    quiet = dataclasses.replace(batch, noise=CounterNoise(5, 0.0))
    assert quiet.noise is None
    assert np.array_equal(reference.forward(params, batch.inputs, CounterNoise(5, 0.0)).u,
                          reference.forward(params, batch.inputs).u)


@pytest.mark.parametrize("kw, match", [
    ({"seed": -1, "std": 1.0}, r"CounterNoise.seed must be an integer in \[0, "),
    ({"seed": 2**64, "std": 1.0}, "CounterNoise.seed"),
    ({"seed": 1.5, "std": 1.0}, "CounterNoise.seed"),
    ({"seed": True, "std": 1.0}, "CounterNoise.seed"),
    ({"seed": 1, "std": -0.1}, "CounterNoise.std"),
    ({"seed": 1, "std": float("nan")}, "CounterNoise.std"),
    ({"seed": 1, "std": 1.0, "step0": -2}, "CounterNoise.step0"),
    ({"seed": 1, "std": 1.0, "trial0": 2**63}, "CounterNoise.trial0"),
])
def test_bad_arguments_name_themselves(kw, match):
    with pytest.raises(ValueError, match=match):
        CounterNoise(**kw)


def test_batch_takes_counter_noise_of_any_width():
    params, batch, _ = random_problem(noise=False)
    b = Batch(batch.inputs, batch.targets, CounterNoise(1, 0.2))
    assert isinstance(b.noise, CounterNoise)
    with pytest.raises(TypeError, match="noise must hold real numbers"):
        Batch(batch.inputs, batch.targets, "loud")
