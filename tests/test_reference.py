"""The NumPy reference against first principles: finite differences and explicit Jacobians."""

import numpy as np
import pytest
from problems import N_PLACE_CELLS, SPECS, random_problem, spec_id

from gridcore import Batch, ModelSpec, Params, Regularization
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
    st = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    phi, a = PHI[spec.nonlinearity], spec.alpha
    if spec.initial_state == "zero":
        assert np.all(st.x[:, 0] == 0) and np.all(st.y[:, 0] == 0)
    else:                                              # x_0 = Wenc c, unit by unit
        for m in range(batch.n_trials):
            for i in range(params.n_units):
                assert st.x[m, 0, i] == pytest.approx(sum(params.Wenc[i, k] * batch.start_codes[m, k]
                                                          for k in range(N_PLACE_CELLS)), rel=1e-13)
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
    r_rec = sum(w ** 2 for w in params.Wrec.ravel())
    assert terms["R_rec"] == pytest.approx(r_rec, rel=1e-13)
    assert terms["loss"] == pytest.approx(e + 0.3 * r_l2 + 0.2 * r_fr + 0.15 * r_rec, rel=1e-13)


def test_place_cell_error_is_the_softmax_cross_entropy():
    spec = ModelSpec(readout="place-cells", n_place_cells=N_PLACE_CELLS)
    params, batch, reg = random_problem(n_units=4, n_trials=2, n_steps=5, spec=spec)
    y = reference.forward(params, batch.inputs, batch.noise, spec=spec).y
    m, t, k = y.shape
    ce = 0.0
    for i in range(m):
        for j in range(t):
            p = np.exp(y[i, j]) / np.exp(y[i, j]).sum()
            ce -= sum(batch.targets[i, j, c] * np.log(p[c]) for c in range(k))
    assert reference.loss(params, batch, reg, spec=spec)["E"] == pytest.approx(ce / (m * t), rel=1e-13)
    # Logits far beyond exp's range stay finite (log-sum-exp is computed stably).
    big = Params(params.Wrec, params.Win, params.b, 1e4 * params.Wout)
    assert np.isfinite(reference.loss(big, batch, reg, spec=spec)["E"])


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


@pytest.mark.parametrize("spec", [SPECS[0], SPECS[-1]], ids=spec_id)
def test_every_gradient_block_is_checked(spec):
    # Guard against a test that passes because one block dominates the norm.
    params, batch, reg = random_problem(seed=3, spec=spec)
    _, grad = reference.gradient(params, batch, reg, spec=spec)
    fd = fd_gradient(lambda th: reference.loss(params.with_flat(th), batch, reg, spec=spec)["loss"],
                     params.flat.copy())
    assert params.layout.names[-1] == ("Wenc" if spec.n_code else "Wout")
    for block in params.layout.blocks:
        assert rel_err(grad[block.offset:block.stop], fd[block.offset:block.stop]) < 1e-6


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_per_trial_squared_gradients(spec):
    params, batch, reg = random_problem(n_trials=4, seed=5, spec=spec)
    _, grad, sq = reference.gradient(params, batch, reg, sq_grad=True, spec=spec)
    per_trial = []
    for i in range(batch.n_trials):
        codes = None if batch.start_codes is None else batch.start_codes[i:i + 1]
        one = Batch(batch.inputs[i:i + 1], batch.targets[i:i + 1], batch.noise[i:i + 1], codes)
        per_trial.append(reference.gradient(params, one, reg, spec=spec)[1])
    per_trial = np.array(per_trial)
    np.testing.assert_allclose(per_trial.mean(axis=0), grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sq, (per_trial ** 2).mean(axis=0), rtol=1e-10, atol=1e-16)


def output_hessian(y, spec):
    """Hessian of E in the outputs y (M, T, Nout), flattened: written out per readout."""
    m, t, k = y.shape
    if spec.readout == "xy":
        return (2.0 / (m * t * k)) * np.eye(m * t * k)
    h = np.zeros((m * t * k, m * t * k))
    for i in range(m * t):                           # softmax curvature diag(p) - p p', one block per step
        p = np.exp(y.reshape(-1, k)[i]) / np.exp(y.reshape(-1, k)[i]).sum()
        h[i * k:(i + 1) * k, i * k:(i + 1) * k] = (np.diag(p) - np.outer(p, p)) / (m * t)
    return h


def explicit_gn(params, batch, reg, mu, spec):
    """G = J_y' H_y J_y + J_u' H_u J_u + Hess(lam_l2 R_L2 + lam_rec R_rec), from finite-difference Jacobians."""
    m, t, n = batch.n_trials, batch.n_steps, params.n_units

    def outputs(theta, which):
        st = reference.forward(params.with_flat(theta), batch.inputs, batch.noise, spec=spec,
                               start_codes=batch.start_codes)
        return getattr(st, which).ravel()

    theta = params.flat.copy()
    jy = fd_jacobian(lambda th: outputs(th, "y"), theta)
    ju = fd_jacobian(lambda th: outputs(th, "u"), theta)
    h_y = output_hessian(reference.forward(params, batch.inputs, batch.noise, spec=spec,
                                           start_codes=batch.start_codes).y, spec)
    # Hessian of the weight penalties (eq. L2, P4, written out here) by finite differences.
    def penalty(s):
        w = params.with_flat(s)
        return (reg.lam_l2 * ((w.Win ** 2).sum() / w.Win.size + (w.Wout ** 2).sum() / w.Wout.size)
                + reg.lam_rec * (w.Wrec ** 2).sum())

    h_l2 = fd_jacobian(lambda th: fd_gradient(penalty, th, 1e-4), theta, 1e-4)
    return jy.T @ h_y @ jy + (2.0 * (reg.lam_fr + mu) / (n * t * m)) * ju.T @ ju + h_l2


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
@pytest.mark.parametrize(("mu", "noise"), [(0.0, True), (0.7, False)])
def test_gn_product_equals_explicit_jacobian_product(spec, mu, noise):
    params, batch, reg = random_problem(n_units=4, n_trials=2, n_steps=5, noise=noise, seed=11, spec=spec)
    g_explicit = explicit_gn(params, batch, reg, mu, spec)
    state = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
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


