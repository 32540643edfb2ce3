"""What surrounds the kernels in training and analysis, at the paper's size.

- trajectory simulation (Numba, one thread) and the whole minibatch a
  training iteration draws (trajectories plus the noise: a CounterNoise,
  which draws nothing, or the (M, T, N) array of ``noise_source="array"``);
- one full Hessian-free iteration, put together as ``gridcore.train.loop``
  does for a ``paper`` run's first iteration (gradient with per-trial
  squares on 500 trials, CG on Gauss-Newton products over 100 trials, CG
  backtracking, line search), for every backend on 2 threads, its step
  checked against the reference's, with where the last round's time went
  (``extra_info["time_s"]`` and ``["calls"]``, as in ``log.jsonl``);
- one rate-map and score pass over 100 units (20 x 20 bins, smoothed; grid
  scores at 60 and 90 deg, border and band scores), as the unit-type analysis
  does for the real maps.
"""

import dataclasses

import numpy as np
import pytest
from harness import (
    GRID,
    PAPER,
    assert_close,
    backend_info,
    blas_limit,
    load_backend,
    quick,
    record,
    time_call,
)

from gridcore import Regularization
from gridcore.analysis.ratemaps import rate_maps, smooth_maps, spatial_bins
from gridcore.analysis.scores import band_score, border_score, grid_score
from gridcore.backends import BACKEND_NAMES, get_backend, reference
from gridcore.model.params import init_params
from gridcore.sim.arenas import make_arena
from gridcore.sim.trajectories import simulate
from gridcore.train.config import make_config
from gridcore.train.hf import AdamState, HFState, adam_step, hf_step
from gridcore.train.loop import ModelProblem, make_batch, start_schedule
from gridcore.train.timing import Timings

SIZES = [PAPER]
ARENA = "square"
BINS, SMOOTH = 20, 1.0      # as gridcore.analysis.celltypes.classify


def test_trajectories(benchmark, size):
    record(benchmark, f"minibatch M={size.m} T={size.t}", kernel="trajectories", backend="Numba",
           threads=1, n=None, m=size.m, t=size.t)
    result = time_call(benchmark, lambda: simulate(ARENA, size.m, size.t, seed=0), rounds=15)
    np.testing.assert_array_equal(result.positions, simulate(ARENA, size.m, size.t, seed=0).positions)


@pytest.mark.parametrize("noise_source", ["counter", "array"])
def test_minibatch(benchmark, paper_run, noise_source):
    """Trajectories plus the noise: a CounterNoise (drawn in the kernels) or the (M, T, N) array."""
    cfg, arena, *_ = paper_run
    task = dataclasses.replace(cfg.task, noise_source=noise_source)
    n, m, t = cfg.network.n_units, cfg.optimizer.n_trials, cfg.task.n_steps
    record(benchmark, f"minibatch M={m} T={t} noise={noise_source}", kernel="minibatch",
           backend="Numba + NumPy", threads=1, n=n, m=m, t=t)
    batch, _ = time_call(benchmark, lambda: make_batch(task, arena, np.random.default_rng(1), m, n), rounds=7)
    assert (batch.noise.shape == (m, t, n)) if noise_source == "array" else (batch.noise.std == task.noise_std)


@pytest.fixture(scope="module")
def paper_run(size):
    """The first iteration of a ``paper`` run: config, arena, initial parameters, batch, schedule."""
    cfg = make_config("paper", arena=ARENA, n_units=size.n, n_trials=size.m, n_steps=size.t,
                      curvature_trials=min(100, size.m))
    arena = make_arena(cfg.task.arena, cfg.task.arena_size)
    shape = cfg.shape
    params = init_params(*shape[:2], seed=np.random.SeedSequence(cfg.seed, spawn_key=(2,)),
                         rec_init=cfg.network.rec_init, spec=cfg.model)
    batch, _ = make_batch(cfg.task, arena, np.random.default_rng(1), cfg.optimizer.n_trials, cfg.network.n_units)
    reg = start_schedule(cfg.schedule, reference.loss(params, batch, Regularization(), spec=cfg.model))
    return cfg, arena, shape, params, batch, reg


def hf_iteration(backend, paper_run):
    """``hf_step`` on the run's problem: a call taking fresh (theta, state) and returning
    ``(theta, info)``, ``info`` with the call's ``time`` and ``calls`` (:class:`Timings`)."""
    cfg, _, shape, _, batch, reg = paper_run
    problem = ModelProblem(backend, shape, batch, reg, cfg.optimizer.curvature_trials, cfg.model)

    def step(theta, state):
        problem.timings = Timings()
        theta, info = hf_step(problem, theta, state, cfg.optimizer.hf)
        return theta, {**info, **problem.timings.record()}
    return step


@pytest.fixture(scope="module")
def reference_step(paper_run):
    cfg, params = paper_run[0], paper_run[3]
    theta, info = hf_iteration(get_backend("numpy"), paper_run)(params.flat.copy(),
                                                                  HFState(cfg.optimizer.hf.damping))
    return theta - params.flat, info


BACKEND_DTYPES = [(name, "float64") for name in BACKEND_NAMES] + [("numba", "float32"), ("c", "float32")]


