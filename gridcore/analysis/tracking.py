"""The paper's analyses of a trained network (Cueva & Wei 2018; SPEC section 5, claims C1-C8).

Computations only (figures: :mod:`gridcore.report.figures`; the command that runs
everything: :mod:`gridcore.cli.analyze`). Rate maps, scores, tuning curves and
unit types come from :mod:`gridcore.analysis.ratemaps`, :mod:`gridcore.analysis.scores`,
:mod:`gridcore.analysis.tuning` and :mod:`gridcore.analysis.celltypes`.

- C1 :func:`tracking`: squared error on held-out trials against the best
  constant output.
- C2 unit types: :func:`gridcore.analysis.celltypes.classify` (and
  :func:`grid_symmetry_counts`); :func:`ramps`, the maps that are planes.
- C3 :func:`tuning_curves`, :func:`heading_wrap`, :func:`pick_examples`, :func:`tuning_summary`.
- C4 :func:`selectivity`.
- C5 :func:`select_stages`, :func:`stage_responses`, :func:`embed`,
  :func:`development`: units of the training snapshots on the same trials,
  correlation distances, a t-SNE embedding and the distance each unit travels.
- C6 :func:`run_summary`, :func:`compare_runs`.
- C7 :func:`error_correction`: error aligned to the first boundary
  interaction, grouped by the interactions that follow.
- C8 :func:`stability` and :func:`long_path`: error per block of steps on
  very long paths, streamed in bounded memory.

Errors are squared Euclidean distances ``|y_t - p_t|^2`` (arena units
squared, summed over x and y) unless a name says "normalised".
"""

import logging
import math

import numpy as np
import scipy.stats

from gridcore.analysis.celltypes import SPATIAL_TYPES
from gridcore.analysis.ratemaps import RateMapAccumulator
from gridcore.analysis.recording import path_errors, run_chunks
from gridcore.analysis.scores import CONVENTIONS as SCORE_CONVENTIONS
from gridcore.analysis.scores import plane_score
from gridcore.analysis.tuning import direction_tuning, speed_tuning
from gridcore.model.spec import PAPER
from gridcore.sim.trajectories import simulate
from gridcore.train.loop import normalised_error
from gridcore.train.rundir import Run, load_run
from gridcore.util.checks import check_choice, check_positive_int

log = logging.getLogger(__name__)

__all__ = [
    "CONVENTIONS", "INTERACTION_GROUPS", "Run", "load_run", "tracking", "error_correction",
    "stability", "long_path", "map_correlation", "grid_symmetry_counts", "ramps", "tuning_curves",
    "curves_to_json", "heading_wrap", "pick_examples", "tuning_summary", "selectivity", "select_stages", "stage_responses",
    "embed", "development", "run_summary", "compare_runs",
]

# A map a plane explains this well is a ramp: a linear code of position.
RAMP_R2 = 0.9
# Groups of the number of boundary interactions in the `window` steps after
# the first one (paper Fig. 6a legend: 0, 1, 2 to 5, 6 to 50).
INTERACTION_GROUPS = ((0, 0), (1, 1), (2, 5), (6, 50))
EMBEDDINGS = ("tsne", "mds")
# Settings that differ between runs without changing what was learnt.
_NOT_COMPARED = ("backend", "threads", "checkpoint_every", "eval_every", "snapshot_at",
                 "snapshot_every")

CONVENTIONS = {
    "squared_error": "|y_t - p_t|^2 summed over x and y (arena units^2), network output y_t "
                     "vs true position p_t",
    "best_constant_error": "mean |p_t - c|^2 with c the mean position over all trials and steps "
                           "(the best constant output)",
    "normalised_error": "mean squared error / that of the best constant output "
                        "(gridcore.train.loop.normalised_error)",
    "error_correction": "trials aligned at their first boundary interaction t0 (full window "
                        "t0 - W .. t0 + W inside the trial), grouped by the number of boundary "
                        "interactions in steps t0 + 1 .. t0 + W; drop = mean error over offsets "
                        "-(pre - 1)..0 minus mean over offsets W - post + 1..W",
    "error_growth": "mean error per step of the trials without any boundary interaction, "
                    "least-squares line against the step",
    "stability": "error averaged per block of steps of long paths (mean and sd over the "
                 "block's steps and paths) vs the best-constant error of the same block",
    "development_distance": "1 - Pearson correlation of two units' activity over the same "
                            "test trials (same trajectories and noise at every stage)",
    "distance_travelled": "sum over consecutive stages of a unit's displacement, in the 2-D "
                          "embedding and in correlation distance",
    "map_correlation": "Pearson correlation of two rate maps over the bins valid in both",
    "spatial_selectivity": "lifetime sparseness of the rate map (Willmore & Tolhurst 2001; "
                           "paper App. D)",
    "speed_linearity": "R^2 of the least-squares line through the speed tuning curve",
    "ramp": f"a unit whose rate map's plane score is >= {RAMP_R2:g}; plane score: "
            + SCORE_CONVENTIONS["plane"],
}


