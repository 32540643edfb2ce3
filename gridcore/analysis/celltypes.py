"""Unit types decided against shuffle nulls: grid, band, border, irregular, speed, direction.

For every unit, each score (grid, border, band, spatial information,
speed and direction selectivity; see :mod:`gridcore.analysis.scores` and
:mod:`gridcore.analysis.tuning`) is compared with its own null distribution: the
same score after circularly shifting the unit's activity along the path by
a random lag (at least ``min_shift`` of the path length from either end).
A shift keeps the unit's temporal structure and the path's occupancy but
breaks the relation between activity and position, speed and heading. A
unit passes a score when it exceeds the ``percentile`` (95th) of its null.

Labels (``CellTypes.labels``):

- spatial type (one of): a unit is *spatially tuned* if its spatial
  information passes. A spatially tuned unit is ``border`` if its border
  score passes, else ``grid`` if its 60 or 90 deg grid score passes and
  its map is periodic (:func:`gridcore.analysis.scores.periodic`: a smooth ramp
  beats the shuffle null on the grid score too), else
  ``band`` if its band score passes, else ``irregular``. The order goes
  from the most to the least specific score: grids and bands put most of
  their fields away from the walls and rarely pass the border score, but a
  field along every wall of a triangle or hexagon has the arena's
  symmetry and passes the 60 deg grid score; a grid is a sum of plane
  waves and so also beats its band null. A unit that is not spatially
  tuned is ``none``.
  Gating by spatial information keeps the false-positive rate for a
  spatial label near 1 - percentile instead of compounding it over 4 tests.
- ``speed`` and ``direction``, independently, when speed or direction
  selectivity passes.

Speed: every shuffle shares one lag across units, so the spatial, speed and
heading bin sums of all units come from one sparse (bins x steps) product
with the unshifted activity (the bins' columns are rolled instead), and
occupancy never changes.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from gridcore.analysis.ratemaps import _maps_from_sums, autocorrelogram, spatial_bins
from gridcore.analysis.scores import (
    CONVENTIONS,
    TANH_OFFSET,
    band_score,
    border_score,
    grid_score,
    lifetime_sparseness,
    periodic,
    spatial_information,
)
from gridcore.analysis.tuning import (
    bin_mean_speed,
    direction_bin_index,
    direction_selectivity,
    speed_bin_index,
    speed_selectivity,
)
from gridcore.util.checks import (
    as_float_array,
    check_choice,
    check_nonneg_float,
    check_positive_int,
)

__all__ = ["CellTypes", "classify", "SCORE_NAMES", "SPATIAL_TYPES"]

SCORE_NAMES = ("grid60", "grid90", "border", "band", "spatial_information",
               "lifetime_sparseness", "speed_selectivity", "direction_selectivity")
SPATIAL_TYPES = ("grid", "border", "band", "irregular", "none")

# Maps scored per batch of shuffles: bounds memory, amortises Python overhead.
_MAPS_PER_BATCH = 1000


@dataclass(frozen=True, eq=False)
class CellTypes:
    """Per-unit scores, shuffle thresholds and labels from :func:`classify`.

    Attributes
    ----------
    scores : dict of str -> ndarray, shape (n_units,)
        Each of :data:`SCORE_NAMES` for the unshifted activity.
    thresholds : dict of str -> ndarray, shape (n_units,)
        The ``percentile`` of each score's shuffle null, per unit.
    null : dict of str -> ndarray, shape (n_shuffles, n_units)
        The null scores themselves.
    spatial_type : ndarray of str, shape (n_units,)
        ``"grid"``, ``"border"``, ``"band"``, ``"irregular"`` or ``"none"``
        (not spatially tuned).
    grid_symmetry : ndarray of int, shape (n_units,)
        60 or 90 for grid units (the symmetry that won), else 0.
    periodic : ndarray of bool, shape (n_units,)
        Whether the unit's map repeats in space (:func:`gridcore.analysis.scores.periodic`),
        required of a grid unit.
    speed_tuned, direction_tuned : ndarray of bool, shape (n_units,)
    labels : list of tuple of str
        Per unit: its spatial type (if any), then ``"speed"`` and/or
        ``"direction"``; ``()`` for an untuned unit.
    maps : ndarray, shape (n_units, H, W)
        The rate maps that were scored (smoothed as in ``settings``).
    settings : dict
        Everything needed to reproduce the classification, with the score
        conventions (JSON-serialisable).
    """

    scores: dict
    thresholds: dict
    null: dict
    spatial_type: np.ndarray
    grid_symmetry: np.ndarray
    periodic: np.ndarray
    speed_tuned: np.ndarray
    direction_tuned: np.ndarray
    labels: list
    maps: np.ndarray
    settings: dict = field(default_factory=dict)

    def passes(self):
        """Whether each unit's score beats its null, per score: dict of str -> bool ndarray (n_units,)."""
        return _passes(self.scores, self.thresholds)

    def counts(self):
        """Number of units per spatial type, speed- and direction-tuned, and untuned."""
        out = {t: int(np.sum(self.spatial_type == t)) for t in SPATIAL_TYPES}
        out["speed"] = int(self.speed_tuned.sum())
        out["direction"] = int(self.direction_tuned.sum())
        out["untuned"] = sum(1 for lab in self.labels if not lab)
        return out

    def to_dict(self):
        """JSON-serialisable summary (no maps or nulls), for metrics.json."""
        def floats(a):
            return [None if not np.isfinite(v) else float(v) for v in a]
        return {
            "settings": self.settings,
            "counts": self.counts(),
            "passed": {k: int(v.sum()) for k, v in self.passes().items()},
            "units": {
                "scores": {k: floats(v) for k, v in self.scores.items()},
                "thresholds": {k: floats(v) for k, v in self.thresholds.items()},
                "spatial_type": [str(t) for t in self.spatial_type],
                "grid_symmetry": [int(s) for s in self.grid_symmetry],
                "periodic": [bool(p) for p in self.periodic],
                "labels": [list(lab) for lab in self.labels],
            },
        }


