"""Rate maps, the streaming accumulator, smoothing and autocorrelograms."""

import numpy as np
import pytest

from gridcore.analysis.ratemaps import (
    RateMapAccumulator,
    autocorrelogram,
    rate_maps,
    smooth_maps,
    spatial_bins,
)
from gridcore.sim.arenas import make_arena
from gridcore.sim.trajectories import simulate


@pytest.fixture(scope="module")
def triangle_path():
    arena = make_arena("triangle")
    traj = simulate(arena, n_trials=20, n_steps=2000, seed=3, start="uniform")
    return arena, traj


def _fields(p):
    """Two smooth activity functions of position (n, 2) -> (n, 2), with gradients."""
    f = np.column_stack([0.5 * p[:, 0] - 0.3 * p[:, 1],
                         np.cos(2 * p[:, 0]) * np.sin(1.5 * p[:, 1])])
    grad_max = np.array([np.hypot(0.5, 0.3), np.hypot(2.0, 1.5)])
    return f, grad_max


def test_square_bins_tile_the_box():
    b = spatial_bins(make_arena("square"), 20)
    assert b.shape == (20, 20) and b.bin_size == pytest.approx(0.1)
    assert b.inside.all()
    assert b.x_edges[0] == pytest.approx(-1) and b.y_edges[-1] == pytest.approx(1)
    assert spatial_bins(make_arena("square"), 20) is b  # cached by geometry


@pytest.mark.parametrize("name", ["triangle", "hexagon", "circle"])
def test_inside_mask_is_the_bins_overlapping_the_arena(name):
    arena = make_arena(name)
    b = spatial_bins(arena, 15)
    pts = arena.sample_uniform(20000, np.random.default_rng(0))
    hit = np.zeros(b.n_bins, dtype=bool)
    hit[b.flat_index(pts)] = True
    assert b.inside.ravel()[hit].all()                 # every visited bin is inside
    d = arena.wall_distance(b.centres)
    assert b.inside[d >= 0].all()
    # A square whose centre is more than half its diagonal away is disjoint.
    assert not b.inside[d < -b.bin_size / np.sqrt(2)].any()
    assert not b.inside.all()


def test_rate_maps_reproduce_a_function_of_position(triangle_path):
    arena, traj = triangle_path
    pos = traj.positions.reshape(-1, 2)
    act, grad = _fields(pos)
    maps, occ = rate_maps(act, pos, arena, 16, return_occupancy=True)
    b = spatial_bins(arena, 16)
    truth, _ = _fields(b.centres.reshape(-1, 2))
    truth = truth.T.reshape(2, *b.shape)
    valid = (occ > 0) & b.inside
    assert np.array_equal(np.isfinite(maps), np.broadcast_to(valid, maps.shape))
    assert valid.sum() > 0.9 * b.inside.sum()
    assert not np.any(b.inside[occ == 0] & np.isfinite(maps[0][occ == 0]))
    # A bin mean is within (gradient x half the bin diagonal) of the centre value.
    err = np.abs(maps - truth)[:, valid]
    assert np.all(err <= grad[:, None] * b.bin_size / np.sqrt(2) + 1e-12)
    assert occ.sum() == len(pos)


def test_3d_input_equals_flat(triangle_path):
    arena, traj = triangle_path
    act3, _ = _fields(traj.positions.reshape(-1, 2))
    act3 = act3.reshape(*traj.positions.shape[:2], 2)
    a = rate_maps(act3, traj.positions, arena, 12)
    b = rate_maps(act3.reshape(-1, 2), traj.positions.reshape(-1, 2), arena, 12)
    np.testing.assert_array_equal(a, b)


def test_accumulator_in_chunks_equals_one_pass(triangle_path):
    arena, traj = triangle_path
    pos = traj.positions.reshape(-1, 2)
    act = np.column_stack([_fields(pos)[0], np.random.default_rng(0).standard_normal(len(pos))])
    whole = rate_maps(act, pos, arena, 14, smooth=1.0)
    acc = RateMapAccumulator(arena, 14, 3)
    for lo, hi in [(0, 1), (1, 7001), (7001, 20000), (20000, len(pos))]:
        acc.add(act[lo:hi], pos[lo:hi])
    np.testing.assert_allclose(acc.maps(smooth=1.0), whole, rtol=1e-12, atol=1e-13)
    assert acc.n_samples == len(pos) and acc.counts.sum() == len(pos)
    with np.errstate(invalid="ignore"):      # 0/0 in bins outside the triangle
        mean = acc.sums / acc.counts
    np.testing.assert_allclose(mean, acc.maps(), equal_nan=True)


