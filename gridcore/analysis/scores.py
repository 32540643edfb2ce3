"""Scores of spatial rate maps: grid, border, band, spatial information, sparseness.

Every function takes rate maps of shape ``(n_units, H, W)`` laid out as in
:mod:`gridcore.analysis.ratemaps` (row = y from the bottom, column = x, square bins,
NaN where invalid) and returns one value per map, computed for all maps at
once. Geometry that depends only on the map shape or on the arena and its
binning (rotation stencils, annuli, wall samples, wall distances) is
computed once and cached. The formulas and the conventions reported are
written out in ``docs/scores.md``.

Conventions named in results (keys of :data:`CONVENTIONS`):

- grid score, ``method="minmax"`` (the one gridcore reports): Sargolini et
  al. 2006 / BNT / opexebo. 60 deg: ``min(r60, r120) - max(r30, r90, r150)``;
  90 deg: ``r90 - max(r45, r135)``. The centre field is excluded, the outer
  radius grows and the score is the largest 3-radius running mean.
- grid score, ``method="mean"``: DeepMind's ``scores.py`` (Banino et al.
  2018). 60 deg: ``(r60 + r120)/2 - (r30 + r90 + r150)/3``; 90 deg:
  ``r90 - (r45 + r135)/2``; maximum over ten fixed annuli.
- border score: Solstad et al. 2008, each polygon edge a wall, distances
  normalised by the arena's inradius.
- band score: largest fraction of a map's variance explained by one plane wave.
- plane score: fraction of a map's variance explained by a plane (a ramp).
- spatial information: Skaggs et al. 1993, bits per unit activity, of
  ``activity + offset`` (offset 1 for tanh units).
- lifetime sparseness: Willmore & Tolhurst 2001, of ``activity + offset``.
"""

import json
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.optimize
import scipy.sparse

from gridcore.analysis.ratemaps import arena_key, autocorrelogram, spatial_bins
from gridcore.sim.arenas import Circle, arena_from_dict
from gridcore.util.checks import (
    as_float_array,
    check_choice,
    check_nonneg_float,
    check_positive_int,
)

__all__ = [
    "CONVENTIONS",
    "grid_score",
    "border_score",
    "band_score",
    "plane_score",
    "spatial_information",
    "lifetime_sparseness",
    "TANH_OFFSET",
]

CONVENTIONS = {
    "grid_minmax_60": "min(r60, r120) - max(r30, r90, r150); annulus from the centre-field "
                      "radius, max over outer radii of a 3-radius running mean "
                      "(Sargolini 2006 / BNT / opexebo)",
    "grid_minmax_90": "r90 - max(r45, r135); annuli as grid_minmax_60",
    "grid_mean_60": "(r60 + r120)/2 - (r30 + r90 + r150)/3; max over annuli "
                    "[0.2n, f n), f in linspace(0.4, 1, 10), n = shorter map side "
                    "(DeepMind scores.py)",
    "grid_mean_90": "r90 - (r45 + r135)/2; annuli as grid_mean_60 (DeepMind scores.py)",
    "border": "Solstad 2008 (cM - dm)/(cM + dm); fields > 0.3 of the min-max range, "
              "each polygon edge a wall, dm / inradius",
    "band": "max over plane waves of the fraction of map variance explained "
            "(least squares, valid bins, at least 1.5 periods across the shorter side)",
    "plane": "fraction of map variance explained by a least-squares plane a + b x + c y "
             "(valid bins); a linear ramp scores 1",
    "spatial_information": "Skaggs 1993, sum p_i (r_i/r) log2(r_i/r), bits per unit "
                           "activity, r = activity + offset",
    "lifetime_sparseness": "Willmore & Tolhurst 2001, (1 - (sum r/n)^2 / (sum r^2/n)) / "
                           "(1 - 1/n) over valid bins, r = activity + offset",
}

TANH_OFFSET = 1.0  # rate = tanh activity + 1 >= 0: the unit's floor maps to 0

_SYMMETRIES = (60, 90)
_METHODS = ("minmax", "mean")
# Rotation angles (deg) compared with the unrotated autocorrelogram: the
# first group should correlate, the second should not.
_GRID_ANGLES = {60: ((60, 120), (30, 90, 150)), 90: ((90,), (45, 135))}
_CENTRE_FIELD_R = 0.2        # BNT: the centre field ends where the radial mean drops below this
_RUNNING_MEAN = 3            # BNT numGridnessRadii: outer radii averaged (minmax)
_MEAN_INNER = 0.2            # DeepMind: inner radius / n
_MEAN_OUTER = np.linspace(0.4, 1.0, 10)  # DeepMind: outer radii / n
_MIN_ANNULUS = 20            # valid pixels an annulus needs for a correlation
_BORDER_THRESHOLD = 0.3      # Solstad: field bins exceed 0.3 of the peak (here: of the range)


def _check_maps(maps):
    return as_float_array("maps", maps, (None, None, None), finite=False)


# ---------------------------------------------------------------- grid score

