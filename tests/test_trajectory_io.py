"""Path files in and out, resampling, fitting into arenas, boundary marks, lead-ins and path statistics."""

import importlib.util
import math

import numpy as np
import pytest

from gridcore.analysis.pathstats import path_statistics
from gridcore.sim import ratinabox as ratinabox_paths
from gridcore.sim.arenas import make_arena
from gridcore.sim.pathfiles import load_trajectories, read_path, write_trajectories
from gridcore.sim.realpaths import (
    BOUNDARY_REACH_REL,
    fit_to_arena,
    lead_in,
    make_path,
    mark_boundary,
    matched_dt,
    motion_mean_speed,
    prepare,
    resample,
    split_trials,
    to_trajectories,
)
from gridcore.sim.trajectories import MOTION_DEFAULTS, encode, simulate

SQUARE = make_arena("square")


def write_csv(path, header, rows, comments=()):
    lines = list(comments) + [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def circle_path(n=3000, hz=50.0, radius=40.0, centre=(50.0, 50.0), turns=3.0):
    """A path in cm at ``hz`` going round a circle ``turns`` times at constant speed."""
    t = np.arange(n) / hz
    a = 2 * np.pi * turns * np.arange(n) / n
    return t, np.column_stack([centre[0] + radius * np.cos(a), centre[1] + radius * np.sin(a)])


# ---------------------------------------------------------------- export and reading back


@pytest.mark.parametrize("ext", [".csv", ".npz"])
def test_write_then_load_gives_the_same_trajectories(tmp_path, ext):
    tr = simulate("hexagon", 3, 60, 4, encoding="speed-cos-sin", speed_scale=0.3, max_speed=math.inf)
    assert tr.boundary.any()
    back = load_trajectories(write_trajectories(tmp_path / f"paths{ext}", tr))
    for name in ("inputs", "positions", "speed", "heading", "boundary", "final_position"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tr, name), err_msg=name)
    assert back.encoding == tr.encoding and back.arena.to_dict() == tr.arena.to_dict()
    assert back.motion == tr.motion          # max_speed = inf survives the JSON


def test_exported_file_is_a_plain_path_file(tmp_path):
    tr = simulate("square", 2, 30, 0)
    file = write_trajectories(tmp_path / "p.csv", tr, dt=0.02)
    text = file.read_text() if hasattr(file, "read_text") else open(file).read()
    assert text.splitlines()[1] == "trial,step,t,x,y,speed,heading,boundary"
    with pytest.raises(ValueError, match="holds 2 trials.*trial="):
        read_path(file)
    p = read_path(file, trial=1)
    assert p.units == "arena" and len(p.time) == 31
    np.testing.assert_allclose(p.time, 0.02 * np.arange(31))
    np.testing.assert_array_equal(p.positions[:30], tr.positions[1])
    np.testing.assert_array_equal(p.positions[30], tr.final_position[1])
    np.testing.assert_allclose(p.speed[:30], tr.speed[1] / 0.02)
    assert np.isnan(p.speed[30])
    with pytest.raises(ValueError, match="no trial 5"):
        read_path(file, trial=5)


def test_npz_with_pos_array_and_any_case(tmp_path):
    t, pos = circle_path(200)
    np.savez(tmp_path / "rat.npz", Time=t, pos=pos)
    p = read_path(tmp_path / "rat.npz")
    np.testing.assert_array_equal(p.positions, pos)
    np.savez(tmp_path / "bad.npz", t=t, pos=pos[:, :1])
    with pytest.raises(ValueError, match="'pos' must have shape"):
        read_path(tmp_path / "bad.npz")


