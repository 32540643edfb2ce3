"""How unit types emerge over training: unit types, grid scores and tracking at every training stage.

:func:`emergence` records every stage of a run (its parameter snapshots and
its final network, or, for a run still training, its latest checkpoint) on
the same fresh held-out trials with the same unit noise, classifies every
unit as the full analysis does
(:func:`gridcore.analysis.pipeline.record_and_classify`, the same shuffle
lags at every stage) and tracks the run's own held-out trials
(:func:`gridcore.analysis.tracking.held_out_tracking`). Per stage it
reports the training time so far (:func:`training_seconds`), the unit-type
counts, the grid-score distribution and, for claim C5 (paper Fig. 4:
border units appear early and stay, grid units change a lot before they
settle), how close each unit's rate map already is to its map at the last
stage, and whether the units that are border or grid units at the last
stage already were then.

:func:`emergence_table` puts it in a few lines of text;
:func:`gridcore.report.figures.emergence_figure` draws it;
``python -m gridcore.analyze RUN --emergence --out DIR`` writes both.

Cost: each stage runs the network on ``n_trials`` trials and scores every
unit's map and its ``shuffles`` circular shifts, so the time grows as stages
x units x (shuffles + 1). A 512-unit place-cell network at the defaults
(100,000 recorded steps, 100 shuffles) took about a minute per stage (8
stages in 8 min 14 s; C core, 2 threads, one of the 2 cores busy with
training) and 1.6 GB of memory at the peak (the recording's rates are
100,000 x 512 doubles, 0.4 GB).
"""

import os
import time
from dataclasses import replace

import numpy as np

from gridcore.analysis.development import select_stages
from gridcore.analysis.jsonready import finite_median, float_or_none, floats
from gridcore.analysis.pipeline import CONVENTIONS, DEFAULTS, record_and_classify, subseed, trials_for
from gridcore.analysis.ratemaps import map_correlation
from gridcore.analysis.tracking import held_out_tracking, tracking
from gridcore.analysis.unitsummary import grid_symmetry_counts, hexagonal_units
from gridcore.train.rundir import RunDir
from gridcore.util.checks import check_nonneg_float, check_positive_int

__all__ = ["SAMPLES", "GRID60_LEVELS", "C5_GROUPS", "emergence_stages", "training_seconds", "emergence",
           "emergence_table"]

SAMPLES = 100_000           # recorded steps by default: ceil(SAMPLES / n_steps) trials
GRID60_LEVELS = (0.3, 0.5)  # grid60 scores counted above these
C5_GROUPS = ("border", "grid", "rest")   # units by their type at the last stage; rest: neither


def emergence_stages(run, stages=None):
    """The training iterations :func:`emergence` records.

    Parameters
    ----------
    run : Run
        From ``gridcore.train.rundir.load_run(path, unfinished=True)``.
    stages : sequence of int, optional
        Explicit iterations, each a snapshot or ``run.final_iteration``.

    Returns
    -------
    list of int, increasing
        Default: every snapshot, then the final network (of a run still
        training, its latest checkpoint).

    Raises
    ------
    ValueError
        An iteration without parameters (the message lists the available ones).
    """
    every = sorted(run.snapshots) + [run.final_iteration]
    return select_stages(run.snapshots, run.final_iteration, every if stages is None else list(stages))


def training_seconds(records, iterations):
    """Training wall time up to each iteration, from the run's log records.

    The sum of ``seconds`` (each iteration's own time: minibatch, gradient,
    curvature, step and held-out evaluation) over iterations ``1..i``; the
    start-up and the writing of checkpoints and snapshots are not counted.

    Parameters
    ----------
    records : list of dict
        ``RunDir.read_log()``: ``iteration`` and ``seconds`` per record.
    iterations : sequence of int

    Returns
    -------
    list of float or None
        Seconds (0.0 at iteration 0); None where the log lacks one of the
        iterations ``1..i``.
    """
    seconds = {int(r["iteration"]): float(r["seconds"]) for r in records}
    logged = np.array(sorted(seconds), dtype=np.int64)
    total = np.cumsum([seconds[i] for i in logged])
    out = []
    for it in iterations:
        k = int(np.searchsorted(logged, it, side="right"))   # records of iterations <= it
        complete = k == it and (k == 0 or logged[k - 1] == it)
        out.append((float(total[k - 1]) if k else 0.0) if complete else None)
    return out