def _floats(a):
    """List of floats with None for NaN/inf (JSON has no NaN)."""
    return [float(v) if np.isfinite(v) else None for v in np.ravel(a)]


def _float(v):
    return float(v) if v is not None and np.isfinite(v) else None


def _median(v):
    """Median of the finite values, or None if there are none."""
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else None


def _line_fit(x, y):
    """Least-squares line ``y = a + b x`` over finite points: (b, a, r2, se of b)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan, math.nan
    fit = scipy.stats.linregress(x, y)
    r2 = fit.rvalue ** 2 if np.isfinite(fit.rvalue) else math.nan
    return float(fit.slope), float(fit.intercept), float(r2), float(fit.stderr)


# ---------------------------------------------------------------- C1 tracking


def tracking(outputs, positions):
    """How well the network tracks position on held-out trials (C1, paper Fig. 1c).

    Parameters
    ----------
    outputs : array_like, shape (M, T, 2)
        Network estimates y_t (arena units).
    positions : array_like, shape (M, T, 2)
        True positions p_t (arena units).

    Returns
    -------
    dict
        ``normalised_error`` (MSE / best-constant MSE; 0 is perfect, 1 no
        better than a constant), ``squared_error`` and ``best_constant_error``
        (mean |.|^2, arena units^2), ``best_constant`` (x, y),
        ``per_trial_normalised_error`` (mean, sd, median, 90th percentile
        over trials), ``squared_error_by_step`` (T values: mean over trials),
        ``example_trials``: the trials at the 25th, 50th and 75th percentile
        of the per-trial error (for the tracking figure).
    """
    y, p = np.asarray(outputs, float), np.asarray(positions, float)
    if y.ndim != 3 or y.shape != p.shape:
        raise ValueError(f"outputs and positions must both have shape (M, T, 2), got {y.shape} "
                         f"and {p.shape}")
    err = np.sum((y - p) ** 2, axis=2)
    centre = p.mean(axis=(0, 1))
    const = float(np.mean(np.sum((p - centre) ** 2, axis=2)))
    per_trial = err.mean(axis=1) / const
    return {
        "normalised_error": normalised_error(y, p),
        "squared_error": float(err.mean()),
        "best_constant_error": const,
        "best_constant": _floats(centre),
        "n_trials": int(y.shape[0]), "n_steps": int(y.shape[1]),
        "per_trial_normalised_error": {
            "mean": float(per_trial.mean()), "sd": float(per_trial.std()),
            "median": float(np.median(per_trial)), "p90": float(np.percentile(per_trial, 90))},
        "squared_error_by_step": _floats(err.mean(axis=0)),
        "example_trials": {q: int(np.argsort(per_trial, kind="stable")[int(f * (len(per_trial) - 1))])
                           for q, f in (("p25", 0.25), ("median", 0.5), ("p75", 0.75))},
    }


def heading_baseline(speed, heading, positions, arena):
    """Normalised error of a path integrator that ignores speed (a reference for C1).

    It starts at the centre and on every step moves by the mean speed of all
    steps along the heading, projected back into the arena when it would
    leave it. On the default motion model (90% of steps still, long straight
    runs) it reaches about 0.22 in the square: a network near that error may
    be integrating the heading alone (check :func:`gridcore.analysis.probes.step_response`).

    Parameters
    ----------
    speed, heading : array_like, shape (M, T)
        Step length (arena units) and heading (rad) of each step.
    positions : array_like, shape (M, T, 2)
        True positions; ``positions[:, t + 1] = positions[:, t] + speed[:, t]
        * (cos, sin)(heading[:, t])`` (:func:`gridcore.sim.trajectories.simulate`).
    arena : Arena

    Returns
    -------
    float
        MSE / best-constant MSE of the estimate.
    """
    s, h = np.asarray(speed, float), np.asarray(heading, float)
    p = np.asarray(positions, float)
    if s.ndim != 2 or s.shape != h.shape or p.shape != (*s.shape, 2):
        raise ValueError(f"speed and heading must have shape (M, T) and positions (M, T, 2), got "
                         f"{s.shape}, {h.shape}, {p.shape}")
    step = s.mean() * np.stack([np.cos(h), np.sin(h)], axis=-1)
    est = np.zeros_like(p)
    for t in range(1, p.shape[1]):
        est[:, t] = _into_arena(est[:, t - 1] + step[:, t - 1], arena)
    return normalised_error(est, p)


def _into_arena(q, arena):
    """Points (n, 2) moved into a convex arena (half-plane projections, twice for corners)."""
    if hasattr(arena, "radius"):
        r = np.hypot(q[:, 0], q[:, 1])
        return q * np.minimum(1.0, arena.radius / np.maximum(r, 1e-300))[:, None]
    for _ in range(2):
        for n, off in zip(arena.normals, arena.offsets):
            q = q - np.maximum(q @ n - off, 0.0)[:, None] * n
    return q


# ---------------------------------------------------------------- C7 error correction


def error_correction(err, boundary, window=50, groups=INTERACTION_GROUPS, pre_steps=10,
                     post_steps=10):
    """Squared error around the first boundary interaction (C7, paper Fig. 6a).

    Every trial whose first boundary interaction t0 leaves a full window
    (``window <= t0 < T - window``) contributes its error at offsets
    ``-window..window`` from t0 and is grouped by the number of
    interactions in steps ``t0 + 1 .. t0 + window``. Trials without any
    interaction measure how the error grows when nothing corrects it.

    Note the timing: ``y_t`` depends on the inputs before step t, so the
    network can first react to the interaction at t0 in its output at t0 + 1.

    Parameters
    ----------
    err : array_like, shape (M, T)
        Squared error per trial and step (arena units^2).
    boundary : array_like of bool, shape (M, T)
        Boundary interaction (wall re-sample) at each step.
    window : int
        Steps shown on either side of t0, and the look-ahead for the count (50).
    groups : sequence of (int, int)
        Inclusive ranges of the number of later interactions.
    pre_steps, post_steps : int
        Steps averaged for the error before (offsets ``-(pre_steps-1)..0``)
        and at the end of the window (the last ``post_steps`` offsets).

    Returns
    -------
    dict
        ``offsets`` (2 window + 1); ``groups``: one entry per group with
        ``range``, ``n_trials``, ``mean`` and ``sem`` curves, ``before``,
        ``after``, ``drop = before - after`` and ``relative_drop``
        (None when the group is empty); ``drops_increase`` (True if the drop
        grows with the number of interactions over groups of >= 5 trials,
        None if fewer than 2 such groups); ``no_interaction``: ``n_trials``,
        the mean error per step from the start (``mean_by_step``), its
        line fit (``slope`` per step, ``intercept``, ``r2``), and the same
        trials' error over the window aligned at ``t_ref`` (the median t0
        of the aligned trials) as ``aligned_mean``; counts of trials
        ``n_trials``, ``n_with_interaction``, ``n_aligned``.
    """
    err = np.asarray(err, float)
    boundary = np.asarray(boundary, bool)
    if err.ndim != 2 or boundary.shape != err.shape:
        raise ValueError(f"err and boundary must both have shape (M, T), got {err.shape} and "
                         f"{boundary.shape}")
    window = check_positive_int("window", window)
    pre_steps = check_positive_int("pre_steps", pre_steps)
    post_steps = check_positive_int("post_steps", post_steps)
    if pre_steps > window + 1 or post_steps > window:
        raise ValueError(f"pre_steps must be <= window + 1 and post_steps <= window "
                         f"(window={window}), got {pre_steps} and {post_steps}")
    m, t_steps = err.shape
    offsets = np.arange(-window, window + 1)
    has = boundary.any(axis=1)
    first = np.where(has, np.argmax(boundary, axis=1), -1)
    ok = has & (first >= window) & (first + window < t_steps)
    rows = np.flatnonzero(ok)
    cols = first[rows, None] + offsets
    aligned = err[rows[:, None], cols]                       # (n_aligned, 2W + 1)
    n_next = boundary[rows[:, None], cols[:, window + 1:]].sum(axis=1)

    out_groups = []
    for lo, hi in groups:
        sel = (n_next >= lo) & (n_next <= hi)
        g = {"range": [int(lo), int(hi)], "n_trials": int(sel.sum()), "mean": None, "sem": None,
             "before": None, "after": None, "drop": None, "relative_drop": None}
        if sel.any():
            a = aligned[sel]
            mean = a.mean(axis=0)
            sem = a.std(axis=0, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else np.full(len(offsets), np.nan)
            before = float(mean[window - pre_steps + 1:window + 1].mean())
            after = float(mean[-post_steps:].mean())
            g.update(mean=_floats(mean), sem=_floats(sem), before=before, after=after,
                     drop=before - after, relative_drop=_float((before - after) / before) if before > 0 else None)
        out_groups.append(g)
    big = [g["drop"] for g in out_groups if g["n_trials"] >= 5]
    drops_increase = bool(np.all(np.diff(big) >= 0)) if len(big) >= 2 else None

    none = ~has
    growth = {"n_trials": int(none.sum()), "mean_by_step": None, "slope": None, "intercept": None,
              "r2": None, "t_ref": None, "aligned_mean": None}
    if none.any():
        by_step = err[none].mean(axis=0)
        slope, intercept, r2, _ = _line_fit(np.arange(t_steps), by_step)
        t_ref = int(np.median(first[rows])) if len(rows) else t_steps // 2
        growth.update(mean_by_step=_floats(by_step), slope=_float(slope), intercept=_float(intercept),
                      r2=_float(r2))
        if window <= t_ref < t_steps - window:
            growth.update(t_ref=t_ref, aligned_mean=_floats(by_step[t_ref + offsets]))
    return {"window": window, "pre_steps": pre_steps, "post_steps": post_steps,
            "offsets": offsets.tolist(), "n_trials": int(m), "n_with_interaction": int(has.sum()),
            "n_aligned": int(len(rows)), "groups": out_groups, "drops_increase": drops_increase,
            "no_interaction": growth}


# ---------------------------------------------------------------- C8 stability


def stability(err, positions, block=10_000, constant=None):
    """Error per block of steps along long paths vs the best constant (C8, paper Fig. 6b).

    Parameters
    ----------
    err : array_like, shape (M, T)
        Squared error per path and step (arena units^2).
    positions : array_like, shape (M, T, 2)
        True positions (arena units).
    block : int
        Steps per block (10^4 in the paper). A last partial block is left out.
    constant : array_like, shape (2,), optional
        The constant output compared with; default the mean position over
        all paths and steps (the best constant).

    Returns
    -------
    dict
        ``block_steps``; ``block_end`` (step at the end of each block);
        ``error_mean``, ``error_sd`` per block (over its steps and paths);
        ``path_sd`` (sd over paths of the per-path block means; None for
        one path); ``constant_mean`` per block; overall ``error``,
        ``constant_error`` and their ``ratio``; ``max_block_ratio``; the
        line fit of the block means against the step (``slope_per_million_steps``
        and its standard error ``slope_se``); ``first_block`` and
        ``last_block`` means; ``n_paths``, ``n_steps``, ``n_blocks``.
    """
    err = np.asarray(err, float)
    positions = np.asarray(positions, float)
    if err.ndim != 2 or positions.shape != (*err.shape, 2):
        raise ValueError(f"err must have shape (M, T) and positions (M, T, 2), got {err.shape} "
                         f"and {positions.shape}")
    block = check_positive_int("block", block)
    m, t_steps = err.shape
    nb = t_steps // block
    if nb == 0:
        raise ValueError(f"paths of {t_steps} steps are shorter than one block of {block} steps; "
                         "use longer paths or a smaller block")
    c = positions.reshape(-1, 2).mean(axis=0) if constant is None else np.asarray(constant, float)
    used = nb * block
    e = err[:, :used].reshape(m, nb, block)
    const = np.sum((positions[:, :used] - c) ** 2, axis=2).reshape(m, nb, block)
    means = e.mean(axis=(0, 2))
    ends = (np.arange(nb) + 1) * block
    slope, _, _, se = _line_fit(ends - block / 2, means)
    const_means = const.mean(axis=(0, 2))
    return {
        "block_steps": block, "n_paths": int(m), "n_steps": int(t_steps), "n_blocks": int(nb),
        "block_end": ends.tolist(),
        "error_mean": _floats(means), "error_sd": _floats(e.std(axis=(0, 2))),
        "path_sd": _floats(e.mean(axis=2).std(axis=0, ddof=1)) if m > 1 else None,
        "constant_mean": _floats(const_means), "constant": _floats(c),
        "error": float(means.mean()), "constant_error": float(const_means.mean()),
        "ratio": float(means.mean() / const_means.mean()),
        "max_block_ratio": float(np.max(means / const_means)),
        "slope_per_million_steps": _float(slope * 1e6), "slope_se": _float(se * 1e6),
        "first_block": float(means[0]), "last_block": float(means[-1]),
    }


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
        r = (da * db).sum(axis=1) / np.sqrt((da ** 2).sum(axis=1) * (db ** 2).sum(axis=1))
    r[n < 3] = np.nan
    return r


def long_path(params, backend, arena, n_steps, seed, n_paths=1, encoding="speed-angle",
              motion=None, noise_std=0.0, spec=PAPER, block=10_000, chunk_steps=10_000, bins=20,
              progress=None):
    """Run very long paths in bounded memory and measure stability (C8).

    Only the squared error per step (M T doubles), the trajectories and the
    rate-map sums of the two halves of the paths are kept; activity is
    streamed in chunks of ``chunk_steps`` steps.

    Parameters
    ----------
    params : Params
    backend : backend object
    arena : Arena
    n_steps : int
        Steps per path (10^6 in the paper).
    seed : int or numpy Generator
        Trajectories and unit noise come from it.
    n_paths : int
        Independent paths run side by side (trials of one stream).
    encoding, motion : the network's input encoding and motion settings
    noise_std : float
        Unit noise during the test (sd of xi_t).
    spec : ModelSpec
        dt / tau.
    block : int
        Steps per block of :func:`stability`.
    chunk_steps : int
        Steps per chunk of the stream (memory: n_paths chunk_steps n_units doubles).
    bins : int
        Spatial bins of the rate maps compared between the halves.
    progress : callable(done_steps, total_steps) or None

    Returns
    -------
    dict
        :func:`stability`'s result plus ``map_stability`` (per-unit
        correlation of the rate maps of the first and second half of the
        paths, and its median) and ``boundary_interactions_per_block``.
    """
    n_steps = check_positive_int("n_steps", n_steps)
    rng = np.random.default_rng(seed)
    traj = simulate(arena, n_paths, n_steps, rng, encoding=encoding, **(motion or {}))
    halves = [RateMapAccumulator(arena, bins, params.n_units) for _ in range(2)]
    mid = n_steps // 2

    def on_chunk(lo, hi, res):
        for acc, (a, b) in zip(halves, ((lo, min(hi, mid)), (max(lo, mid), hi))):
            if b > a:
                acc.add(res.u[:, a - lo:b - lo], traj.positions[:, a:b])
        if progress is not None:
            progress(hi, n_steps)

    err = path_errors(params, backend, traj, noise_std, rng, spec, chunk_steps, on_chunk)
    out = stability(err, traj.positions, block)
    r = map_correlation(halves[0].maps(smooth=1.0), halves[1].maps(smooth=1.0))
    nb = out["n_blocks"]
    out["map_stability"] = {"correlation_first_vs_second_half": _floats(r),
                            "median": _median(r),
                            "smooth_sigma_bins": 1.0, "bins": int(bins)}
    out["boundary_interactions_per_block"] = _floats(
        traj.boundary[:, :nb * block].reshape(n_paths, nb, block).sum(axis=2).mean(axis=0))
    out["noise_std"] = float(noise_std)
    return out


# ---------------------------------------------------------------- C2-C4 tuning


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
    out = {"n_grid": int(grid.sum()), "n_grid60": int(np.sum(grid & (types.grid_symmetry == 60))),
           "n_grid90": int(np.sum(grid & (types.grid_symmetry == 90)))}
    for k in ("grid60", "grid90"):
        out[f"median_{k}_of_grid_units"] = _median(types.scores[k][grid])
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
    by_type = {t: _median(score[types.spatial_type == t]) for t in SPATIAL_TYPES
               if np.any(types.spatial_type == t)}
    return {"plane": _floats(score), "threshold": float(threshold),
            "n_ramps": int(np.sum(np.nan_to_num(score, nan=-1.0) >= threshold)),
            "median_plane": _median(score), "median_plane_by_type": by_type}


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
    r2 = np.array([_line_fit(speeds, c)[2] for c in sc])
    return {"speeds": speeds, "speed_curves": sc, "directions": centres, "direction_curves": dc,
            "speed_r2": r2}


def curves_to_json(curves):
    """The tuning curves of :func:`tuning_curves` as JSON-ready lists (None for empty bins)."""
    return {"speeds": _floats(curves["speeds"]),
            "speed_curves": [_floats(c) for c in curves["speed_curves"]],
            "directions_rad": _floats(curves["directions"]),
            "direction_curves": [_floats(c) for c in curves["direction_curves"]],
            "speed_r2": _floats(curves["speed_r2"])}


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
    return {"ratio": _floats(ratio), "n_above": int(np.sum(np.nan_to_num(ratio) > threshold)),
            "threshold": threshold, "median_step_ratio": _median(inner)}


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
            "median_speed_selectivity": _median(s["speed_selectivity"][sel]),
            "median_direction_selectivity": _median(s["direction_selectivity"][sel]),
            "median_lifetime_sparseness": _median(s["lifetime_sparseness"][sel]),
            "median_speed_r2": _median(speed_r2[sel]),
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
        "median_speed_r2_of_speed_tuned": _median(tuned_r2),
        "most_direction_tuned": {
            "top_fraction": top_fraction, "units": top.tolist(),
            "median_lifetime_sparseness": _median(sp[top]),
            "median_lifetime_sparseness_others": _median(sp[rest])},
    }


def selectivity(types):
    """Speed, direction and spatial selectivity of every unit and their rank correlations (C4, App. D).

    Spatial selectivity is the lifetime sparseness of the rate map, as in App. D.

    Returns
    -------
    dict: per-unit lists ``speed``, ``direction``, ``spatial``; ``spearman``:
    rho and p for each pair (None when undefined).
    """
    s = types.scores
    vals = {"speed": s["speed_selectivity"], "direction": s["direction_selectivity"],
            "spatial": s["lifetime_sparseness"]}
    out = {k: _floats(v) for k, v in vals.items()}
    rho = {}
    for a, b in (("speed", "direction"), ("speed", "spatial"), ("direction", "spatial")):
        x, y = vals[a], vals[b]
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
            r = scipy.stats.spearmanr(x[ok], y[ok])
            rho[f"{a}_vs_{b}"] = {"rho": _float(r.statistic), "p": _float(r.pvalue), "n": int(ok.sum())}
        else:
            rho[f"{a}_vs_{b}"] = {"rho": None, "p": None, "n": int(ok.sum())}
    out["spearman"] = rho
    return out


# ---------------------------------------------------------------- C5 development


def select_stages(snapshot_iterations, final_iteration, stages=None):
    """Training iterations shown as early, intermediate and late (C5, paper Fig. 4).

    Default: late = the final network; early = the first snapshot after
    initialisation (iteration 0 if there is no other); intermediate = the
    snapshot between them closest to their geometric mean (training changes
    fastest early on, so stages are spaced in log-iterations).

    Parameters
    ----------
    snapshot_iterations : iterable of int
        Iterations with a snapshot (before ``final_iteration``).
    final_iteration : int
    stages : sequence of int, optional
        Explicit iterations (each a snapshot or the final one).

    Returns
    -------
    list of int, increasing; one entry when there are no snapshots.
    """
    available = sorted({int(i) for i in snapshot_iterations if i < final_iteration}) + [int(final_iteration)]
    if stages is not None:
        bad = [s for s in stages if s not in available]
        if bad or not stages:
            raise ValueError(f"stages must be training iterations with parameters; got {list(stages)}, "
                             f"available: {available}")
        return sorted(set(int(s) for s in stages))
    before = available[:-1]
    if not before:
        return available
    positive = [i for i in before if i > 0]
    early = positive[0] if positive else 0
    middle = [i for i in positive if i > early]
    if not middle:
        return [early, final_iteration]
    target = 0.5 * (math.log(early) + math.log(final_iteration))
    inter = min(middle, key=lambda i: abs(math.log(i) - target))
    return [early, inter, final_iteration]


def stage_responses(params_list, backend, traj, noise_std, seed, spec=PAPER, bins=20,
                    trial_chunk=50):
    """Run several networks on the same trials with the same noise; correlate every unit pair.

    Activity is streamed over chunks of trials: only the sums and cross
    products of all (stage, unit) responses and per-stage rate-map sums are
    kept, never the activity of all trials at once.

    Parameters
    ----------
    params_list : list of Params (S networks of N units)
    backend : backend object
    traj : Trajectories (M trials of T steps)
    noise_std : float; sd of the unit noise (the same draws for every network)
    seed : int; source of the noise
    spec : ModelSpec
    bins : int; spatial bins of the rate maps
    trial_chunk : int; trials per chunk (memory: S trial_chunk T N doubles)

    Returns
    -------
    corr : ndarray, shape (S N, S N)
        Pearson correlation of the activity of (stage s, unit u) at row s N + u;
        NaN for a unit with no variance.
    maps : ndarray, shape (S, N, H, W)
        Unsmoothed rate maps per stage.
    """
    n = params_list[0].n_units
    k = len(params_list) * n
    total, gram, count = np.zeros(k), np.zeros((k, k)), 0
    accs = [RateMapAccumulator(traj.arena, bins, n) for _ in params_list]
    m = traj.inputs.shape[0]
    for c, lo in enumerate(range(0, m, trial_chunk)):
        sl = slice(lo, min(m, lo + trial_chunk))
        cols = []
        for p, acc in zip(params_list, accs):
            # Same seed per chunk for every stage: identical noise draws.
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c,)))
            u = np.concatenate([r.u for _, _, r in run_chunks(p, backend, traj.inputs[sl], noise_std,
                                                                rng, spec)], axis=1)
            acc.add(u, traj.positions[sl])
            cols.append(u.reshape(-1, n))
        x = np.hstack(cols)
        total += x.sum(axis=0)
        gram += x.T @ x
        count += len(x)
    cov = gram / count - np.outer(total, total) / count ** 2
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    dead = sd <= 1e-12 * max(1.0, float(sd.max()))
    corr[dead, :] = np.nan
    corr[:, dead] = np.nan
    return np.clip(corr, -1.0, 1.0), np.stack([a.maps() for a in accs])


def embed(dist, seed, method="tsne"):
    """2-D embedding of points from their pairwise distances.

    Parameters
    ----------
    dist : array_like, shape (n, n)
        Symmetric, non-negative, zero diagonal.
    seed : int
        Seed of t-SNE's random initialisation.
    method : {"tsne", "mds"}
        ``"tsne"``: scikit-learn's t-SNE on the precomputed distances
        (perplexity min(30, (n - 1) / 3)), as in the paper. Without
        scikit-learn, or with fewer than 5 points, classical (Torgerson) MDS
        is used instead and the returned info says why.

    Returns
    -------
    coords : ndarray, shape (n, 2)
    info : dict with ``method`` (the one used), ``requested``, ``note`` and, for t-SNE, ``perplexity``.
    """
    check_choice("method", method, EMBEDDINGS)
    dist = np.asarray(dist, float)
    n = len(dist)
    info = {"requested": method, "method": method, "note": None}
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            info.update(method="mds", note="t-SNE unavailable (scikit-learn is not installed: "
                                           "pip install 'gridcore[tsne]'); classical MDS used instead")
            log.warning(info["note"])
        else:
            if n < 5:
                info.update(method="mds", note=f"only {n} points: too few for t-SNE, classical MDS used")
            else:
                perplexity = min(30.0, (n - 1) / 3.0)
                tsne = TSNE(n_components=2, perplexity=perplexity, metric="precomputed",
                            init="random", random_state=seed)
                info["perplexity"] = perplexity
                return tsne.fit_transform(dist), info
    # Classical MDS: top eigenvectors of the double-centred squared distances.
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (dist ** 2) @ j
    w, v = np.linalg.eigh(b)
    top = np.argsort(w)[::-1][:2]
    coords = v[:, top] * np.sqrt(np.clip(w[top], 0.0, None))
    coords *= np.where(coords[np.argmax(np.abs(coords), axis=0), [0, 1]] < 0, -1.0, 1.0)  # fix signs
    return coords, info


def development(run, stages, backend, traj, noise_std, seed, bins=20, spatial_type=None,
                method="tsne"):
    """How the units' responses change during training (C5, paper Fig. 4).

    Every stage's network runs on the same test trials with the same noise;
    each (stage, unit) is a point, two points are ``1 - r`` apart (r: the
    Pearson correlation of their activity over the trials), and the points
    are embedded in 2-D (t-SNE by default). A unit whose response settles
    early travels little between stages.

    Parameters
    ----------
    run : Run
    stages : list of int
        Iterations (from :func:`select_stages`), at least 2.
    backend : backend object
    traj : Trajectories
        The test trials.
    noise_std : float
    seed : int
        Seeds the noise and the embedding.
    bins : int
        Spatial bins of the per-stage rate maps.
    spatial_type : array of str, shape (N,), optional
        Types of the final network's units (highlighted groups).
    method : {"tsne", "mds"}

    Returns
    -------
    dict (JSON-ready) with ``stages``, ``embedding`` (method info),
    ``coords`` (S, N, 2), per-unit ``travel_embedding`` and
    ``travel_correlation``, ``response_correlation_first_last``,
    ``map_correlation_to_last`` (S, N), ``summary`` by group (all, border,
    grid, and the other types present): n and medians; and ``maps`` (S, N,
    H, W) as an array (not JSON) for the figures.
    """
    if len(stages) < 2:
        raise ValueError(f"development needs at least 2 stages, got {stages}")
    params_list = [run.stage_params(s) for s in stages]
    n, n_stages = run.params.n_units, len(stages)
    corr, maps = stage_responses(params_list, backend, traj, noise_std, seed, run.spec, bins)
    dist = np.clip(1.0 - np.nan_to_num(corr, nan=0.0), 0.0, 2.0)
    dist = 0.5 * (dist + dist.T)
    np.fill_diagonal(dist, 0.0)
    coords, info = embed(dist, seed, method)
    coords = coords.reshape(n_stages, n, 2)
    idx = np.arange(n)
    travel_emb = np.linalg.norm(np.diff(coords, axis=0), axis=2).sum(axis=0)
    travel_corr = sum(dist[s * n + idx, (s + 1) * n + idx] for s in range(n_stages - 1))
    first_last = corr[idx, (n_stages - 1) * n + idx]
    map_r = np.stack([map_correlation(maps[s], maps[-1]) for s in range(n_stages)])
    groups = {"all": np.ones(n, bool)}
    if spatial_type is not None:
        for t in SPATIAL_TYPES:
            if np.any(spatial_type == t):
                groups[t] = spatial_type == t
    summary = {}
    for g, sel in groups.items():
        summary[g] = {
            "n": int(sel.sum()),
            "median_travel_embedding": _median(travel_emb[sel]),
            "median_travel_correlation": _median(travel_corr[sel]),
            "median_response_correlation_first_last": _median(first_last[sel]),
            "median_map_correlation_first_last": _median(map_r[0][sel]),
        }
    return {
        "stages": [int(s) for s in stages], "embedding": info,
        "coords": coords.tolist(),
        "travel_embedding": _floats(travel_emb), "travel_correlation": _floats(travel_corr),
        "response_correlation_first_last": _floats(first_last),
        "map_correlation_to_last": [_floats(r) for r in map_r],
        "summary": summary, "n_trials": int(traj.inputs.shape[0]),
        "n_steps": int(traj.inputs.shape[1]), "maps": maps,
    }


# ---------------------------------------------------------------- C6 comparison


def run_summary(label, config, tracking_result, types):
    """What a comparison of runs shows about one run (C6).

    Parameters
    ----------
    label : str
    config : dict; the run's configuration
    tracking_result : dict from :func:`tracking`
    types : CellTypes

    Returns
    -------
    dict (JSON-ready): ``label``, ``config``, ``normalised_error``,
    ``counts`` and ``fractions`` of unit types, :func:`grid_symmetry_counts`,
    and per grid60 / grid90 / border / band score: its median and max over
    all units and ``passed``, the number of units beating their own null
    whatever their type (a graded measure where no unit gets the type);
    ``n_periodic``, the units with periodic maps; ``ramps`` and
    ``median_plane`` from :func:`ramps`.
    """
    n = len(types.spatial_type)
    counts = types.counts()
    passes = types.passes()
    ramp = ramps(types)
    scores = {}
    for k in ("grid60", "grid90", "border", "band"):
        v = types.scores[k]
        scores[k] = {"median": _median(v),
                     "max": _float(np.nanmax(v)) if np.isfinite(v).any() else None,
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
