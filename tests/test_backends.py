"""Every backend in the registry against the NumPy reference, and their shared contract."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from problems import SPECS, random_problem, spec_id

from gridcore import Batch, ModelSpec, Regularization
from gridcore.backends import BACKEND_NAMES, available_backends, get_backend, reference

FAST = [name for name in BACKEND_NAMES if name != "numpy"]
# (N, Nin, M, T): M below and not divisible by the thread count, odd sizes, the paper's N.
SIZES = [(6, 2, 1, 5), (17, 3, 5, 23), (40, 2, 8, 50), (100, 2, 3, 12), (9, 1, 2, 1)]


def assert_close(got, want, rtol=1e-10):
    """Norm-wise relative agreement (elementwise rtol is meaningless for entries near 0)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    scale = max(np.max(np.abs(want)), 1e-300)
    assert np.max(np.abs(got - want)) <= rtol * scale, np.max(np.abs(got - want)) / scale


def test_every_registered_backend_loads():
    # A backend that fails to build must fail the suite, not vanish from it.
    assert available_backends() == ["c", "numba", "numpy"]


def test_unknown_backend_lists_the_names():
    with pytest.raises(ValueError, match="'numpy', 'numba', 'c'"):
        get_backend("cuda")


def test_auto_picks_the_fastest_available():
    assert get_backend("auto").name == available_backends()[0]


def test_auto_says_why_it_passed_over_the_c_core(monkeypatch, caplog):
    from gridcore import backends
    loaders = dict(backends._LOADERS)
    loaders["c"] = ("gridcore._no_such_module",) + loaders["c"][1:]
    monkeypatch.setattr(backends, "_LOADERS", loaders)
    with caplog.at_level("INFO", logger="gridcore.backends"):
        assert get_backend("auto").name == "numba"
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "'c' is not available" in warned[0] and "pip install -e ." in warned[0]


@pytest.fixture(params=FAST)
def fast(request):
    return get_backend(request.param, threads=2)


def check_equals_reference(fast, spec, sizes, noise):
    """Forward, loss, gradient (with per-trial squares) and GN product of ``fast`` against the reference."""
    n, n_in, m, t = sizes
    params, batch, reg = random_problem(n, n_in, None, m, t, seed=n + t, noise=noise, spec=spec)
    want = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    got = fast.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    for key in ("u", "y", "x_end"):
        assert_close(getattr(got, key), getattr(want, key))
    want_terms, want_g, want_sq = reference.gradient(params, batch, reg, spec=spec, sq_grad=True)
    terms, g, sq = fast.gradient(params, batch, reg, spec=spec, sq_grad=True)
    assert_close(g, want_g)
    assert_close(sq, want_sq)
    for key in want_terms:
        assert terms[key] == pytest.approx(want_terms[key], rel=1e-12)
        assert fast.loss(params, batch, reg, spec=spec)[key] == pytest.approx(want_terms[key], rel=1e-12)
    v = np.random.default_rng(n).standard_normal(params.flat.size)
    for mu in (0.0, 0.3):
        assert_close(fast.gn_product(params, batch, got, v, reg, mu=mu, spec=spec),
                     reference.gn_product(params, batch, want, v, reg, mu=mu, spec=spec))
    # gradient's alternative return shape
    assert_close(fast.gradient(params, batch, reg, spec=spec)[1], want_g)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("noise", [True, False])
def test_equals_reference(fast, sizes, noise):
    check_equals_reference(fast, SPECS[0], sizes, noise)


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
@pytest.mark.parametrize("sizes", [SIZES[1], SIZES[4]])
def test_every_spec_equals_reference(fast, spec, sizes):
    check_equals_reference(fast, spec, sizes, noise=True)


# The positive-control model of Sorscher et al. at a small size: many place cells
# (more outputs than units, not a multiple of a vector width), ReLU, x_0 = Wenc c.
GRID_SPEC = ModelSpec(alpha=1.0, nonlinearity="relu", readout="place-cells", initial_state="encoded",
                      n_place_cells=37)