def _passes(scores, thresholds):
    # A NaN score (e.g. an unvisited map) or a NaN null never passes.
    return {k: np.nan_to_num(scores[k], nan=-np.inf) > np.nan_to_num(thresholds[k], nan=np.inf)
            for k in scores}


def _flatten(activity, positions, speed, heading):
    act = np.asarray(activity)
    if act.ndim == 3:
        act = as_float_array("activity", act, (None, None, None))
        lead = act.shape[:2]
        act = act.reshape(-1, act.shape[2])
    else:
        act = as_float_array("activity", act, (None, None))
        lead = (act.shape[0],)
    pos = as_float_array("positions", positions, (*lead, 2)).reshape(-1, 2)
    spd = as_float_array("speed", speed, lead).ravel()
    hd = as_float_array("heading", heading, lead).ravel()
    return act, pos, spd, hd


def _roll_columns(indptr, indices, shift):
    """CSC structure whose column j is column (j + shift) % n of the input."""
    nnz = indptr[-1]
    cut = indptr[shift]
    new_indices = np.concatenate([indices[cut:], indices[:cut]])
    new_indptr = np.concatenate([indptr[shift:] - cut, indptr[1:shift + 1] + (nnz - cut)])
    return new_indptr, new_indices


def classify(activity, positions, speed, heading, arena, bins=20, *, n_shuffles=100, seed=0,
             min_shift=0.05, percentile=95.0, smooth=1.0, grid_method="minmax",
             speed_bins=20, direction_bins=36, min_count=10, offset=TANH_OFFSET):
    """Score every unit and label it against shuffle nulls (see the module docstring).

    Parameters
    ----------
    activity : array_like, shape (n, n_units) or (M, T, n_units)
        Unit activity per step (trials are concatenated into one path).
    positions : array_like, shape (n, 2) or (M, T, 2)
        Position per step (arena units).
    speed : array_like, shape (n,) or (M, T)
        Speed per step (arena units per step).
    heading : array_like, shape (n,) or (M, T)
        Heading per step (rad).
    arena : Arena
        The arena of the path.
    bins : int
        Spatial bins along the longer side of the arena's bounding box.
    n_shuffles : int
        Circular shifts per unit (one lag per shuffle, shared by the units).
    seed : int or numpy.random.Generator
        Source of the lags.
    min_shift : float
        Lags are uniform in [min_shift n, (1 - min_shift) n] steps, in (0, 0.5):
        at least 5% of the path by default (12,500 steps of a 250k-step path,
        far beyond the few hundred steps a path takes to cross the arena).
    percentile : float
        Percentile of the null a score must exceed, in (0, 100).
    smooth : float or None
        Gaussian smoothing sigma (bins) of the rate maps (real and null alike).
    grid_method : {"minmax", "mean"}
        Grid-score convention (:func:`gridcore.analysis.scores.grid_score`).
    speed_bins, direction_bins : int
        Bins of the speed (moving steps, equal-count bins) and heading (all
        steps, equal-width over [-pi, pi)) tuning curves (:mod:`gridcore.analysis.tuning`).
    min_count : int
        Tuning-curve bins with fewer samples are left out.
    offset : float
        Rate = activity + offset for spatial information and sparseness;
        activity below ``-offset`` raises ValueError.

    Returns
    -------
    CellTypes
    """
    act, pos, spd, hd = _flatten(activity, positions, speed, heading)
    n, n_units = act.shape
    n_shuffles = check_positive_int("n_shuffles", n_shuffles)
    min_shift = check_nonneg_float("min_shift", min_shift)
    if not 0 < min_shift < 0.5:
        raise ValueError(f"min_shift must be in (0, 0.5) (a fraction of the path), got {min_shift}")
    percentile = check_nonneg_float("percentile", percentile)
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    if smooth is not None:
        smooth = check_nonneg_float("smooth", smooth)
    check_choice("grid_method", grid_method, ("minmax", "mean"))
    min_count = check_positive_int("min_count", min_count)
    offset = float(offset)
    if act.min() < -offset:
        raise ValueError(
            f"activity + offset must be >= 0 (rates for spatial information); got a minimum "
            f"activity of {act.min():.4g} with offset={offset} (offset 1.0 suits tanh units)")
    rng = np.random.default_rng(seed)

    binning = spatial_bins(arena, bins)
    n_sp = binning.n_bins
    sp_idx = binning.flat_index(pos)
    speed_idx, speed_edges = speed_bin_index(spd, speed_bins)   # moving, equal-count bins
    dir_idx, _ = direction_bin_index(hd, direction_bins)
    n_speed = len(speed_edges) - 1
    # One design matrix over (spatial | speed | heading) bins x steps.
    rows = [sp_idx, np.where(speed_idx >= 0, n_sp + speed_idx, -1),
            n_sp + n_speed + dir_idx]
    rows = np.stack(rows)                                     # (3, n)
    cols = np.broadcast_to(np.arange(n), rows.shape)
    keep = rows >= 0
    n_rows = n_sp + n_speed + direction_bins
    design = scipy.sparse.csc_matrix(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n_rows, n))
    design.sort_indices()
    counts = np.asarray(design.sum(axis=1)).ravel().astype(np.int64)
    counts_sp = counts[:n_sp]
    speed_counts = counts[n_sp:n_sp + n_speed]
    dir_counts = counts[n_sp + n_speed:]
    speed_x = bin_mean_speed(spd, speed_idx, n_speed)

    lo = int(np.ceil(min_shift * n))
    if n - lo < lo:
        raise ValueError(f"the path ({n} steps) is too short for min_shift={min_shift}")
    shifts = rng.integers(lo, n - lo + 1, size=n_shuffles)

    def sums_for(shift):
        if shift == 0:
            return np.asarray(design @ act)
        indptr, indices = _roll_columns(design.indptr, design.indices, int(shift))
        rolled = scipy.sparse.csc_matrix((design.data, indices, indptr), shape=design.shape)
        return np.asarray(rolled @ act)

    def score_batch(sums_list):
        maps = np.concatenate([_maps_from_sums(s[:n_sp], counts_sp, binning, smooth)
                               for s in sums_list])
        with np.errstate(invalid="ignore", divide="ignore"):
            sc = np.concatenate([(s[n_sp:n_sp + n_speed] / speed_counts[:, None]).T
                                 for s in sums_list])
            dc = np.concatenate([(s[n_sp + n_speed:] / dir_counts[:, None]).T
                                 for s in sums_list])
        sc[:, speed_counts < min_count] = np.nan
        dc[:, dir_counts < min_count] = np.nan
        ac = autocorrelogram(maps)
        occupancy = counts_sp.reshape(binning.shape)
        out = {
            "grid60": grid_score(None, 60, grid_method, acorr=ac),
            "grid90": grid_score(None, 90, grid_method, acorr=ac),
            "border": border_score(maps, arena),
            "band": band_score(maps),
            "spatial_information": spatial_information(maps, occupancy, offset),
            "lifetime_sparseness": lifetime_sparseness(maps, offset),
            "speed_selectivity": speed_selectivity(speed_x, sc),
            "direction_selectivity": direction_selectivity(dc),
        }
        return out, maps

    real, maps = score_batch([sums_for(0)])
    null = {k: np.empty((n_shuffles, n_units)) for k in SCORE_NAMES}
    per_batch = max(1, _MAPS_PER_BATCH // n_units)
    for start in range(0, n_shuffles, per_batch):
        batch = shifts[start:start + per_batch]
        scored, _ = score_batch([sums_for(s) for s in batch])
        for k in SCORE_NAMES:
            null[k][start:start + len(batch)] = scored[k].reshape(len(batch), n_units)

    thresholds, z = {}, {}
    for k in SCORE_NAMES:
        all_nan = np.all(np.isnan(null[k]), axis=0)
        safe = np.where(all_nan, 0.0, null[k])   # nan-reductions warn on all-NaN columns
        thresholds[k] = np.where(all_nan, np.nan, np.nanpercentile(safe, percentile, axis=0))
        if k in ("grid60", "grid90"):
            sd = np.maximum(np.nanstd(safe, axis=0), 1e-12)
            z[k] = np.where(all_nan, np.nan, (real[k] - np.nanmean(safe, axis=0)) / sd)
    passes = _passes(real, thresholds)

    # Spatial type, most specific first (see the module docstring). Between
    # 60 and 90 deg the larger z wins.
    is_periodic = periodic(maps)
    is_grid = (passes["grid60"] | passes["grid90"]) & is_periodic
    z60 = np.where(passes["grid60"], np.nan_to_num(z["grid60"], nan=-np.inf), -np.inf)
    z90 = np.where(passes["grid90"], np.nan_to_num(z["grid90"], nan=-np.inf), -np.inf)
    spatial = passes["spatial_information"]
    spatial_type = np.select(
        [~spatial, passes["border"], is_grid, passes["band"]],
        ["none", "border", "grid", "band"], "irregular").astype(object)
    grid_symmetry = np.where(spatial_type == "grid", np.where(z60 >= z90, 60, 90), 0)
    speed_tuned = passes["speed_selectivity"]
    direction_tuned = passes["direction_selectivity"]
    labels = [tuple(lab for lab, on in ((t, t != "none"), ("speed", s), ("direction", d)) if on)
              for t, s, d in zip(spatial_type, speed_tuned, direction_tuned)]

    settings = {
        "arena": arena.to_dict(), "bins": int(bins), "bin_size": binning.bin_size,
        "map_shape": list(binning.shape), "smooth_sigma_bins": smooth,
        "n_samples": int(n), "n_shuffles": n_shuffles,
        "seed": seed if isinstance(seed, (int, np.integer)) else None,
        "shift": "circular shift of each unit's activity along the concatenated path, "
                 "one lag per shuffle shared by all units",
        "min_shift_fraction": min_shift, "shifts": [int(s) for s in shifts],
        "percentile": percentile, "grid_method": grid_method,
        "speed_bins": int(n_speed), "speed_range": [float(speed_edges[0]), float(speed_edges[-1])],
        "speed_steps": "moving only (speed > 0), equal-count bins",
        "direction_bins": int(direction_bins), "direction_steps": "all steps",
        "min_count": min_count, "rate_offset": float(offset),
        "rules": "pass = score > percentile of its own null; spatially tuned = "
                 "spatial_information passes; type = first passing of border, grid (grid60 "
                 "or grid90, and the map periodic: autocorrelogram radial profile below 0 "
                 "then above 0; the larger z = (score - null mean) / null sd decides the "
                 "symmetry), band, else irregular; untuned = none; speed, direction = "
                 "selectivity passes",
        "conventions": {
            "grid60": CONVENTIONS[f"grid_{grid_method}_60"],
            "grid90": CONVENTIONS[f"grid_{grid_method}_90"],
            **{k: CONVENTIONS[k] for k in ("border", "band", "spatial_information",
                                           "lifetime_sparseness")},
            "speed_selectivity": "|slope| of a least-squares line through the speed tuning curve",
            "direction_selectivity": "max - min of the direction tuning curve",
        },
    }
    return CellTypes(scores=real, thresholds=thresholds, null=null,
                     spatial_type=spatial_type, grid_symmetry=grid_symmetry, periodic=is_periodic,
                     speed_tuned=speed_tuned, direction_tuned=direction_tuned, labels=labels,
                     maps=maps, settings=settings)
