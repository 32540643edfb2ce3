"""What the units of one network are and how they are tuned: summaries for C2, C3 and C4.

- C2 (unit types, from :func:`gridcore.analysis.celltypes.classify`):
  :func:`grid_symmetry_counts`; :func:`ramps`, the maps that are planes.
- C3 :func:`tuning_curves`, :func:`curves_to_json`, :func:`heading_wrap`,
  :func:`pick_examples`, :func:`tuning_summary`.
- C4 :func:`selectivity`.
"""

import numpy as np
import scipy.stats

from gridcore.analysis.celltypes import SPATIAL_TYPES
from gridcore.analysis.jsonready import finite_median, float_or_none, floats, line_fit
from gridcore.analysis.scores import plane_score
from gridcore.analysis.tuning import direction_tuning, speed_tuning

__all__ = ["RAMP_R2", "hexagonal_units", "grid_symmetry_counts", "ramps", "tuning_curves", "curves_to_json",
           "heading_wrap", "pick_examples", "tuning_summary", "selectivity"]

# A map a plane explains this well is a ramp: a linear code of position.
RAMP_R2 = 0.9


def hexagonal_units(types):
    """(N,) bool: the grid units whose 60-degree symmetry won (``types``: CellTypes)."""
    return (types.spatial_type == "grid") & (types.grid_symmetry == 60)


def grid_symmetry_counts(types):
    """Grid units by the symmetry that won (60 or 90 deg) and their median scores (C2).

    Parameters
    ----------
    types : CellTypes

    Returns
    -------
    dict with ``n_grid``, ``n_grid60``, ``n_grid90``, and the median grid60
    and grid90 scores over the grid units (None without grid units).
    """
    grid = types.spatial_type == "grid"
    out = {"n_grid": int(grid.sum()), "n_grid60": int(np.sum(hexagonal_units(types))),
           "n_grid90": int(np.sum(grid & (types.grid_symmetry == 90)))}
    for k in ("grid60", "grid90"):
        out[f"median_{k}_of_grid_units"] = finite_median(types.scores[k][grid])
    return out


