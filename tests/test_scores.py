"""Scores on synthetic rate maps with known answers."""

import numpy as np
import pytest

from gridcore.analysis.ratemaps import autocorrelogram, spatial_bins
from gridcore.analysis.scores import (
    band_score,
    border_score,
    grid_score,
    lifetime_sparseness,
    periodic,
    plane_score,
    radial_profile,
    spatial_information,
)
from gridcore.sim.arenas import Polygon, make_arena

SQUARE = make_arena("square")
B40 = spatial_bins(SQUARE, 40)            # bins of 0.05 arena units


def plane_waves(b, spacing, angles_deg, phases):
    """Sum of cosines of wavelength ``spacing`` (arena units), NaN outside the arena."""
    c = b.centres
    out = 0.0
    for a, ph in zip(np.deg2rad(angles_deg), phases):
        phase = 2 * np.pi / spacing * (c[..., 0] * np.cos(a) + c[..., 1] * np.sin(a))
        out = out + np.cos(phase + ph)
    return np.where(b.inside, out, np.nan)


def hex_grid(b, spacing, orientation=0.0):
    """Hexagonal grid: three cosines at 60 deg; peaks ``spacing`` apart, lattice
    rows at ``orientation + 30`` deg (the wave vectors are at ``orientation + 0, 60, 120``)."""
    wavelength = spacing * np.sqrt(3) / 2
    return plane_waves(b, wavelength, orientation + np.array([0, 60, 120]), (0.3, 1.1, -0.4))


def square_grid(b, spacing, orientation=0.0):
    return plane_waves(b, spacing, orientation + np.array([0, 90]), (0.3, 1.1))


def noise(b, seed=0):
    return np.where(b.inside, np.random.default_rng(seed).standard_normal(b.shape), np.nan)


def wall_stripe(arena, b, wall, width=0.1):
    d = arena.offsets[wall] - b.centres @ arena.normals[wall]
    return np.where(b.inside, np.exp(-d**2 / (2 * width**2)), np.nan)


def blob(b, centre=(0.0, 0.0), width=0.3):
    d2 = np.sum((b.centres - np.asarray(centre)) ** 2, axis=-1)
    return np.where(b.inside, np.exp(-d2 / (2 * width**2)), np.nan)


METHODS = ["minmax", "mean"]


# ---------------------------------------------------------------- grid score

@pytest.mark.parametrize("method", METHODS)
def test_hexagonal_grid_is_60_not_90_and_square_grid_the_reverse(method):
    maps = np.stack([hex_grid(B40, 0.7), square_grid(B40, 0.6)])
    g60 = grid_score(maps, 60, method)
    g90 = grid_score(maps, 90, method)
    assert g60[0] > 1.0 and g90[0] < 0.4
    assert g90[1] > 1.0 and g60[1] < 0.0


@pytest.mark.parametrize("method", METHODS)
def test_noise_scores_low(method):
    maps = np.stack([noise(B40, s) for s in range(3)])
    for sym in (60, 90):
        assert np.all(np.abs(grid_score(maps, sym, method)) < 0.3)


@pytest.mark.parametrize("method", METHODS)
def test_rotated_grid_keeps_its_score(method):
    for make, sym, spacing, angles in ((hex_grid, 60, 0.7, (17.0, 41.0)),
                                       (square_grid, 90, 0.6, (23.0, 40.0))):
        ref = grid_score(make(B40, spacing)[None], sym, method)[0]
        rotated = np.stack([make(B40, spacing, a) for a in angles])
        np.testing.assert_allclose(grid_score(rotated, sym, method), ref, atol=0.1)


def test_rescaled_grid_keeps_its_score():
    # minmax adapts its annulus to the centre field, so it is scale-free.
    for make, sym in ((hex_grid, 60), (square_grid, 90)):
        ref = grid_score(make(B40, 0.6)[None], sym)[0]
        scaled = np.stack([make(B40, s, 10.0) for s in (0.45, 0.8, 1.0)])
        np.testing.assert_allclose(grid_score(scaled, sym), ref, atol=0.12)
        # DeepMind's fixed annuli see more or fewer rings as the spacing
        # changes: the score moves, but a grid stays clearly a grid.
        assert np.all(grid_score(scaled, sym, "mean") > 1.0)