def _stage_source(run, iteration):
    if iteration in run.snapshots:
        return "snapshot"
    return "final" if run.finished else "checkpoint"


def _stage_summary(types, held_out, recording):
    """One stage's unit types, grid scores and tracking (JSON-ready)."""
    n = len(types.spatial_type)
    counts = types.counts()
    g60, g90 = types.scores["grid60"], types.scores["grid90"]
    above = {f"{c:g}": int(np.sum(np.nan_to_num(g60, nan=-np.inf) > c)) for c in GRID60_LEVELS}
    return {
        "n_units": n, "counts": counts, "grid_fraction": counts["grid"] / n,
        "grid_symmetry": grid_symmetry_counts(types),
        "grid_scores": {
            "median_grid60": finite_median(g60), "median_grid90": finite_median(g90),
            "n_grid60_above": above, "fraction_grid60_above": {k: v / n for k, v in above.items()},
            # The positive control's measure: the 60-degree score of the hexagonal grid units.
            "median_grid60_of_hexagonal_units": finite_median(g60[hexagonal_units(types)]),
        },
        "tracking": {k: held_out[k] for k in ("normalised_error", "squared_error", "best_constant_error",
                                              "n_trials", "n_steps")},
        "recording_normalised_error": recording["normalised_error"],
        "coverage": types.settings["coverage"],
    }


def _c5(maps, spatial):
    """Per stage and group of last-stage types: median map correlation with the last map, fraction of that type.

    Parameters
    ----------
    maps : ndarray, shape (S, N, H, W)
    spatial : ndarray of str, shape (S, N)

    Returns
    -------
    per_stage : list of dict (S)
        ``{group: {"n", "median_map_correlation_to_last", "fraction_same_type"}}``.
    r : ndarray, shape (S, N)
        Each unit's map correlation with its last-stage map.
    """
    last = spatial[-1]
    border, grid, rest = C5_GROUPS
    groups = {border: last == border, grid: last == grid}
    groups[rest] = ~(groups[border] | groups[grid])
    r = np.stack([map_correlation(m, maps[-1]) for m in maps])
    per_stage = [{g: {"n": int(sel.sum()), "median_map_correlation_to_last": finite_median(r[s][sel]),
                      "fraction_same_type": float(np.mean(spatial[s][sel] == last[sel])) if sel.any() else None}
                  for g, sel in groups.items()}
                 for s in range(len(maps))]
    return per_stage, r


