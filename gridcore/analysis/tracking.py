"""How well the network tracks position: C1 tracking, C7 error correction, C8 stability.

Computations only (figures: :mod:`gridcore.report.figures`; the pipeline
that runs them: :mod:`gridcore.analysis.pipeline`).

- C1 :func:`tracking`: squared error on held-out trials against the best
  constant output; :func:`held_out_tracking` on the run's own held-out
  trials, with :func:`heading_baseline` (from :mod:`gridcore.train.heldout`),
  the error of an integrator that ignores speed, as a reference.
- C7 :func:`error_correction`: error aligned to the first boundary
  interaction, grouped by the interactions that follow.
- C8 :func:`stability` and :func:`long_path`: error per block of steps on
  very long paths, streamed in bounded memory.

Errors are squared Euclidean distances ``|y_t - p_t|^2`` (arena units
squared, summed over x and y) unless a name says "normalised"; ``y_t`` is the
position the network reports (the place-cell readout decoded, see
:func:`gridcore.analysis.recording.output_positions`).
"""

import numpy as np

from gridcore.analysis.jsonready import finite_median, float_or_none, floats, line_fit
from gridcore.analysis.ratemaps import RateMapAccumulator, map_correlation
from gridcore.analysis.recording import path_errors
from gridcore.model.spec import PAPER
from gridcore.sim.arenas import position_ops
from gridcore.sim.trajectories import simulate
from gridcore.train.heldout import heading_baseline, normalised_error, readout_floor, trials_baseline
from gridcore.train.loop import held_out_trials, reported_positions
from gridcore.util.checks import check_positive_int

__all__ = ["INTERACTION_GROUPS", "tracking", "held_out_tracking", "heading_baseline", "error_correction",
           "stability", "long_path"]

# Groups of the number of boundary interactions in the `window` steps after
# the first one (paper Fig. 6a legend: 0, 1, 2 to 5, 6 to 50).
INTERACTION_GROUPS = ((0, 0), (1, 1), (2, 5), (6, 50))


# ---------------------------------------------------------------- C1 tracking