@pytest.mark.parametrize("name, dtype", BACKEND_DTYPES)
def test_hf_iteration(benchmark, name, dtype, paper_run, reference_step):
    cfg, params = paper_run[0], paper_run[3]
    backend = load_backend(name, threads=2, dtype=dtype)
    step = hf_iteration(backend, paper_run)
    limit, blas = blas_limit(backend)            # as training does
    n, m, t = cfg.network.n_units, cfg.optimizer.n_trials, cfg.task.n_steps
    record(benchmark, f"hf_iteration N={n} M={m} T={t} "
           f"(curvature on {cfg.optimizer.curvature_trials})", kernel="hf_iteration", backend=name,
           threads=2, blas_threads=blas, n=n, m=m, t=t, dtype=dtype, **backend_info(backend))
    with limit:
        theta, info = time_call(benchmark, step, rounds=3,
                                setup=lambda: (params.flat.copy(), HFState(cfg.optimizer.hf.damping)))
    want, want_info = reference_step
    benchmark.extra_info.update(cg_iters=info["cg_iters"], accepted=info["accepted"], calls=info["calls"],
                                time_s={k: v for k, v in info["time"].items() if k not in ("batch", "eval")})
    assert info["accepted"]
    if dtype == "float64":
        assert info["cg_iters"] == want_info["cg_iters"]
        # CG amplifies round-off a little: the step agrees to 1e-6, not to 1e-10.
        assert_close(theta - params.flat, want, rtol=1e-6)
    else:   # float32 products: CG may stop an iteration apart, the step stays the reference's direction
        d = theta - params.flat
        assert d @ want / (np.linalg.norm(d) * np.linalg.norm(want)) > 0.99


@pytest.fixture(scope="module")
def grid_run(request):
    """The ``grid-cells`` preset at the positive control's benchmark size (``harness.GRID``: N = Np =
    512, M = 200, T = 50; shrunk in smoke runs): config, arena, place cells, shape, initial parameters."""
    size = GRID.shrunk() if quick(request.config) else GRID
    cfg = make_config("grid-cells", n_units=size.n, n_trials=size.m, n_steps=size.t, curvature_trials=size.m,
                      model={"n_place_cells": size.spec.n_place_cells})
    params = init_params(*cfg.shape[:2], seed=np.random.SeedSequence(cfg.seed, spawn_key=(2,)),
                         rec_init=cfg.network.rec_init, spec=cfg.model)
    return cfg, make_arena(cfg.task.arena, cfg.task.arena_size), cfg.make_place_cells(), params


@pytest.mark.parametrize("name, dtype", BACKEND_DTYPES)
def test_grid_training_step(benchmark, name, dtype, grid_run):
    """One Adam iteration of the positive control as ``gridcore.train.loop`` makes it: the
    minibatch (smooth paths, their place-cell code, the start codes) and the step on its gradient."""
    cfg, arena, cells, params = grid_run
    backend = load_backend(name, threads=2, dtype=dtype)
    limit, blas = blas_limit(backend)
    n, m, t = cfg.network.n_units, cfg.optimizer.n_trials, cfg.task.n_steps
    record(benchmark, f"training step, grid-cells preset N={n} Np={cells.n_cells} M={m} T={t}",
           kernel="grid_training_step", backend=name, threads=2, blas_threads=blas, n=n, m=m, t=t,
           dtype=dtype, **backend_info(backend))
    reg = Regularization(lam_rec=cfg.schedule.lam_rec)

    def step(theta, state):
        timings = Timings()
        with timings.part("batch"):
            batch, _ = make_batch(cfg.task, arena, np.random.default_rng(1), m, n, cfg.model, cells)
        problem = ModelProblem(backend, cfg.shape, batch, reg, m, cfg.model, timings)
        theta, info = adam_step(problem, theta, state, cfg.optimizer.adam)
        return theta, {**info, **timings.record()}

    with limit:
        theta, info = time_call(benchmark, step, rounds=5,
                                setup=lambda: (params.flat.copy(), AdamState.zeros(params.flat.size)))
    benchmark.extra_info.update(time_s=info["time"], calls=info["calls"])
    assert info["calls"] == {**info["calls"], "gradient": 1, "batch": 1}
    # Adam's first step moves every parameter with a non-zero gradient by about lr.
    moved = np.abs(theta - params.flat)
    assert np.all(moved <= 1.01 * cfg.optimizer.adam.lr) and np.median(moved) > 0.5 * cfg.optimizer.adam.lr


@pytest.fixture(scope="module")
def responses(size):
    """Rates of a random 100-unit network along M x T steps of paths, with their positions."""
    traj = simulate(ARENA, size.m, size.t, seed=0)
    params = init_params(size.n, traj.inputs.shape[2], seed=1)
    u = reference.forward(params, traj.inputs).u
    return u.reshape(-1, size.n), traj.positions.reshape(-1, 2), traj.arena


def direct_maps(u, pos, arena):
    """Rate maps by one bincount per unit: the check of the sparse binning."""
    binning = spatial_bins(arena, BINS)
    idx = binning.flat_index(pos)
    counts = np.bincount(idx, minlength=binning.n_bins)
    with np.errstate(invalid="ignore"):
        means = np.stack([np.bincount(idx, u[:, k], binning.n_bins) / counts for k in range(u.shape[1])])
    means[:, ~((counts > 0) & binning.inside.ravel())] = np.nan
    return smooth_maps(means.reshape(-1, *binning.shape), SMOOTH)


def test_rate_maps_scores(benchmark, size, responses):
    u, pos, arena = responses

    def one_pass():
        maps = rate_maps(u, pos, arena, BINS, smooth=SMOOTH)
        return maps, (grid_score(maps, 60), grid_score(maps, 90), border_score(maps, arena),
                      band_score(maps))

    record(benchmark, f"rate maps + scores, {size.n} units, {len(u)} samples", kernel="ratemaps",
           backend="NumPy + SciPy", threads=None, n=size.n, m=size.m, t=size.t)
    maps, scores = time_call(benchmark, one_pass, rounds=7)
    np.testing.assert_allclose(maps, direct_maps(u, pos, arena), rtol=1e-10, atol=1e-12)
    for s in scores:
        assert s.shape == (size.n,) and np.all(np.abs(s[np.isfinite(s)]) <= 2)