@pytest.mark.parametrize("sizes", [SIZES[1], SIZES[2]])
def test_many_place_cells_equal_reference(fast, sizes):
    check_equals_reference(fast, GRID_SPEC, sizes, noise=True)


def test_spec_changes_the_result(fast):
    # Guard: the spec reaches the kernels (another alpha, other numbers).
    params, batch, reg = random_problem(seed=8)
    a, b = (fast.gradient(params, batch, reg, spec=ModelSpec(alpha=al))[1] for al in (0.1, 0.5))
    assert np.max(np.abs(a - b)) > 1e-3 * np.max(np.abs(a))


def test_initial_state_is_honoured(fast):
    params, batch, _ = random_problem(seed=4, n_steps=9)
    x0 = np.random.default_rng(1).standard_normal((batch.n_trials, params.n_units))
    assert_close(fast.forward(params, batch.inputs, batch.noise, x0=x0).y,
                 reference.forward(params, batch.inputs, batch.noise, x0=x0).y)


@pytest.mark.parametrize("keep_u", [False, True])
def test_streaming_equals_stored_forward(fast, keep_u):
    params, batch, _ = random_problem(n_units=20, n_trials=3, n_steps=3000, seed=6)
    x0 = np.full((3, 20), 0.1)
    want = reference.forward(params, batch.inputs, batch.noise, x0=x0)
    got = fast.forward_stream(params, batch.inputs, batch.noise, x0=x0, keep_u=keep_u)
    assert_close(got.y, want.y)
    assert_close(got.x_end, want.x_end)
    if keep_u:
        assert_close(got.u, want.u)
    else:
        assert got.u is None


@pytest.mark.parametrize("backend", ["numpy"] + FAST)
def test_streaming_starts_from_the_encoded_state(backend):
    params, batch, _ = random_problem(n_units=20, n_trials=3, n_steps=300, seed=6, spec=GRID_SPEC)
    want = reference.forward(params, batch.inputs, batch.noise, spec=GRID_SPEC, start_codes=batch.start_codes)
    got = get_backend(backend, threads=2).forward_stream(params, batch.inputs, batch.noise, spec=GRID_SPEC,
                                                          keep_u=True, chunk_steps=128,
                                                          start_codes=batch.start_codes)
    for key in ("u", "y", "x_end"):
        assert_close(getattr(got, key), getattr(want, key))


@pytest.mark.parametrize("spec", [ModelSpec(), GRID_SPEC], ids=spec_id)
def test_repeated_runs_are_bit_identical(fast, spec):
    params, batch, reg = random_problem(n_units=50, n_trials=7, n_steps=40, seed=2, spec=spec)
    st = fast.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    v = np.random.default_rng(0).standard_normal(params.flat.size)

    def run():
        return (fast.gradient(params, batch, reg, sq_grad=True, spec=spec),
                fast.gn_product(params, batch, st, v, reg, mu=0.2, spec=spec))

    first = run()
    for _ in range(3):
        again = run()
        assert again[0][0] == first[0][0]
        np.testing.assert_array_equal(again[0][1], first[0][1])
        np.testing.assert_array_equal(again[0][2], first[0][2])
        np.testing.assert_array_equal(again[1], first[1])


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("spec", [ModelSpec(), GRID_SPEC], ids=spec_id)
def test_one_and_two_threads_agree(name, spec):
    params, batch, reg = random_problem(n_units=30, n_trials=9, n_steps=25, seed=3, spec=spec)
    one, two = get_backend(name, threads=1), get_backend(name, threads=2)
    assert_close(one.gradient(params, batch, reg, spec=spec)[1], two.gradient(params, batch, reg, spec=spec)[1],
                 rtol=1e-12)
    st = one.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    v = params.flat[::-1].copy()
    assert_close(one.gn_product(params, batch, st, v, reg, spec=spec),
                 two.gn_product(params, batch, st, v, reg, spec=spec), rtol=1e-12)


