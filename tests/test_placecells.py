"""Place cells: the target code of the place-cell readout (issue 18, item 4)."""

import json

import numpy as np
import pytest

import gridcore
from gridcore.sim.arenas import WALLED_ARENA_NAMES, Polygon, make_arena
from gridcore.sim.placecells import PLACE_CELL_DEFAULTS, PlaceCells

PENTAGON = Polygon([(1.0, 0.0), (0.5, 0.9), (-0.6, 0.8), (-0.9, -0.3), (0.2, -1.0)], name="pentagon")
ARENAS = [make_arena(n, 2.2) for n in WALLED_ARENA_NAMES] + [PENTAGON]   # the torus: tests/test_torus.py


def dense_lattice(arena, n=80):
    """Positions on an n x n grid over the arena's bounding box, those inside."""
    xmin, ymin, xmax, ymax = arena.bounds
    g = np.stack(np.meshgrid(np.linspace(xmin, xmax, n), np.linspace(ymin, ymax, n)), -1).reshape(-1, 2)
    return g[arena.contains(g)]


def distances(pc, p):
    return np.linalg.norm(p[:, None] - pc.centres, axis=-1)


def positive_lobe_count(pc, p):
    """Cells whose difference of Gaussians is > 0 before the shift (the centre's lobe)."""
    z = -distances(pc, p) ** 2 / (2 * pc.sigma**2)

    def softmax(v):
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return np.sum(softmax(z) - softmax(z / pc.surround_scale) > 0, axis=-1)


@pytest.mark.parametrize("surround", [True, False], ids=["dog", "gauss"])
@pytest.mark.parametrize("layout", ["random", "lattice"])
@pytest.mark.parametrize("arena", ARENAS, ids=lambda a: a.name)
def test_encode_is_a_distribution_peaking_at_the_nearest_centre(arena, layout, surround):
    pc = PlaceCells(arena, n_cells=256, sigma=0.12, surround=surround, layout=layout, seed=1)
    p = dense_lattice(arena, 60)
    t = pc.encode(p)
    assert t.shape == (len(p), 256) and t.dtype == np.float64
    assert np.all(t >= 0)
    np.testing.assert_allclose(t.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.argmax(t, axis=-1), np.argmin(distances(pc, p), axis=-1))
    # Any leading shape; a single position.
    np.testing.assert_array_equal(pc.encode(p[:12].reshape(3, 4, 2)), t[:12].reshape(3, 4, 256))
    np.testing.assert_array_equal(pc.encode(p[0]), t[0])