def test_clear_errors_for_bad_files(tmp_path):
    with pytest.raises(ValueError, match="no x position column; expected 'x', found"):
        read_path(write_csv(tmp_path / "a.csv", "t,X_cm,y", [(0, 1, 2), (1, 2, 3)]))
    with pytest.raises(ValueError, match="no time column; expected 't' or 'time'"):
        read_path(write_csv(tmp_path / "b.csv", "x,y", [(1, 2), (2, 3)]))
    with pytest.raises(ValueError,
                       match=r"strictly increasing; sample 2 \(counting from 0\) has t = 0.5 s after t = 1.0 s"):
        read_path(write_csv(tmp_path / "c.csv", "time,x,y", [(0, 1, 1), (1, 1, 2), (0.5, 2, 2)]))
    with pytest.raises(ValueError, match="line 3, column 'y': 'abc' is not a number"):
        read_path(write_csv(tmp_path / "d.csv", "t,x,y", [(0, 1, 1), (1, 2, "abc")]))
    with pytest.raises(ValueError, match="line 4 has 2 fields, the header has 3"):
        read_path(write_csv(tmp_path / "e.csv", "t,x,y", [(0, 1, 1), (1, 2)], comments=["# from a tracker"]))
    with pytest.raises(ValueError, match="time must be finite; sample 1"):
        read_path(write_csv(tmp_path / "f.csv", "t,x,y", [(0, 1, 1), (None, 2, 2)]))
    with pytest.raises(ValueError, match="extension"):
        read_path(tmp_path / "g.txt")
    with pytest.raises(FileNotFoundError, match="no such path file"):
        read_path(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="not written by write_trajectories"):
        load_trajectories(write_csv(tmp_path / "h.csv", "t,x,y", [(0, 1, 1), (1, 2, 2)]))


# ---------------------------------------------------------------- resampling


def test_resample_interpolates_short_gaps_and_refuses_long_ones(tmp_path):
    t, pos = circle_path(500)
    rows = [(ti, x, y) for ti, (x, y) in zip(t, pos)]
    for k in range(100, 110):                       # 0.2 s of NaN: bridged
        rows[k] = (t[k], None, None)
    del rows[300:305]                               # 0.1 s of missing rows: bridged
    p = read_path(write_csv(tmp_path / "gaps.csv", "t,x,y", rows))
    g = resample(p, 0.01)
    assert np.all(np.isfinite(g.positions)) and np.allclose(np.diff(g.time), 0.01)
    assert g.meta["resample"]["gaps_bridged"] == 2
    assert g.meta["resample"]["longest_gap_s"] == pytest.approx(0.22)
    # Linear between the valid samples on either side of the NaN run.
    k = np.searchsorted(g.time, t[104] - 1e-9)
    w = (g.time[k] - t[99]) / (t[110] - t[99])
    np.testing.assert_allclose(g.positions[k], (1 - w) * pos[99] + w * pos[110])
    for k in range(200, 240):                       # 0.8 s of NaN: refused, and where is said
        rows[k] = (rows[k][0], None, None)
    p = read_path(write_csv(tmp_path / "long.csv", "t,x,y", rows))
    with pytest.raises(ValueError, match=r"no valid position for 0.82 s, from t = 3.98 s \(sample 199\) to "
                                         r"t = 4.8 s \(sample 240\).*max_gap = 0.5 s"):
        resample(p, 0.02)
    assert len(resample(p, 0.02, duration=3.9).time) == 196      # the part before the gap
    assert len(resample(p, 0.02, max_gap=1.0).time) > 400
    with pytest.raises(ValueError, match="dt must be a positive"):
        resample(p, 0.0)


def test_resample_heading_goes_the_short_way_round():
    t = np.arange(4.0)
    p = make_path(t, np.zeros((4, 2)), heading=[3.0, -3.0, 3.0, -3.0])
    h = resample(p, 0.5, max_gap=2.0).heading
    assert np.all(np.abs(h) >= 3.0 - 1e-12)         # via pi, not through 0


# ---------------------------------------------------------------- fitting into arenas


def test_fit_to_arena_square_hexagon_circle():
    box = (0.0, 0.0, 100.0, 100.0)
    corners = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [50, 50]], float)
    out, scale, centre = fit_to_arena(corners, SQUARE, box)
    np.testing.assert_allclose(out, [[-1, -1], [1, -1], [1, 1], [-1, 1], [0, 0]], rtol=1e-8)
    assert scale == pytest.approx(0.02) and centre == (50.0, 50.0)
    for name in ("hexagon", "triangle", "circle"):
        arena = make_arena(name)
        out, _, _ = fit_to_arena(corners, arena, box)
        assert np.all(arena.contains(out))
        assert np.min(arena.wall_distance(out[:4])) < 1e-6            # the largest fit touches a wall
    with pytest.raises(ValueError, match="1 sample.*outside box.*sample 1 at \\[101.0, 50.0\\]"):
        fit_to_arena([[50, 50], [101, 50]], SQUARE, box)
    with pytest.raises(ValueError, match="box must be 4 finite numbers"):
        fit_to_arena(corners, SQUARE, (0, 0, -1, 1))


