"""Every unit's scores from its bin sums, and their shuffle nulls (circular shifts of the activity).

The scores (:data:`SCORE_NAMES`): 60 and 90 deg grid scores, border, band,
spatial information and lifetime sparseness of the rate map
(:mod:`gridcore.analysis.scores`), speed and direction selectivity
(:mod:`gridcore.analysis.tuning`), all from the sums of a
:class:`gridcore.analysis.design.BinDesign`.

The null of a score is the same score after circularly shifting the unit's
activity along the path by a random lag (:func:`shift_lags`: at least
``min_shift`` of the path length from either end). A shift keeps the
unit's temporal structure and the path's occupancy but breaks the relation
between activity and position, speed and heading. Every shuffle shares one
lag across units (:func:`shuffle_null`), so a shuffle costs one sparse
product; :func:`null_thresholds` gives each unit's percentile of its null.
The labels built on them: :mod:`gridcore.analysis.celltypes`.
"""

import numpy as np

from gridcore.analysis.ratemaps import autocorrelogram, maps_from_sums
from gridcore.analysis.scores import (
    TANH_OFFSET,
    band_score,
    border_score,
    grid_score,
    lifetime_sparseness,
    spatial_information,
)
from gridcore.analysis.tuning import direction_selectivity, speed_selectivity

__all__ = ["SCORE_NAMES", "shift_lags", "score_sums", "shuffle_null", "null_thresholds"]

SCORE_NAMES = ("grid60", "grid90", "border", "band", "spatial_information",
               "lifetime_sparseness", "speed_selectivity", "direction_selectivity")

# Maps scored per batch of shuffles: bounds memory, amortises Python overhead.
_MAPS_PER_BATCH = 1000


def shift_lags(n, n_shuffles, min_shift, rng):
    """Random lags of the circular shifts, uniform in [ceil(min_shift n), n - ceil(min_shift n)] steps.

    Parameters
    ----------
    n : int
        Steps of the path.
    n_shuffles : int
        Lags drawn.
    min_shift : float
        Shortest lag as a fraction of the path, in (0, 0.5).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (n_shuffles,)
    """
    lo = int(np.ceil(min_shift * n))
    if n - lo < lo:
        raise ValueError(f"the path ({n} steps) is too short for min_shift={min_shift}")
    return rng.integers(lo, n - lo + 1, size=n_shuffles)


def score_sums(design, sums_list, arena, smooth=1.0, grid_method="minmax", min_count=10,
               offset=TANH_OFFSET):
    """All scores of :data:`SCORE_NAMES` from bin sums, for one or several shifts at once.

    Parameters
    ----------
    design : BinDesign
        The bins the sums are over (:func:`gridcore.analysis.design.design_matrix`).
    sums_list : list of ndarray, each of shape (n_rows, U)
        :meth:`BinDesign.sums` of S shifts.
    arena : Arena
        For the border score.
    smooth : float or None
        Gaussian smoothing sigma (bins) of the rate maps.
    grid_method : {"minmax", "mean"}
        Grid-score convention.
    min_count : int
        Tuning-curve bins with fewer steps are left out.
    offset : float
        Rate = activity + offset for spatial information and sparseness.

    Returns
    -------
    scores : dict of str -> ndarray, shape (S U,)
        Shift-major: entry ``s U + u`` is unit u under shift s.
    maps : ndarray of float64, shape (S U, H, W)
        The scored rate maps.
    """
    n_sp, n_speed = design.n_spatial, design.n_speed
    speed_counts, dir_counts = design.speed_counts, design.direction_counts
    counts_sp = design.spatial_counts
    maps = np.concatenate([maps_from_sums(s[:n_sp], counts_sp, design.binning, smooth)
                           for s in sums_list])
    with np.errstate(invalid="ignore", divide="ignore"):
        sc = np.concatenate([(s[n_sp:n_sp + n_speed] / speed_counts[:, None]).T
                             for s in sums_list])
        dc = np.concatenate([(s[n_sp + n_speed:] / dir_counts[:, None]).T
                             for s in sums_list])
    sc[:, speed_counts < min_count] = np.nan
    dc[:, dir_counts < min_count] = np.nan
    ac = autocorrelogram(maps)
    occupancy = counts_sp.reshape(design.binning.shape)
    out = {
        "grid60": grid_score(None, 60, grid_method, acorr=ac),
        "grid90": grid_score(None, 90, grid_method, acorr=ac),
        "border": border_score(maps, arena),
        "band": band_score(maps),
        "spatial_information": spatial_information(maps, occupancy, offset),
        "lifetime_sparseness": lifetime_sparseness(maps, offset),
        "speed_selectivity": speed_selectivity(design.speed_x, sc),
        "direction_selectivity": direction_selectivity(dc),
    }
    return out, maps


def shuffle_null(design, activity, shifts, arena, **score_kw):
    """Every score of every unit under each circular shift: the null distributions.

    Shifts are scored in batches of about 1000 maps (memory stays bounded).

    Parameters
    ----------
    design : BinDesign
    activity : ndarray of float64, shape (n, U)
    shifts : ndarray of int, shape (n_shuffles,)
        Lags from :func:`shift_lags`.
    arena : Arena
    **score_kw
        ``smooth``, ``grid_method``, ``min_count``, ``offset`` of :func:`score_sums`.

    Returns
    -------
    dict of str -> ndarray, shape (n_shuffles, U)
    """
    n_units = activity.shape[1]
    n_shuffles = len(shifts)
    null = {k: np.empty((n_shuffles, n_units)) for k in SCORE_NAMES}
    per_batch = max(1, _MAPS_PER_BATCH // n_units)
    for start in range(0, n_shuffles, per_batch):
        batch = shifts[start:start + per_batch]
        scored, _ = score_sums(design, [design.sums(activity, s) for s in batch], arena, **score_kw)
        for k in SCORE_NAMES:
            null[k][start:start + len(batch)] = scored[k].reshape(len(batch), n_units)
    return null


def null_thresholds(real, null, percentile):
    """Each unit's threshold (a percentile of its null) per score, and z-scores of the grid scores.

    Parameters
    ----------
    real : dict of str -> ndarray, shape (U,)
        The unshifted scores.
    null : dict of str -> ndarray, shape (n_shuffles, U)
        From :func:`shuffle_null`.
    percentile : float
        In (0, 100).

    Returns
    -------
    thresholds : dict of str -> ndarray, shape (U,)
        NaN for a unit whose null is all NaN.
    z : dict with ``"grid60"``, ``"grid90"`` -> ndarray, shape (U,)
        ``(score - null mean) / null sd`` (sd at least 1e-12).
    """
    thresholds, z = {}, {}
    for k in SCORE_NAMES:
        all_nan = np.all(np.isnan(null[k]), axis=0)
        safe = np.where(all_nan, 0.0, null[k])   # nan-reductions warn on all-NaN columns
        thresholds[k] = np.where(all_nan, np.nan, np.nanpercentile(safe, percentile, axis=0))
        if k in ("grid60", "grid90"):
            sd = np.maximum(np.nanstd(safe, axis=0), 1e-12)
            z[k] = np.where(all_nan, np.nan, (real[k] - np.nanmean(safe, axis=0)) / sd)
    return thresholds, z
