"""Unit types against shuffle nulls, on planted units."""

import json

import numpy as np
import pytest

from gridcore.analysis.celltypes import SCORE_NAMES, classify
from gridcore.sim.arenas import make_arena
from gridcore.sim.trajectories import simulate

SQUARE = make_arena("square")


@pytest.fixture(scope="module")
def planted():
    traj = simulate(SQUARE, n_trials=40, n_steps=2500, seed=11)
    p, s = traj.positions, traj.speed
    rng = np.random.default_rng(4)
    k = 4 * np.pi / (np.sqrt(3) * 0.8)         # hexagonal grid of spacing 0.8
    grid = sum(np.cos(k * (p[..., 0] * np.cos(a) + p[..., 1] * np.sin(a)) + 0.5)
               for a in np.deg2rad([10.0, 70.0, 130.0])) / 3
    units = {
        "grid": grid + 0.3 * rng.standard_normal(s.shape),
        "noise": 0.5 * rng.standard_normal(s.shape),
        "border": np.exp(-(1 - p[..., 0]) ** 2 / (2 * 0.1**2)) + 0.2 * rng.standard_normal(s.shape),
        "band": np.cos(2 * np.pi / 0.6 * p[..., 1]) + 0.3 * rng.standard_normal(s.shape),
        "speed": 5.0 * s + 0.1 * rng.standard_normal(s.shape),
        "square grid": (np.cos(2 * np.pi / 0.7 * p[..., 0]) + np.cos(2 * np.pi / 0.7 * p[..., 1])
                        + 0.3 * rng.standard_normal(s.shape)),
        "place": (np.exp(-np.sum((p - [0.3, -0.2]) ** 2, axis=-1) / (2 * 0.25**2))
                  + 0.2 * rng.standard_normal(s.shape)),
        # Smooth ramps, the commonest map of a partly trained network.
        "ramp": 1.5 * (p[..., 0] * np.cos(0.6) + p[..., 1] * np.sin(0.6)) + 0.2 * rng.standard_normal(s.shape),
        "diagonal ramp": 0.8 * (p[..., 0] + p[..., 1]) + 0.2 * rng.standard_normal(s.shape),
    }
    act = np.tanh(np.stack(list(units.values()), axis=-1))   # like the network's units
    return list(units), act, traj


def _run(planted, **kw):
    _, act, traj = planted
    return classify(act, traj.positions, traj.speed, traj.heading, SQUARE, 16,
                    n_shuffles=20, **kw)


def test_planted_units_get_their_labels(planted):
    names, _, _ = planted
    res = _run(planted, seed=0)
    types = dict(zip(names, res.spatial_type))
    assert types["grid"] == "grid" and res.grid_symmetry[0] == 60
    assert types["border"] == "border"
    assert types["band"] == "band"
    assert res.labels[names.index("noise")] == ()
    assert "speed" in res.labels[names.index("speed")]
    assert types["speed"] == "none"
    assert types["square grid"] == "grid" and res.grid_symmetry[names.index("square grid")] == 90
    assert types["place"] == "irregular"
    # Ramps are spatially tuned but not periodic, so never grids.
    assert types["ramp"] == types["diagonal ramp"] == "irregular"
    assert list(res.periodic) == [n in ("grid", "noise", "band", "square grid") for n in names]
    for k in SCORE_NAMES:
        assert res.scores[k].shape == res.thresholds[k].shape == (len(names),)
        assert res.null[k].shape == (20, len(names))
    assert res.maps.shape == (len(names), 16, 16)
    # passes() is the rule the types were decided by: the planted grid beats
    # its grid60 null, the noise unit beats no spatial null.
    passes = res.passes()
    assert set(passes) == set(SCORE_NAMES)
    assert passes["grid60"][0] and passes["spatial_information"][0]
    assert not any(passes[k][names.index("noise")] for k in ("spatial_information", "grid60", "border"))
    assert np.array_equal(passes["border"], res.scores["border"] > res.thresholds["border"])


def test_deterministic_for_a_seed_and_serialisable(planted):
    a, b = _run(planted, seed=3), _run(planted, seed=3)
    for k in SCORE_NAMES:
        np.testing.assert_array_equal(a.thresholds[k], b.thresholds[k])
        np.testing.assert_array_equal(a.scores[k], b.scores[k])
    assert a.labels == b.labels
    c = _run(planted, seed=4)
    assert a.settings["shifts"] != c.settings["shifts"]
    d = json.loads(json.dumps(a.to_dict()))
    assert d["settings"]["percentile"] == 95.0 and d["settings"]["n_shuffles"] == 20
    assert "grid60" in d["settings"]["conventions"]
    assert sum(d["counts"][t] for t in ("grid", "border", "band", "irregular", "none")) == len(a.labels)
    assert d["passed"] == {k: int(v.sum()) for k, v in a.passes().items()}
    n = d["settings"]["n_samples"]
    assert all(0.05 * n <= s <= 0.95 * n for s in d["settings"]["shifts"])


def test_a_field_along_every_wall_of_a_triangle_is_border_not_grid():
    # Its 3-fold symmetry gives it a high 60 deg grid score too.
    tri = make_arena("triangle")
    traj = simulate(tri, n_trials=40, n_steps=2500, seed=2)
    rng = np.random.default_rng(0)
    p = traj.positions
    ring = np.exp(-tri.wall_distance(p) ** 2 / (2 * 0.1**2)) + 0.2 * rng.standard_normal(p.shape[:2])
    res = classify(np.tanh(ring)[..., None], p, traj.speed, traj.heading, tri, 20,
                   n_shuffles=20, seed=0)
    assert res.scores["grid60"][0] > res.thresholds["grid60"][0]
    assert res.spatial_type[0] == "border"


def test_argument_errors(planted):
    _, act, traj = planted
    args = (act, traj.positions, traj.speed, traj.heading, SQUARE)
    with pytest.raises(ValueError, match="min_shift"):
        classify(*args, min_shift=0.6)
    with pytest.raises(ValueError, match="percentile"):
        classify(*args, percentile=100)
    with pytest.raises(ValueError, match="grid_method"):
        classify(*args, grid_method="best")
    with pytest.raises(ValueError, match="offset"):
        classify(act - 5.0, traj.positions, traj.speed, traj.heading, SQUARE)
    with pytest.raises(ValueError, match="heading must have shape"):
        classify(act, traj.positions, traj.speed, traj.heading[:, :-1], SQUARE)
