import numpy as np
import pytest

from gridcore.sim.arenas import ARENA_NAMES, Polygon, make_arena
from gridcore.sim.trajectories import (
    ENCODINGS,
    MOTION_DEFAULTS,
    Trajectories,
    _predraw,
    encode,
    n_inputs,
    simulate,
)

PENTAGON = Polygon([(1.0, 0.0), (0.5, 0.9), (-0.6, 0.8), (-0.9, -0.3),
                    (0.2, -1.0)], name="pentagon")
ARENAS = [make_arena(n) for n in ARENA_NAMES] + [PENTAGON]


def wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def velocity(tr):
    return tr.speed[..., None] * np.stack([np.cos(tr.heading),
                                           np.sin(tr.heading)], axis=-1)


@pytest.mark.parametrize("arena", ARENAS, ids=lambda a: a.name)
@pytest.mark.parametrize("motion", [
    {},
    {"speed_scale": 0.3, "max_speed": np.inf, "p_zero_speed": 0.5},
    # No retries: every wall hit takes the turn-to-centre fallback.
    {"speed_scale": 0.3, "max_speed": np.inf, "max_retries": 0,
     "start": "uniform"},
], ids=["default", "fast", "fallback"])
def test_positions_never_leave_and_follow_velocity(arena, motion):
    tr = simulate(arena, 200, 500, 11, **motion)
    assert np.all(arena.contains(tr.positions))
    assert np.all(arena.contains(tr.final_position))
    assert tr.boundary.any()
    v = velocity(tr)
    np.testing.assert_allclose(tr.positions[:, 1:], tr.positions[:, :-1] + v[:, :-1],
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(tr.final_position, tr.positions[:, -1] + v[:, -1],
                               rtol=0, atol=1e-13)
    assert np.all(tr.heading >= -np.pi) and np.all(tr.heading < np.pi)


def test_output_types_and_shapes():
    tr = simulate("triangle", 7, 13, 0, encoding="speed-cos-sin")
    assert isinstance(tr, Trajectories)
    for name, shape in [("inputs", (7, 13, 3)), ("positions", (7, 13, 2)),
                        ("speed", (7, 13)), ("heading", (7, 13)),
                        ("final_position", (7, 2))]:
        a = getattr(tr, name)
        assert a.shape == shape and a.dtype == np.float64 and a.flags.c_contiguous
    assert tr.boundary.shape == (7, 13) and tr.boundary.dtype == np.bool_
    assert tr.encoding == "speed-cos-sin" and tr.arena.name == "triangle"
    assert tr.motion == MOTION_DEFAULTS
    np.testing.assert_array_equal(tr.positions[:, 0], 0.0)  # start="centre"


def test_zero_speed_fraction():
    n = 200 * 500
    for p in (0.9, 0.5):
        tr = simulate("square", 200, 500, 5, p_zero_speed=p)
        frac = np.count_nonzero(tr.speed == 0) / n
        assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)
    tr = simulate("square", 200, 500, 5, max_speed=0.1)
    assert tr.speed.max() <= 0.1 and np.any(tr.speed == 0.1)


def test_rayleigh_speeds():
    tr = simulate("square", 200, 500, 6, p_zero_speed=0.0, speed_scale=0.01,
                  max_speed=np.inf)
    s = tr.speed[~tr.boundary]
    mean = 0.01 * np.sqrt(np.pi / 2)
    sd = 0.01 * np.sqrt((4 - np.pi) / 2)
    assert abs(s.mean() - mean) < 5 * sd / np.sqrt(s.size)


def test_heading_runs():
    # p_keep=1 and no walls in reach: the heading never changes.
    tr = simulate("square", 50, 100, 2, p_keep=1.0, speed_scale=1e-4)
    assert not tr.boundary.any()
    np.testing.assert_array_equal(tr.heading, tr.heading[:, :1].repeat(100, axis=1))
    # Otherwise a fraction 1 - p_keep of steps turn, with sd sigma_turn.
    tr = simulate("square", 200, 500, 2, p_keep=0.7, sigma_turn=0.2,
                  speed_scale=1e-4)
    turns = wrap(np.diff(tr.heading, axis=1))
    assert np.mean(turns != 0) == pytest.approx(0.3, abs=0.01)
    assert np.std(turns[turns != 0]) == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_encoding_columns(encoding):
    tr = simulate("hexagon", 20, 50, 3, encoding=encoding)
    s, h = tr.speed, tr.heading
    expected = {
        "speed-angle": [s, h],
        "speed-cos-sin": [s, np.cos(h), np.sin(h)],
        "velocity": [s * np.cos(h), s * np.sin(h)],
    }[encoding]
    assert tr.inputs.shape[-1] == n_inputs(encoding) == len(expected)
    for k, col in enumerate(expected):
        np.testing.assert_array_equal(tr.inputs[..., k], col)
    np.testing.assert_array_equal(encode(s, h, encoding), tr.inputs)


