"""Hessian-free optimisation: CG, the damping logic and its failure guards."""

import numpy as np
import pytest
from problems import random_problem

from gridcore.backends import get_backend, reference
from gridcore.train.hf import (
    AdamSettings,
    AdamState,
    HFError,
    HFSettings,
    HFState,
    adam_step,
    hf_step,
    pcg,
)
from gridcore.train.loop import ModelProblem


def spd(n, seed=0, cond=100.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.geomspace(1, cond, n)) @ q.T


def test_pcg_solves_an_spd_system():
    a = spd(40)
    b = np.random.default_rng(1).standard_normal(40)
    res = pcg(lambda v: a @ v, b, np.zeros(40), np.diag(a).copy(), max_iters=500, tol=1e-14, gamma=1.3)
    np.testing.assert_allclose(res.x, np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    # Iterates are saved at ceil(1.3**j) and the last one is included.
    its = [i for i, _ in res.saved]
    assert its[:6] == [1, 2, 3, 4, 5, 7] and its[-1] == res.iterations and its == sorted(set(its))
    np.testing.assert_array_equal(res.saved[-1][1], res.x)


def test_pcg_stops_on_relative_progress():
    a = spd(200, cond=1e4)
    b = np.ones(200)
    res = pcg(lambda v: a @ v, b, np.zeros(200), np.ones(200), max_iters=1000, tol=5e-4, gamma=1.3)
    assert res.reason == "progress" and res.iterations < 200
    phi = 0.5 * res.x @ a @ res.x - b @ res.x
    phi_opt = -0.5 * b @ np.linalg.solve(a, b)
    assert phi < 0.9 * phi_opt < 0          # most of the achievable decrease


def test_pcg_reports_nan_curvature():
    with pytest.raises(FloatingPointError, match="non-finite curvature"):
        pcg(lambda v: v * np.nan, np.ones(3), np.zeros(3), np.ones(3), 10, 1e-4, 1.3)


def make_problem(seed=0, **kw):
    params, batch, reg = random_problem(n_units=8, n_trials=6, n_steps=20, seed=seed, **kw)
    return ModelProblem(get_backend("numpy"), params.shape, batch, reg, curvature_trials=6), params.flat.copy()


def test_hf_beats_gradient_descent_per_iteration():
    problem, theta0 = make_problem()
    f0 = problem.loss(theta0)
    theta, state = theta0, HFState(damping=HFSettings().damping)
    for _ in range(5):
        theta, info = hf_step(problem, theta, state)
        assert info["accepted"] and info["new_loss"] < info["eval_loss"]
    f_hf = problem.loss(theta)
    # Gradient descent with the best of a grid of fixed step sizes.
    f_gd = np.inf
    for lr in np.geomspace(1e-3, 10, 13):
        th = theta0.copy()
        for _ in range(5):
            th = th - lr * problem.gradient(th)[1]
        f_gd = min(f_gd, problem.loss(th))
    assert f_hf < f_gd < f0


def test_hf_lowers_damping_when_the_model_is_good():
    problem, theta = make_problem(seed=1)
    state = HFState(damping=10.0)
    theta, info = hf_step(problem, theta, state)
    assert info["rho"] > 0.75 and state.damping == pytest.approx(10.0 * 2 / 3)
    assert state.previous is not None and state.previous.shape == theta.shape


class NaNCurvature:
    """Wraps a problem; the curvature of the first `bad` calls is NaN."""

    def __init__(self, problem, bad=1):
        self.problem, self.bad = problem, bad
        self.loss, self.gradient = problem.loss, problem.gradient

    def curvature(self, theta):
        gv = self.problem.curvature(theta)
        self.bad -= 1
        if self.bad >= 0:
            return lambda v, mu: gv(v, mu) * np.nan
        return gv


def test_nan_curvature_rejects_the_step_and_raises_damping():
    problem, theta = make_problem(seed=2)
    wrapped = NaNCurvature(problem)
    state = HFState(damping=1.0)
    new, info = hf_step(wrapped, theta, state)
    assert not info["accepted"] and new is theta
    assert state.damping == 1.5 and any("curvature" in e for e in info["events"])
    new, info = hf_step(wrapped, theta, state)      # recovers on the next iteration
    assert info["accepted"] and info["new_loss"] < info["eval_loss"]


class LyingLoss:
    """The loss never decreases: HF must raise damping and finally stop."""

    def __init__(self, problem):
        self.problem = problem
        self.gradient, self.curvature = problem.gradient, problem.curvature

    def loss(self, theta):
        return self.problem.loss(theta) + 1.0 + np.sum(theta ** 2)


def test_damping_ceiling_stops_the_run():
    problem, theta = make_problem(seed=3)
    state = HFState(damping=1.0)
    settings = HFSettings(damping_max=10.0)
    with pytest.raises(HFError, match="exceeded damping_max"):
        for _ in range(20):
            new, info = hf_step(LyingLoss(problem), theta, state, settings)
            assert new is theta and not info["accepted"]


def test_nan_gradient_stops_with_a_message():
    class Broken:
        def gradient(self, theta):
            return np.nan, np.zeros_like(theta), None

    with pytest.raises(HFError, match="not finite"):
        hf_step(Broken(), np.zeros(3), HFState(1.0))


def test_damping_floor_is_clamped():
    problem, theta = make_problem(seed=4)
    state = HFState(damping=1e-8)
    hf_step(problem, theta, state, HFSettings(damping=1e-8, damping_min=1e-8))
    assert state.damping >= 1e-8


def test_settings_are_validated():
    with pytest.raises(ValueError, match="boost > 1"):
        HFSettings(boost=0.5)
    with pytest.raises(ValueError, match="HFSettings.cg_tol"):
        HFSettings(cg_tol=float("nan"))
    with pytest.raises(ValueError, match="lr > 0"):
        AdamSettings(lr=-1)
    with pytest.raises(ValueError, match="evaluate_on must be one of curvature, gradient, got 'all'"):
        HFSettings(evaluate_on="all")


class CountingLoss:
    """Counts the calls of the problem's two losses (the whole minibatch's and the curvature trials')."""

    def __init__(self, problem):
        self.problem, self.calls = problem, {"loss": 0, "curvature_loss": 0}
        self.gradient, self.curvature = problem.gradient, problem.curvature

    def loss(self, theta):
        self.calls["loss"] += 1
        return self.problem.loss(theta)

    def curvature_loss(self, theta):
        self.calls["curvature_loss"] += 1
        return self.problem.curvature_loss(theta)


def test_steps_are_evaluated_on_the_curvature_trials_by_default():
    params, batch, reg = random_problem(n_units=8, n_trials=12, n_steps=20, seed=7)
    problem = ModelProblem(get_backend("numpy"), params.shape, batch, reg, curvature_trials=4)
    theta = params.flat.copy()
    counting = CountingLoss(problem)
    new, info = hf_step(counting, theta, HFState(damping=1.0))
    assert counting.calls["loss"] == 0 and counting.calls["curvature_loss"] >= 2   # at theta and >= 1 step
    assert info["accepted"] and info["new_loss"] < info["eval_loss"]
    # Both on the first 4 trials; the one at theta from the curvature's forward pass.
    on_four = batch.subset(4)
    for at, want in ((theta, info["eval_loss"]), (new, info["new_loss"])):
        assert reference.loss(problem._params(at), on_four, reg)["loss"] == pytest.approx(want, rel=1e-12)
    assert info["loss"] == pytest.approx(reference.loss(params, batch, reg)["loss"], rel=1e-12)
    assert info["loss"] != pytest.approx(info["eval_loss"], rel=1e-6)
    # Deterministic: the same step again.
    again, info_again = hf_step(problem, theta, HFState(damping=1.0))
    assert np.array_equal(again, new) and info_again == info


def test_steps_can_be_evaluated_on_the_whole_minibatch():
    params, batch, reg = random_problem(n_units=8, n_trials=12, n_steps=20, seed=7)
    problem = ModelProblem(get_backend("numpy"), params.shape, batch, reg, curvature_trials=4)
    counting = CountingLoss(problem)
    new, info = hf_step(counting, params.flat.copy(), HFState(damping=1.0), HFSettings(evaluate_on="gradient"))
    assert counting.calls["curvature_loss"] == 0 and counting.calls["loss"] >= 1
    assert info["eval_loss"] == info["loss"] and info["accepted"]
    assert info["new_loss"] == pytest.approx(reference.loss(problem._params(new), batch, reg)["loss"], rel=1e-12)


def test_model_problem_times_its_calls():
    problem, theta = make_problem(seed=8)
    _, info = hf_step(problem, theta, HFState(damping=1.0))
    rec = problem.timings.record()
    t, calls = rec["time"], rec["calls"]
    # One CG run from zero: its start residual, one product per iteration, one for rho.
    assert calls["gn"] == info["cg_iters"] + 2 and calls["forward"] == calls["gradient"] == 1
    assert calls["loss"] >= 2 and calls["batch"] == calls["eval"] == 0
    assert all(v >= 0 for v in t.values()) and t["batch"] == t["eval"] == 0.0
    assert sum(v for k, v in t.items() if k != "total") == pytest.approx(t["total"], rel=1e-9)


def test_adam_lowers_the_loss():
    problem, theta = make_problem(seed=5)
    state = AdamState.zeros(theta.size)
    f0 = problem.loss(theta)
    for _ in range(30):
        theta, _ = adam_step(problem, theta, state, AdamSettings(lr=1e-2))
    assert problem.loss(theta) < f0 and state.t == 30


def test_model_problem_matches_reference():
    problem, theta = make_problem(seed=6)
    params = problem._params(theta)
    f, g, sq = problem.gradient(theta)
    terms, g_ref, sq_ref = reference.gradient(params, problem.batch, problem.reg, sq_grad=True)
    assert f == terms["loss"]
    np.testing.assert_array_equal(g, g_ref)
    v = np.ones_like(theta)
    st = reference.forward(params, problem.batch.inputs, problem.batch.noise)
    np.testing.assert_array_equal(problem.curvature(theta)(v, 0.5),
                                  reference.gn_product(params, problem.batch, st, v, problem.reg, mu=0.5))


def test_settings_want_finite_numbers_of_the_right_kind():
    with pytest.raises(ValueError, match="HFSettings.cg_max_iters must be a finite integer, got 2.5"):
        HFSettings(cg_max_iters=2.5)
    with pytest.raises(ValueError, match="HFSettings.damping must be a finite number, got True"):
        HFSettings(damping=True)
    with pytest.raises(ValueError, match="HFSettings.rho_low must be a finite number"):
        HFSettings(rho_low="0.1")
    with pytest.raises(ValueError, match="AdamSettings.eps must be a finite number"):
        AdamSettings(eps=float("inf"))


def test_optimiser_states_round_trip_and_refuse_bad_arrays():
    hf = HFState(0.5, np.arange(4.0))
    back = HFState.from_arrays(hf.to_arrays(), 4)
    assert back.damping == 0.5 and np.array_equal(back.previous, hf.previous)
    assert HFState.from_arrays(HFState(0.5).to_arrays(), 4).previous is None
    # A warm start of another size was silently dropped before (issue 23).
    with pytest.raises(ValueError, match=r"hf_previous .* must be empty or 5 finite numbers, got shape \(4,\)"):
        HFState.from_arrays(hf.to_arrays(), 5)
    for bad in (np.float64(0), np.float64(np.nan), np.zeros(2)):
        with pytest.raises(ValueError, match="hf_damping must be a finite number > 0"):
            HFState.from_arrays({**hf.to_arrays(), "hf_damping": bad}, 4)
    adam = AdamState(np.ones(3), np.ones(3), 2)
    back = AdamState.from_arrays(adam.to_arrays(), 3)
    assert back.t == 2 and np.array_equal(back.m, adam.m) and np.array_equal(back.v, adam.v)
    with pytest.raises(ValueError, match=r"adam_m must be 4 finite numbers, got shape \(3,\)"):
        AdamState.from_arrays(adam.to_arrays(), 4)
    with pytest.raises(ValueError, match="adam_t must be an integer >= 0"):
        AdamState.from_arrays({**adam.to_arrays(), "adam_t": np.int64(-1)}, 3)


def test_adam_follows_its_step_schedule():
    problem, theta = make_problem(seed=5)
    settings = AdamSettings(lr=1e-2, lr_steps=[[2, 1e-3], [4, 1e-4]])
    state = AdamState.zeros(theta.size)
    steps = [adam_step(problem, theta, state, settings)[1]["step"] for _ in range(5)]
    assert steps == [1e-2, 1e-2, 1e-3, 1e-3, 1e-4]
    # Two steps at lr = 1e-3 after two at 1e-2 move theta as the schedule says.
    a, b = AdamState.zeros(theta.size), AdamState.zeros(theta.size)
    t_sched = t_plain = theta
    for k in range(3):
        t_sched, _ = adam_step(problem, t_sched, a, settings)
        t_plain, _ = adam_step(problem, t_plain, b, AdamSettings(lr=1e-2 if k < 2 else 1e-3))
    np.testing.assert_array_equal(t_sched, t_plain)


@pytest.mark.parametrize("bad", [[[0, 1e-3]], [[5, 1e-3], [5, 1e-4]], [[5, -1.0]], [[5, float("nan")]],
                                 "4000:1e-3", [[5.5, 1e-3]], [[True, 1e-3]], [[5]]])
def test_adam_step_schedule_is_checked(bad):
    with pytest.raises(ValueError, match="AdamSettings.lr_steps must be a list of"):
        AdamSettings(lr_steps=bad)
