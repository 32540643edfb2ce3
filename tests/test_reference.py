"""The NumPy reference against first principles: finite differences and explicit Jacobians."""

import numpy as np
import pytest
from problems import SPECS, random_problem, spec_id

from gridcore import Batch, Regularization
from gridcore.backends import reference


def fd_gradient(f, theta, h=1e-6):
    """Central finite differences of a scalar function of a flat vector."""
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


def fd_jacobian(f, theta, h=1e-6):
    """Central finite-difference Jacobian of a vector function, shape (len(f), len(theta))."""
    cols = []
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        cols.append((f(theta + e) - f(theta - e)) / (2 * h))
    return np.stack(cols, axis=1)


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


# The rate functions written out independently of gridcore.model.nonlinearity:
# a new nonlinearity needs its entry here before its tests can pass.
PHI = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_forward_follows_the_euler_equation(spec):
    params, batch, _ = random_problem(n_units=5, n_steps=6, spec=spec)
    st = reference.forward(params, batch.inputs, batch.noise, spec=spec)
    phi, a = PHI[spec.nonlinearity], spec.alpha
    assert np.all(st.x[:, 0] == 0) and np.all(st.y[:, 0] == 0)
    for t in range(5):
        want = (1 - a) * st.x[:, t] + a * (
            phi(st.x[:, t]) @ params.Wrec.T + batch.inputs[:, t] @ params.Win.T
            + params.b + batch.noise[:, t])
        np.testing.assert_allclose(st.x[:, t + 1], want, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(st.u, phi(st.x), rtol=1e-15)
    np.testing.assert_allclose(st.y, st.u @ params.Wout.T, rtol=1e-14)


def test_forward_in_chunks_equals_one_pass():
    params, batch, _ = random_problem(n_steps=12)
    whole = reference.forward(params, batch.inputs, batch.noise)
    first = reference.forward(params, batch.inputs[:, :5], batch.noise[:, :5])
    rest = reference.forward(params, batch.inputs[:, 5:], batch.noise[:, 5:], x0=first.x_end)
    np.testing.assert_allclose(np.concatenate([first.y, rest.y], axis=1), whole.y, rtol=1e-13)
    np.testing.assert_allclose(rest.x_end, whole.x_end, rtol=1e-13)


def test_loss_terms_match_their_definitions():
    params, batch, reg = random_problem(n_units=4, n_trials=2, n_steps=5)
    st = reference.forward(params, batch.inputs, batch.noise)
    terms = reference.loss(params, batch, reg)
    m, t, n = st.u.shape
    e = sum((st.y[i, k, j] - batch.targets[i, k, j]) ** 2
            for i in range(m) for k in range(t) for j in range(2)) / (m * t * 2)
    r_l2 = (params.Win ** 2).sum() / (n * 2) + (params.Wout ** 2).sum() / (n * 2)
    r_fr = (st.u ** 2).sum() / (n * t * m)
    assert terms["E"] == pytest.approx(e, rel=1e-13)
    assert terms["R_L2"] == pytest.approx(r_l2, rel=1e-13)
    assert terms["R_FR"] == pytest.approx(r_fr, rel=1e-13)
    assert terms["loss"] == pytest.approx(e + 0.3 * r_l2 + 0.2 * r_fr, rel=1e-13)


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
@pytest.mark.parametrize("sizes", [(3, 2, 2, 4), (6, 2, 3, 7), (8, 3, 4, 9), (5, 1, 1, 12)])
@pytest.mark.parametrize("noise", [True, False])
def test_gradient_matches_finite_differences(spec, sizes, noise):
    n, n_in, m, t = sizes
    params, batch, reg = random_problem(n, n_in, None, m, t, seed=sum(sizes), noise=noise, spec=spec)
    terms, grad = reference.gradient(params, batch, reg, spec=spec)
    assert terms == reference.loss(params, batch, reg, spec=spec)

    def f(theta):
        return reference.loss(params.with_flat(theta), batch, reg, spec=spec)["loss"]

    assert rel_err(grad, fd_gradient(f, params.flat.copy())) < 1e-6


def test_every_gradient_block_is_checked():
    # Guard against a test that passes because one block dominates the norm.
    params, batch, reg = random_problem(seed=3)
    _, grad = reference.gradient(params, batch, reg)
    fd = fd_gradient(lambda th: reference.loss(params.with_flat(th), batch, reg)["loss"],
                     params.flat.copy())
    n, n_in, n_out = params.shape
    edges = np.cumsum([0, n * n, n * n_in, n, n_out * n])
    for lo, hi in zip(edges[:-1], edges[1:]):
        assert rel_err(grad[lo:hi], fd[lo:hi]) < 1e-6


def test_per_trial_squared_gradients():
    params, batch, reg = random_problem(n_trials=4, seed=5)
    _, grad, sq = reference.gradient(params, batch, reg, sq_grad=True)
    per_trial = []
    for i in range(batch.n_trials):
        one = Batch(batch.inputs[i:i + 1], batch.targets[i:i + 1], batch.noise[i:i + 1])
        per_trial.append(reference.gradient(params, one, reg)[1])
    per_trial = np.array(per_trial)
    np.testing.assert_allclose(per_trial.mean(axis=0), grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sq, (per_trial ** 2).mean(axis=0), rtol=1e-10, atol=1e-16)


def explicit_gn(params, batch, reg, mu, spec):
    """G = J_y' H_y J_y + J_u' H_u J_u + lam_l2 Hess(R_L2), from finite-difference Jacobians."""
    m, t, n = batch.n_trials, batch.n_steps, params.n_units

    def outputs(theta, which):
        st = reference.forward(params.with_flat(theta), batch.inputs, batch.noise, spec=spec)
        return getattr(st, which).ravel()

    theta = params.flat.copy()
    jy = fd_jacobian(lambda th: outputs(th, "y"), theta)
    ju = fd_jacobian(lambda th: outputs(th, "u"), theta)
    # Hessian of R_L2 by finite differences of its own gradient-free definition.
    zero = Regularization(reg.lam_l2, 0.0)
    h_l2 = fd_jacobian(lambda th: fd_gradient(
        lambda s: reg.lam_l2 * reference.loss(params.with_flat(s), batch, zero)["R_L2"], th, 1e-4), theta, 1e-4)
    return (2.0 / (m * t * params.n_out)) * jy.T @ jy \
        + (2.0 * (reg.lam_fr + mu) / (n * t * m)) * ju.T @ ju + h_l2


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
@pytest.mark.parametrize("mu", [0.0, 0.7])
@pytest.mark.parametrize("noise", [True, False])
def test_gn_product_equals_explicit_jacobian_product(spec, mu, noise):
    params, batch, reg = random_problem(n_units=4, n_trials=2, n_steps=5, noise=noise, seed=11, spec=spec)
    g_explicit = explicit_gn(params, batch, reg, mu, spec)
    state = reference.forward(params, batch.inputs, batch.noise, spec=spec)
    p = params.flat.size
    g = np.stack([reference.gn_product(params, batch, state, e, reg, mu=mu, spec=spec) for e in np.eye(p)],
                 axis=1)
    assert rel_err(g, g_explicit) < 1e-6
    v = np.random.default_rng(0).standard_normal(p)
    assert rel_err(reference.gn_product(params, batch, state, v, reg, mu=mu, spec=spec), g_explicit @ v) < 1e-6


def test_gn_is_symmetric_and_positive_semidefinite():
    params, batch, reg = random_problem(n_units=10, n_trials=5, n_steps=15, seed=2)
    state = reference.forward(params, batch.inputs, batch.noise)
    rng = np.random.default_rng(1)
    for _ in range(5):
        v, w = rng.standard_normal((2, params.flat.size))
        gv = reference.gn_product(params, batch, state, v, reg, mu=0.5)
        gw = reference.gn_product(params, batch, state, w, reg, mu=0.5)
        assert w @ gv == pytest.approx(v @ gw, rel=1e-12)
        assert v @ gv >= 0
    # The metabolic term alone is still PSD and grows with mu.
    v = rng.standard_normal(params.flat.size)
    r0 = Regularization(0.0, 0.0)
    assert v @ reference.gn_product(params, batch, state, v, r0, mu=1.0) > \
        v @ reference.gn_product(params, batch, state, v, r0, mu=0.0) >= 0


def test_gn_product_is_the_curvature_of_the_loss_for_a_linear_readout():
    # With Wrec, Win and b fixed, y is linear in Wout, so G restricted to Wout is the exact Hessian.
    params, batch, _ = random_problem(seed=4)
    reg = Regularization(0.1, 0.0)
    state = reference.forward(params, batch.inputs, batch.noise)
    n, n_in, n_out = params.shape
    p = params.flat.size
    lo = n * n + n * n_in + n
    v = np.zeros(p)
    v[lo:] = np.random.default_rng(0).standard_normal(p - lo)
    gv = reference.gn_product(params, batch, state, v, reg)
    h = 1e-5
    g_plus = reference.gradient(params.with_flat(params.flat + h * v), batch, reg)[1]
    g_minus = reference.gradient(params.with_flat(params.flat - h * v), batch, reg)[1]
    hv = (g_plus - g_minus) / (2 * h)
    assert rel_err(gv[lo:], hv[lo:]) < 1e-7


class TestBadInput:
    def setup_method(self):
        self.params, self.batch, self.reg = random_problem()

    def test_wrong_input_width(self):
        with pytest.raises(ValueError, match="inputs"):
            reference.forward(self.params, np.zeros((2, 3, 5)))

    def test_nan_inputs(self):
        x = np.zeros((2, 3, 2))
        x[1, 1, 0] = np.nan
        with pytest.raises(ValueError, match="inputs contains NaN"):
            reference.forward(self.params, x)

    def test_complex_dtype(self):
        with pytest.raises(TypeError, match="inputs must hold real numbers"):
            Batch(np.zeros((2, 3, 2), complex), np.zeros((2, 3, 2)))

    def test_targets_must_match_trials_and_steps(self):
        with pytest.raises(ValueError, match="targets must have shape"):
            Batch(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)))

    def test_noise_width_checked_against_params(self):
        batch = Batch(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.zeros((2, 3, 99)))
        with pytest.raises(ValueError, match="batch.noise must have last axis 6"):
            reference.gradient(self.params, batch, self.reg)

    def test_negative_regularisation(self):
        with pytest.raises(ValueError, match="lam_fr must be finite and >= 0"):
            Regularization(0.0, -1.0)

    def test_wrong_vector_length(self):
        state = reference.forward(self.params, self.batch.inputs, self.batch.noise)
        with pytest.raises(ValueError, match="v must have shape"):
            reference.gn_product(self.params, self.batch, state, np.zeros(3), self.reg)

    def test_state_of_another_batch(self):
        other = random_problem(n_trials=5)[1]
        state = reference.forward(self.params, other.inputs, other.noise)
        with pytest.raises(ValueError, match="state must be the forward state"):
            reference.gn_product(self.params, self.batch, state, self.params.flat, self.reg)

    def test_non_contiguous_and_integer_inputs_are_accepted(self):
        x = np.asfortranarray(np.ones((2, 3, 2), dtype=np.int32))
        got = reference.forward(self.params, x).y
        np.testing.assert_array_equal(got, reference.forward(self.params, np.ones((2, 3, 2))).y)

    def test_params_argument_type(self):
        with pytest.raises(TypeError, match="params must be a gridcore.Params"):
            reference.loss(self.params.flat, self.batch, self.reg)