def tracking(outputs, positions, arena=None):
    """How well the network tracks position on held-out trials (C1, paper Fig. 1c).

    Parameters
    ----------
    outputs : array_like, shape (M, T, 2)
        Network estimates y_t (arena units).
    positions : array_like, shape (M, T, 2)
        True positions p_t (arena units).
    arena : Arena or None
        The trials' arena: in a periodic one errors are minimum-image and the
        best constant is the circular mean (:func:`gridcore.train.heldout.normalised_error`);
        None: plain differences.

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
    diff, mean = position_ops(arena)
    err = np.sum(diff(y, p) ** 2, axis=2)
    centre = mean(p, axis=(0, 1))
    const = float(np.mean(np.sum(diff(p, centre) ** 2, axis=2)))
    per_trial = err.mean(axis=1) / const
    return {
        "normalised_error": normalised_error(y, p, arena),
        "squared_error": float(err.mean()),
        "best_constant_error": const,
        "best_constant": floats(centre),
        "n_trials": int(y.shape[0]), "n_steps": int(y.shape[1]),
        "per_trial_normalised_error": {
            "mean": float(per_trial.mean()), "sd": float(per_trial.std()),
            "median": float(np.median(per_trial)), "p90": float(np.percentile(per_trial, 90))},
        "squared_error_by_step": floats(err.mean(axis=0)),
        "example_trials": {q: int(np.argsort(per_trial, kind="stable")[int(f * (len(per_trial) - 1))])
                           for q, f in (("p25", 0.25), ("median", 0.5), ("p75", 0.75))},
    }


def held_out_tracking(run, backend):
    """C1 on the run's own held-out trials: :func:`tracking`, the baseline and the verdict.

    The trials, their noise and the error are those of ``final_metrics.json``
    (:func:`gridcore.train.loop.held_out_trials`, ``eval_trials`` trials of the
    task, the evaluation seed stream), so a run has one held-out error.

    Parameters
    ----------
    run : :class:`gridcore.train.rundir.Run`
    backend : a backend from :func:`gridcore.backends.get_backend`

    Returns
    -------
    track : dict
        :func:`tracking`, with ``heading_baseline_normalised_error``
        (:func:`gridcore.train.heldout.trials_baseline`: an integrator that
        ignores speed, on the same trials) and ``readout_floor``
        (:func:`gridcore.train.heldout.readout_floor`: a perfect integrator
        read through the readout).
    outputs, positions : ndarray, shape (M, T, 2)
        The reported and the true positions (for the tracking figure).
    """
    batch, traj = held_out_trials(run.settings, run.arena, run.place_cells)
    outputs = reported_positions(run.params, batch, backend, run.spec, run.place_cells)
    track = tracking(outputs, traj.positions, run.arena)
    track["heading_baseline_normalised_error"] = trials_baseline(traj, run.arena, run.spec)
    track["readout_floor"] = readout_floor(traj.positions, run.spec, run.place_cells)
    return track, outputs, traj.positions


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
            g.update(mean=floats(mean), sem=floats(sem), before=before, after=after, drop=before - after,
                     relative_drop=float_or_none((before - after) / before) if before > 0 else None)
        out_groups.append(g)
    big = [g["drop"] for g in out_groups if g["n_trials"] >= 5]
    drops_increase = bool(np.all(np.diff(big) >= 0)) if len(big) >= 2 else None

    none = ~has
    growth = {"n_trials": int(none.sum()), "mean_by_step": None, "slope": None, "intercept": None,
              "r2": None, "t_ref": None, "aligned_mean": None}
    if none.any():
        by_step = err[none].mean(axis=0)
        slope, intercept, r2, _ = line_fit(np.arange(t_steps), by_step)
        t_ref = int(np.median(first[rows])) if len(rows) else t_steps // 2
        growth.update(mean_by_step=floats(by_step), slope=float_or_none(slope), intercept=float_or_none(intercept),
                      r2=float_or_none(r2))
        if window <= t_ref < t_steps - window:
            growth.update(t_ref=t_ref, aligned_mean=floats(by_step[t_ref + offsets]))
    return {"window": window, "pre_steps": pre_steps, "post_steps": post_steps,
            "offsets": offsets.tolist(), "n_trials": int(m), "n_with_interaction": int(has.sum()),
            "n_aligned": int(len(rows)), "groups": out_groups, "drops_increase": drops_increase,
            "no_interaction": growth}


# ---------------------------------------------------------------- C8 stability


def stability(err, positions, block=10_000, constant=None, arena=None):
    """Error per block of steps along long paths vs the best constant (C8, paper Fig. 6b).

    Parameters
    ----------
    err : array_like, shape (M, T)
        Squared error per path and step (arena units^2); infinite from the
        step a network diverged (:func:`gridcore.analysis.recording.path_errors`).
    positions : array_like, shape (M, T, 2)
        True positions (arena units).
    block : int
        Steps per block (10^4 in the paper). A last partial block is left out.
    constant : array_like, shape (2,), optional
        The constant output compared with; default the mean position over
        all paths and steps (the best constant).
    arena : Arena or None
        The paths' arena: minimum-image distances and a circular mean in a
        periodic one; None: plain differences.

    Returns
    -------
    dict
        ``block_steps``; ``block_end`` (step at the end of each block);
        ``error_mean``, ``error_sd`` per block (over its steps and paths);
        ``path_sd`` (sd over paths of the per-path block means; None for
        one path); ``constant_mean`` per block; overall ``error``,
        ``constant_error`` and their ``ratio``; ``max_block_ratio``; the
        line fit of the block means against the step (``slope_per_million_steps``
        and its standard error ``slope_se``, over the blocks before a
        divergence); ``first_block`` and ``last_block`` means; ``n_paths``,
        ``n_steps``, ``n_blocks``; ``diverged_at_step``, the first step with
        an infinite error (None: none). Means over a diverged block are None.
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
    diff, mean = position_ops(arena)
    c = mean(positions.reshape(-1, 2), axis=0) if constant is None else np.asarray(constant, float)
    used = nb * block
    e = err[:, :used].reshape(m, nb, block)
    const = np.sum(diff(positions[:, :used], c) ** 2, axis=2).reshape(m, nb, block)
    means = e.mean(axis=(0, 2))
    ends = (np.arange(nb) + 1) * block
    slope, _, _, se = line_fit(ends - block / 2, means)
    const_means = const.mean(axis=(0, 2))
    diverged = np.flatnonzero(~np.isfinite(err).all(axis=0))
    with np.errstate(invalid="ignore"):   # a diverged block's sd is inf - inf = NaN, reported as None
        sd = e.std(axis=(0, 2))
        path_sd = e.mean(axis=2).std(axis=0, ddof=1) if m > 1 else None
    return {
        "diverged_at_step": int(diverged[0]) if len(diverged) else None,
        "block_steps": block, "n_paths": int(m), "n_steps": int(t_steps), "n_blocks": int(nb),
        "block_end": ends.tolist(),
        "error_mean": floats(means), "error_sd": floats(sd),
        "path_sd": floats(path_sd) if m > 1 else None,
        "constant_mean": floats(const_means), "constant": floats(c),
        "error": float_or_none(means.mean()), "constant_error": float(const_means.mean()),
        "ratio": float_or_none(means.mean() / const_means.mean()),
        "max_block_ratio": float_or_none(np.max(means / const_means)),
        "slope_per_million_steps": float_or_none(slope * 1e6), "slope_se": float_or_none(se * 1e6),
        "first_block": float_or_none(means[0]), "last_block": float_or_none(means[-1]),
    }