def test_thread_pool_calls_match_serial(fast):
    # The fast cores release the GIL; concurrent calls must not share scratch memory.
    problems = [random_problem(n_units=25, n_trials=6, n_steps=30, seed=s) for s in range(6)]
    serial = [fast.gradient(p, b, r)[1] for p, b, r in problems]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda pbr: fast.gradient(*pbr)[1], problems))
    for s, t in zip(serial, threaded):
        np.testing.assert_array_equal(s, t)


class TestBadInput:
    """The same clear errors from every backend, before any kernel runs."""

    @pytest.fixture(params=BACKEND_NAMES)
    def backend(self, request):
        return get_backend(request.param, threads=1)

    def setup_method(self):
        self.params, self.batch, self.reg = random_problem()

    def test_wrong_input_width(self, backend):
        with pytest.raises(ValueError, match="inputs"):
            backend.forward(self.params, np.zeros((2, 3, 5)))

    def test_nan_noise(self, backend):
        noise = np.zeros((2, 3, 6))
        noise[0, 0, 0] = np.nan
        with pytest.raises(ValueError, match="noise contains NaN"):
            backend.forward(self.params, np.zeros((2, 3, 2)), noise)

    def test_x0_shape(self, backend):
        with pytest.raises(ValueError, match="x0 must have shape"):
            backend.forward(self.params, np.zeros((2, 3, 2)), x0=np.zeros((3, 6)))

    def test_batch_that_does_not_fit(self, backend):
        batch = Batch(np.zeros((2, 3, 3)), np.zeros((2, 3, 2)))
        with pytest.raises(ValueError, match="batch.inputs must have last axis 2"):
            backend.gradient(self.params, batch, self.reg)

    def test_reg_type(self, backend):
        with pytest.raises(TypeError, match="reg must be a gridcore.Regularization"):
            backend.loss(self.params, self.batch, (0.1, 0.1))

    def test_vector_with_nan(self, backend):
        st = backend.forward(self.params, self.batch.inputs, self.batch.noise)
        v = np.zeros(self.params.flat.size)
        v[3] = np.inf
        with pytest.raises(ValueError, match="v contains NaN"):
            backend.gn_product(self.params, self.batch, st, v, self.reg)

    def test_negative_mu(self, backend):
        st = backend.forward(self.params, self.batch.inputs, self.batch.noise)
        with pytest.raises(ValueError, match="mu must be finite and >= 0"):
            backend.gn_product(self.params, self.batch, st, self.params.flat, self.reg, mu=-1)

    def test_bad_spec(self, backend):
        with pytest.raises(ValueError, match="alpha"):
            backend.gradient(self.params, self.batch, self.reg, spec=ModelSpec(alpha=float("nan")))
        with pytest.raises(TypeError, match="spec must be a gridcore.ModelSpec"):
            backend.gradient(self.params, self.batch, self.reg, spec=0.1)

    def test_empty_batch_dimensions(self, backend):
        with pytest.raises(ValueError, match="inputs"):
            backend.forward(self.params, np.zeros((0, 3, 2)))

    def test_regularization_values(self):
        with pytest.raises(ValueError, match="lam_l2"):
            Regularization(float("nan"), 0.0)


@pytest.mark.parametrize("name", ["numpy"] + FAST)
@pytest.mark.parametrize("field", ["u", "y"])
def test_gn_product_refuses_a_non_finite_state(name, field):
    params, batch, reg = random_problem(spec=GRID_SPEC)
    be = get_backend(name)
    state = be.forward(params, batch.inputs, batch.noise, spec=GRID_SPEC, start_codes=batch.start_codes)
    getattr(state, field)[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="state.u or state.y contains NaN or infinite"):
        be.gn_product(params, batch, state, np.ones(params.flat.size), reg, 0.1, spec=GRID_SPEC)
