"""The stepping API: ``gridcore.Stepper`` (C core and NumPy) and the C functions
``grc_stepper_*``/``grc_step`` against the reference's forward pass, every model spec."""

import numpy as np
import pytest
from problems import SPECS, random_problem, spec_id

from gridcore import CounterNoise, ModelSpec, PlaceCells, Stepper, init_params
from gridcore.backends import reference
from gridcore.sim.stepper import C_MISSING

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(bool(C_MISSING), reason=str(C_MISSING)))]
T = 9


def _walk(stepper, batch, noise):
    """Outputs y_0..y_T of the stepper along the batch's inputs, (M, T+1, Nout)."""
    ys = [stepper.reset(n_agents=batch.n_trials, codes=batch.start_codes)]
    for t in range(batch.n_steps):
        ys.append(stepper.step(batch.inputs[:, t], xi=None if noise is None else noise[:, t]))
    return np.stack(ys, axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_steps_equal_the_forward_pass(spec, backend):
    params, batch, _ = random_problem(n_units=37, n_trials=5, n_steps=T, spec=spec)
    want = reference.forward(params, batch.inputs, noise=batch.noise, spec=spec, start_codes=batch.start_codes)
    stepper = Stepper(params, spec, backend=backend)
    ys = _walk(stepper, batch, batch.noise)
    np.testing.assert_allclose(ys[:, :T], want.y, rtol=0, atol=1e-13)
    np.testing.assert_allclose(stepper.x, want.x_end, rtol=0, atol=1e-13)
    u_end, y_end = stepper.outputs(want.x_end)
    np.testing.assert_allclose(stepper.u, u_end, rtol=0, atol=1e-13)
    np.testing.assert_allclose(ys[:, T], y_end, rtol=0, atol=1e-13)
    assert stepper.t == T and stepper.backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_counter_noise_continues_the_forward_pass(backend):
    params, batch, _ = random_problem(n_units=20, n_trials=4, n_steps=T, noise=False)
    noise = CounterNoise(seed=7, std=0.3, trial0=3)
    want = reference.forward(params, batch.inputs, noise=noise).y
    stepper = Stepper(params, noise=noise, backend=backend)
    np.testing.assert_allclose(_walk(stepper, batch, None)[:, :T], want, rtol=0, atol=1e-13)


@pytest.mark.skipif(bool(C_MISSING), reason=str(C_MISSING))
def test_agents_do_not_depend_on_batch_or_threads():
    # 70 agents: three blocks of up to 32, over 2 partitions; each agent's row alone gives the same bits
    params, batch, _ = random_problem(n_units=30, n_trials=70, n_steps=3, noise=False)
    many = Stepper(params, backend="c", threads=2)
    many.reset(n_agents=70)
    one = Stepper(params, backend="c")
    one.reset()
    for t in range(3):
        y = many.step(batch.inputs[:, t])
        assert np.array_equal(one.step(batch.inputs[41, t]), y[41])
    assert np.array_equal(one.x, many.x[41])


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_agent_and_start_positions(backend):
    spec = ModelSpec(readout="place-cells", initial_state="encoded", n_place_cells=9)
    cells = PlaceCells("square", n_cells=9, sigma=0.4)
    params = init_params(12, 2, seed=0, spec=spec)
    stepper = Stepper(params, spec, place_cells=cells, backend=backend)
    y0 = stepper.reset(start=[0.2, -0.3])
    assert y0.shape == (9,) and stepper.x.shape == (12,)
    np.testing.assert_allclose(stepper.x, params.Wenc @ cells.encode([0.2, -0.3]), atol=1e-14)
    assert stepper.step([0.1, 0.5]).shape == (9,)
    assert stepper.position.shape == (2,)
    ys = stepper.reset(start=[[0.2, -0.3], [0.0, 0.0]])
    np.testing.assert_allclose(ys[0], y0, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_names_the_argument(backend):
    params = init_params(8, 2, seed=0)
    stepper = Stepper(params, backend=backend)
    with pytest.raises(RuntimeError, match="reset"):
        stepper.step([0.0, 0.0])
    with pytest.raises(ValueError, match="start"):
        stepper.reset(start=[0.5, 0.5])                 # x_0 = 0 assumes the centre
    stepper.reset(n_agents=3)
    with pytest.raises(ValueError, match="inputs"):
        stepper.step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="inputs contains NaN"):
        stepper.step(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="xi"):
        stepper.step(np.zeros((3, 2)), xi=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="backend"):
        Stepper(params, backend="gpu")
    with pytest.raises(TypeError, match="noise"):
        Stepper(params, noise=np.zeros(3))
    encoded = ModelSpec(initial_state="encoded", n_place_cells=4)
    stepper = Stepper(init_params(8, 2, seed=0, spec=encoded), encoded, backend=backend)
    with pytest.raises(ValueError, match="place_cells"):
        stepper.reset(start=[0.0, 0.0])
    with pytest.raises(ValueError, match="codes"):
        stepper.reset(codes=np.ones((2, 3)))


@pytest.mark.skipif(bool(C_MISSING), reason=str(C_MISSING))
def test_c_status_codes():
    from gridcore.backends.c.backend import model_struct
    from gridcore.backends.c.ccore import ffi, lib

    params = init_params(8, 2, seed=0)
    shape = {"n_units": 8, "n_in": 2, "n_out": 2, "n_trials": 2, "n_steps": 1, "n_code": 0}
    out = ffi.new("grc_stepper **")
    theta = params.flat.copy()
    model = model_struct(ModelSpec())
    assert lib.grc_stepper_create(shape, model, ffi.NULL, 1, 0, out) == lib.GRC_ENULL
    assert lib.grc_stepper_create(dict(shape, n_out=3), model, ffi.from_buffer("double[]", theta), 1, 0,
                                  out) == lib.GRC_ESHAPE
    assert lib.grc_stepper_create(shape, model, ffi.from_buffer("double[]", theta), -1, 0, out) == lib.GRC_ETHREADS
    theta[5] = np.inf
    assert lib.grc_stepper_create(shape, model, ffi.from_buffer("double[]", theta), 1, 0, out) == lib.GRC_ENONFINITE
    assert out[0] == ffi.NULL
    assert lib.grc_stepper_create(shape, model, ffi.from_buffer("double[]", params.flat), 1, 0, out) == 0
    st = ffi.gc(out[0], lib.grc_stepper_destroy)
    x, u, y, inputs = np.zeros((2, 8)), np.zeros((2, 8)), np.zeros((2, 2)), np.zeros((2, 2))
    p = [ffi.from_buffer("double[]", a) for a in (inputs, x, u, y)]
    none = ffi.new("grc_noise *")[0]
    assert lib.grc_step(st, 2, *p[:1], none, *p[1:]) == 0
    assert lib.grc_step(st, 3, *p[:1], none, *p[1:]) == lib.GRC_ESHAPE        # above the capacity
    assert lib.grc_step(st, 0, *p[:1], none, *p[1:]) == lib.GRC_ESHAPE
    assert lib.grc_step(st, 2, ffi.NULL, none, *p[1:]) == lib.GRC_ENULL
    bad = ffi.new("grc_noise *", {"std": -1.0})[0]
    assert lib.grc_step(st, 2, *p[:1], bad, *p[1:]) == lib.GRC_ENOISE
    x[1, 3] = np.nan
    assert lib.grc_step(st, 2, *p[:1], none, *p[1:]) == lib.GRC_ENONFINITE
    assert lib.grc_stepper_outputs(st, 2, p[1], p[2], p[3]) == lib.GRC_ENONFINITE
    assert lib.grc_stepper_start(st, 2, ffi.NULL, *p[1:]) == 0 and not x.any()