def emergence(run, backend, stages=None, seed=0, n_trials=None, n_steps=None, noise_std=None, bins=20,
              shuffles=DEFAULTS["shuffles"], say=None):
    """Unit types, grid scores and tracking at every training stage of a run (see the module docstring).

    Every stage is recorded on the same held-out trials with the same noise:
    fresh trials of the run's task from the analysis seed's
    ``"trajectories"`` stream and noise from its ``"noise"`` stream
    (:func:`gridcore.analysis.pipeline.held_out_recording`); the shuffle
    lags come from its ``"shuffles"`` stream, the same at every stage.

    Parameters
    ----------
    run : Run
        ``gridcore.train.rundir.load_run(path, unfinished=True)``: finished
        or still training. Only read.
    backend : a backend from :func:`gridcore.backends.get_backend`
    stages : sequence of int, optional
        Iterations (default: :func:`emergence_stages`, every snapshot and
        the final network or latest checkpoint). The C5 numbers compare with
        the last one.
    seed : int
        The analysis seed.
    n_trials : int, optional
        Held-out trials recorded at every stage; default
        ``ceil(SAMPLES / n_steps)``, 100,000 steps in all (5,000 trials of
        20 steps: about 250 samples per bin of a 20 x 20 rate map).
    n_steps : int, optional
        Steps per trial (default: the run's training length).
    noise_std : float, optional
        Unit noise (default: the run's training level).
    bins : int
        Spatial bins along the arena's longer side.
    shuffles : int
        Circular shifts per unit for the unit-type nulls (the classifier's 100).
    say : callable(str), optional
        Receives a progress line per stage.

    Returns
    -------
    dict (JSON-ready)
        ``run`` (path, finished, latest and total iterations, snapshots);
        ``settings`` (backend, threads, seed and its streams, n_trials,
        n_steps, n_samples, noise_std, bins, n_shuffles, stages,
        grid60_levels); ``conventions``; ``stages``: a list of S dicts with
        ``iteration``, ``source`` (snapshot, checkpoint or final),
        ``training_seconds`` (s, :func:`training_seconds`) and
        ``training_hours``, ``n_units``, ``counts`` (units per spatial type
        and speed, direction, untuned), ``grid_fraction``,
        ``grid_symmetry`` (grid units with 60 and 90 deg symmetry, median
        grid60 and grid90 scores of the grid units), ``grid_scores``
        (medians over all units, ``n_grid60_above`` and
        ``fraction_grid60_above`` per level, and
        ``median_grid60_of_hexagonal_units``: of the grid units with 60 deg
        symmetry, the positive control's measure), ``tracking`` (the run's own
        held-out trials: normalised error, squared error and best-constant
        error in arena units^2), ``recording_normalised_error`` (on the
        recorded trials), ``coverage``, ``c5`` (per group of last-stage
        type, border, grid and rest: ``n``,
        ``median_map_correlation_to_last``, ``fraction_same_type``) and
        ``seconds`` (analysis time); ``units``: per stage and unit,
        ``spatial_type`` and ``map_correlation_to_last`` (S x N);
        ``seconds`` (total analysis time).
    """
    t_start = time.perf_counter()
    task = run.settings.task
    n_steps = check_positive_int("n_steps", task.n_steps if n_steps is None else n_steps)
    n_trials = check_positive_int("n_trials", trials_for(SAMPLES, n_steps) if n_trials is None else n_trials)
    noise = check_nonneg_float("noise_std", task.noise_std if noise_std is None else noise_std)
    shuffles = check_positive_int("shuffles", shuffles)
    its = emergence_stages(run, stages)
    run_dir = RunDir(run.path)
    seconds = training_seconds(run_dir.read_log() if os.path.exists(run_dir.log) else [], its)
    rows, maps, spatial = [], [], []
    for k, (it, secs) in enumerate(zip(its, seconds)):
        t0 = time.perf_counter()
        stage_run = replace(run, params=run.stage_params(it))
        _, rec, types = record_and_classify(stage_run, backend, seed, n_trials, n_steps, noise, bins, shuffles)
        rec_track = tracking(rec.outputs, rec.positions, run.arena)
        del rec
        held_out, _, _ = held_out_tracking(stage_run, backend)
        row = {"iteration": int(it), "source": _stage_source(run, it), "training_seconds": secs,
               "training_hours": None if secs is None else secs / 3600.0,
               **_stage_summary(types, held_out, rec_track)}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        maps.append(types.maps)
        spatial.append(types.spatial_type)
        conventions = types.settings["conventions"]
        if say is not None:
            c = row["counts"]
            say(f"stage {k + 1}/{len(its)}: iteration {it} ({row['source']}, "
                + ("training time unknown" if secs is None else f"{secs / 3600:.2f} h of training")
                + f"): grid {c['grid']} ({row['grid_symmetry']['n_grid60']} at 60 deg), border {c['border']}, "
                f"band {c['band']}, irregular {c['irregular']} of {row['n_units']}; held-out error "
                f"{row['tracking']['normalised_error']:.3f}; {row['seconds']:.1f} s")
    per_stage, r = _c5(np.stack(maps), np.stack(spatial))
    for row, c5 in zip(rows, per_stage):
        row["c5"] = c5
    return {
        "run": {"path": run.path, "finished": bool(run.finished), "latest_iteration": int(run.final_iteration),
                "iterations": int(run.settings.optimizer.iterations), "snapshots": sorted(run.snapshots)},
        "settings": {
            "backend": backend.name, "threads": backend.threads, "seed": seed,
            "seeds": {k: subseed(seed, k) for k in ("trajectories", "noise", "shuffles")},
            "n_trials": n_trials, "n_steps": n_steps, "n_samples": n_trials * n_steps, "noise_std": noise,
            "bins": bins, "n_shuffles": shuffles, "stages": [int(i) for i in its],
            "grid60_levels": list(GRID60_LEVELS),
        },
        "conventions": {
            "scores": conventions,
            "training_seconds": "sum of the log's per-iteration seconds over iterations 1..i (start-up, "
                                "checkpoints and snapshots not counted)",
            "tracking": "normalised error of the decoded position on the run's own held-out trials "
                        "(config eval_trials; the log's nerr)",
            "map_correlation": CONVENTIONS["map_correlation"] + "; the maps the classifier scored "
                                                                "(smoothed by 1 bin), each stage's against the last's",
            "c5_groups": "units by their spatial type at the last stage: border, grid, rest (any other)",
        },
        "stages": rows,
        "units": {"spatial_type": [[str(t) for t in s] for s in spatial],
                  "map_correlation_to_last": [floats(v) for v in r]},
        "seconds": time.perf_counter() - t_start,
    }


