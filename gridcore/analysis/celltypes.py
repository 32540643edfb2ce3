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

:func:`classify` runs three stages, each in its own place:

1. the design matrix (:func:`gridcore.analysis.design.design_matrix`): the
   spatial, speed and heading bins of every step as one sparse matrix;
2. the shuffle scorer (:mod:`gridcore.analysis.shuffles`): every score of
   every unit from the bin sums, for the activity and for its circular
   shifts (every shuffle shares one lag across units, so it costs one
   sparse product with the unshifted activity, and occupancy never
   changes), and each unit's null percentile;
3. the labelling rules (:func:`label_units`, here): pass/fail against the
   nulls, then the spatial type and the speed and direction labels.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from gridcore.analysis.design import design_matrix
from gridcore.analysis.ratemaps import coverage_warning
from gridcore.analysis.scores import CONVENTIONS, TANH_OFFSET, periodic
from gridcore.analysis.shuffles import (
    SCORE_NAMES,
    null_thresholds,
    score_sums,
    shift_lags,
    shuffle_null,
)
from gridcore.util.checks import (
    as_float_array,
    check_choice,
    check_nonneg_float,
    check_positive_int,
)

__all__ = ["CellTypes", "classify", "label_units", "SCORE_NAMES", "SPATIAL_TYPES"]

SPATIAL_TYPES = ("grid", "border", "band", "irregular", "none")


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
        Its ``settings`` record ``coverage``, the fraction of the arena's
        bins the path visits, and ``coverage_warning``.

    Warns
    -----
    UserWarning
        When the path visits fewer than
        :data:`gridcore.analysis.ratemaps.MIN_COVERAGE` of the arena's bins
        (the text is ``settings["coverage_warning"]``, else None).
    """
    act, pos, spd, hd = _flatten(activity, positions, speed, heading)
    n = act.shape[0]
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

    design = design_matrix(pos, spd, hd, arena, bins, speed_bins, direction_bins)
    shifts = shift_lags(n, n_shuffles, min_shift, rng)
    score_kw = dict(smooth=smooth, grid_method=grid_method, min_count=min_count, offset=offset)
    real, maps = score_sums(design, [design.sums(act)], arena, **score_kw)
    null = shuffle_null(design, act, shifts, arena, **score_kw)
    thresholds, z = null_thresholds(real, null, percentile)
    labels = label_units(real, thresholds, z, maps)

    binning, speed_edges, n_speed = design.binning, design.speed_edges, design.n_speed
    coverage = binning.coverage(design.spatial_counts)
    warning = coverage_warning(coverage, bins)
    if warning is not None:
        warnings.warn(warning, stacklevel=2)
    settings = {
        "arena": arena.to_dict(), "bins": int(bins), "bin_size": binning.bin_size,
        "map_shape": list(binning.shape), "smooth_sigma_bins": smooth,
        "coverage": coverage, "coverage_warning": warning,
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
    return CellTypes(scores=real, thresholds=thresholds, null=null, maps=maps, settings=settings,
                     **labels)


def label_units(scores, thresholds, z, maps):
    """The labelling rules: pass or fail against the nulls, then each unit's labels.

    A score passes when it beats the unit's threshold (a NaN score or
    threshold never passes). Spatial type, most specific first (see the
    module docstring): ``none`` unless spatial information passes, then
    ``border``, ``grid`` (60 or 90 deg passes and the map is periodic; the
    larger z decides the symmetry), ``band``, else ``irregular``.

    Parameters
    ----------
    scores, thresholds : dict of str -> ndarray, shape (n_units,)
        Each of :data:`SCORE_NAMES` and its null percentile
        (:func:`gridcore.analysis.shuffles.null_thresholds`).
    z : dict with ``"grid60"``, ``"grid90"`` -> ndarray, shape (n_units,)
        Grid scores as z-scores of their nulls.
    maps : ndarray, shape (n_units, H, W)
        The scored rate maps (for :func:`gridcore.analysis.scores.periodic`).

    Returns
    -------
    dict
        The label fields of :class:`CellTypes`: ``spatial_type``,
        ``grid_symmetry``, ``periodic``, ``speed_tuned``,
        ``direction_tuned`` and ``labels``.
    """
    passes = _passes(scores, thresholds)
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
    return {"spatial_type": spatial_type, "grid_symmetry": grid_symmetry, "periodic": is_periodic,
            "speed_tuned": speed_tuned, "direction_tuned": direction_tuned, "labels": labels}