def long_path(params, backend, arena, n_steps, seed, n_paths=1, encoding="speed-angle",
              motion=None, noise_std=0.0, spec=PAPER, block=10_000, chunk_steps=10_000, bins=20,
              progress=None, motion_model="paper", place_cells=None):
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
        (overrides of the defaults of ``motion_model``)
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
    motion_model : {"paper", "smooth"}
        The motion model the network was trained on.
    place_cells : PlaceCells or None
        The run's place cells: the place-cell readout is decoded with them,
        the encoded initial state starts from the code of each path's start.

    Returns
    -------
    dict
        :func:`stability`'s result plus ``map_stability`` (per-unit
        correlation of the rate maps of the first and second half of the
        paths, and its median) and ``boundary_interactions_per_block``.
    """
    n_steps = check_positive_int("n_steps", n_steps)
    rng = np.random.default_rng(seed)
    traj = simulate(arena, n_paths, n_steps, rng, encoding=encoding, motion_model=motion_model,
                    **(motion or {}))
    halves = [RateMapAccumulator(arena, bins, params.n_units) for _ in range(2)]
    mid = n_steps // 2

    def on_chunk(lo, hi, res):
        for acc, (a, b) in zip(halves, ((lo, min(hi, mid)), (max(lo, mid), hi))):
            if b > a:
                acc.add(res.u[:, a - lo:b - lo], traj.positions[:, a:b])
        if progress is not None:
            progress(hi, n_steps)

    err = path_errors(params, backend, traj, noise_std, rng, spec, chunk_steps, on_chunk, place_cells)
    out = stability(err, traj.positions, block, arena=traj.arena)
    r = map_correlation(halves[0].maps(smooth=1.0), halves[1].maps(smooth=1.0))
    nb = out["n_blocks"]
    out["map_stability"] = {"correlation_first_vs_second_half": floats(r),
                            "median": finite_median(r),
                            "smooth_sigma_bins": 1.0, "bins": int(bins)}
    out["boundary_interactions_per_block"] = floats(
        traj.boundary[:, :nb * block].reshape(n_paths, nb, block).sum(axis=2).mean(axis=0))
    out["noise_std"] = float(noise_std)
    return out