def test_argument_errors():
    arena = make_arena("square")
    with pytest.raises(ValueError, match="bounding box"):
        rate_maps(np.zeros((2, 1)), [[0, 0], [1.5, 0]], arena, 10)
    with pytest.raises(ValueError, match="positions must have shape"):
        rate_maps(np.zeros((3, 1)), np.zeros((2, 2)), arena, 10)
    with pytest.raises(ValueError, match="bins"):
        rate_maps(np.zeros((2, 1)), np.zeros((2, 2)), arena, 0)
    with pytest.raises(ValueError, match="arena must be an Arena"):
        rate_maps(np.zeros((2, 1)), np.zeros((2, 2)), "square", 10)
    with pytest.raises(ValueError, match="n_units=2"):
        RateMapAccumulator(arena, 10, 2).add(np.zeros((4, 3)), np.zeros((4, 2)))


def test_smoothing_is_nan_aware():
    b = spatial_bins(make_arena("hexagon"), 20)
    m = np.where(b.inside, 3.0, np.nan)[None].copy()
    m[0, 8:10, 8:12] = np.nan
    s = smooth_maps(m, 2.0)
    np.testing.assert_array_equal(np.isnan(s), np.isnan(m))
    np.testing.assert_allclose(s[np.isfinite(s)], 3.0, rtol=1e-12)  # no pull towards 0 at edges
    # A spike spreads out and keeps its mass (away from edges).
    d = np.zeros((1, 21, 21))
    d[0, 10, 10] = 1.0
    sd = smooth_maps(d, 1.5)
    assert sd[0, 10, 10] < 0.2 and sd.sum() == pytest.approx(1.0, rel=1e-3)


def _naive_autocorrelogram(m, min_overlap):
    h, w = m.shape
    out = np.full((2 * h - 1, 2 * w - 1), np.nan)
    for dy in range(-h + 1, h):
        for dx in range(-w + 1, w):
            a, b = [], []
            for i in range(h):
                for j in range(w):
                    i2, j2 = i + dy, j + dx
                    if (0 <= i2 < h and 0 <= j2 < w
                            and np.isfinite(m[i, j]) and np.isfinite(m[i2, j2])):
                        a.append(m[i, j])
                        b.append(m[i2, j2])
            if len(a) >= min_overlap and np.std(a) > 0 and np.std(b) > 0:
                out[dy + h - 1, dx + w - 1] = np.corrcoef(a, b)[0, 1]
    return out


def test_autocorrelogram_matches_naive_pearson():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((3, 5, 7)) + 10.0   # offset: centring must not lose digits
    m[0, 1, 2] = np.nan
    m[1, :, 0] = np.nan
    m[2, 4, 6] = np.nan
    ac = autocorrelogram(m, min_overlap=4)
    assert ac.shape == (3, 9, 13)
    for u in range(3):
        ref = _naive_autocorrelogram(m[u], 4)
        np.testing.assert_array_equal(np.isnan(ac[u]), np.isnan(ref))
        np.testing.assert_allclose(ac[u], ref, atol=1e-12, equal_nan=True)
        assert ac[u, 4, 6] == pytest.approx(1.0)
        np.testing.assert_allclose(ac[u], ac[u, ::-1, ::-1], atol=1e-12, equal_nan=True)


def test_autocorrelogram_min_overlap_and_constant_maps():
    m = np.random.default_rng(2).standard_normal((1, 10, 10))
    ac = autocorrelogram(m)               # default: 20 bins of overlap
    overlap = (10 - np.abs(np.arange(-9, 10)))[:, None] * (10 - np.abs(np.arange(-9, 10)))[None]
    np.testing.assert_array_equal(np.isnan(ac[0]), overlap < 20)
    assert np.all(np.isnan(autocorrelogram(np.ones((1, 6, 6)))))


@pytest.mark.parametrize("n", [4, 512])
def test_ratemap_panel_title_clears_the_map_titles(n):
    # The figure title's two lines must not run into the first row's map titles, also in a tall panel.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from gridcore.report.figures import ratemap_panel
    maps = np.random.default_rng(0).random((n, 6, 6))
    fig = ratemap_panel(maps, None, make_arena("square"), 6, title="run")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        if ax.get_title():
            assert not top.overlaps(ax.title.get_window_extent(renderer)), ax.get_title()
