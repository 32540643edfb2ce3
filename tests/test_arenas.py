import json
import math

import numpy as np
import pytest

from gridcore.sim.arenas import (
    ARENA_NAMES,
    KIND_CIRCLE,
    KIND_POLYGON,
    Circle,
    Polygon,
    arena_from_dict,
    make_arena,
)
from gridcore.sim.walk import point_inside

# A convex but irregular pentagon around the origin.
PENTAGON = [(1.0, 0.0), (0.5, 0.9), (-0.6, 0.8), (-0.9, -0.3), (0.2, -1.0)]


def all_arenas():
    return [make_arena(n) for n in ARENA_NAMES] + [Polygon(PENTAGON, "pentagon")]


def grid_area(arena, n=801):
    """Area from counting grid cells whose centres are inside (independent of
    the shoelace formula)."""
    xmin, ymin, xmax, ymax = arena.bounds
    dx, dy = (xmax - xmin) / n, (ymax - ymin) / n
    x = xmin + dx * (np.arange(n) + 0.5)
    y = ymin + dy * (np.arange(n) + 0.5)
    pts = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1)
    return np.count_nonzero(arena.contains(pts)) * dx * dy


@pytest.mark.parametrize("name", ARENA_NAMES)
@pytest.mark.parametrize("size", [None, 0.5, 3.0])
def test_named_areas_equal_size_squared(name, size):
    arena = make_arena(name, size)
    expected = (2.0 if size is None else size) ** 2
    assert arena.area == pytest.approx(expected, rel=1e-12)
    assert grid_area(arena) == pytest.approx(expected, rel=5e-3)
    assert arena.name == name


def test_square_default_geometry():
    sq = make_arena("square")
    assert sq.bounds == (-1.0, -1.0, 1.0, 1.0)
    assert sq.inradius == 1.0
    assert sq.perimeter == 8.0
    np.testing.assert_array_equal(np.abs(sq.vertices), 1.0)


def test_triangle_and_hexagon_orientation():
    tri = make_arena("triangle")
    v = tri.vertices
    low = np.argsort(v[:, 1])[:2]
    assert v[low[0], 1] == pytest.approx(v[low[1], 1])  # horizontal base
    assert v[:, 1].argmax() not in low  # apex on top
    np.testing.assert_allclose(v.mean(axis=0), 0, atol=1e-12)  # centroid
    sides = np.linalg.norm(tri.walls[:, 1] - tri.walls[:, 0], axis=1)
    np.testing.assert_allclose(sides, sides[0])
    assert tri.inradius == pytest.approx(sides[0] / (2 * math.sqrt(3)))

    hexa = make_arena("hexagon")
    angles = np.rad2deg(np.arctan2(hexa.vertices[:, 1], hexa.vertices[:, 0]))
    np.testing.assert_allclose(np.sort(np.mod(angles, 360)),
                               np.arange(0, 360, 60), atol=1e-9)
    top = np.isclose(hexa.vertices[:, 1], hexa.bounds[3])
    assert np.count_nonzero(top) == 2  # flat top edge
    radius = np.linalg.norm(hexa.vertices, axis=1)
    assert hexa.inradius == pytest.approx(radius[0] * math.sqrt(3) / 2)


def test_circle_geometry():
    c = Circle(2.0)
    assert c.area == pytest.approx(4 * math.pi)
    assert c.perimeter == pytest.approx(4 * math.pi)
    assert c.inradius == 2.0
    assert c.bounds == (-2.0, -2.0, 2.0, 2.0)


@pytest.mark.parametrize("arena", all_arenas(), ids=lambda a: a.name)
def test_wall_distance_of_centre_is_inradius(arena):
    assert arena.wall_distance([0.0, 0.0]) == pytest.approx(arena.inradius)
    assert arena.inradius > 0


@pytest.mark.parametrize(
    "arena", [a for a in all_arenas() if isinstance(a, Polygon)],
    ids=lambda a: a.name)
