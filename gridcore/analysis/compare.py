"""Runs side by side (C6, paper Fig. 5 and App. A ablations).

:func:`run_summary` condenses one run (its tracking error, unit types,
scores and ramps); :func:`compare_runs` lines summaries up against the
first and names the settings in which each run differs.
"""

import numpy as np

from gridcore.analysis.jsonready import finite_median, float_or_none
from gridcore.analysis.unitsummary import grid_symmetry_counts, ramps

__all__ = ["run_summary", "compare_runs"]

# Settings that differ between runs without changing what was learnt.
_NOT_COMPARED = ("backend", "threads", "checkpoint_every", "eval_every", "snapshot_at",
                 "snapshot_every")


def run_summary(label, config, tracking_result, types):
    """What a comparison of runs shows about one run (C6).

    Parameters
    ----------
    label : str
    config : dict; the run's configuration
    tracking_result : dict from :func:`gridcore.analysis.tracking.tracking`
    types : CellTypes

    Returns
    -------
    dict (JSON-ready): ``label``, ``config``, ``normalised_error``,
    ``counts`` and ``fractions`` of unit types, :func:`gridcore.analysis.unitsummary.grid_symmetry_counts`,
    and per grid60 / grid90 / border / band score: its median and max over
    all units and ``passed``, the number of units beating their own null
    whatever their type (a graded measure where no unit gets the type);
    ``n_periodic``, the units with periodic maps; ``ramps`` and
    ``median_plane`` from :func:`gridcore.analysis.unitsummary.ramps`.
    """
    n = len(types.spatial_type)
    counts = types.counts()
    passes = types.passes()
    ramp = ramps(types)
    scores = {}
    for k in ("grid60", "grid90", "border", "band"):
        v = types.scores[k]
        scores[k] = {"median": finite_median(v),
                     "max": float_or_none(np.nanmax(v)) if np.isfinite(v).any() else None,
                     "passed": int(passes[k].sum())}
    return {"label": label, "config": config, "normalised_error": tracking_result["normalised_error"],
            "n_units": n, "counts": counts, "fractions": {k: v / n for k, v in counts.items()},
            "grid": grid_symmetry_counts(types), "scores": scores,
            "n_periodic": int(np.sum(types.periodic)), "ramps": ramp["n_ramps"],
            "median_plane": ramp["median_plane"]}


def compare_runs(summaries):
    """Side-by-side comparison of runs (C6, paper Fig. 5 and App. A ablations).

    Parameters
    ----------
    summaries : list of dict from :func:`run_summary`; the first is the reference.

    Returns
    -------
    dict: ``runs`` (the summaries, each with ``differs``: the settings that
    differ from the reference, as ``{key: [reference value, this value]}``,
    leaving out settings that do not change what is learnt: backend, threads,
    checkpoint and snapshot schedule), ``reference`` (its label).
    """
    if not summaries:
        raise ValueError("summaries must hold at least one run summary")
    ref = summaries[0]["config"]
    runs = []
    for s in summaries:
        cfg = s["config"]
        keys = sorted((set(ref) | set(cfg)) - set(_NOT_COMPARED))
        differs = {k: [ref.get(k), cfg.get(k)] for k in keys if ref.get(k) != cfg.get(k)}
        runs.append({**s, "differs": differs})
    return {"reference": summaries[0]["label"], "runs": runs}