def test_difference_of_gaussians_matches_the_published_construction():
    # Sorscher et al.: softmax(-d^2 / 2 sigma^2) - softmax(-d^2 / (2 * 2 sigma^2)),
    # shifted by its minimum over cells and divided by its sum.
    pc = PlaceCells("square", n_cells=50, sigma=0.2, seed=3)
    p = np.array([[0.1, -0.3], [0.9, 0.9], [0.0, 0.0]])
    d2 = distances(pc, p) ** 2
    centre = np.exp(-d2 / (2 * 0.2**2))
    centre /= centre.sum(-1, keepdims=True)
    surround = np.exp(-d2 / (2 * 2 * 0.2**2))
    surround /= surround.sum(-1, keepdims=True)
    g = centre - surround
    g += np.abs(g.min(-1, keepdims=True))
    g /= g.sum(-1, keepdims=True)
    np.testing.assert_allclose(pc.encode(p), g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(PlaceCells("square", n_cells=50, sigma=0.2, seed=3, surround=False).encode(p),
                               centre, rtol=1e-12, atol=1e-15)
    assert np.all(pc.encode(p).min(axis=-1) == 0)          # the shift puts the minimum at 0


@pytest.mark.parametrize("layout", ["random", "lattice"])
@pytest.mark.parametrize("arena", ARENAS, ids=lambda a: a.name)
def test_decode_of_encode_is_close(arena, layout):
    # Tolerance, and why: decode averages the centres of the k most active
    # cells. For the Gaussian code these are the k nearest centres (the code
    # falls with distance), and the mean of points within r_k(p), the distance
    # from p to its k-th nearest centre, lies within r_k(p): so
    # |decode(encode(p)) - p| <= r_k(p) at every position; r_k stays below 3
    # mean spacings (0.29 m for 512 cells in Sorscher et al.'s 2.2 m box) even
    # in the corners, and the median error is below half a spacing. For the difference
    # of Gaussians the same holds wherever at least k cells lie in the
    # centre's positive lobe (there the code also falls with distance, and
    # every other cell is lower); elsewhere (a sparse patch of random
    # centres) the far cells tie near the shifted minimum and the k-th most
    # active cell can be anywhere. That happens at under 1% of positions.
    k = 3
    p = dense_lattice(arena)
    for surround in (False, True):
        pc = PlaceCells(arena, surround=surround, layout=layout, seed=0)
        err = np.linalg.norm(pc.decode(pc.encode(p), k=k) - p, axis=-1)
        r_k = np.sort(distances(pc, p), axis=-1)[:, k - 1]
        ok = positive_lobe_count(pc, p) >= k if surround else np.ones(len(p), bool)
        assert ok.mean() > 0.99
        assert np.all(err[ok] <= r_k[ok] + 1e-12)
        spacing = np.sqrt(arena.area / pc.n_cells)
        assert r_k.max() < 3 * spacing
        assert np.median(err) < 0.5 * spacing


def test_decode_takes_logits_and_any_k():
    pc = PlaceCells("hexagon", n_cells=64, seed=2)
    p = np.array([[0.2, 0.1], [-0.5, 0.3]])
    target = pc.encode(p)
    # Logits: any monotone transform of the activity decodes the same.
    np.testing.assert_array_equal(pc.decode(np.log(target + 1e-300) + 7.0), pc.decode(target))
    np.testing.assert_array_equal(pc.decode(target, k=1), pc.centres[np.argmax(target, axis=-1)])
    np.testing.assert_allclose(pc.decode(target, k=64), np.broadcast_to(pc.centres.mean(0), (2, 2)))
    assert pc.decode(target.reshape(1, 2, 64)).shape == (1, 2, 2)


def test_seeds_reproduce():
    a = PlaceCells("circle", n_cells=100, seed=7)
    b = PlaceCells("circle", n_cells=100, seed=7)
    c = PlaceCells("circle", n_cells=100, seed=8)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert not np.array_equal(a.centres, c.centres) and a == b and a != c
    np.testing.assert_array_equal(a.centres, make_arena("circle").sample_uniform(100, np.random.default_rng(7)))
    # The lattice does not depend on the seed.
    np.testing.assert_array_equal(PlaceCells("square", layout="lattice", seed=1).centres,
                                  PlaceCells("square", layout="lattice", seed=2).centres)


@pytest.mark.parametrize("layout", ["random", "lattice"])
@pytest.mark.parametrize("arena", ARENAS + [make_arena("triangle", 0.5)], ids=lambda a: f"{a.name}-{a.area:.2g}")
def test_centres_lie_inside_the_arena(arena, layout):
    pc = PlaceCells(arena, n_cells=300, layout=layout, seed=4)
    assert pc.centres.shape == (300, 2) and pc.n_cells == 300
    assert np.all(arena.wall_distance(pc.centres) > 0)
    assert len(np.unique(pc.centres, axis=0)) == 300
    if layout == "random":   # spread over the whole arena, not bunched
        ref = arena.sample_uniform(50_000, 0)
        np.testing.assert_allclose(pc.centres.mean(0), ref.mean(0), atol=0.15 * np.sqrt(arena.area))
    else:                    # a square lattice: nearest neighbours one spacing apart
        d = distances(pc, pc.centres)
        np.fill_diagonal(d, np.inf)
        nearest = d.min(axis=1)
        np.testing.assert_allclose(nearest, nearest[0], rtol=1e-9)
        assert nearest[0] == pytest.approx(np.sqrt(arena.area / 300), rel=0.2)


def test_lattice_in_a_square_is_the_k_by_k_grid():
    pc = PlaceCells(make_arena("square", 2.2), n_cells=16, layout="lattice")
    xs = np.unique(pc.centres[:, 0])
    np.testing.assert_allclose(xs, [-0.825, -0.275, 0.275, 0.825], atol=1e-12)
    np.testing.assert_allclose(np.unique(pc.centres[:, 1]), xs, atol=1e-12)


def test_round_trip_through_json():
    for kwargs in ({}, {"layout": "lattice", "surround": False, "sigma": 0.3, "n_cells": 40},
                   {"surround_scale": 3.0, "seed": 11, "n_cells": 10}):
        pc = PlaceCells(PENTAGON, **kwargs)
        d = json.loads(json.dumps(pc.to_dict()))
        assert set(d) == {"centres", "sigma", "surround", "surround_scale", "layout", "seed", "arena"}
        back = PlaceCells.from_dict(d)
        assert back == pc and repr(back) == repr(pc)
        np.testing.assert_array_equal(back.centres, pc.centres)
        p = PENTAGON.sample_uniform(20, 0)
        np.testing.assert_array_equal(back.encode(p), pc.encode(p))


def test_defaults_are_sorscher_et_al():
    pc = PlaceCells("square")
    assert PLACE_CELL_DEFAULTS == {"n_cells": 512, "sigma": 0.12, "surround": True, "surround_scale": 2.0,
                                   "layout": "random", "seed": 0}
    assert (pc.n_cells, pc.sigma, pc.surround, pc.surround_scale, pc.layout, pc.seed) == (
        512, 0.12, True, 2.0, "random", 0)
    assert gridcore.PlaceCells is PlaceCells


def test_given_centres():
    c = [[0.0, 0.0], [0.5, 0.5], [-0.5, 0.2]]
    pc = PlaceCells("square", centres=c)
    assert pc.n_cells == 3
    np.testing.assert_array_equal(pc.centres, c)
    with pytest.raises(ValueError):
        pc.centres[0, 0] = 1.0           # read-only


@pytest.mark.parametrize("kwargs, match", [
    ({"arena": "octagon"}, "octagon.*square.*triangle.*hexagon.*circle"),
    ({"arena": 3}, "arena must be an Arena or a name"),
    ({"n_cells": 1}, "n_cells must be an integer >= 2, got 1"),
    ({"n_cells": 10.0}, "n_cells must be an integer >= 2"),
    ({"n_cells": True}, "n_cells must be an integer >= 2"),
    ({"sigma": 0.0}, "sigma must be finite and > 0"),
    ({"sigma": np.inf}, "sigma must be finite and > 0"),
    ({"sigma": "wide"}, "sigma must be a real number"),
    ({"surround": 1}, "surround must be True or False"),
    ({"surround_scale": 1.0}, "surround_scale must be finite and > 1"),
    ({"layout": "hexagonal"}, "unknown layout 'hexagonal'; allowed: 'random', 'lattice'"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"seed": None}, "seed must be a non-negative int"),
    ({"centres": [[0.0, 0.0], [2.0, 0.0]]},
     r"centres must lie inside the square arena; 1 do not \(first: \[2.0, 0.0\]\)"),
    ({"centres": [[0.0, 0.0]]}, r"centres must have shape \(N_p, 2\) with N_p >= 2"),
    ({"centres": [[0.0, np.nan], [0.1, 0.1]]}, "centres must be finite"),
    ({"centres": [[0.0, 0.0], [0.1, 0.1]], "n_cells": 5}, "n_cells = 5 but 2 centres were given"),
])
def test_bad_arguments_are_named(kwargs, match):
    kwargs = {"arena": "square", **kwargs}
    with pytest.raises(ValueError, match=match):
        PlaceCells(**kwargs)


