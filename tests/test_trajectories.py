import numpy as np
import pytest

from gridcore.sim.arenas import WALLED_ARENA_NAMES, Polygon, make_arena
from gridcore.sim.trajectories import (
    ENCODINGS,
    MOTION_DEFAULTS,
    MOTION_MODELS,
    SMOOTH_MOTION_DEFAULTS,
    Trajectories,
    _predraw,
    _predraw_smooth,
    encode,
    motion_params,
    n_inputs,
    simulate,
)

PENTAGON = Polygon([(1.0, 0.0), (0.5, 0.9), (-0.6, 0.8), (-0.9, -0.3),
                    (0.2, -1.0)], name="pentagon")
ARENAS = [make_arena(n) for n in WALLED_ARENA_NAMES] + [PENTAGON]   # the torus: tests/test_torus.py


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


# ---------------------------------------------------------------- the smooth motion model

SMOOTH_ARENAS = ARENAS + [make_arena("square", 2.2), make_arena("circle", 0.3),
                          Polygon([(0.05, 0.0), (0.0, 0.05), (-0.05, -0.05)], name="tiny")]


def predraw_smooth(seed, arena, M, T, motion):
    return _predraw_smooth(np.random.default_rng(seed), arena, M, T, motion)


@pytest.mark.parametrize("arena", SMOOTH_ARENAS, ids=lambda a: f"{a.name}-{a.area:.3g}")
@pytest.mark.parametrize("motion", [
    {},
    # Fast and twitchy, no slowing down: walls are hit head-on and at corners.
    {"rayleigh_scale": 5.0, "rotation_sd": 30.0, "wall_slowdown": 1.0, "border_region": 0.0},
    {"dt": 0.1, "border_region": 0.3, "wall_slowdown": 0.0, "start": "centre"},
], ids=["default", "fast", "slow-border"])
def test_smooth_never_leaves_and_follows_velocity(arena, motion):
    tr = simulate(arena, 200, 400, 3, motion_model="smooth", **motion)
    assert tr.motion_model == "smooth" and tr.motion == {**SMOOTH_MOTION_DEFAULTS, **motion}
    assert np.all(arena.contains(tr.positions)) and np.all(arena.contains(tr.final_position))
    assert tr.boundary.any()
    v = velocity(tr)
    np.testing.assert_allclose(tr.positions[:, 1:], tr.positions[:, :-1] + v[:, :-1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(tr.final_position, tr.positions[:, -1] + v[:, -1], rtol=0, atol=1e-13)
    assert np.all(tr.heading >= -np.pi) and np.all(tr.heading < np.pi)
    assert np.all(tr.speed >= 0)
    np.testing.assert_array_equal(tr.start, tr.positions[:, 0])


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_smooth_output_and_encodings(encoding):
    tr = simulate("hexagon", 7, 13, 0, encoding=encoding, motion_model="smooth")
    assert isinstance(tr, Trajectories) and tr.encoding == encoding
    for name, shape in [("inputs", (7, 13, n_inputs(encoding))), ("positions", (7, 13, 2)),
                        ("speed", (7, 13)), ("heading", (7, 13)), ("final_position", (7, 2)),
                        ("start", (7, 2))]:
        a = getattr(tr, name)
        assert a.shape == shape and a.dtype == np.float64
    assert tr.boundary.shape == (7, 13) and tr.boundary.dtype == np.bool_
    np.testing.assert_array_equal(tr.inputs, encode(tr.speed, tr.heading, encoding))


def test_start_positions():
    # The paper's model starts at the centre, the smooth one anywhere (uniform).
    np.testing.assert_array_equal(simulate("square", 5, 3, 0).start, 0.0)
    for arena in ARENAS:
        tr = simulate(arena, 2000, 1, 9, motion_model="smooth")
        assert np.all(arena.contains(tr.start)) and np.all(np.linalg.norm(tr.start, axis=1) > 0)
        reference = arena.sample_uniform(100_000, 0).std(axis=0)
        np.testing.assert_allclose(tr.start.std(axis=0), reference, rtol=0.1)
    tr = simulate("circle", 4, 2, 1, motion_model="smooth", start="centre")
    np.testing.assert_array_equal(tr.start, 0.0)


def test_smooth_statistics_away_from_walls():
    # Away from the walls the model is its random parts: Rayleigh speeds of
    # scale b dt per step and Gaussian turns of sd sigma_w dt per step.
    dt, b, sd = 0.02, 0.5, 4.0
    tr = simulate(make_arena("square", 20.0), 200, 300, 4, motion_model="smooth", dt=dt,
                  rayleigh_scale=b, rotation_sd=sd, start="centre")
    assert not tr.boundary.any()
    s = tr.speed.ravel()
    mean, sdev = b * dt * np.sqrt(np.pi / 2), b * dt * np.sqrt((4 - np.pi) / 2)
    assert abs(s.mean() - mean) < 5 * sdev / np.sqrt(s.size)
    turns = wrap(np.diff(tr.heading, axis=1)).ravel()
    assert abs(turns.mean()) < 5 * sd * dt / np.sqrt(turns.size)
    assert turns.std() == pytest.approx(sd * dt, rel=0.01)


def smooth_reference(arena, start, heading0, speed, rotation, border, slowdown):
    """The smooth model written out step by step from the arena's geometry (slow, plain Python)."""
    margin = 1e-9 * arena.inradius
    circle = arena.name == "circle" or not hasattr(arena, "normals")

    def nearest(p):
        if circle:
            r = np.hypot(*p)
            return arena.radius - r, (p / r if r > 0 else np.array([1.0, 0.0]))
        d = arena.offsets - arena.normals @ p
        return d.min(), arena.normals[np.argmin(d)]

    def first_wall(p, u, m):
        if circle:
            b = p @ u
            t = max(0.0, -b + np.sqrt(max(b * b - (p @ p - (arena.radius - m) ** 2), 0.0)))
            c = p + t * u
            return t, c / np.hypot(*c)
        nu = arena.normals @ u
        t = np.where(nu > 0, (arena.offsets - m - arena.normals @ p) / np.where(nu > 0, nu, 1), np.inf)
        return max(t.min(), 0.0), arena.normals[np.argmin(t)]

    def inside(q, m):
        return arena.wall_distance(q) >= m if circle else np.all(arena.normals @ q <= arena.offsets - m)

    M, T = speed.shape
    pos, head = np.empty((M, T, 2)), np.empty((M, T))
    spd, flag = np.empty((M, T)), np.zeros((M, T), bool)
    for m in range(M):
        p, h = start[m].copy(), heading0[m]
        for t in range(T):
            pos[m, t] = p
            s, turn = speed[m, t], rotation[m, t]
            d, n = nearest(p)
            a = wrap(h - np.arctan2(n[1], n[0]))
            if d < border and abs(a) < np.pi / 2:
                flag[m, t] = True
                turn += np.sign(a) * (np.pi / 2 - abs(a))
                s *= slowdown
            h = wrap(h + turn)
            u = np.array([np.cos(h), np.sin(h)])
            if not inside(p + s * u, margin):
                flag[m, t] = True
                _, n = first_wall(p, u, 0.0)
                u = u - 2 * (u @ n) * n
                h = wrap(np.arctan2(u[1], u[0]))
                u = np.array([np.cos(h), np.sin(h)])
                if not inside(p + s * u, margin):
                    s = min(s, first_wall(p, u, margin)[0])
                    if not inside(p + s * u, 0.0):
                        s = 0.0
            spd[m, t], head[m, t] = s, h
            p = p + s * u
    return pos, head, spd, flag


@pytest.mark.parametrize("arena", SMOOTH_ARENAS[:5], ids=lambda a: a.name)
@pytest.mark.parametrize("motion", [{"border_region": 0.1}, {"rayleigh_scale": 4.0, "border_region": 0.0}],
                         ids=["wide-border", "bouncing"])
def test_smooth_matches_a_step_by_step_reference(arena, motion):
    # Turning away near walls, slowing down, bouncing and cutting moves short,
    # exactly as documented: the kernel against the model written out in Python.
    seed, M, T = 5, 20, 300
    tr = simulate(arena, M, T, seed, motion_model="smooth", **motion)
    start, heading0, speed0, rotation = _predraw_smooth(np.random.default_rng(seed), arena, M, T, tr.motion)
    np.testing.assert_array_equal(tr.start, start)
    pos, head, spd, flag = smooth_reference(arena, start, heading0, speed0, rotation,
                                            tr.motion["border_region"], tr.motion["wall_slowdown"])
    # Same decisions at every step; the numbers agree to round-off, which
    # accumulates along a path (equivalent expressions, other libm calls).
    np.testing.assert_array_equal(tr.boundary, flag)
    np.testing.assert_allclose(tr.positions, pos, rtol=0, atol=1e-9)
    np.testing.assert_allclose(wrap(tr.heading - head), 0, atol=1e-9)
    np.testing.assert_allclose(tr.speed, spd, rtol=0, atol=1e-9)
    assert 0.005 < flag.mean() < 0.3
    # Steps without a wall keep the pre-drawn speed and rotation.
    previous = np.concatenate([heading0[:, None], tr.heading[:, :-1]], axis=1)
    np.testing.assert_array_equal(tr.speed[~flag], speed0[~flag])
    np.testing.assert_allclose(wrap(tr.heading - previous - rotation)[~flag], 0, atol=1e-12)
    if motion["border_region"] > 0:   # turning away: slowed to a quarter, no more into the nearest wall
        near = arena.wall_distance(tr.positions) < motion["border_region"]
        assert np.mean(tr.speed[flag & near] <= 0.25 * speed0[flag & near] * (1 + 1e-12)) > 0.99


def test_smooth_occupancy_covers_the_arena():
    arena = make_arena("square", 2.2)
    tr = simulate(arena, 200, 500, 7, motion_model="smooth")
    h, _, _ = np.histogram2d(tr.positions[..., 0].ravel(), tr.positions[..., 1].ravel(), bins=11,
                             range=[[-1.1, 1.1]] * 2)
    h /= h.mean()
    # Roughly even (Sorscher et al.'s generator gives 0.7-1.7 on this grid), more along the walls.
    assert h.min() > 0.6 and h.max() < 2.0
    assert h[1:-1, 1:-1].mean() < h[[0, -1]].mean()


def test_smooth_determinism():
    a = simulate("triangle", 30, 200, 42, motion_model="smooth")
    b = simulate("triangle", 30, 200, np.random.default_rng(42), motion_model="smooth")
    c = simulate("triangle", 30, 200, 43, motion_model="smooth")
    for name in ("inputs", "positions", "speed", "heading", "boundary", "final_position"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.positions, c.positions)
    rng = np.random.default_rng(42)
    first = simulate("triangle", 30, 200, rng, motion_model="smooth")
    assert not np.array_equal(first.positions, simulate("triangle", 30, 200, rng, motion_model="smooth").positions)


def test_paper_model_is_the_default():
    a = simulate("square", 20, 50, 1)
    b = simulate("square", 20, 50, 1, motion_model="paper")
    assert a.motion_model == b.motion_model == "paper" and a.motion == MOTION_DEFAULTS
    np.testing.assert_array_equal(a.positions, b.positions)
    assert motion_params({}) == MOTION_DEFAULTS
    assert motion_params({}, "smooth") == SMOOTH_MOTION_DEFAULTS
    assert set(MOTION_MODELS) == {"paper", "smooth"}


@pytest.mark.parametrize("kwargs, match", [
    ({"motion_model": "levy"}, "motion_model 'levy'; allowed: 'paper', 'smooth'"),
    ({"motion_model": "smooth", "p_keep": 0.5}, r"'smooth' motion parameter\(s\) \['p_keep'\].*dt, rotation_sd"),
    ({"rotation_sd": 1.0}, r"'paper' motion parameter\(s\) \['rotation_sd'\]"),
    ({"motion_model": "smooth", "dt": 0.0}, r"dt must be positive and finite \(s\)"),
    ({"motion_model": "smooth", "dt": np.nan}, "dt"),
    ({"motion_model": "smooth", "rayleigh_scale": -1.0}, r"rayleigh_scale.*\(m/s\)"),
    ({"motion_model": "smooth", "rotation_sd": np.inf}, r"rotation_sd must be non-negative and finite \(rad/s\)"),
    ({"motion_model": "smooth", "border_region": -0.1}, r"border_region.*\(m\)"),
    ({"motion_model": "smooth", "wall_slowdown": 1.5}, r"wall_slowdown must be a factor in \[0, 1\]"),
    ({"motion_model": "smooth", "wall_slowdown": True}, "wall_slowdown"),
    ({"motion_model": "smooth", "start": "corner"}, "start must be one of centre, uniform"),
])
def test_bad_smooth_motion(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate("square", 2, 3, 0, **kwargs)