def ramps(types, threshold=RAMP_R2):
    """Which units' maps are ramps, planes across the arena (C2: what the units are if not grids).

    Parameters
    ----------
    types : CellTypes
        Its ``maps`` (n_units, H, W) are scored with :func:`gridcore.analysis.scores.plane_score`.
    threshold : float
        A map is a ramp when a plane explains at least this fraction of its variance.

    Returns
    -------
    dict (JSON-ready): ``plane`` (per-unit score, None for a constant map),
    ``threshold``, ``n_ramps``, ``median_plane`` over all units and
    ``median_plane_by_type`` per spatial type present.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (a fraction of variance), got {threshold}")
    score = plane_score(types.maps)
    by_type = {t: finite_median(score[types.spatial_type == t]) for t in SPATIAL_TYPES
               if np.any(types.spatial_type == t)}
    return {"plane": floats(score), "threshold": float(threshold),
            "n_ramps": int(np.sum(np.nan_to_num(score, nan=-1.0) >= threshold)),
            "median_plane": finite_median(score), "median_plane_by_type": by_type}


def tuning_curves(activity, speed, heading, speed_bins=20, direction_bins=36, min_count=10):
    """Speed and head-direction tuning curves of all units, and how linear the speed tuning is (C3).

    Same bins as :func:`gridcore.analysis.celltypes.classify` by default: speed over
    moving steps in equal-count bins, heading over all steps in 10-degree bins.

    Parameters
    ----------
    activity : array_like, shape (n, n_units)
    speed : array_like, shape (n,); arena units per step
    heading : array_like, shape (n,); rad
    speed_bins, direction_bins, min_count : int

    Returns
    -------
    dict of arrays: ``speeds`` (speed_bins,), ``speed_curves`` (n_units,
    speed_bins), ``directions`` (direction_bins,) in rad, ``direction_curves``
    (n_units, direction_bins), ``speed_r2`` (n_units,): R^2 of the line fit.
    """
    speeds, sc, _ = speed_tuning(activity, speed, n_bins=speed_bins, min_count=min_count)
    centres, dc, _ = direction_tuning(activity, heading, n_bins=direction_bins, min_count=min_count)
    r2 = np.array([line_fit(speeds, c)[2] for c in sc])
    return {"speeds": speeds, "speed_curves": sc, "directions": centres, "direction_curves": dc,
            "speed_r2": r2}


def curves_to_json(curves):
    """The tuning curves of :func:`tuning_curves` as JSON-ready lists (None for empty bins).

    Parameters
    ----------
    curves : dict of arrays
        From :func:`tuning_curves`.

    Returns
    -------
    dict
        ``speeds`` (speed_bins,) in arena units per step, ``speed_curves``
        (n_units lists), ``directions_rad`` (direction_bins,) in rad,
        ``direction_curves`` (n_units lists), ``speed_r2`` (n_units,).
    """
    return {"speeds": floats(curves["speeds"]),
            "speed_curves": [floats(c) for c in curves["speed_curves"]],
            "directions_rad": floats(curves["directions"]),
            "direction_curves": [floats(c) for c in curves["direction_curves"]],
            "speed_r2": floats(curves["speed_r2"])}


def heading_wrap(direction_curves, threshold=0.5):
    """How much each unit's direction tuning jumps where the heading angle wraps (C3).

    With the paper's ``speed-angle`` inputs the heading enters as an angle
    in [-pi, pi), so a unit driven by that input directly steps at +-180
    deg, where a code of the direction itself (cos, sin) is smooth.

    Parameters
    ----------
    direction_curves : array_like, shape (n_units, n_bins)
        Mean activity per heading bin over [-pi, pi) (:func:`tuning_curves`).
    threshold : float
        A unit "steps at the wrap" when the jump is above this share of
        its tuning range.

    Returns
    -------
    dict: ``ratio`` per unit (|first bin - last bin| / (max - min), None for
    flat or incomplete curves), ``n_above`` (units above ``threshold``),
    ``threshold``, and ``median_step_ratio``: the median over units of the
    largest step between neighbouring bins away from the wrap, the same
    ratio for comparison.
    """
    dc = np.asarray(direction_curves, float)
    if dc.ndim != 2 or dc.shape[1] < 2:
        raise ValueError(f"direction_curves must have shape (n_units, n_bins >= 2), got {dc.shape}")
    ok = np.isfinite(dc).all(axis=1)
    span = np.zeros(len(dc))
    span[ok] = dc[ok].max(axis=1) - dc[ok].min(axis=1)
    ok &= span > 0
    ratio, inner = np.full(len(dc), np.nan), np.full(len(dc), np.nan)
    ratio[ok] = np.abs(dc[ok, 0] - dc[ok, -1]) / span[ok]
    inner[ok] = np.abs(np.diff(dc[ok], axis=1)).max(axis=1) / span[ok]
    return {"ratio": floats(ratio), "n_above": int(np.sum(np.nan_to_num(ratio) > threshold)),
            "threshold": threshold, "median_step_ratio": finite_median(inner)}


def pick_examples(types, n_direction=3, n_grid=3, n_border=2, n_band=1):
    """Example units in the manner of the paper's Fig. 3.

    The most direction-selective units (any type), then the grid units with
    the highest grid score of their symmetry, the border units with the
    highest border score and the band units with the highest band score.
    Missing types are made up with the spatially most informative units left.

    Parameters
    ----------
    types : CellTypes
    n_direction, n_grid, n_border, n_band : int >= 0

    Returns
    -------
    list of dict ``{"unit", "role", "spatial_type", "labels"}`` (at most
    the sum of the counts, fewer when the network has fewer units).
    """
    s = types.scores
    grid_score = np.where(types.grid_symmetry == 90, s["grid90"], s["grid60"])
    plan = [("direction-selective", np.ones(len(types.spatial_type), bool), s["direction_selectivity"], n_direction),
            ("grid", types.spatial_type == "grid", grid_score, n_grid),
            ("border", types.spatial_type == "border", s["border"], n_border),
            ("band", types.spatial_type == "band", s["band"], n_band)]
    chosen, out = set(), []

    def take(role, mask, score, k):
        order = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")
        for u in order:
            if k == 0:
                break
            if mask[u] and u not in chosen:
                chosen.add(int(u))
                out.append({"unit": int(u), "role": role, "spatial_type": str(types.spatial_type[u]),
                            "labels": list(types.labels[u])})
                k -= 1
        return k

    missing = sum(take(*p) for p in plan)
    take("most spatial information", np.ones(len(types.spatial_type), bool),
         s["spatial_information"], missing)
    return out


def tuning_summary(types, speed_r2, top_fraction=0.1):
    """Speed, direction and spatial tuning per unit type (C3 claims).

    Parameters
    ----------
    types : CellTypes
    speed_r2 : array_like, shape (n_units,)
        R^2 of the speed tuning line fit (:func:`tuning_curves`).
    top_fraction : float
        Share of units counted as "the most direction-tuned" (at least one).

    Returns
    -------
    dict: ``by_type`` (per spatial type present: ``n``, medians of speed and
    direction selectivity, lifetime sparseness, speed R^2, and the fraction
    speed- and direction-tuned); ``speed_tuned_fraction`` and the median
    R^2 of the speed-tuned units; ``most_direction_tuned``: their units and
    median lifetime sparseness vs that of the other units.
    """
    s = types.scores
    speed_r2 = np.asarray(speed_r2, float)
    by_type = {}
    for t in SPATIAL_TYPES:
        sel = types.spatial_type == t
        if not sel.any():
            continue
        by_type[t] = {
            "n": int(sel.sum()),
            "median_speed_selectivity": finite_median(s["speed_selectivity"][sel]),
            "median_direction_selectivity": finite_median(s["direction_selectivity"][sel]),
            "median_lifetime_sparseness": finite_median(s["lifetime_sparseness"][sel]),
            "median_speed_r2": finite_median(speed_r2[sel]),
            "fraction_speed_tuned": float(types.speed_tuned[sel].mean()),
            "fraction_direction_tuned": float(types.direction_tuned[sel].mean()),
        }
    n = len(types.spatial_type)
    k = max(1, int(round(top_fraction * n)))
    top = np.argsort(-np.nan_to_num(s["direction_selectivity"], nan=-np.inf), kind="stable")[:k]
    rest = np.setdiff1d(np.arange(n), top)
    sp = s["lifetime_sparseness"]
    tuned_r2 = speed_r2[types.speed_tuned]
    return {
        "by_type": by_type,
        "speed_tuned_fraction": float(types.speed_tuned.mean()),
        "median_speed_r2_of_speed_tuned": finite_median(tuned_r2),
        "most_direction_tuned": {
            "top_fraction": top_fraction, "units": top.tolist(),
            "median_lifetime_sparseness": finite_median(sp[top]),
            "median_lifetime_sparseness_others": finite_median(sp[rest])},
    }


def selectivity(types):
    """Speed, direction and spatial selectivity of every unit and their rank correlations (C4, App. D).

    Spatial selectivity is the lifetime sparseness of the rate map, as in App. D.

    Parameters
    ----------
    types : CellTypes
        Its ``scores`` (each shape (n_units,)) hold the three selectivities.

    Returns
    -------
    dict: per-unit lists ``speed``, ``direction``, ``spatial``; ``spearman``:
    rho and p for each pair (None when undefined).
    """
    s = types.scores
    vals = {"speed": s["speed_selectivity"], "direction": s["direction_selectivity"],
            "spatial": s["lifetime_sparseness"]}
    out = {k: floats(v) for k, v in vals.items()}
    rho = {}
    for a, b in (("speed", "direction"), ("speed", "spatial"), ("direction", "spatial")):
        x, y = vals[a], vals[b]
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
            r = scipy.stats.spearmanr(x[ok], y[ok])
            rho[f"{a}_vs_{b}"] = {"rho": float_or_none(r.statistic), "p": float_or_none(r.pvalue), "n": int(ok.sum())}
        else:
            rho[f"{a}_vs_{b}"] = {"rho": None, "p": None, "n": int(ok.sum())}
    out["spearman"] = rho
    return out