def test_polygon_contains_vertices_centre_outside(arena):
    v = arena.vertices
    assert arena.contains([0.0, 0.0])
    assert np.all(arena.contains(v, tol=1e-12))
    assert np.all(arena.contains(0.99 * v))
    assert not np.any(arena.contains(1.01 * v))
    # Halfway along each wall is on the boundary; pushed outward it is out.
    mid = arena.walls.mean(axis=1)
    assert np.all(arena.contains(mid, tol=1e-12))
    assert not np.any(arena.contains(mid + 1e-6 * arena.normals))
    np.testing.assert_allclose(arena.wall_distance(mid + 0.1 * arena.normals), -0.1)


def test_circle_contains():
    c = make_arena("circle")
    r = c.radius
    pts = np.array([[0, 0], [r, 0], [0, -r], [0.99 * r, 0], [1.01 * r, 0],
                    [r, r]])
    np.testing.assert_array_equal(c.contains(pts, tol=1e-12),
                                  [True, True, True, True, False, False])
    np.testing.assert_allclose(c.wall_distance([[0, 0.5 * r], [2 * r, 0]]),
                               [0.5 * r, -r])


def test_square_wall_distance_and_nearest_wall():
    sq = make_arena("square")  # CCW from (-1, -1): bottom, right, top, left
    pts = np.array([[0.0, -0.9], [0.9, 0.1], [0.2, 0.7], [-0.8, 0.3],
                    [3.0, 0.0], [2.0, 2.0], [0.5, 0.2]])
    np.testing.assert_array_equal(sq.nearest_wall(pts), [0, 1, 2, 3, 1, 1, 1])
    np.testing.assert_allclose(sq.wall_distance(pts),
                               [0.1, 0.1, 0.3, 0.2, -2.0, -math.sqrt(2), 0.5])


def test_pentagon_nearest_wall_matches_brute_force():
    pent = Polygon(PENTAGON)
    pts = np.random.default_rng(0).uniform(-1.5, 1.5, (500, 2))
    # Brute force: dense samples along each wall.
    s = np.linspace(0, 1, 2001)[:, None]
    dists = np.stack([
        np.min(np.linalg.norm(pts[:, None] - (a + s * (b - a)), axis=-1), axis=1)
        for a, b in pent.walls], axis=1)
    ok = np.sort(dists, axis=1)[:, 1] - dists.min(axis=1) > 1e-3  # clear winner
    np.testing.assert_array_equal(pent.nearest_wall(pts)[ok],
                                  dists.argmin(axis=1)[ok])
    np.testing.assert_allclose(np.abs(pent.wall_distance(pts)), dists.min(axis=1),
                               atol=1e-3)


def test_circle_nearest_wall_is_zero():
    out = make_arena("circle").nearest_wall(np.ones((3, 4, 2)))
    assert out.shape == (3, 4)
    assert np.all(out == 0)


@pytest.mark.parametrize("arena", all_arenas(), ids=lambda a: a.name)
def test_vectorised_shapes_and_bad_last_axis(arena):
    pts = np.zeros((3, 4, 2))
    assert arena.contains(pts).shape == (3, 4)
    assert arena.wall_distance(pts).shape == (3, 4)
    assert arena.nearest_wall(pts).shape == (3, 4)
    assert arena.contains([0.0, 0.0]).shape == ()
    with pytest.raises(ValueError, match="points"):
        arena.contains(np.zeros((4, 3)))


def test_orientation_normals_offsets():
    cw = Polygon(PENTAGON[::-1])
    v = cw.vertices
    e = np.roll(v, -1, axis=0) - v
    assert np.sum(v[:, 0] * e[:, 1] - v[:, 1] * e[:, 0]) > 0  # stored CCW
    np.testing.assert_allclose(np.linalg.norm(cw.normals, axis=1), 1.0)
    np.testing.assert_allclose(np.sum(cw.normals * v, axis=1), cw.offsets)
    np.testing.assert_allclose(np.sum(cw.normals * np.roll(v, -1, axis=0), axis=1),
                               cw.offsets)
    assert np.all(cw.normals @ np.zeros(2) < cw.offsets)  # outward
    np.testing.assert_array_equal(cw.walls[:, 0], v)


