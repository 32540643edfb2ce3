"""The RatInABox bridge: recordings shipped in its wheel (no download) and its random motion."""

import os

import numpy as np
import pytest

pytest.importorskip("ratinabox")

from gridcore.analysis.pathstats import path_statistics  # noqa: E402
from gridcore.sim.arenas import make_arena  # noqa: E402
from gridcore.sim.ratinabox import dataset_file, load_dataset, random_motion, sargolini  # noqa: E402
from gridcore.sim.realpaths import motion_mean_speed, prepare  # noqa: E402


def test_sargolini_comes_from_the_installed_package():
    file = dataset_file("sargolini")
    assert os.path.isfile(file) and os.path.join("ratinabox", "data") in file
    p = sargolini()
    assert p.positions.shape == (29800, 2) and p.units == "m" and p.box == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.isfinite(p.positions))
    assert np.all((p.positions > 0) & (p.positions < 1))
    assert np.all(np.diff(p.time) > 0) and 595 < p.time[-1] - p.time[0] < 600
    assert np.median(np.diff(p.time)) == pytest.approx(0.02)          # 50 Hz
    assert "Sargolini" in p.meta["citation"]


def test_tanni_loads():
    p = load_dataset("tanni")
    assert len(p.time) > 200_000 and p.box is None
    extent = np.ptp(p.positions, axis=0)
    assert 3.4 < extent[0] < 3.6 and 2.4 < extent[1] < 2.6              # a 3.5 m x 2.5 m room


def test_sargolini_as_a_network_trial():
    square = make_arena("square")
    tr = prepare(sargolini(), square)
    m = tr.motion
    assert 0.025 < m["dt_s"] < 0.04 and m["scale"] == pytest.approx(2.0)
    assert m["resample"]["longest_gap_s"] < 0.5                         # a few dropped samples, bridged
    lead = m["lead_in_steps"]
    # Matched on the raw 50 Hz samples; resampling cuts the corners of the tracking jitter (-1.2%).
    assert tr.speed[0, lead:].mean() == pytest.approx(motion_mean_speed(), rel=0.02)
    assert np.all(square.contains(tr.positions))
    s = path_statistics(tr, lead, m["dt_s"])
    assert s["fraction_zero_speed"] < 0.01 and s["coverage"] > 0.9
    assert 0.1 < s["speed"]["mean_per_s"] < 0.4                         # arena units/s: 5-20 cm/s
    # Inside a hexagon the 1 m box becomes the inscribed square.
    hexagon = make_arena("hexagon")
    assert np.all(hexagon.contains(prepare(sargolini(), hexagon, duration=60.0).positions))


def test_random_motion_is_seeded_and_leaves_global_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = random_motion(4.0, seed=7)
    b = random_motion(4.0, seed=7)
    c = random_motion(4.0, seed=8)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)
    assert a.positions.shape == (200, 2) and a.box == (0.0, 0.0, 1.0, 1.0)
    assert np.all((a.positions >= 0) & (a.positions <= 1))
    assert a.meta["agent_params"]["dt"] == 0.02
    tr = prepare(a, make_arena("square"))
    assert tr.inputs.shape[1] > 100
    with pytest.raises(ValueError, match="duration must be a positive"):
        random_motion(-1.0)