@pytest.mark.parametrize("spec", [SPECS[0], ModelSpec(readout="place-cells", n_place_cells=N_PLACE_CELLS)],
                         ids=spec_id)
def test_gn_product_is_the_curvature_of_the_loss_for_a_linear_readout(spec):
    # With Wrec, Win and b fixed, y is linear in Wout, so G restricted to Wout is the
    # exact Hessian (for the softmax cross-entropy too: its GN curvature is its Hessian).
    params, batch, _ = random_problem(seed=4, spec=spec)
    reg = Regularization(0.1, 0.0)
    state = reference.forward(params, batch.inputs, batch.noise, spec=spec)
    wout = params.layout["Wout"]
    v = np.zeros(params.flat.size)
    v[wout.offset:wout.stop] = np.random.default_rng(0).standard_normal(wout.size)
    gv = reference.gn_product(params, batch, state, v, reg, spec=spec)
    h = 1e-5
    g_plus = reference.gradient(params.with_flat(params.flat + h * v), batch, reg, spec=spec)[1]
    g_minus = reference.gradient(params.with_flat(params.flat - h * v), batch, reg, spec=spec)[1]
    hv = (g_plus - g_minus) / (2 * h)
    assert rel_err(gv[wout.offset:], hv[wout.offset:]) < 1e-7


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


class TestPlaceCellAndEncodedInput:
    """Bad input for the place-cell readout and the encoded initial state."""

    def setup_method(self):
        self.spec = ModelSpec(readout="place-cells", initial_state="encoded", n_place_cells=N_PLACE_CELLS)
        self.params, self.batch, self.reg = random_problem(spec=self.spec)

    def test_spec_needs_place_cells(self):
        with pytest.raises(ValueError, match="n_place_cells must be >= 1"):
            ModelSpec(readout="place-cells")
        with pytest.raises(ValueError, match="n_place_cells must be 0 unless"):
            ModelSpec(n_place_cells=3)
        with pytest.raises(ValueError, match="n_place_cells must be an integer >= 0"):
            ModelSpec(readout="place-cells", n_place_cells=2.5)

    def test_missing_start_codes(self):
        batch = Batch(self.batch.inputs, self.batch.targets, self.batch.noise)
        with pytest.raises(ValueError, match="batch.start_codes is required by initial_state 'encoded'"):
            reference.loss(self.params, batch, self.reg, spec=self.spec)
        with pytest.raises(ValueError, match="start_codes is required"):
            reference.forward(self.params, batch.inputs, spec=self.spec)

    def test_start_codes_of_the_wrong_width(self):
        batch = Batch(self.batch.inputs, self.batch.targets, None, np.ones((3, 2)) / 2)
        with pytest.raises(ValueError, match=r"start_codes must have shape \(M, 5\)"):
            reference.gradient(self.params, batch, self.reg, spec=self.spec)

    def test_start_codes_without_encoded_state(self):
        spec = ModelSpec()
        params, batch, reg = random_problem(spec=spec)
        with_codes = Batch(batch.inputs, batch.targets, None, np.ones((3, 4)) / 4)
        with pytest.raises(ValueError, match="only used by initial_state 'encoded'"):
            reference.loss(params, with_codes, reg, spec=spec)

    def test_x0_and_start_codes_together(self):
        with pytest.raises(ValueError, match="pass x0 or start_codes, not both"):
            reference.forward(self.params, self.batch.inputs, x0=np.zeros((3, 6)), spec=self.spec,
                              start_codes=self.batch.start_codes)

    def test_targets_must_be_distributions(self):
        bad = self.batch.targets.copy()
        bad[0, 0, 0] += 0.1
        batch = Batch(self.batch.inputs, bad, None, self.batch.start_codes)
        with pytest.raises(ValueError, match="targets must be place-cell codes"):
            reference.loss(self.params, batch, self.reg, spec=self.spec)

    def test_params_without_wenc_refused(self):
        params = Params(self.params.Wrec, self.params.Win, self.params.b, self.params.Wout)
        with pytest.raises(ValueError, match="Wenc block of 0 columns"):
            reference.loss(params, self.batch, self.reg, spec=self.spec)

    def test_gn_product_needs_the_outputs(self):
        state = reference.forward(self.params, self.batch.inputs, self.batch.noise, spec=self.spec,
                                  start_codes=self.batch.start_codes)
        state.y = None
        with pytest.raises(ValueError, match="with y of shape"):
            reference.gn_product(self.params, self.batch, state, self.params.flat, self.reg, spec=self.spec)