def test_determinism():
    a = simulate("circle", 30, 200, 42, start="uniform")
    b = simulate("circle", 30, 200, np.random.default_rng(42), start="uniform")
    c = simulate("circle", 30, 200, 43, start="uniform")
    for name in ("inputs", "positions", "speed", "heading", "boundary",
                 "final_position"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.positions, c.positions)
    assert not np.array_equal(a.boundary, c.boundary)
    # A Generator advances: two calls give different trials.
    rng = np.random.default_rng(42)
    first = simulate("circle", 30, 200, rng)
    second = simulate("circle", 30, 200, rng)
    assert not np.array_equal(first.positions, second.positions)


@pytest.mark.parametrize("arena", ARENAS, ids=lambda a: a.name)
def test_boundary_flags_exactly_resamples(arena):
    seed, M, T = 8, 100, 500
    tr = simulate(arena, M, T, seed)
    start, heading0, speed0, turn, _ = _predraw(
        np.random.default_rng(seed), arena, M, T, tr.motion)
    previous = np.concatenate([heading0[:, None], tr.heading[:, :-1]], axis=1)
    proposed = wrap(previous + turn)
    flagged = tr.boundary
    assert 0 < flagged.mean() < 0.02
    # Unflagged steps keep the pre-drawn turn and speed: nothing resampled.
    diff = wrap(tr.heading - proposed)
    np.testing.assert_allclose(diff[~flagged], 0, atol=1e-12)
    np.testing.assert_array_equal(tr.speed[~flagged], speed0[~flagged])
    # Flagged steps moved, their proposed move would have left, and the
    # heading really changed.
    assert np.all(speed0[flagged] > 0)
    step = speed0[..., None] * np.stack([np.cos(proposed), np.sin(proposed)], -1)
    assert np.all(arena.wall_distance(tr.positions + step)[flagged] < 1e-8)
    assert np.all(np.abs(diff[flagged]) > 0)
    np.testing.assert_array_equal(tr.positions[:, 0], start)


def test_fallback_turns_to_centre():
    tr = simulate("square", 100, 300, 4, max_retries=0, speed_scale=0.3,
                  max_speed=np.inf)
    f = tr.boundary
    p = tr.positions[f]
    assert f.sum() > 10
    np.testing.assert_allclose(wrap(tr.heading[f] - np.arctan2(-p[:, 1], -p[:, 0])),
                               0, atol=1e-12)
    assert np.all(tr.speed[f] <= np.linalg.norm(p, axis=1))


def test_uniform_start():
    for arena in ARENAS:
        tr = simulate(arena, 500, 2, 9, start="uniform")
        p0 = tr.positions[:, 0]
        assert np.all(arena.contains(p0))
        assert np.all(np.linalg.norm(p0, axis=1) > 0)
        reference = arena.sample_uniform(100_000, 0).std(axis=0)
        np.testing.assert_allclose(p0.std(axis=0), reference, rtol=0.15)


@pytest.mark.parametrize("kwargs, match", [
    ({"bogus": 1}, "bogus.*p_zero_speed.*max_retries"),
    ({"p_zero_speed": 1.5}, "p_zero_speed"),
    ({"p_keep": np.nan}, "p_keep"),
    ({"speed_scale": 0.0}, "speed_scale"),
    ({"speed_scale": np.inf}, "speed_scale"),
    ({"max_speed": -1.0}, "max_speed"),
    ({"sigma_turn": -0.1}, "sigma_turn"),
    ({"start": "middle"}, "start.*centre.*uniform"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 2.5}, "max_retries"),
    ({"encoding": "polar"}, "polar.*speed-angle.*speed-cos-sin.*velocity"),
])
def test_bad_motion_and_encoding(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate("square", 2, 3, 0, **kwargs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="octagon.*square.*triangle.*hexagon.*circle"):
        simulate("octagon", 2, 3, 0)
    with pytest.raises(ValueError, match="arena"):
        simulate(5, 2, 3, 0)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="n_trials"):
            simulate("square", bad, 3, 0)
        with pytest.raises(ValueError, match="n_steps"):
            simulate("square", 2, bad, 0)
    for bad in (None, -1, "a", 1.5):
        with pytest.raises(ValueError, match="seed"):
            simulate("square", 2, 3, bad)
    with pytest.raises(ValueError, match="same shape"):
        encode(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="allowed"):
        n_inputs("polar")
