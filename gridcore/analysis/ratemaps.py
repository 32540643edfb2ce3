"""Spatial rate maps, their autocorrelograms and correlations between maps.

A rate map holds the mean activity of each unit per spatial bin. Bins are
squares of side ``bin_size`` (arena units) tiling the arena's bounding box:
``bins`` of them along its longer side, as many as needed along the shorter
one, the grid centred on the box. Square bins keep autocorrelograms
isotropic, which the rotational grid scores rely on.

Map layout, used by every function here and in :mod:`gridcore.analysis.scores`:
``maps[u, i, j]`` is unit ``u`` in row ``i`` (y, increasing from the bottom
of the box) and column ``j`` (x, increasing to the right), so
``imshow(maps[u], origin="lower")`` shows the arena the right way up.
A bin is NaN where it was never visited or does not overlap the arena.

The binning of one ``(arena, bins)`` pair is computed once and cached
(:func:`spatial_bins`, keyed by :func:`arena_key`); long paths are binned in
bounded memory by :class:`RateMapAccumulator`, which only keeps per-bin sums
and counts (:func:`bin_sums`), turned into maps by :func:`maps_from_sums`.
:func:`map_correlation` compares paired maps (two stages, two halves of a
path, a real and a simulated path).
"""

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.sparse

from gridcore.sim.arenas import Arena, Circle, arena_from_dict
from gridcore.util.checks import as_float_array, check_nonneg_float, check_positive_int

__all__ = [
    "SpatialBins",
    "spatial_bins",
    "RateMapAccumulator",
    "rate_maps",
    "smooth_maps",
    "autocorrelogram",
    "bin_sums",
    "maps_from_sums",
    "arena_key",
    "map_correlation",
    "MIN_OVERLAP",
    "MIN_COVERAGE",
    "coverage_warning",
]

# Autocorrelogram lags whose overlap (bins valid in both copies) is smaller
# than this are NaN: a Pearson r over fewer bins is dominated by noise.
MIN_OVERLAP = 20  # bins

# Scores of maps from a path that visits fewer of the arena's bins than this
# fraction come with a warning: border scores need the walls, autocorrelograms
# their overlaps (75 of 400 bins gave scores silently before).
MIN_COVERAGE = 0.8