# ---------------------------------------------------------------- time step, lead-in, moves


@pytest.mark.parametrize("motion", [{}, {"max_speed": math.inf, "p_zero_speed": 0.5},
                                    {"speed_scale": 0.2, "max_speed": 0.1}])
def test_motion_mean_speed_matches_simulation(motion):
    tr = simulate("square", 200, 500, 3, **{**motion, "start": "uniform"})
    assert motion_mean_speed(motion) == pytest.approx(tr.speed.mean(), rel=0.03)
    assert motion_mean_speed(motion, moving=True) == pytest.approx(tr.speed[tr.speed > 0].mean(), rel=0.03)


def test_matched_dt_gives_the_training_mean_speed():
    t, pos = circle_path(3000)                      # 40 cm radius, 3 turns in 60 s
    p = make_path(t, pos, units="cm", box=(0, 0, 100, 100))
    speed = 2 * np.pi * 40 * 3 / (t[-1] + t[1])     # cm/s (the last sample closes no turn)
    dt = matched_dt(p, scale=0.02)
    assert dt == pytest.approx(motion_mean_speed() / (speed * 0.02), rel=1e-3)
    tr = prepare(p, SQUARE)
    lead = tr.motion["lead_in_steps"]
    assert tr.speed[0, lead:].mean() == pytest.approx(motion_mean_speed(), rel=1e-3)


def test_lead_in_walks_from_the_centre():
    pts = lead_in([0.3, -0.4], 0.1)
    assert len(pts) == 5
    np.testing.assert_allclose(pts[0], 0.0)
    np.testing.assert_allclose(np.diff(np.vstack([pts, [0.3, -0.4]]), axis=0), [[0.06, -0.08]] * 5)
    assert len(lead_in([0.0, 0.0], 0.1)) == 0


def test_derived_moves_keep_the_heading_while_standing_still():
    pos = [[0, 0], [0, 0], [0.1, 0], [0.1, 0], [0.1, 0.1], [0.1, 0.1]]
    tr = to_trajectories(pos, SQUARE, "speed-cos-sin")
    np.testing.assert_allclose(tr.speed[0], [0, 0.1, 0, 0.1, 0])
    np.testing.assert_allclose(tr.heading[0], [0, 0, 0, np.pi / 2, np.pi / 2])
    np.testing.assert_array_equal(tr.inputs, encode(tr.speed, tr.heading, "speed-cos-sin"))
    np.testing.assert_allclose(tr.final_position, [[0.1, 0.1]])
    with pytest.raises(ValueError, match="trial 0, sample 1 is at \\[1.5, 0.0\\]"):
        to_trajectories([[0, 0], [1.5, 0]], SQUARE)
    with pytest.raises(ValueError, match="speed and heading must be given together"):
        to_trajectories(pos, SQUARE, speed=np.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"shape \(1, 5\) \(one per move\)"):
        to_trajectories(pos, SQUARE, speed=np.zeros(3), heading=np.zeros(3))


def test_boundary_marks_where_the_wall_turns_the_path():
    # Straight at the right wall (x = 1), turning back 0.05 before it; then along the wall.
    x = np.concatenate([np.arange(0.0, 0.951, 0.05), np.arange(0.9, 0.0, -0.05)])
    pos = np.column_stack([x, np.zeros_like(x)])
    tr = to_trajectories(pos, SQUARE)
    assert np.flatnonzero(tr.boundary[0]).tolist() == [19]       # the first move back
    along = np.column_stack([np.full(30, 0.97), np.linspace(-0.9, 0.9, 30)])
    assert not to_trajectories(along, SQUARE).boundary.any()
    # A longer reach sees the wall earlier: the turn still counts once.
    b = mark_boundary(tr.positions, tr.speed, tr.heading, SQUARE, reach=0.5)
    assert b.sum() == 1
    assert BOUNDARY_REACH_REL * SQUARE.inradius == pytest.approx(0.075)


# ---------------------------------------------------------------- prepare and split