def test_spacing_and_orientation_details():
    maps = np.stack([hex_grid(B40, 0.7, 0.0), hex_grid(B40, 0.6, 17.0), hex_grid(B40, 0.8, 40.0)])
    _, d = grid_score(maps, 60, return_details=True)
    np.testing.assert_allclose(d["spacing"] * B40.bin_size, [0.7, 0.6, 0.8], atol=B40.bin_size)
    # Lattice rows are 30 deg off the wave vectors; orientation is modulo 60.
    np.testing.assert_allclose(d["orientation"], [30.0, 47.0, 10.0], atol=2.5)
    assert np.all(d["n_peaks"] == 6)
    assert np.all(d["inner_radius"] < d["outer_radius"])
    assert d["correlations"].shape == (3, 5) and list(d["angles"]) == [30, 60, 90, 120, 150]
    _, d90 = grid_score(square_grid(B40, 0.6, 20.0)[None], 90, "mean", return_details=True)
    assert d90["spacing"][0] * B40.bin_size == pytest.approx(0.6, abs=B40.bin_size)
    assert d90["orientation"][0] == pytest.approx(20.0, abs=2.5)
    assert d90["n_peaks"][0] == 4


def test_grid_score_accepts_a_shared_autocorrelogram_and_works_in_a_hexagon():
    hexagon = make_arena("hexagon")
    b = spatial_bins(hexagon, 40)
    maps = np.stack([hex_grid(b, 0.6), square_grid(b, 0.6), noise(b)])
    ac = autocorrelogram(maps)
    g = grid_score(None, 60, acorr=ac)
    np.testing.assert_array_equal(g, grid_score(maps, 60))
    assert g[0] > 1.0 and g[1] < 0.0 and abs(g[2]) < 0.3


def ramp(b, angle_deg, gain):
    a = np.deg2rad(angle_deg)
    return np.where(b.inside, np.tanh(gain * (b.centres @ [np.cos(a), np.sin(a)])), np.nan)


def test_periodic_maps_are_grids_and_bands_not_ramps_or_fields():
    b = spatial_bins(SQUARE, 20)
    grids = [f(b, s) for f in (hex_grid, square_grid) for s in (0.4, 0.7, 1.0, 1.3)]
    bands = [plane_waves(b, s, [25.0], [0.4]) for s in (0.4, 1.0)]
    ramps = [ramp(b, a, g) for a in (0, 20, 45, 70) for g in (0.5, 2.0, 5.0)]
    fields = [blob(b, (0.2, -0.1), w) for w in (0.3, 0.6, 1.0)] + [wall_stripe(SQUARE, b, 0)]
    rng = np.random.default_rng(3)
    for noise_sd in (0.0, 0.05):
        maps = np.array(grids + bands + ramps + fields)
        maps = maps + noise_sd * rng.standard_normal(maps.shape)
        got = periodic(maps)
        assert got[:len(grids) + len(bands)].all()
        assert not got[len(grids) + len(bands):].any()
    # Why the test exists: a saturated ramp aligned with the box scores high on
    # the 90-degree grid score although its autocorrelogram never dips below 0.
    r = ramp(b, 0, 2.0)[None]
    assert grid_score(r, 90)[0] > 0.5
    assert np.nanmin(radial_profile(autocorrelogram(r))) > 0.5
    # The profile of plane waves follows J0(k r): down to about -0.4, back up.
    p = radial_profile(autocorrelogram(square_grid(spatial_bins(SQUARE, 40), 0.5)[None]))[0]
    assert -0.55 < np.nanmin(p[:10]) < -0.25 and np.nanmax(p[5:15]) > 0.15


def test_grid_score_is_nan_exactly_when_the_centre_field_fills_the_autocorrelogram():
    # A map rising towards one corner (as many trained units' ramps do): its
    # autocorrelogram falls monotonically and stays above 0.2 out to n bins, so
    # the centre field leaves no annulus to score. Grids, bands, blobs and
    # straight ramps leave one and get a number.
    b = spatial_bins(SQUARE, 20)
    x, y = b.centres[..., 0], b.centres[..., 1]
    corner = np.where(b.inside, (x + 1) * (y + 1), np.nan)
    maps = np.array([corner, hex_grid(b, 0.7), square_grid(b, 0.9), plane_waves(b, 0.8, [25.0], [0.4]),
                     blob(b, (0.2, -0.1), 0.6), ramp(b, 20, 2.0), ramp(b, 45, 0.5)])
    n = min(b.shape)
    for symmetry in (60, 90):
        g, d = grid_score(maps, symmetry, return_details=True)
        np.testing.assert_array_equal(np.isnan(g), d["inner_radius"] == n)
        assert np.isnan(g[0]) and np.isfinite(g[1:]).all()
    assert np.nanmin(radial_profile(autocorrelogram(corner[None]))[0, :n]) > 0.2
    assert np.isfinite(grid_score(maps[:1], 60, method="mean")[0])


