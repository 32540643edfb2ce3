"""The torus: a square with periodic boundaries (no walls), as a diagnostic arena for the grid recipe."""

import json

import numpy as np
import pytest

from gridcore.analysis import pipeline
from gridcore.analysis.tracking import stability, tracking
from gridcore.model.params import Params
from gridcore.sim.arenas import ARENA_NAMES, Torus, arena_from_dict, make_arena
from gridcore.sim.netfile import write_network
from gridcore.sim.placecells import PlaceCells
from gridcore.sim.trajectories import simulate
from gridcore.train.config import make_config
from gridcore.train.heldout import heading_baseline, normalised_error
from gridcore.train.loop import train
from gridcore.train.rundir import load_run

SIDE = 2.2
TORUS = make_arena("torus", SIDE)
SQUARE = make_arena("square", SIDE)
H = SIDE / 2
E_X, E_Y = np.array([SIDE, 0.0]), np.array([0.0, SIDE])


# ---------------------------------------------------------------- the arena

def test_torus_is_the_square_with_joined_sides():
    assert "torus" in ARENA_NAMES and isinstance(TORUS, Torus) and TORUS.periodic and not SQUARE.periodic
    assert TORUS.bounds == SQUARE.bounds == (-H, -H, H, H)
    assert TORUS.area == pytest.approx(SIDE**2, rel=1e-12)
    pts = np.array([[0.0, 0.0], [1.0, -0.5], [-1.05, 1.09]])
    np.testing.assert_array_equal(TORUS.wall_distance(pts), SQUARE.wall_distance(pts))   # edges, for analysis


def test_round_trip_through_a_dict():
    d = json.loads(json.dumps(TORUS.to_dict()))
    assert d == {"kind": "torus", "name": "torus", "size": SIDE}
    back = arena_from_dict(d)
    assert isinstance(back, Torus) and back.side == SIDE and back.to_dict() == d
    with pytest.raises(ValueError, match="size"):
        arena_from_dict({"kind": "torus", "name": "torus", "radius": SIDE})


def test_min_image_difference_wrap_and_circular_mean():
    a, b = np.array([1.0, -1.05]), np.array([-1.0, 1.05])
    np.testing.assert_allclose(TORUS.difference(a, b), [2.0 - SIDE, -2.1 + SIDE], atol=1e-12)
    np.testing.assert_allclose(SQUARE.difference(a, b), [2.0, -2.1])
    assert TORUS.squared_distance(a, b) == pytest.approx(0.2**2 + 0.1**2, rel=1e-9)
    np.testing.assert_allclose(TORUS.wrap([[H + 0.3, -H - 0.1], [0.2, 3 * SIDE + 0.4]]),
                               [[-H + 0.3, H - 0.1], [0.2, 0.4]], atol=1e-12)
    # Points either side of the corner average at the corner, not at the centre.
    m = TORUS.mean(np.array([[H - 0.05, H - 0.05], [-H + 0.05, -H + 0.05]]), axis=0)
    assert TORUS.squared_distance(m, [H, H]) < 1e-20


# ---------------------------------------------------------------- motion

@pytest.mark.parametrize("motion_model", ["smooth", "paper"])
def test_walks_wrap_around(motion_model):
    traj = simulate(TORUS, 40, 300, seed=1, encoding="velocity", motion_model=motion_model,
                    start="uniform")
    p = traj.positions
    assert np.all(TORUS.contains(p)) and np.all(TORUS.contains(traj.final_position))
    assert not traj.boundary.any()                                        # no walls, no interactions
    nxt = np.concatenate([p[:, 1:], traj.final_position[:, None]], axis=1)
    # Each step moves by the velocity input, modulo the side ...
    np.testing.assert_allclose(TORUS.difference(nxt, p), traj.inputs, atol=1e-12)
    # ... and some steps cross a seam: the plain difference jumps by about a side.
    assert np.any(np.abs(nxt - p) > H)
    assert np.all(traj.heading >= -np.pi) and np.all(traj.heading < np.pi)


def test_walls_would_turn_the_walker_in_the_square():
    # The square, same draws: its walls turn the walker (the torus test above is not vacuous).
    traj = simulate(SQUARE, 40, 300, seed=1, encoding="velocity", motion_model="smooth")
    assert traj.boundary.any()


# ---------------------------------------------------------------- place cells

@pytest.mark.parametrize("layout, n", [("random", 256), ("lattice", 256), ("lattice", 200)])
def test_place_cell_code_is_periodic_and_fills_the_torus(layout, n):
    pc = PlaceCells(TORUS, n_cells=n, sigma=0.12, layout=layout)
    p = simulate(TORUS, 5, 40, seed=2, motion_model="smooth").positions.reshape(-1, 2)
    code = pc.encode(p)
    np.testing.assert_allclose(pc.encode(p + E_X), code, atol=1e-12)
    np.testing.assert_allclose(pc.encode(p - 3 * E_Y), code, atol=1e-12)
    assert np.all(TORUS.contains(pc.centres))
    # Filled: every point of the torus, seams and corners too, has a centre within the lattice's reach.
    g = np.linspace(-H, H, 45)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 1, 2)
    reach = np.sqrt(TORUS.squared_distance(grid, pc.centres).min(axis=1))
    assert reach.max() < (0.25 if layout == "random" else SIDE / np.ceil(np.sqrt(n)))