def emergence_table(result):
    """:func:`emergence`'s result as a small text table, one row per stage.

    Parameters
    ----------
    result : dict from :func:`emergence`

    Returns
    -------
    str
        Columns: iteration, training hours, grid units (of them 60 deg),
        border, band, irregular, grid fraction, units with grid60 above each
        level, median grid60 of all units, held-out normalised error, and
        the median map correlation with the last stage of the last stage's
        border, grid and other units.
    """
    levels = [f"{c:g}" for c in result["settings"]["grid60_levels"]]

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    head = (f"{'iteration':>9} {'hours':>6} {'grid(60)':>9} {'border':>6} {'band':>5} {'irreg':>5} "
            f"{'grid%':>6} " + " ".join(f"{'g60>' + c:>7}" for c in levels)
            + f" {'med g60':>7} {'error':>6} {'r border':>8} {'r grid':>6} {'r rest':>6}")
    lines = [head]
    for s in result["stages"]:
        c, c5 = s["counts"], s["c5"]
        lines.append(
            f"{s['iteration']:>9} {num(s['training_hours'], '6.2f'):>6} "
            f"{c['grid']:>4}({s['grid_symmetry']['n_grid60']:>3}) {c['border']:>6} {c['band']:>5} "
            f"{c['irregular']:>5} {100 * s['grid_fraction']:>6.1f} "
            + " ".join(f"{s['grid_scores']['n_grid60_above'][k]:>7}" for k in levels)
            + f" {num(s['grid_scores']['median_grid60'], '7.3f'):>7} "
            f"{num(float_or_none(s['tracking']['normalised_error']), '6.3f'):>6} "
            + " ".join(f"{num(c5[g]['median_map_correlation_to_last'], '.3f'):>{w}}"
                       for g, w in zip(C5_GROUPS, (8, 6, 6))))
    last = result["stages"][-1]["c5"]
    lines.append(f"last stage: {last['border']['n']} border, {last['grid']['n']} grid, {last['rest']['n']} other "
                 f"units; r: median map correlation with the last stage")
    return "\n".join(lines)