def test_grid_score_degenerate_and_bad_arguments():
    with pytest.raises(ValueError, match="give maps or acorr"):
        periodic()
    assert np.isnan(grid_score(np.ones((1, 20, 20)), 60)[0])
    with pytest.raises(ValueError, match="symmetry"):
        grid_score(np.zeros((1, 10, 10)), 45)
    with pytest.raises(ValueError, match="method"):
        grid_score(np.zeros((1, 10, 10)), 60, method="max")
    with pytest.raises(ValueError, match="maps must have shape"):
        grid_score(np.zeros((10, 10)), 60)


# -------------------------------------------------------------- border score

@pytest.mark.parametrize("name", ["square", "triangle", "hexagon"])
def test_wall_stripes_are_borders_and_a_central_blob_is_not(name):
    arena = make_arena(name)
    b = spatial_bins(arena, 30)
    walls = range(len(arena.walls))
    maps = np.stack([wall_stripe(arena, b, k) for k in walls] + [blob(b), noise(b)])
    score, d = border_score(maps, arena, return_details=True)
    stripes = score[:len(arena.walls)]
    assert np.all(stripes > 0.75)
    np.testing.assert_array_equal(d["wall"][:len(arena.walls)], list(walls))
    np.testing.assert_allclose(d["cM"][:len(arena.walls)], 1.0, atol=0.05)
    assert score[-2] < 0.0                       # the blob never reaches a wall
    # Solstad's score of a spatially uniform map is about 0.5; noise stays
    # below that and well below a wall field.
    assert score[-1] < 0.6 and score[-1] < stripes.min() - 0.2


def test_every_field_is_scored_not_only_the_first():
    # The field labelled first (lowest rows) is a blob off the walls; the
    # border field along the top wall comes later.
    b = spatial_bins(SQUARE, 30)
    m = np.fmax(blob(b, (0.0, -0.5), 0.12), wall_stripe(SQUARE, b, 2))
    score, d = border_score(m[None], SQUARE, return_details=True)
    assert d["n_fields"][0] == 2 and d["wall"][0] == 2
    assert score[0] > 0.5


def test_border_score_is_normalised_by_the_inradius():
    # A stripe in a 4 x 2 rectangle: dm is divided by half the shorter side (1).
    rect = Polygon([(-2, -1), (2, -1), (2, 1), (-2, 1)], name="rect")
    b = spatial_bins(rect, 40)                    # 0.1 bins, 20 rows
    m = np.where(b.centres[..., 1] < -0.8, 1.0, 0.0)  # the two rows along the bottom wall
    score, d = border_score(m[None], rect, return_details=True)
    assert d["cM"][0] == pytest.approx(1.0)
    # Row 0 is 0.05 from the bottom wall; row 1 is 0.15 from it, except its two
    # end bins, 0.05 from a side wall: dm = (40 * 0.05 + 38 * 0.15 + 2 * 0.05) / 80.
    assert d["dm"][0] == pytest.approx(0.0975)
    assert score[0] == pytest.approx((1 - 0.0975) / (1 + 0.0975))


def test_circle_is_one_wall():
    circle = make_arena("circle")
    b = spatial_bins(circle, 30)
    r = circle.radius - np.hypot(b.centres[..., 0], b.centres[..., 1])
    ring = np.where(b.inside, np.exp(-r**2 / (2 * 0.1**2)), np.nan)
    half = np.where(b.centres[..., 0] > 0, ring, 0.0)
    _, d = border_score(np.stack([ring, half]), circle, return_details=True)
    np.testing.assert_allclose(d["cM"], [1.0, 0.5], atol=0.05)


def test_border_score_degenerate_and_bad_arguments():
    b = spatial_bins(SQUARE, 20)
    score = border_score(np.stack([np.zeros(b.shape), np.full(b.shape, np.nan)]), SQUARE)
    assert np.all(np.isnan(score))
    with pytest.raises(ValueError, match="rate_maps"):
        border_score(np.zeros((1, 20, 21)), SQUARE)


# ---------------------------------------------------------------- band score

def test_single_cosine_is_a_band_and_grids_are_less_so():
    cosine = plane_waves(B40, 0.5, [30.0], [0.4])
    maps = np.stack([cosine, hex_grid(B40, 0.7), square_grid(B40, 0.6), noise(B40),
                     np.where(B40.inside, B40.centres[..., 0], np.nan)])
    score, d = band_score(maps, return_details=True)
    assert score[0] > 0.99
    assert d["wavelength"][0] * B40.bin_size == pytest.approx(0.5, abs=0.005)
    assert d["orientation"][0] == pytest.approx(30.0, abs=0.5)
    assert score[1] == pytest.approx(1 / 3, abs=0.05)   # three equal waves
    assert score[2] == pytest.approx(1 / 2, abs=0.05)   # two
    assert score[3] < 0.05                               # noise
    assert score[4] < 0.3                                # a ramp is not a band