def test_prepare_a_foreign_csv(tmp_path):
    t, pos = circle_path(3000)
    rows = [(ti, x, y) for ti, (x, y) in zip(t, pos)]
    p = read_path(write_csv(tmp_path / "rat.csv", "time,x,y", rows), units="cm", box=(0, 0, 100, 100))
    tr = prepare(p, SQUARE, "velocity", dt=0.05)
    m = tr.motion
    assert m["dt_s"] == 0.05 and m["dt_rule"] == "given" and m["scale"] == pytest.approx(0.02)
    assert m["lead_in_steps"] == math.ceil(0.8 / motion_mean_speed()) and m["samples"] == 1200
    assert tr.inputs.shape == (1, m["lead_in_steps"] + 1199, 2)
    np.testing.assert_allclose(tr.positions[0, 0], 0.0)
    np.testing.assert_allclose(tr.positions[0, m["lead_in_steps"]], [0.8, 0.0], atol=1e-8)
    assert np.all(SQUARE.contains(tr.positions))
    np.testing.assert_array_equal(tr.inputs, encode(tr.speed, tr.heading, "velocity"))
    # The same with the file's own speed and heading as inputs.
    a = 2 * np.pi * 3 * np.arange(3000) / 3000
    spd = np.full(3000, 40 * 2 * np.pi * 3 / 60.0)
    p2 = make_path(t, pos, speed=spd, heading=np.mod(a + np.pi / 2, 2 * np.pi), box=(0, 0, 100, 100))
    f = prepare(p2, SQUARE, dt=0.05, inputs="file")
    lead = f.motion["lead_in_steps"]
    np.testing.assert_allclose(f.speed[0, lead:], spd[0] * 0.02 * 0.05)
    np.testing.assert_allclose(np.cos(f.heading[0, lead:]), np.cos(tr.heading[0, lead:]), atol=0.02)
    with pytest.raises(ValueError, match="inputs='file' needs speed and heading"):
        prepare(p, SQUARE, inputs="file")
    with pytest.raises(ValueError, match="unknown inputs"):
        prepare(p, SQUARE, inputs="velocity")


def test_prepare_refuses_paths_outside_their_box():
    t, pos = circle_path(500, radius=60.0)
    with pytest.raises(ValueError, match="outside box"):
        prepare(make_path(t, pos, box=(0, 0, 100, 100)), SQUARE)
    tr = prepare(make_path(t, pos), SQUARE)         # no box: the path's own extent
    assert np.all(SQUARE.contains(tr.positions))


def test_split_trials_start_at_the_centre():
    t, pos = circle_path(3000)
    tr = prepare(make_path(t, pos, box=(0, 0, 100, 100)), SQUARE)
    pieces = split_trials(tr, 200)
    lead, n = pieces.motion["lead_in_steps"], tr.inputs.shape[1] - tr.motion["lead_in_steps"]
    assert pieces.inputs.shape == (n // 200, lead + 200, 2)
    np.testing.assert_array_equal(pieces.positions[:, 0], 0.0)
    whole = tr.positions[0, tr.motion["lead_in_steps"]:]
    np.testing.assert_allclose(pieces.positions[1, lead:], whole[200:400], atol=1e-15)
    assert pieces.motion["split"] == {"n_trials": n // 200, "n_steps": 200, "moves_left_out": n % 200}
    with pytest.raises(ValueError, match="fewer than one trial"):
        split_trials(tr, 10 ** 6)


def test_path_statistics():
    tr = simulate("square", 50, 400, 1)
    s = path_statistics(tr)
    assert s["n_steps"] == 20000
    assert s["fraction_zero_speed"] == pytest.approx(MOTION_DEFAULTS["p_zero_speed"], abs=0.01)
    assert s["speed"]["mean"] == pytest.approx(motion_mean_speed(), rel=0.05)
    assert s["boundary_per_1000_steps"] == pytest.approx(1000 * tr.boundary.mean())
    assert 0.5 < s["coverage"] <= 1 and 0 < s["fraction_near_wall"] < 1
    # A straight walk: no turning, never still.
    line = to_trajectories(np.column_stack([np.linspace(-0.5, 0.5, 101), np.zeros(101)]), SQUARE)
    s = path_statistics(line, start=10, dt=0.1)
    assert s["turn_per_moving_step"] == 0 and s["fraction_zero_speed"] == 0
    assert s["speed"]["mean_per_s"] == pytest.approx(0.1)
    assert s["path_length"] == pytest.approx(0.9)


def test_ratinabox_missing_is_a_clear_import_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ratinabox" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'gridcore\[ratinabox\]'"):
        ratinabox_paths.sargolini()
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        ratinabox_paths.dataset_file("nope")