@lru_cache(maxsize=16)
def _rotation_stencil(ac_shape, angles):
    """Pixels of an autocorrelogram sorted by ring, and bilinear rotation stencils.

    Returns
    -------
    pix : ndarray of int64, shape (P,)
        Flat pixel indices within distance n + 1 of the centre (n = shorter
        map side), sorted by ring index floor(distance).
    ring_start : ndarray of int64, shape (n + 1,)
        Start of each ring 0..n in ``pix`` (for ``np.add.reduceat``).
    stencils : tuple of (interp, ok) per angle
        ``interp`` (P, AH * AW) sparse bilinear interpolation: the rotated
        autocorrelogram at ``pix`` is ``interp @ flat``; ``ok`` (P,) whether
        the rotated pixel's source lies inside the array.
    """
    ah, aw = ac_shape
    cy, cx = (ah - 1) // 2, (aw - 1) // 2
    n = min(cy, cx) + 1
    dy, dx = np.mgrid[-cy:cy + 1, -cx:cx + 1]
    d = np.hypot(dy, dx).ravel()
    keep = np.flatnonzero(d < n + 1)
    pix = keep[np.argsort(np.floor(d[keep]), kind="stable")]
    ring = np.floor(d[pix]).astype(np.int64)
    ring_start = np.searchsorted(ring, np.arange(n + 1))
    py, px = dy.ravel()[pix], dx.ravel()[pix]
    stencils = []
    rows = np.broadcast_to(np.arange(len(pix)), (4, len(pix)))
    for angle in angles:
        c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        # The rotated map at p is the map at R(-angle) p; rounding makes
        # multiples of 90 deg land exactly on pixels.
        sy = np.round(cy + (-s * px + c * py), 9)
        sx = np.round(cx + (c * px + s * py), 9)
        y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
        fy, fx = sy - y0, sx - x0
        ys = np.stack([y0, y0, y0 + 1, y0 + 1])
        xs = np.stack([x0, x0 + 1, x0, x0 + 1])
        w = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
        inb = (ys >= 0) & (ys < ah) & (xs >= 0) & (xs < aw)
        ok = np.all(inb | (w == 0), axis=0)
        # Zero weights are not stored, so a NaN there cannot spoil the sum.
        use = inb & (w > 0)
        interp = scipy.sparse.csr_matrix(
            (w[use], (rows[use], (ys * aw + xs)[use])), shape=(len(pix), ah * aw))
        stencils.append((interp, ok))
    return pix, ring_start, tuple(stencils)


def _ring_sums(x, ring_start):
    """Sums over rings, then cumulated: out[:, k] = sum over rings < k, (U, n + 2)."""
    s = np.add.reduceat(x, ring_start, axis=1)
    return np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(s, axis=1)], axis=1)