def test_band_score_handles_holes_and_polygons():
    tri = make_arena("triangle")
    b = spatial_bins(tri, 40)
    m = plane_waves(b, 0.6, [100.0], [1.0])
    m[10:14, 15:20] = np.nan
    score, d = band_score(m[None], return_details=True)
    assert score[0] > 0.99 and d["orientation"][0] == pytest.approx(100.0, abs=0.5)
    with pytest.raises(ValueError, match="min_wavelength"):
        band_score(m[None], min_wavelength=1.0)


# --------------------------------------------------------------- plane score

def test_plane_score_is_the_r2_of_a_plane_fit():
    tri = make_arena("triangle")
    b = spatial_bins(tri, 30)
    x, y = b.centres[..., 0], b.centres[..., 1]
    ramp = np.where(b.inside, 0.3 * x - 0.7 * y + 0.1, np.nan)
    bent = np.where(b.inside, np.tanh(3.0 * x), np.nan)         # a ramp saturating at the walls
    maps = np.stack([ramp, bent, plane_waves(b, 0.5, [30.0], [0.4]), np.where(b.inside, 0.2, np.nan)])
    score = plane_score(maps)
    assert score[0] == pytest.approx(1.0, abs=1e-12)
    # R^2 by hand for the bent ramp: residual of the least-squares plane.
    v, valid = bent[b.inside], b.inside
    a = np.column_stack([np.ones(v.size), x[valid], y[valid]])
    resid = v - a @ np.linalg.lstsq(a, v, rcond=None)[0]
    assert score[1] == pytest.approx(1 - resid @ resid / np.sum((v - v.mean()) ** 2), rel=1e-10)
    assert 0.7 < score[1] < 0.99
    assert score[2] < 0.1                                        # stripes are no ramp
    assert np.isnan(score[3])                                    # constant map: no score
    with pytest.raises(ValueError, match="maps"):
        plane_score(np.zeros((3, 3)))


# ------------------------------------------ spatial information, sparseness

def test_spatial_information_by_hand():
    one_bin = np.array([[[0.0, 0.0], [0.0, 1.0]]])
    # r = (0, 0, 0, 1), p uniform: mean 1/4; I = 1/4 * 4 * log2(4) = 2 bits.
    assert spatial_information(one_bin, offset=0.0)[0] == pytest.approx(2.0)
    # Default offset 1 for tanh units: activity -1 is rate 0.
    assert spatial_information(one_bin - 1.0)[0] == pytest.approx(2.0)
    # r = (1, 3) with occupancy (3, 1): p = (3/4, 1/4), mean 3/2;
    # I = 3/4 (2/3) log2(2/3) + 1/4 (2) log2(2).
    two = np.array([[[1.0, 3.0]]])
    expect = 0.75 * (2 / 3) * np.log2(2 / 3) + 0.25 * 2 * 1.0
    assert spatial_information(two, [[3, 1]], offset=0.0)[0] == pytest.approx(expect)
    # NaN bins are left out, constant maps carry no information.
    holed = np.array([[[1.0, 3.0, np.nan]]])
    assert spatial_information(holed, [[3, 1, 5]], offset=0.0)[0] == pytest.approx(expect)
    assert spatial_information(np.full((1, 3, 3), 0.2))[0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="offset"):
        spatial_information(np.array([[[-2.0, 0.0]]]))


def test_lifetime_sparseness_by_hand():
    maps = np.array([[[1.0, 0.0], [0.0, 0.0]],      # one active bin: 1
                     [[2.0, 2.0], [2.0, 2.0]],      # constant: 0
                     [[1.0, 2.0], [3.0, 4.0]]])     # (1 - 6.25/7.5) / (3/4) = 2/9
    np.testing.assert_allclose(lifetime_sparseness(maps, offset=0.0), [1.0, 0.0, 2 / 9])
    np.testing.assert_allclose(lifetime_sparseness(maps - 1.0), [1.0, 0.0, 2 / 9])
    holed = np.array([[[1.0, 2.0, np.nan], [3.0, 4.0, np.nan]]])
    assert lifetime_sparseness(holed, offset=0.0)[0] == pytest.approx(2 / 9)
    assert np.isnan(lifetime_sparseness(np.array([[[1.0, np.nan]]]), offset=0.0)[0])


def test_noise_has_little_spatial_selectivity_compared_with_a_field():
    b = spatial_bins(SQUARE, 20)
    maps = np.stack([0.05 * noise(b), blob(b, width=0.2) - 1.0])
    info, sparse = spatial_information(maps), lifetime_sparseness(maps)
    assert info[0] < 0.01 and sparse[0] < 0.01
    assert info[1] > 1.0 and sparse[1] > 0.5