@pytest.mark.parametrize("arena", all_arenas(), ids=lambda a: a.name)
def test_kernel_geometry_agrees_with_contains(arena):
    kind, params = arena.kernel_geometry()
    assert kind == (KIND_CIRCLE if isinstance(arena, Circle) else KIND_POLYGON)
    assert params.dtype == np.float64 and params.flags.c_contiguous
    pts = np.random.default_rng(1).uniform(-1.6, 1.6, (400, 2))
    got = [point_inside(kind, params, x, y, 0.0) for x, y in pts]
    np.testing.assert_array_equal(got, arena.contains(pts))
    # A margin excludes points closer than it to a wall.
    got = [point_inside(kind, params, x, y, 0.1) for x, y in pts]
    np.testing.assert_array_equal(got, arena.wall_distance(pts) >= 0.1)


@pytest.mark.parametrize("vertices, what", [
    ([(1, 1), (-1, 1), (0, 0.2), (-1, -1), (1, -1)], "convex"),  # notch
    (1.0 * np.array([(np.cos(a), np.sin(a)) for a in
                     np.deg2rad(np.arange(5) * 144)]), "convex"),  # star
    ([(1, 0), (1, 1), (1, 2), (-1, 0)], "convex"),  # collinear corners
    ([(1, 0), (0, 1), (0, 1), (-1, -1)], "degenerate"),  # repeated corner
    ([(1, 0), (0, 1)], "shape"),
    ([(1, 0, 0), (0, 1, 0), (-1, -1, 0)], "shape"),
    ([(1, 0), (0, np.nan), (-1, -1)], "finite"),
    ([(2, 0.5), (3, 0.5), (3, 1.5), (2, 1.5)], "origin"),  # origin outside
    ([(0, 0), (1, 0), (0, 1)], "origin"),  # origin on a corner
])
def test_polygon_rejects_bad_vertices(vertices, what):
    with pytest.raises(ValueError, match="vertices") as err:
        Polygon(vertices)
    assert what in str(err.value)


def test_make_arena_errors():
    with pytest.raises(ValueError) as err:
        make_arena("octagon")
    assert all(n in str(err.value) for n in ARENA_NAMES)
    for bad in (0, -1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="size"):
            make_arena("square", bad)
    with pytest.raises(ValueError, match="radius"):
        Circle(-1.0)


@pytest.mark.parametrize("arena", all_arenas(), ids=lambda a: a.name)
def test_to_dict_round_trip(arena):
    d = json.loads(json.dumps(arena.to_dict()))
    back = arena_from_dict(d)
    assert type(back) is type(arena)
    assert back.to_dict() == arena.to_dict()
    assert repr(back) == repr(arena)
    assert back.area == arena.area and back.bounds == arena.bounds
    if isinstance(arena, Polygon):
        np.testing.assert_array_equal(back.vertices, arena.vertices)
        np.testing.assert_array_equal(back.normals, arena.normals)


def test_arena_from_dict_errors():
    with pytest.raises(ValueError, match="kind"):
        arena_from_dict({"kind": "blob"})
    with pytest.raises(ValueError, match="keys"):
        arena_from_dict({"kind": "circle", "radius": 1.0})


@pytest.mark.parametrize("arena", all_arenas(), ids=lambda a: a.name)
def test_sample_uniform(arena):
    pts = arena.sample_uniform(20000, np.random.default_rng(3))
    assert pts.shape == (20000, 2)
    assert np.all(arena.contains(pts))
    np.testing.assert_array_equal(pts, arena.sample_uniform(20000, 3))
    assert arena.sample_uniform(0, 0).shape == (0, 2)
    if arena.name in ARENA_NAMES:
        # Named arenas have their centroid at 0, and the points farther than
        # inradius/2 from every wall fill the half-scale copy: 1/4 of the area.
        np.testing.assert_allclose(pts.mean(axis=0), 0, atol=0.03)
        frac = np.mean(arena.wall_distance(pts) > arena.inradius / 2)
        assert frac == pytest.approx(0.25, abs=0.015)


@pytest.mark.parametrize("size", [0.0, -1.0, 1e-300, 1e300, float("nan"), float("inf"), True, "2"])
def test_bad_sizes_name_the_allowed_range(size):
    with pytest.raises(ValueError, match=r"size must be a number in \[1e-06, 1e\+06\]"):
        make_arena("square", size=size)