def _ring_means(x0, valid, ring_start):
    """NaN-aware mean per ring of pixels sorted by ring, (U, n + 1)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.add.reduceat(x0, ring_start, axis=1)
                / np.add.reduceat(valid.astype(np.float64), ring_start, axis=1))


def radial_profile(acorr):
    """Mean autocorrelation per ring of 1-bin width around the centre.

    Parameters
    ----------
    acorr : array_like, shape (n_units, 2H - 1, 2W - 1)
        :func:`gridcore.analysis.ratemaps.autocorrelogram` output (NaN where undefined).

    Returns
    -------
    ndarray, shape (n_units, n + 1)
        ``profile[u, k]``: mean over the valid pixels at distance in [k, k + 1)
        bins (n = the shorter map side); NaN for rings without valid pixels.
    """
    ac = as_float_array("acorr", acorr, (None, None, None), finite=False)
    pix, ring_start, _ = _rotation_stencil(ac.shape[1:], ())
    x = ac.reshape(ac.shape[0], -1)[:, pix]
    valid = np.isfinite(x)
    return _ring_means(np.where(valid, x, 0.0), valid, ring_start)


def periodic(maps=None, acorr=None):
    """Whether each map repeats in space: its autocorrelogram's radial profile
    (:func:`radial_profile`) falls below zero and later rises above zero again.

    This is the precondition of a grid score (Sargolini et al. 2006 score a
    ring of peaks around the centre). A periodic map's profile oscillates: for
    plane waves of wave number k it is J0(k r), which dips to -0.40 and comes
    back to +0.30 at the first ring of grid peaks. A smooth ramp or a single
    broad field has an autocorrelogram near 1 (ramp) or one that only decays;
    its rotated copies still correlate strongly, so it can get a high grid
    score (which only compares rotations) and beat a shuffle null; this test
    rejects it.

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W), optional
        Rate maps (NaN where invalid); or give ``acorr``.
    acorr : array_like, shape (n_units, 2H - 1, 2W - 1), optional
        Their autocorrelograms.

    Returns
    -------
    ndarray of bool, shape (n_units,)
    """
    if acorr is None:
        if maps is None:
            raise ValueError("give maps or acorr")
        acorr = autocorrelogram(_check_maps(maps))
    p = radial_profile(acorr)
    below = np.nan_to_num(p, nan=0.0) < 0
    first = np.where(below.any(axis=1), np.argmax(below, axis=1), p.shape[1])
    later = np.arange(p.shape[1])[None, :] > first[:, None]
    return np.any(later & (np.nan_to_num(p, nan=0.0) > 0), axis=1)


def _annulus_correlations(ac, angles):
    """Pearson r between each autocorrelogram and its rotations, for every annulus.

    Returns
    -------
    r : dict angle -> ndarray, shape (U, n + 2, n + 2)
        ``r[angle][u, a, b]``: correlation over the pixels with ring index
        in [a, b) (ring = floor(distance in bins)), valid in both copies;
        NaN for fewer than ``_MIN_ANNULUS`` pixels or b <= a.
    profile : ndarray, shape (U, n + 1)
        Mean of the autocorrelogram per ring (NaN-aware).
    """
    u = ac.shape[0]
    pix, ring_start, stencils = _rotation_stencil(ac.shape[1:], tuple(angles))
    flat = ac.reshape(u, -1)
    x = flat[:, pix]
    xv = np.isfinite(x)
    x0 = np.where(xv, x, 0.0)
    profile = _ring_means(x0, xv, ring_start)
    out = {}
    for angle, (interp, ok) in zip(angles, stencils):
        y = np.asarray(interp @ flat.T).T       # NaN wherever a weighted source is NaN
        yv = ok & np.isfinite(y)
        v = (xv & yv).astype(np.float64)
        xm, ym = x0 * v, np.where(yv, y, 0.0) * v
        n, sx, sy, sxx, syy, sxy = (
            _ring_sums(a, ring_start) for a in (v, xm, ym, xm * x0, ym * ym, xm * ym))

        def ann(c):
            return c[:, None, :] - c[:, :, None]            # (U, a, b): rings [a, b)

        nn, sx, sy = ann(n), ann(sx), ann(sy)
        cov = nn * ann(sxy) - sx * sy
        var = (nn * ann(sxx) - sx * sx) * (nn * ann(syy) - sy * sy)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cov / np.sqrt(var)
        r[(nn < _MIN_ANNULUS) | ~(var > 0)] = np.nan
        out[angle] = r
    return out, profile


def _centre_field_radius(profile):
    """BNT centre-field radius (rings) per unit from the radial profile (U, n + 1).

    The first ring k >= 1 where the mean correlation is below 0.2 or is a
    local minimum (the next ring is higher); n if there is none.
    """
    p = np.nan_to_num(profile, nan=-np.inf)
    nxt = np.concatenate([p[:, 1:], np.full((p.shape[0], 1), -np.inf)], axis=1)
    edge = (p < _CENTRE_FIELD_R) | (nxt > p)
    edge[:, 0] = False
    edge[:, -1] = True
    return np.argmax(edge, axis=1)


def _grid_combine(corr, symmetry, method):
    high, low = _GRID_ANGLES[symmetry]
    if method == "minmax":
        return (np.min([corr[a] for a in high], axis=0)
                - np.max([corr[a] for a in low], axis=0))
    return np.mean([corr[a] for a in high], axis=0) - np.mean([corr[a] for a in low], axis=0)


def grid_score(maps, symmetry=60, method="minmax", return_details=False, acorr=None):
    """Grid score of each rate map, from its spatial autocorrelogram.

    The autocorrelogram is rotated by the test angles (bilinear
    interpolation) and correlated (Pearson, bins valid in both) with itself
    inside an annulus centred on it, the central peak excluded. ``r30`` is
    the correlation after a 30 deg rotation, and so on. Distances are in
    bins; annulus [a, b) holds the pixels with a <= floor(distance) < b.

    ``method="minmax"`` (Sargolini et al. 2006 as in BNT / opexebo; the
    convention gridcore reports):

    - 60 deg: ``min(r60, r120) - max(r30, r90, r150)``;
    - 90 deg: ``r90 - max(r45, r135)`` (the min/max analogue);
    - inner radius: the centre field's, the first ring where the radial mean
      of the autocorrelogram drops below 0.2 or stops decreasing; outer
      radius grown ring by ring up to n (the shorter map side, in bins); the
      score is the maximum of the running mean over 3 consecutive outer radii.

    ``method="mean"`` (DeepMind's ``scores.py``, Banino et al. 2018):

    - 60 deg: ``(r60 + r120)/2 - (r30 + r90 + r150)/3``;
    - 90 deg: ``r90 - (r45 + r135)/2``;
    - annuli [round(0.2 n), round(f n)) for f in linspace(0.4, 1, 10); the
      score is the maximum over them. (DeepMind divides by the ring variance of the
      unrotated copy only; here r is a true Pearson correlation.)

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps (square bins, NaN where invalid).
    symmetry : {60, 90}
        Hexagonal (60 deg) or square (90 deg) grid score.
    method : {"minmax", "mean"}
        Convention, see above.
    return_details : bool
        Also return a dict of per-map details.
    acorr : array_like, shape (n_units, 2H - 1, 2W - 1), optional
        Precomputed :func:`gridcore.analysis.ratemaps.autocorrelogram` of ``maps``
        (then ``maps`` is not used), to share it between calls.

    Returns
    -------
    score : ndarray of float64, shape (n_units,)
        In [-2, 2]; NaN when no annulus has 20 valid pixels: under
        ``"minmax"`` when the centre field fills the autocorrelogram
        (``details["inner_radius"]`` = n: its radial mean stays above 0.2
        and keeps falling out to n bins, as for a smooth ramp, so there is
        no ring outside the central peak to compare), and under either
        method for a map with too few valid bins or no variance (a constant
        map).
    details : dict of ndarray, shape (n_units, ...)
        Only with ``return_details``. ``spacing`` (bins): median distance
        from the centre of the ``symmetry``-fold nearest autocorrelogram peaks
        (360/symmetry peaks: 6 or 4) outside the centre field; ``orientation``
        (deg, in [0, symmetry)): their mean angle modulo ``symmetry``, from
        the x axis counter-clockwise; ``n_peaks``: peaks used (up to 6 or 4);
        ``inner_radius``, ``outer_radius`` (bins): the annulus of the score;
        ``correlations`` (n_units, n_angles): r at ``angles`` (deg) in that annulus.
    """
    check_choice("symmetry", symmetry, _SYMMETRIES)
    check_choice("method", method, _METHODS)
    if acorr is None:
        ac = autocorrelogram(_check_maps(maps))
    else:
        ac = as_float_array("acorr", acorr, (None, None, None), finite=False)
        if ac.shape[1] % 2 == 0 or ac.shape[2] % 2 == 0:
            raise ValueError(f"acorr must have odd sides (2H - 1, 2W - 1), got {ac.shape}")
    n_units = ac.shape[0]
    angles = tuple(sorted(sum(_GRID_ANGLES[symmetry], ())))
    corr, profile = _annulus_correlations(ac, angles)
    g = _grid_combine(corr, symmetry, method)           # (U, a, b)
    n = profile.shape[1] - 1
    units = np.arange(n_units)
    r0 = _centre_field_radius(profile)
    if method == "minmax":
        # Scores for annuli [r0, b): the running mean over b skips NaN, so
        # radii too small to score simply drop out of the window.
        gb = g[units, r0, :]                             # (U, n + 2)
        valid = np.isfinite(gb)
        csum = np.cumsum(np.where(valid, gb, 0.0), axis=1)
        ccount = np.cumsum(valid, axis=1)
        k = _RUNNING_MEAN
        pad = ((0, 0), (k, 0))
        wsum = csum - np.pad(csum, pad)[:, :-k]
        wcount = ccount - np.pad(ccount, pad)[:, :-k]
        with np.errstate(invalid="ignore", divide="ignore"):
            running = wsum / wcount                      # window ends at b
        running[wcount < np.minimum(k, ccount[:, -1:])] = np.nan
        best = _nanargmax(running)
        score = running[units, best]
        inner = r0
        outer_r = np.maximum(best - (k - 1) // 2, 0)     # the window's centre
    else:
        inner = np.full(n_units, int(round(_MEAN_INNER * n)))
        outs = np.unique(np.rint(_MEAN_OUTER * n).astype(np.int64))
        gs = g[:, inner[0], outs]                        # (U, n_annuli)
        best = _nanargmax(gs)
        score = gs[units, best]
        outer_r = outs[best]
    if not return_details:
        return score
    details = _grid_peaks(ac, r0, symmetry)
    details.update(
        inner_radius=inner.astype(np.float64), outer_radius=outer_r.astype(np.float64),
        correlations=np.stack([corr[a][units, inner, outer_r] for a in angles], axis=1),
        angles=np.array(angles, dtype=np.float64))
    return score, details


def _nanargmax(a):
    """argmax along axis 1 ignoring NaN; 0 for all-NaN rows."""
    return np.argmax(np.where(np.isnan(a), -np.inf, a), axis=1)


def _grid_peaks(ac, r0, symmetry):
    """Spacing and orientation from the nearest autocorrelogram peaks."""
    n_units, ah, aw = ac.shape
    cy, cx = (ah - 1) // 2, (aw - 1) // 2
    filled = np.where(np.isnan(ac), -np.inf, ac)
    local_max = (filled == scipy.ndimage.maximum_filter(
        filled, size=(1, 3, 3), mode="constant", cval=-np.inf)) & (filled > 0)
    k = 360 // symmetry
    spacing = np.full(n_units, np.nan)
    orientation = np.full(n_units, np.nan)
    n_peaks = np.zeros(n_units, dtype=np.int64)
    for u in range(n_units):
        py, px = np.nonzero(local_max[u])
        dy, dx = py - cy, px - cx
        d = np.hypot(dy, dx)
        far = d > max(r0[u], 1)
        if not np.any(far):
            continue
        near = np.argsort(d[far], kind="stable")[:k]
        d, phi = d[far][near], np.arctan2(dy[far][near], dx[far][near])
        spacing[u] = np.median(d)
        # Mean of the angles on the k-fold circle, mapped back to [0, symmetry).
        mean = np.angle(np.sum(np.exp(1j * k * phi))) / k
        # Rounding keeps an orientation of -1e-15 deg from wrapping to `symmetry`.
        orientation[u] = np.round(np.rad2deg(mean), 9) % symmetry
        n_peaks[u] = len(d)
    return {"spacing": spacing, "orientation": orientation, "n_peaks": n_peaks}


# -------------------------------------------------------------- border score

def _chebyshev_radius(arena):
    """Radius of the largest disc inside the arena (its inradius)."""
    if isinstance(arena, Circle):
        return arena.radius
    k = len(arena.offsets)
    res = scipy.optimize.linprog(
        c=[0.0, 0.0, -1.0], A_ub=np.column_stack([arena.normals, np.ones(k)]),
        b_ub=arena.offsets, bounds=[(None, None), (None, None), (0, None)], method="highs")
    return float(res.x[2])


@lru_cache(maxsize=32)
def _border_geometry(key, bins):
    """Wall samples and normalised wall distances for one (arena, bins).

    Returns
    -------
    sample_bin : ndarray of int64, shape (S,)
        Flat bin of each wall sample point.
    sample_wall : ndarray of int64, shape (S,)
        Wall of each sample.
    n_walls : int
    distance : ndarray, shape (H * W,)
        Distance from each bin centre to the nearest wall / inradius (0
        for centres outside the arena).
    min_bins : float
        Bin count of the minimum field area (2% of the arena area).
    """
    binning = spatial_bins(arena_from_dict(json.loads(key)), bins)
    arena, h = binning.arena, binning.bin_size
    # Points every h/4 along each wall, h/2 inside it: in a square they fall
    # in the bins of the wall row, which is exactly Solstad's wall pixels.
    if isinstance(arena, Circle):
        m = int(np.ceil(2 * np.pi * arena.radius / (h / 4)))
        t = 2 * np.pi * (np.arange(m) + 0.5) / m
        pts = (arena.radius - h / 2) * np.column_stack([np.cos(t), np.sin(t)])
        wall = np.zeros(m, dtype=np.int64)
        n_walls = 1
    else:
        pts, wall = [], []
        for k, (a, b) in enumerate(arena.walls):
            length = np.hypot(*(b - a))
            m = int(np.ceil(length / (h / 4)))
            s = (np.arange(m) + 0.5) / m
            pts.append(a + s[:, None] * (b - a) - (h / 2) * arena.normals[k])
            wall.append(np.full(m, k))
        pts, wall = np.concatenate(pts), np.concatenate(wall)
        n_walls = len(arena.walls)
    # Near acute corners the inward point can cross the neighbouring wall.
    keep = arena.wall_distance(pts) > 0
    sample_bin = binning.flat_index(pts[keep])
    distance = np.maximum(arena.wall_distance(binning.centres.reshape(-1, 2)), 0.0)
    distance /= _chebyshev_radius(arena)
    min_bins = 0.02 * arena.area / h**2
    return sample_bin, wall[keep], n_walls, distance, min_bins


def border_score(maps, arena, return_details=False):
    """Border score of Solstad et al. (2008), generalised to polygon arenas.

    ``b = (cM - dm) / (cM + dm)``, in [-1, 1]:

    - maps are scaled to [0, 1] by their min and max over valid bins (tanh
      units have no zero rate; for a map whose minimum is 0 this is
      Solstad's scaling by the peak rate);
    - fields: 4-connected regions of bins above 0.3, of area at least 2% of
      the arena (Solstad: 200 cm^2 in a 1 m^2 box); *every* field is scored;
    - each polygon edge is a wall; a wall's coverage by a field is the
      fraction of its (visited) length whose adjacent bins belong to the
      field, measured at points every bin/4 along the wall, half a bin
      inside it (in a square these points fall in exactly the row of bins
      along the wall, Solstad's wall pixels);
    - cM: the maximum coverage over fields and walls;
    - dm: mean distance from the field bins' centres to the nearest wall,
      weighted by the scaled rate, divided by the arena's inradius (radius
      of the largest inscribed disc; half the shorter side of a rectangle,
      so for a square box this is Solstad's normalisation by half the side).

    A circle is one wall (its whole circumference), so a field along an arc
    of angle theta has cM = theta / 2pi: scores compare between circles, not
    with polygons. A map without any field scores -1.

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps made with :func:`gridcore.analysis.ratemaps.rate_maps` for ``arena``.
    arena : Arena
        Their arena (fixes the walls and the binning).
    return_details : bool
        Also return a dict of per-map details.

    Returns
    -------
    score : ndarray of float64, shape (n_units,)
        NaN for a constant or empty map.
    details : dict of ndarray, shape (n_units,)
        Only with ``return_details``: ``cM``, ``dm`` (NaN without a field),
        ``wall`` (index into ``arena.walls`` of the best-covered wall; -1 if
        no field touches a wall), ``n_fields``.
    """
    maps = _check_maps(maps)
    n_units, h, w = maps.shape
    binning = spatial_bins(arena, max(h, w))
    if binning.shape != (h, w):
        raise ValueError(
            f"maps have bins of shape {(h, w)}, but arena {arena.name!r} binned with "
            f"bins={max(h, w)} gives {binning.shape}; make maps with "
            f"gridcore.analysis.ratemaps.rate_maps(..., arena, bins)")
    sample_bin, sample_wall, n_walls, distance, min_bins = _border_geometry(
        arena_key(arena), max(h, w))
    valid = np.isfinite(maps) & binning.inside
    lo = np.min(np.where(valid, maps, np.inf), axis=(1, 2), keepdims=True)
    hi = np.max(np.where(valid, maps, -np.inf), axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (maps - lo) / (hi - lo)
    defined = (hi > lo).ravel()
    above = valid & (scaled > _BORDER_THRESHOLD) & defined[:, None, None]
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = scipy.ndimage.generate_binary_structure(2, 1)  # never across maps
    labels, n_labels = scipy.ndimage.label(above, structure)
    big = np.bincount(labels.ravel(), minlength=n_labels + 1) >= min_bins
    big[0] = False
    field = big[labels]
    # Field labels are unique across maps; map each back to its unit.
    unit_of = np.zeros(n_labels + 1, dtype=np.int64)
    unit_of[labels.ravel()] = np.repeat(np.arange(n_units), h * w)

    lab_s = labels.reshape(n_units, -1)[:, sample_bin]              # (U, S)
    val_s = valid.reshape(n_units, -1)[:, sample_bin]
    # Visited samples per wall: the length a field can cover.
    wall_len = val_s.astype(np.float64) @ np.eye(n_walls)[sample_wall]  # (U, walls)
    in_field = big[lab_s]
    keys = (lab_s * n_walls + sample_wall)[in_field]
    hits = np.bincount(keys, minlength=(n_labels + 1) * n_walls).reshape(-1, n_walls)
    with np.errstate(invalid="ignore", divide="ignore"):
        cover = hits / wall_len[unit_of]                            # (labels, walls)
    cover = np.nan_to_num(cover)
    cover_best = cover.max(axis=1)
    c_m = np.zeros(n_units)
    np.maximum.at(c_m, unit_of[big], cover_best[big])

    weight = np.where(field, scaled, 0.0).reshape(n_units, -1)
    wsum = weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_m = weight @ distance / wsum
        score = (c_m - d_m) / (c_m + d_m)
    has_field = wsum > 0
    score[~has_field] = -1.0
    score[~defined] = np.nan
    if not return_details:
        return score
    best_wall = np.full(n_units, -1, dtype=np.int64)
    ids = np.flatnonzero(big & (cover_best == c_m[unit_of]) & (cover_best > 0))
    best_wall[unit_of[ids]] = np.argmax(cover[ids], axis=1)
    n_fields = np.bincount(unit_of[big], minlength=n_units)
    return score, {"cM": np.where(has_field, c_m, np.nan), "dm": d_m,
                   "wall": best_wall, "n_fields": n_fields}


# ---------------------------------------------------------------- band score

def band_score(maps, min_wavelength=2.0, max_wavelength=None, pad=4, return_details=False):
    """Band score: how much of a map one plane wave explains.

    For each wave vector k the mean-subtracted map m (valid bins only) is
    fitted by least squares with ``a cos(k.x) + b sin(k.x)``; the score is the
    largest fraction of the map's variance explained,
    ``max_k (c, s) G(k)^-1 (c, s)^T / sum m^2`` with ``c, s = sum m cos, sum m
    sin`` and G the 2x2 Gram matrix of cos and sin over the valid bins. A
    single plane wave (stripes) scores ~1, a hexagonal grid (three waves of
    equal power) ~1/3, white noise ~0. The sums come from FFTs zero-padded
    ``pad`` times (G is exact for NaN holes and non-rectangular arenas),
    for all maps at once; the best k on that grid is then refined by two
    local searches (direct sums) to 1/16 of the grid step.

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps (square bins, NaN where invalid).
    min_wavelength : float
        Shortest wavelength searched (bins), >= 2 (Nyquist).
    max_wavelength : float, optional
        Longest wavelength searched (bins); default 2/3 of the shorter map
        side, i.e. at least 1.5 periods across it, so that a smooth ramp (half
        a period) is not called a band.
    pad : int
        Zero-padding factor of the FFT (coarse frequency step 1/(pad*side)).
    return_details : bool
        Also return a dict of per-map details.

    Returns
    -------
    score : ndarray of float64, shape (n_units,)
        In [0, 1]; NaN for a constant or empty map.
    details : dict of ndarray, shape (n_units,)
        Only with ``return_details``: ``wavelength`` (bins), ``orientation``
        (deg in [0, 180), direction of the wave vector from the x axis; the
        stripes run perpendicular to it).
    """
    maps = _check_maps(maps)
    n_units, h, w = maps.shape
    min_wavelength = check_nonneg_float("min_wavelength", min_wavelength)
    if min_wavelength < 2:
        raise ValueError(f"min_wavelength must be >= 2 bins, got {min_wavelength}")
    if max_wavelength is None:
        max_wavelength = min(h, w) / 1.5
    max_wavelength = check_nonneg_float("max_wavelength", max_wavelength)
    if max_wavelength < min_wavelength:
        raise ValueError(
            f"max_wavelength ({max_wavelength}) must be >= min_wavelength ({min_wavelength})")
    pad = check_positive_int("pad", pad)
    valid = np.isfinite(maps)
    n = valid.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, maps, 0.0).sum(axis=(1, 2)) / n
    m = np.where(valid, maps - mean[:, None, None], 0.0)
    total = np.sum(m * m, axis=(1, 2))
    ph, pw = pad * h, pad * w
    fm = scipy.fft.rfft2(m, s=(ph, pw))               # x frequencies >= 0 only
    # Maps binned from one path share their valid bins: one mask FFT then.
    shared = np.array_equal(valid, np.broadcast_to(valid[:1], valid.shape))
    fv = scipy.fft.fft2((valid[:1] if shared else valid).astype(np.float64), s=(ph, pw))
    fy = scipy.fft.fftfreq(ph)[:, None]               # cycles per bin
    fx = scipy.fft.rfftfreq(pw)[None, :]
    fnorm = np.hypot(fy, fx)
    half = (fx > 0) | ((fx == 0) & (fy > 0))          # k and -k are one wave
    with np.errstate(divide="ignore"):
        wavelength = 1.0 / fnorm
    search = half & (wavelength >= min_wavelength) & (wavelength <= max_wavelength)
    iy, ix = np.nonzero(search)
    if len(iy) == 0:
        raise ValueError(
            f"no wave vector with wavelength in [{min_wavelength}, {max_wavelength}] bins "
            f"for maps of shape {(h, w)}; widen the range or use a larger pad")
    # F(k) = sum m e^{-ik.x}; the Gram matrix needs the mask's transform at 2k.
    nn = n[:1, None] if shared else n[:, None]
    frac = _wave_fraction(fm[:, iy, ix], fv[:, (2 * iy) % ph, (2 * ix) % pw], nn, total[:, None])
    best = _nanargmax(frac)
    ky, kx = fy[iy[best], 0], fx[0, ix[best]]
    # The FFT grid is 1/(pad side) apart; two local 5 x 5 searches, each a
    # quarter as fine, recover the best wave between grid points.
    fmin, fmax = 1.0 / max_wavelength, 1.0 / min_wavelength
    y, x = np.arange(h), np.arange(w)
    frac_best = frac[np.arange(n_units), best]
    for span in (0.5, 0.125):
        oy = np.linspace(-span, span, 5) / ph
        ox = np.linspace(-span, span, 5) / pw
        cy, cx = ky[:, None] + oy, kx[:, None] + ox                      # (U, 5)
        ey = np.exp(-2j * np.pi * cy[:, :, None] * y)                      # (U, 5, H)
        ex = np.exp(-2j * np.pi * cx[:, :, None] * x)                      # (U, 5, W)
        f = ey @ (m @ ex.transpose(0, 2, 1))                               # (U, 5, 5)
        g = (ey * ey) @ (valid.astype(np.float64) @ (ex * ex).transpose(0, 2, 1))
        fr = _wave_fraction(f, g, n[:, None, None], total[:, None, None])
        fn = np.hypot(cy[:, :, None], cx[:, None, :])
        fr[(fn < fmin) | (fn > fmax)] = np.nan
        k = _nanargmax(fr.reshape(n_units, -1))
        i, j = np.divmod(k, 5)
        better = fr.reshape(n_units, -1)[np.arange(n_units), k] > frac_best
        ky = np.where(better, cy[np.arange(n_units), i], ky)
        kx = np.where(better, cx[np.arange(n_units), j], kx)
        frac_best = np.where(better, fr.reshape(n_units, -1)[np.arange(n_units), k], frac_best)
    score = frac_best
    score[~(total > 0)] = np.nan
    if not return_details:
        return score
    return score, {"wavelength": 1.0 / np.hypot(ky, kx),
                   "orientation": np.round(np.rad2deg(np.arctan2(ky, kx)), 9) % 180.0}


def _wave_fraction(f, g, n, total):
    """Fraction of variance explained by a cos + sin fit at wave vectors k.

    ``f = sum m e^{-ik.x}`` (so c = Re f, s = -Im f), ``g = sum v e^{-2ik.x}``
    over the valid bins v (Gram matrix: sum cos^2 = (n + Re g)/2, sum sin^2
    = (n - Re g)/2, sum cos sin = -Im g / 2), ``n`` valid bins and ``total``
    = sum m^2, all broadcastable. NaN where the fit is degenerate (k ~ 0 or
    at the Nyquist frequency, where sin vanishes on the bins).
    """
    c, s = f.real, -f.imag
    gcc, gss, gcs = (n + g.real) / 2, (n - g.real) / 2, -g.imag / 2
    det = gcc * gss - gcs * gcs
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (gss * c * c - 2 * gcs * c * s + gcc * s * s) / det / total
    frac = np.where(det > 1e-9 * n * n, frac, np.nan)
    return frac


# ---------------------------------------------------------------- plane score

def plane_score(maps):
    """Plane score: how much of a map a linear ramp explains.

    The map is fitted over its valid bins by least squares with
    ``a + b x + c y`` (x, y the bin column and row); the score is the
    fraction of the map's variance explained, the R^2 of the fit. A linear
    code of position (a ramp) scores 1, a ramp that saturates along a wall
    less, a blob or a grid about 0. The band score leaves ramps out by
    design (its waves have at least 1.5 periods across the map); this score
    is their measure. No null: it describes maps, it does not type units.

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps (NaN where invalid).

    Returns
    -------
    ndarray of float64, shape (n_units,)
        In [0, 1]; NaN for a constant map or one with fewer than 3 valid bins.
    """
    maps = _check_maps(maps)
    n_units, h, w = maps.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    score = np.full(n_units, np.nan)
    for i, m in enumerate(maps):
        valid = np.isfinite(m)
        v = m[valid]
        if v.size < 3:
            continue
        a = np.column_stack([np.ones(v.size), x[valid], y[valid]])
        coef, *_ = np.linalg.lstsq(a, v, rcond=None)
        total = np.sum((v - v.mean()) ** 2)
        # A constant map's variance is round-off: no score.
        if total > v.size * (1e-12 * np.abs(v).max()) ** 2:
            # R^2 with an intercept is in [0, 1]; round-off can step outside (-2e-16 for a bump).
            score[i] = min(1.0, max(0.0, 1.0 - np.sum((v - a @ coef) ** 2) / total))
    return score


# ------------------------------------------- spatial information, sparseness

def _rates(maps, offset):
    offset = float(offset)
    r = maps + offset
    valid = np.isfinite(r)
    if np.any(r[valid] < -1e-12):
        raise ValueError(
            f"maps + offset must be >= 0 (rates); got a minimum of "
            f"{np.min(r[valid]):.4g} with offset={offset} (offset 1.0 suits tanh units)")
    return np.where(valid, np.maximum(r, 0.0), 0.0), valid


def spatial_information(maps, occupancy=None, offset=TANH_OFFSET):
    """Skaggs et al. (1993) spatial information, bits per unit activity.

    ``I = sum_i p_i (r_i / r) log2(r_i / r)`` with ``p_i`` the occupancy
    probability of bin i, ``r_i`` the rate in bin i and ``r = sum_i p_i r_i``;
    terms with ``r_i = 0`` are 0. Rates must be >= 0, so tanh activity in
    [-1, 1] is shifted: ``r = activity + offset`` with ``offset = 1`` maps
    the unit's floor (tanh = -1) to rate 0. The score is invariant to scaling
    r, but not to the offset: a fixed offset (rather than each map's
    minimum) keeps a weakly modulated unit from looking selective.

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps (NaN where invalid).
    occupancy : array_like, shape (H, W), optional
        Time (or samples) spent per bin, >= 0; default uniform over each
        map's valid bins.
    offset : float
        Added to the maps to make rates (default 1.0, for tanh units).

    Returns
    -------
    ndarray of float64, shape (n_units,)
        Bits per unit of activity; NaN when the mean rate is 0.
    """
    maps = _check_maps(maps)
    r, valid = _rates(maps, offset)
    if occupancy is None:
        occ = valid.astype(np.float64)
    else:
        occ = as_float_array("occupancy", occupancy, maps.shape[1:])
        if np.any(occ < 0):
            raise ValueError("occupancy must be >= 0")
        occ = np.where(valid, occ, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = occ / occ.sum(axis=(1, 2), keepdims=True)
        mean = np.sum(p * r, axis=(1, 2), keepdims=True)
        ratio = r / mean
        terms = np.where((p > 0) & (r > 0), p * ratio * np.log2(ratio), 0.0)
    info = terms.sum(axis=(1, 2))
    info[~(mean.ravel() > 0)] = np.nan
    return info


def lifetime_sparseness(maps, offset=TANH_OFFSET):
    """Lifetime sparseness (Willmore & Tolhurst 2001), the paper's "spatial selectivity".

    ``S = (1 - (sum_i r_i / n)^2 / (sum_i r_i^2 / n)) / (1 - 1/n)`` over the
    n valid bins of a map, each bin one "stimulus" (equal weights): 0 for a
    spatially constant rate, 1 when a single bin is active. Rates are
    ``activity + offset`` (offset 1 for tanh units, as in
    :func:`spatial_information`).

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps (NaN where invalid).
    offset : float
        Added to the maps to make rates >= 0 (default 1.0, for tanh units).

    Returns
    -------
    ndarray of float64, shape (n_units,)
        In [0, 1]; NaN for fewer than 2 valid bins or an all-zero map.
    """
    maps = _check_maps(maps)
    r, valid = _rates(maps, offset)
    n = valid.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = r.sum(axis=(1, 2)) / n
        mean_sq = (r * r).sum(axis=(1, 2)) / n
        s = (1.0 - mean * mean / mean_sq) / (1.0 - 1.0 / n)
    s[~((n >= 2) & (mean_sq > 0))] = np.nan
    return s