def test_bad_calls_are_named():
    pc = PlaceCells("square", n_cells=20)
    with pytest.raises(ValueError, match=r"positions must have shape \(..., 2\), got shape \(4, 3\)"):
        pc.encode(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="positions must be finite"):
        pc.encode([[np.nan, 0.0]])
    with pytest.raises(ValueError, match=r"activity must have shape \(..., 20\) \(one value per cell\)"):
        pc.decode(np.zeros((4, 19)))
    with pytest.raises(ValueError, match="activity contains NaN"):
        pc.decode(np.full(20, np.nan))
    for k in (0, 21, 2.0, True):
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, 20\]"):
            pc.decode(np.zeros(20), k=k)
    good = pc.to_dict()
    with pytest.raises(ValueError, match="exactly the keys"):
        PlaceCells.from_dict({**good, "extra": 1})
    with pytest.raises(ValueError, match="exactly the keys"):
        PlaceCells.from_dict({k: v for k, v in good.items() if k != "sigma"})
    with pytest.raises(ValueError, match="must be a dict"):
        PlaceCells.from_dict([1, 2])
    with pytest.raises(ValueError, match="centres must lie inside the square arena"):
        PlaceCells.from_dict({**good, "centres": [[5.0, 5.0]] + good["centres"][1:]})
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        PlaceCells.from_dict({**good, "sigma": -1})