def test_square_place_cell_code_is_not_periodic():
    pc = PlaceCells(SQUARE, n_cells=256, sigma=0.12)
    p = np.array([[H - 0.05, 0.3]])
    assert np.abs(pc.encode(p - E_X) - pc.encode(p)).max() > 0.01


@pytest.mark.parametrize("point", [(H - 0.01, H - 0.015), (-H + 0.005, 0.3), (H - 0.004, -H + 0.006),
                                   (0.2, -H + 0.001), (-H + 0.01, -H + 0.02)])
def test_decode_near_corners_and_edges(point):
    pc = PlaceCells(TORUS, n_cells=400, sigma=0.12, layout="lattice")      # 20 x 20, spacing 0.11
    p = np.array([point])
    decoded = pc.decode(pc.encode(p))
    assert np.sqrt(TORUS.squared_distance(decoded, p))[0] < 0.08
    # A plain mean of the same cells would land far off: the circular mean is what decodes right.
    top = np.argsort(-pc.encode(p)[0])[:3]
    assert np.sqrt(TORUS.squared_distance(pc.centres[top].mean(axis=0), p[0])) > 0.3


# ---------------------------------------------------------------- errors

def test_errors_are_min_image():
    targets = simulate(TORUS, 20, 50, seed=3, motion_model="smooth").positions
    shifted = targets + E_X                                  # the same places, one side over
    assert normalised_error(shifted, targets, TORUS) < 1e-20
    assert normalised_error(shifted, targets) > 1.0          # plain differences see a full side
    # The best constant guess scores about 1 (every constant is about as good on the torus).
    const = np.broadcast_to(TORUS.mean(targets, axis=(0, 1)), targets.shape)
    assert normalised_error(const, targets, TORUS) == pytest.approx(1.0, abs=1e-9)
    track = tracking(shifted, targets, TORUS)
    assert track["normalised_error"] < 1e-20 and track["squared_error"] < 1e-20
    assert track["best_constant_error"] == pytest.approx(SIDE**2 / 6, rel=0.2)
    assert tracking(shifted, targets)["squared_error"] > 1.0
    err = TORUS.squared_distance(shifted, targets)
    assert stability(err, targets, block=25, arena=TORUS)["error"] < 1e-20


def test_heading_baseline_wraps():
    # Constant speed: the heading-only integrator is exact when it wraps as the animal does.
    rng = np.random.default_rng(4)
    h = rng.uniform(-np.pi, np.pi, (10, 200))
    s = np.full((10, 200), 0.05)
    steps = s[..., None] * np.stack([np.cos(h), np.sin(h)], axis=-1)
    start = TORUS.sample_uniform(10, rng)
    p = TORUS.wrap(start[:, None] + np.concatenate([np.zeros((10, 1, 2)), np.cumsum(steps, axis=1)[:, :-1]], 1))
    assert heading_baseline(s, h, p, TORUS, start) < 1e-20
    assert heading_baseline(s, h, p, SQUARE, start) > 0.01          # walls clip it


# ---------------------------------------------------------------- settings and what is unsupported

def test_config_accepts_the_torus_with_place_cells_only():
    cfg = make_config("grid-cells", arena="torus")
    assert cfg.task.arena == "torus" and cfg.make_place_cells().arena.periodic
    assert make_config("grid-cells", arena="torus", motion_model="paper").task.motion_model == "paper"
    with pytest.raises(ValueError, match="torus.*place-cells"):
        make_config("quick", arena="torus")


def test_export_of_a_torus_network_is_refused(tmp_path):
    cfg = make_config("grid-cells", arena="torus", n_units=4, model={"n_place_cells": 4})
    params = Params.from_flat(np.zeros(cfg.layout.size), *cfg.shape, cfg.layout.n_code)
    with pytest.raises(ValueError, match="torus"):
        write_network(tmp_path / "t.grcnet", params, cfg.model, "velocity", "torus", SIDE,
                      cfg.make_place_cells(), decoder_k=3)


# ---------------------------------------------------------------- end to end

@pytest.mark.filterwarnings("ignore:the path visits")   # 10 short trials fill few bins: fine for a smoke test
def test_train_and_quick_analysis_in_the_torus(tmp_path):
    cfg = make_config("grid-cells", arena="torus", n_units=32, model={"n_place_cells": 64}, n_trials=20,
                      curvature_trials=10, eval_trials=20, iterations=20, eval_every=10, checkpoint_every=0,
                      snapshot_every=0, snapshot_at=[0], backend="numpy", dtype="float64", threads=1)
    train(cfg, tmp_path / "r", stream=None)
    run = load_run(tmp_path / "r")
    assert run.arena.periodic and run.place_cells.arena.periodic
    nerr = json.load(open(tmp_path / "r" / "final_metrics.json"))["nerr_heldout"]
    assert 0.2 < nerr < 3.0
    settings = pipeline.AnalysisSettings.make(quick=True, n_trials=10, long_steps=1000, block_steps=500,
                                              shuffles=3, bins=6, embedding="mds")
    a = pipeline.analyze_run(str(tmp_path / "r"), backend="numpy", settings=settings)
    m = a.metrics
    assert m["tracking"]["normalised_error"] == pytest.approx(nerr, rel=1e-9)   # one held-out error
    assert np.isfinite(m["stability"]["error"])
    assert np.all(TORUS.contains(a.positions))
