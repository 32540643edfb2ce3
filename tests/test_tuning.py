"""Speed and head-direction tuning curves and selectivities (paper App. D)."""

import numpy as np
import pytest

from gridcore.analysis.tuning import (
    direction_selectivity,
    direction_tuning,
    speed_selectivity,
    speed_tuning,
)
from gridcore.sim.trajectories import simulate


@pytest.fixture(scope="module")
def path():
    return simulate("square", n_trials=20, n_steps=2500, seed=5)


def test_speed_selectivity_of_a_linear_unit_is_its_slope(path):
    s = path.speed
    rng = np.random.default_rng(0)
    act = np.stack([3.0 * s - 0.2, -2.0 * s + 0.5, np.full_like(s, 0.3),
                    1.5 * s + 0.02 * rng.standard_normal(s.shape)], axis=-1)
    speeds, curves, counts = speed_tuning(act, s)
    sel = speed_selectivity(speeds, curves)
    np.testing.assert_allclose(sel[:3], [3.0, 2.0, 0.0], atol=1e-9)
    assert sel[3] == pytest.approx(1.5, rel=0.05)
    # Moving steps only, in bins of equal counts.
    assert counts.sum() == np.count_nonzero(s > 0)
    assert counts.max() - counts.min() <= 1
    assert np.all(np.diff(speeds) > 0)
    # Equal-width bins, from 0 to the 99% quantile of moving speeds.
    _, curves_u, counts_u = speed_tuning(act, s, spacing="uniform")
    moving = s[s > 0]
    assert counts_u.sum() == np.count_nonzero(moving <= np.quantile(moving, 0.99))
    assert speed_selectivity(*speed_tuning(act, s, spacing="uniform")[:2])[0] == pytest.approx(3.0)


def test_speed_tuning_options(path):
    s = path.speed
    act = (2.0 * s)[..., None]
    _, _, counts_all = speed_tuning(act, s, n_bins=5, speed_range=(0.0, 0.3), moving_only=False)
    assert counts_all.sum() == s.size          # the stationary steps go in the first bin
    speeds, curves, counts = speed_tuning(act, s, n_bins=5, min_count=10**9)
    assert np.all(np.isnan(curves)) and np.isnan(speed_selectivity(speeds, curves)[0])
    with pytest.raises(ValueError, match="speed must be >= 0"):
        speed_tuning(act, -s)
    with pytest.raises(ValueError, match="speed_range"):
        speed_tuning(act, s, speed_range=(0.2, 0.1))
    with pytest.raises(ValueError, match="spacing"):
        speed_tuning(act, s, spacing="log")
    with pytest.raises(ValueError, match="speed must have shape"):
        speed_tuning(act, s[:, :-1])


def test_direction_selectivity_of_a_cosine_unit_is_twice_the_amplitude(path):
    h = path.heading
    act = np.stack([0.4 * np.cos(h - 1.0) + 0.1, np.full_like(h, -0.2),
                    0.25 * np.cos(h + 2.0)], axis=-1)
    centres, curves, counts = direction_tuning(act, h)
    sel = direction_selectivity(curves)
    # Averaging over a 10 deg bin shrinks a cosine by sinc(5 deg) = 0.9987.
    np.testing.assert_allclose(sel, [0.8, 0.0, 0.5], rtol=0.01, atol=1e-12)
    assert counts.sum() == h.size and len(centres) == 36
    assert centres[np.argmax(curves[0])] == pytest.approx(1.0, abs=np.pi / 36 + 1e-9)


def test_direction_tuning_moving_only_and_3d_equals_flat(path):
    h, s = path.heading, path.speed
    act = np.cos(h)[..., None]
    flat = direction_tuning(act.reshape(-1, 1), h.ravel())
    cube = direction_tuning(act, h)
    for a, b in zip(flat, cube):
        np.testing.assert_array_equal(a, b)
    _, _, counts = direction_tuning(act, h, moving_only=True, speed=s)
    assert counts.sum() == np.count_nonzero(s > 0)
    with pytest.raises(ValueError, match="speed is required"):
        direction_tuning(act, h, moving_only=True)