# Positions may stick out of the bounding box by this much (relative to its
# size) from round-off; they go to the edge bin. Farther out is an error.
_BOX_RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class SpatialBins:
    """Square spatial bins over an arena's bounding box.

    Attributes
    ----------
    arena : Arena
        The arena binned.
    bins : int
        Number of bins along the longer side of the bounding box.
    bin_size : float
        Side of a bin (arena units).
    shape : tuple of int
        ``(H, W)``: rows (y) and columns (x) of a map.
    x_edges : ndarray, shape (W + 1,)
        Column edges (arena units), increasing.
    y_edges : ndarray, shape (H + 1,)
        Row edges (arena units), increasing.
    centres : ndarray, shape (H, W, 2)
        Bin centres (x, y) (arena units).
    inside : ndarray of bool, shape (H, W)
        Bins that overlap the arena (with positive area). Bins outside are
        NaN in every map.
    """

    arena: Arena
    bins: int
    bin_size: float
    shape: tuple
    x_edges: np.ndarray
    y_edges: np.ndarray
    centres: np.ndarray
    inside: np.ndarray

    @property
    def n_bins(self):
        """Total number of bins, ``H * W``."""
        return self.shape[0] * self.shape[1]

    def coverage(self, counts):
        """Fraction of the bins inside the arena that hold at least one sample.

        Parameters
        ----------
        counts : array_like, shape (H W,) or (H, W)
            Samples per bin (e.g. ``RateMapAccumulator.counts``).

        Returns
        -------
        float in [0, 1]
        """
        c = np.asarray(counts).reshape(self.shape)
        return float(np.mean(c[self.inside] > 0))

    def flat_index(self, positions):
        """Flat bin index ``i * W + j`` of each position.

        Parameters
        ----------
        positions : ndarray of float64, shape (n, 2)
            Positions (arena units), inside the arena's bounding box up to
            round-off.

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        h, w = self.shape
        x0, y0 = self.x_edges[0], self.y_edges[0]
        j = np.floor((positions[:, 0] - x0) / self.bin_size).astype(np.int64)
        i = np.floor((positions[:, 1] - y0) / self.bin_size).astype(np.int64)
        xmin, ymin, xmax, ymax = self.arena.bounds
        tol = _BOX_RTOL * max(xmax - xmin, ymax - ymin)
        bad = ((positions[:, 0] < xmin - tol) | (positions[:, 0] > xmax + tol)
               | (positions[:, 1] < ymin - tol) | (positions[:, 1] > ymax + tol))
        if np.any(bad):
            k = int(np.argmax(bad))
            raise ValueError(
                f"positions must lie inside the arena's bounding box "
                f"{self.arena.bounds}; sample {k} is at {positions[k].tolist()}")
        # Clipping only moves round-off strays (and points exactly on the far
        # edge) into the edge bins.
        return np.clip(i, 0, h - 1) * w + np.clip(j, 0, w - 1)


def coverage_warning(fraction, bins, what="the path"):
    """The warning for a path that covers too little of the arena, or None.

    Parameters
    ----------
    fraction : float
        :meth:`SpatialBins.coverage` of the path.
    bins : int
        Bins along the longer side (said in the text).
    what : str
        What visited the bins, for the text.

    Returns
    -------
    str or None
        None when ``fraction >= MIN_COVERAGE``.
    """
    if fraction >= MIN_COVERAGE:
        return None
    return (f"{what} visits {100 * fraction:.0f}% of the arena's bins ({bins} along the longer side), "
            f"below {100 * MIN_COVERAGE:.0f}%: rate maps are mostly empty and their scores (border, "
            f"grid, band, spatial information) mean little")


def arena_key(arena):
    """Hashable description of an arena's geometry, for caches keyed by arena.

    Parameters
    ----------
    arena : Arena

    Returns
    -------
    str
        The arena's :meth:`gridcore.sim.arenas.Arena.to_dict` as sorted JSON;
        equal for arenas of equal geometry and name.
    """
    if not isinstance(arena, Arena):
        raise ValueError(f"arena must be an Arena (see gridcore.sim.arenas.make_arena), got {arena!r}")
    return json.dumps(arena.to_dict(), sort_keys=True)


def spatial_bins(arena, bins):
    """The binning of ``arena`` with ``bins`` bins along its longer side (cached).

    Parameters
    ----------
    arena : Arena
        Arena from :mod:`gridcore.sim.arenas`.
    bins : int
        Number of bins along the longer side of the arena's bounding box, >= 2.

    Returns
    -------
    SpatialBins
        Shared between calls with the same geometry and ``bins``; treat it as
        read-only.
    """
    bins = check_positive_int("bins", bins)
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    return _spatial_bins_cached(arena_key(arena), bins)


@lru_cache(maxsize=64)
def _spatial_bins_cached(key, bins):
    arena = arena_from_dict(json.loads(key))
    xmin, ymin, xmax, ymax = arena.bounds
    size = max(xmax - xmin, ymax - ymin) / bins
    # The longer side gets exactly `bins`; the tolerance stops round-off
    # from adding a sliver column or row.
    w = max(1, int(np.ceil((xmax - xmin) / size - 1e-9)))
    h = max(1, int(np.ceil((ymax - ymin) / size - 1e-9)))
    x_edges = 0.5 * (xmin + xmax) + size * (np.arange(w + 1) - 0.5 * w)
    y_edges = 0.5 * (ymin + ymax) + size * (np.arange(h + 1) - 0.5 * h)
    xc = 0.5 * (x_edges[1:] + x_edges[:-1])
    yc = 0.5 * (y_edges[1:] + y_edges[:-1])
    centres = np.stack(np.meshgrid(xc, yc, indexing="xy"), axis=-1)
    inside = _overlaps_arena(arena, x_edges, y_edges)
    for a in (x_edges, y_edges, centres, inside):
        a.setflags(write=False)
    return SpatialBins(arena=arena, bins=bins, bin_size=float(size), shape=(h, w),
                       x_edges=x_edges, y_edges=y_edges, centres=centres, inside=inside)


def _overlaps_arena(arena, x_edges, y_edges):
    """(H, W) bool: does bin [x_j, x_j+1] x [y_i, y_i+1] overlap the arena?"""
    x0 = np.broadcast_to(x_edges[None, :-1], (len(y_edges) - 1, len(x_edges) - 1))
    x1 = np.broadcast_to(x_edges[None, 1:], x0.shape)
    y0 = np.broadcast_to(y_edges[:-1, None], x0.shape)
    y1 = np.broadcast_to(y_edges[1:, None], x0.shape)
    tol = 1e-9 * (x_edges[-1] - x_edges[0])
    if isinstance(arena, Circle):
        # Distance from the centre to the nearest point of the rectangle.
        dx = np.maximum(np.maximum(x0, -x1), 0.0)
        dy = np.maximum(np.maximum(y0, -y1), 0.0)
        return np.hypot(dx, dy) < arena.radius - tol
    # Separating-axis test for a convex polygon and an axis-aligned box: they
    # are disjoint iff the box lies beyond one wall's line or outside the
    # polygon's bounding box (the only candidate axes).
    corners = np.stack([np.stack(c, axis=-1) for c in
                        ((x0, y0), (x1, y0), (x0, y1), (x1, y1))], axis=-2)
    proj = corners @ arena.normals.T                    # (H, W, 4, K)
    beyond = np.any(np.min(proj, axis=-2) >= arena.offsets - tol, axis=-1)
    xmin, ymin, xmax, ymax = arena.bounds
    outside_box = ((x1 <= xmin + tol) | (x0 >= xmax - tol)
                   | (y1 <= ymin + tol) | (y0 >= ymax - tol))
    return ~(beyond | outside_box)


def _flatten_samples(activity, positions):
    """Validate and flatten (activity, positions) to (n, U) and (n, 2)."""
    act = np.asarray(activity)
    pos = np.asarray(positions)
    if act.ndim == 3:
        act = as_float_array("activity", act, (None, None, None))
        pos = as_float_array("positions", pos, (act.shape[0], act.shape[1], 2))
        return act.reshape(-1, act.shape[2]), pos.reshape(-1, 2)
    act = as_float_array("activity", act, (None, None))
    pos = as_float_array("positions", pos, (act.shape[0], 2))
    return act, pos


class RateMapAccumulator:
    """Per-bin activity sums and visit counts, filled chunk by chunk.

    Memory is ``O(n_units * H * W)`` whatever the path length, so paths of
    10^6 steps and more can be streamed in chunks. Adding chunks in any
    split gives the same maps as one pass (up to float round-off).

    Parameters
    ----------
    arena : Arena
        The arena the positions are in.
    bins : int
        Bins along the longer side of the bounding box (see :func:`spatial_bins`).
    n_units : int
        Number of units (columns of activity).

    Attributes
    ----------
    binning : SpatialBins
        The spatial bins.
    sums : ndarray of float64, shape (n_units, H, W)
        Sum of activity per bin.
    counts : ndarray of int64, shape (H, W)
        Number of samples per bin (the occupancy, in samples).
    n_samples : int
        Samples added so far.
    """

    def __init__(self, arena, bins, n_units):
        self.binning = spatial_bins(arena, bins)
        self.n_units = check_positive_int("n_units", n_units)
        h, w = self.binning.shape
        self._sums = np.zeros((h * w, self.n_units))  # (HW, U): rows are bins
        self._counts = np.zeros(h * w, dtype=np.int64)
        self.n_samples = 0

    def add(self, activity, positions):
        """Add one chunk of samples.

        Parameters
        ----------
        activity : array_like, shape (n, n_units) or (M, T, n_units)
            Unit activity per sample.
        positions : array_like, shape (n, 2) or (M, T, 2)
            Position of each sample (arena units).

        Returns
        -------
        self
        """
        act, pos = _flatten_samples(activity, positions)
        if act.shape[1] != self.n_units:
            raise ValueError(
                f"activity must have n_units={self.n_units} columns, got {act.shape[1]}")
        idx = self.binning.flat_index(pos)
        self._sums += bin_sums(idx, act, self.binning.n_bins)
        self._counts += np.bincount(idx, minlength=self.binning.n_bins)
        self.n_samples += act.shape[0]
        return self

    @property
    def sums(self):
        """Sum of activity per bin, shape (n_units, H, W) (read-only view)."""
        return _read_only(self._sums.T.reshape(self.n_units, *self.binning.shape))

    @property
    def counts(self):
        """Samples per bin, shape (H, W) (read-only view)."""
        return _read_only(self._counts.reshape(self.binning.shape))

    def maps(self, smooth=None):
        """Rate maps of the samples added so far.

        Parameters
        ----------
        smooth : float, optional
            Gaussian smoothing sigma (bins), see :func:`smooth_maps`.

        Returns
        -------
        ndarray of float64, shape (n_units, H, W)
            Mean activity per bin; NaN where unvisited or outside the arena.
        """
        return maps_from_sums(self._sums, self._counts, self.binning, smooth)


def _read_only(a):
    a = a.view()
    a.setflags(write=False)
    return a


def bin_sums(idx, activity, n_bins):
    """Sum of activity rows per bin, ``(n_bins, U)``.

    One sparse (bins x samples) one-hot product: a single pass over
    ``activity``, much faster than one ``bincount`` per unit.

    Parameters
    ----------
    idx : ndarray of int64, shape (n,)
        Bin of each sample, in ``[0, n_bins)``.
    activity : ndarray of float64, shape (n, U)
    n_bins : int

    Returns
    -------
    ndarray of float64, shape (n_bins, U)
    """
    n = len(idx)
    onehot = scipy.sparse.csc_matrix(
        (np.ones(n), idx, np.arange(n + 1)), shape=(n_bins, n))
    return np.asarray(onehot @ activity)


def maps_from_sums(sums, counts, binning, smooth=None):
    """Rate maps from per-bin activity sums and visit counts.

    Parameters
    ----------
    sums : ndarray of float64, shape (H W, U)
        Sum of each unit's activity per flat bin (rows are bins, as
        :func:`bin_sums` gives them).
    counts : ndarray of int64, shape (H W,)
        Samples per flat bin.
    binning : SpatialBins
        The bins (:func:`spatial_bins`).
    smooth : float, optional
        Gaussian smoothing sigma (bins), see :func:`smooth_maps`; None for raw means.

    Returns
    -------
    ndarray of float64, shape (U, H, W)
        Mean activity per bin; NaN where unvisited or outside the arena.
    """
    valid = (counts > 0) & binning.inside.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None]
    mean[~valid] = np.nan
    maps = np.ascontiguousarray(mean.T).reshape(sums.shape[1], *binning.shape)
    return maps if smooth is None else smooth_maps(maps, smooth)


def rate_maps(activity, positions, arena, bins, smooth=None, return_occupancy=False):
    """Mean activity of each unit per spatial bin.

    Parameters
    ----------
    activity : array_like, shape (n_samples, n_units) or (M, T, n_units)
        Unit activity per sample (any units; tanh activity for gridcore nets).
    positions : array_like, shape (n_samples, 2) or (M, T, 2)
        Position of each sample (arena units).
    arena : Arena
        The arena the positions are in.
    bins : int
        Bins along the longer side of the arena's bounding box (see
        :func:`spatial_bins`); the bin side is that side's length / ``bins``.
    smooth : float, optional
        Sigma (bins) of a NaN-aware Gaussian smoothing (:func:`smooth_maps`);
        None for raw means.
    return_occupancy : bool
        Also return the number of samples per bin.

    Returns
    -------
    maps : ndarray of float64, shape (n_units, H, W)
        Mean activity per bin (layout in the module docstring); NaN where
        unvisited or outside the arena.
    occupancy : ndarray of int64, shape (H, W)
        Samples per bin; only if ``return_occupancy``.
    """
    act, pos = _flatten_samples(activity, positions)
    acc = RateMapAccumulator(arena, bins, act.shape[1]).add(act, pos)
    maps = acc.maps(smooth)
    return (maps, acc.counts) if return_occupancy else maps


def smooth_maps(maps, sigma):
    """NaN-aware Gaussian smoothing (normalised convolution).

    ``out = G * (m 1_valid) / G * 1_valid`` per map, with G a Gaussian of
    sd ``sigma`` bins truncated at 4 sigma: each valid bin becomes a weighted
    mean of the valid bins near it, so NaN bins and the outside of the arena
    neither leak in nor pull values to zero. NaN bins stay NaN.

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
    sigma : float
        Standard deviation (bins), >= 0; 0 returns a copy.

    Returns
    -------
    ndarray of float64, shape (n_units, H, W)
    """
    maps = as_float_array("maps", maps, (None, None, None), finite=False)
    sigma = check_nonneg_float("sigma", sigma)
    if sigma == 0:
        return maps.copy()
    valid = np.isfinite(maps)
    s = (0.0, sigma, sigma)  # never smooth across units
    num = scipy.ndimage.gaussian_filter(np.where(valid, maps, 0.0), s, mode="constant")
    den = scipy.ndimage.gaussian_filter(valid.astype(np.float64), s, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~valid] = np.nan
    return out


def autocorrelogram(maps, min_overlap=MIN_OVERLAP):
    """Spatial autocorrelograms, NaN-aware.

    For each lag (dy, dx) the Pearson correlation between the map and the
    map shifted by that lag, over the bins valid (finite) in both; lags
    with fewer than ``min_overlap`` such bins, or zero variance in either
    copy, are NaN. All sums are cross-correlations computed with FFTs, for
    all units at once (zero-padded, so no wrap-around).

    Parameters
    ----------
    maps : array_like, shape (n_units, H, W)
        Rate maps (NaN where invalid).
    min_overlap : int
        Minimum number of bins valid at both ends of a lag (default
        :data:`MIN_OVERLAP` = 20).

    Returns
    -------
    ndarray of float64, shape (n_units, 2H - 1, 2W - 1)
        ``out[u, H - 1 + dy, W - 1 + dx]`` correlates bin (i, j) with bin
        (i + dy, j + dx); the centre (zero lag) is 1 for any non-constant map.
    """
    maps = as_float_array("maps", maps, (None, None, None), finite=False)
    min_overlap = check_positive_int("min_overlap", min_overlap)
    u, h, w = maps.shape
    valid = np.isfinite(maps)
    m = np.where(valid, maps, 0.0)
    # Centring first keeps the one-pass Pearson formula free of cancellation.
    n_valid = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = m.sum(axis=(1, 2)) / n_valid
    m = np.where(valid, m - np.nan_to_num(mean)[:, None, None], 0.0)
    # Maps binned from one path share their valid bins: one mask FFT then.
    v = (valid[:1] if np.array_equal(valid, np.broadcast_to(valid[:1], valid.shape))
         else valid).astype(np.float64)
    shape = (2 * h - 1, 2 * w - 1)
    fx, fx2, fv = (scipy.fft.rfft2(a, s=shape) for a in (m, m * m, v))

    def xcorr(fa, fb):
        # sum_p a(p) b(p + lag), rolled so that zero lag is at the centre.
        c = scipy.fft.irfft2(np.conj(fa) * fb, s=shape)
        return np.roll(c, (h - 1, w - 1), axis=(1, 2))

    n = np.rint(xcorr(fv, fv))
    s1, s11, s12 = xcorr(fx, fv), xcorr(fx2, fv), xcorr(fx, fx)
    # sum_p v(p) x(p + lag) is sum_p x(p) v(p - lag): the same array flipped.
    s2, s22 = s1[:, ::-1, ::-1], s11[:, ::-1, ::-1]
    var1 = n * s11 - s1 * s1
    var2 = n * s22 - s2 * s2
    # FFT round-off is ~1e-12 of the largest term; smaller variances are 0.
    eps = 1e-10 * np.max(n * np.maximum(s11, s22), axis=(1, 2), keepdims=True)
    ok = (n >= min_overlap) & (var1 > eps) & (var2 > eps)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (n * s12 - s1 * s2) / np.sqrt(var1 * var2)
    r[~ok] = np.nan
    return np.clip(r, -1.0, 1.0)


def map_correlation(a, b):
    """Pearson correlation of paired rate maps over the bins valid (finite) in both.

    Parameters
    ----------
    a, b : array_like, shape (n_units, H, W)

    Returns
    -------
    ndarray, shape (n_units,); NaN with fewer than 3 common bins or a constant map.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"maps must both have shape (n_units, H, W), got {a.shape} and {b.shape}")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    v = np.isfinite(a) & np.isfinite(b)
    n = v.sum(axis=1)
    a0, b0 = np.where(v, a, 0.0), np.where(v, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = a0.sum(axis=1) / n, b0.sum(axis=1) / n
        da, db = np.where(v, a0 - ma[:, None], 0.0), np.where(v, b0 - mb[:, None], 0.0)
        # r is scale-free: dividing each row by its largest |value| keeps the products finite
        # for the huge maps of a network whose activity ran away
        da /= np.abs(da).max(axis=1, keepdims=True, initial=0.0)
        db /= np.abs(db).max(axis=1, keepdims=True, initial=0.0)
        r = (da * db).sum(axis=1) / np.sqrt((da ** 2).sum(axis=1) * (db ** 2).sum(axis=1))
    r[n < 3] = np.nan
    return r
