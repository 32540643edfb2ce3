"""The ingredient ladder of an analysed sweep: one record per named configuration, over its seeds.

A ladder is a sweep of named points (``[points.<name>]`` tables, each
changing one ingredient of a model; :mod:`gridcore.sweep.spec`), each run
with every seed and analysed (``python -m gridcore.sweep SPEC --analyze``).
:func:`ladder_records` reads, per configuration in the spec's order, the
runs that finished and were analysed: from each run's ``analysis/units.csv``
the hexagonal grid units (grid units the classifier gives 60-degree
symmetry, ``type == "grid"`` and ``grid_symmetry == 60``) and the
distribution of the grid60 and grid90 scores over all units, the held-out
error of ``final_metrics.json`` and the training time of ``log.jsonl``
(:func:`gridcore.sweep.summary.summary_row`'s ``wall_s``). Runs not
finished or not analysed are listed as missing, with the reason.

:func:`write_ladder` writes ``ladder.json`` (the records), ``ladder.csv``
(one row per configuration, :data:`CSV_COLUMNS`) and ``ladder.png``
(:func:`gridcore.report.figures.ladder_figure`) in the sweep's output
folder; ``python -m gridcore.sweep SPEC --ladder`` calls it. The figure's
rate maps are recorded again (:func:`example_maps`): the analysis keeps
its maps only as a picture.
"""

import csv
import json
import os

import numpy as np

from gridcore.analysis.jsonready import finite_median, float_or_none
from gridcore.analysis.pipeline import held_out_recording
from gridcore.analysis.ratemaps import rate_maps, spatial_bins
from gridcore.backends import get_backend
from gridcore.report.figures import ladder_figure
from gridcore.report.outputs import save_figure
from gridcore.sweep.spec import SpecError
from gridcore.sweep.summary import last_iteration, summary_row
from gridcore.sweep.worker import FINISHED, NEW, analysed, run_state
from gridcore.train.rundir import RunDir, load_run
from gridcore.util.checks import check_positive_int
from gridcore.util.fileio import atomic_write, atomic_write_json

__all__ = ["SEED_VALUES", "CSV_COLUMNS", "N_EXAMPLES", "ladder_records", "example_maps", "write_ladder"]

SEED_VALUES = ("hexagonal_fraction", "grid_fraction", "median_grid60_hexagonal", "grid60_q1", "grid60_median",
               "grid60_q3", "grid90_q1", "grid90_median", "grid90_q3", "nerr_heldout", "training_hours")
"""The numbers of one seed's record (``runs`` of a configuration), in order."""
CSV_COLUMNS = ("point", "n_seeds", "seeds", "missing", "hexagonal_fraction_mean", "hexagonal_fraction_min",
               "hexagonal_fraction_max") + tuple(f"{k}_mean" for k in SEED_VALUES[1:])
"""``ladder.csv``'s header: one row per configuration; ``<value>_mean`` is the mean over the seeds that have it."""
N_EXAMPLES = 6   # rate maps per configuration in the figure


def ladder_records(spec, out=None, n_examples=N_EXAMPLES):
    """One record per configuration of a ladder sweep, from its analysed runs (see the module docstring).

    Parameters
    ----------
    spec : Spec
        A sweep of named points (:func:`gridcore.sweep.spec.load_spec`).
    out : str, optional
        The sweep's output folder (default: ``spec.out``).
    n_examples : int >= 1
        Units of each configuration's first analysed seed named as its
        examples: those with the highest grid60 scores.

    Returns
    -------
    list of dict (JSON-ready), one per point in the spec's order
        ``point`` (its name); ``settings`` (what it changes in the base);
        ``seeds`` (finished and analysed, in the spec's order); ``missing``
        (the other runs: ``run``, ``seed`` and ``why``); ``runs`` (one dict
        per seed of ``seeds``: ``seed``, ``run``, ``n_units``, ``n_grid``,
        ``n_hexagonal``, then :data:`SEED_VALUES`: the fractions of all
        units that are hexagonal grid units and grid units, the median
        grid60 score of the hexagonal grid units, the quartiles (q1, median,
        q3) of the grid60 and grid90 scores over all units with a score,
        the held-out normalised error ``nerr_heldout`` and the training time
        in hours; None where undefined); ``hexagonal_fraction`` (``mean``,
        ``min``, ``max`` over the seeds); ``mean_over_seeds`` (the mean of
        each other value of :data:`SEED_VALUES` over the seeds that have
        it); ``examples`` (of the first seed: ``seed``, ``run``, ``units``,
        their ``grid60`` scores, spatial ``type`` and ``grid_symmetry``; None
        without an analysed seed).

    Raises
    ------
    SpecError
        The spec varies settings instead of naming points.
    FileNotFoundError
        ``out`` holds none of the sweep's run directories.
    """
    if not spec.named:
        raise SpecError(f"{spec.path or 'the spec'}: a ladder summarises named points ([points.<name>] tables); "
                        "this spec varies settings ([vary])")
    n_examples = check_positive_int("n_examples", n_examples)
    out = spec.out if out is None else os.fspath(out)
    points = spec.points()
    if not os.path.isdir(out):
        raise FileNotFoundError(f"{out}: no such folder; give the sweep's output folder (--out), or run the sweep "
                                "first")
    if not any(os.path.isdir(os.path.join(out, p.name)) for p in points):
        raise FileNotFoundError(f"{out} holds none of the sweep's runs (e.g. {os.path.join(out, points[0].name)}); "
                                "give the sweep's output folder (--out), or run the sweep first")
    records = []
    for name, settings in spec.named.items():
        runs, missing, examples = [], [], None
        for point in (p for p in points if p.settings["point"] == name):
            path = os.path.join(out, point.name)
            why = _missing(path, point)
            if why is not None:
                missing.append({"run": point.name, "seed": point.seed, "why": why})
                continue
            units = _units(path)
            runs.append(_seed_record(path, point, units))
            if examples is None:
                examples = _examples(units, runs[-1], n_examples)
        hexagonal = [r["hexagonal_fraction"] for r in runs]
        records.append({
            "point": name, "settings": settings, "seeds": [r["seed"] for r in runs], "missing": missing,
            "runs": runs,
            "hexagonal_fraction": {"mean": _mean(hexagonal), "min": min(hexagonal, default=None),
                                   "max": max(hexagonal, default=None)},
            "mean_over_seeds": {k: _mean([r[k] for r in runs]) for k in SEED_VALUES[1:]},
            "examples": examples,
        })
    return records


def _missing(path, point):
    """Why the run in ``path`` is not in the ladder, or None when it finished and was analysed."""
    if point.error is not None:
        return f"invalid settings: {point.error}"
    try:
        state = run_state(path, point.config)
    except ValueError as err:
        return str(err)
    if state == NEW:
        return "not trained"
    if state != FINISHED:
        return f"unfinished: iteration {last_iteration(path)} of {point.config.optimizer.iterations}"
    if not analysed(path):
        return "not analysed (python -m gridcore.sweep SPEC --analyze analyses it)"
    return None


def _units(path):
    """``analysis/units.csv`` of the run in ``path`` as columns: type, grid_symmetry, grid60, grid90 (NaN: empty)."""
    with open(os.path.join(path, "analysis", "units.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {"type": np.array([r["type"] for r in rows], dtype=str),
            "grid_symmetry": np.array([int(r["grid_symmetry"]) for r in rows], dtype=np.int64),
            **{k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in ("grid60", "grid90")}}


def _quartiles(v):
    """(q1, median, q3) of the finite values of ``v`` (Nones without any)."""
    v = v[np.isfinite(v)]
    return tuple(float(q) for q in np.percentile(v, (25, 50, 75))) if len(v) else (None,) * 3


def _seed_record(path, point, units):
    """One analysed run's numbers (:func:`ladder_records`' ``runs``); ``units`` from :func:`_units`."""
    n = len(units["type"])
    grid = units["type"] == "grid"
    hexagonal = grid & (units["grid_symmetry"] == 60)
    with open(RunDir(path).metrics) as fh:
        nerr = json.load(fh)["nerr_heldout"]
    wall_s = summary_row(path, point, "finished")["wall_s"]
    rec = {"seed": point.seed, "run": point.name, "n_units": n, "n_grid": int(grid.sum()),
           "n_hexagonal": int(hexagonal.sum()), "hexagonal_fraction": float(hexagonal.sum()) / n,
           "grid_fraction": float(grid.sum()) / n,
           "median_grid60_hexagonal": finite_median(units["grid60"][hexagonal])}
    for k in ("grid60", "grid90"):
        rec.update(zip((f"{k}_q1", f"{k}_median", f"{k}_q3"), _quartiles(units[k])))
    rec.update(nerr_heldout=float_or_none(nerr), training_hours=None if wall_s is None else wall_s / 3600.0)
    return rec


def _examples(units, run, n):
    """The ``n`` units with the highest grid60 scores of a run (its ``units`` and seed record), and their labels."""
    g60 = units["grid60"]
    order = [int(u) for u in np.argsort(-np.nan_to_num(g60, nan=-np.inf), kind="stable") if np.isfinite(g60[u])]
    shown = order[:n]
    return {"seed": run["seed"], "run": run["run"], "units": shown, "grid60": [float(g60[u]) for u in shown],
            "type": [str(units["type"][u]) for u in shown],
            "grid_symmetry": [int(units["grid_symmetry"][u]) for u in shown]}


def _mean(values):
    """Mean of the values that are not None (None if there are none)."""
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def example_maps(path, units, threads=None):
    """Rate maps of some units of an analysed run, recorded as its analysis recorded them.

    The network runs on the analysis's held-out trials (its seed, trial
    count, steps and unit noise, from ``analysis/metrics.json``) with its
    backend, and the maps are binned and smoothed as the classifier's: the
    maps whose scores ``units.csv`` holds (to round-off with another thread
    count).

    Parameters
    ----------
    path : str
        An analysed run directory.
    units : sequence of int
        The units mapped.
    threads : int, optional
        Kernel threads (default: the analysis's).

    Returns
    -------
    maps : ndarray, shape (len(units), H, W)
        Mean activity per spatial bin; NaN outside the arena and where unvisited.
    binning : SpatialBins
        The maps' bins (:func:`gridcore.analysis.ratemaps.spatial_bins`) over the run's arena.
    """
    with open(os.path.join(path, "analysis", "metrics.json")) as fh:
        metrics = json.load(fh)
    s, ct = metrics["settings"], metrics["celltypes"]["settings"]
    run = load_run(path)
    backend = get_backend(s["backend"], s["threads"] if threads is None else threads)
    _, rec = held_out_recording(run, backend, s["seed"], s["n_trials"], s["n_steps"], s["test_noise_std"])
    maps = rate_maps(rec.rates[..., list(units)], rec.positions, run.arena, ct["bins"], ct["smooth_sigma_bins"])
    return maps, spatial_bins(run.arena, ct["bins"])


def write_ladder(spec, out=None, n_examples=N_EXAMPLES, threads=None, say=None):
    """Write ``ladder.json``, ``ladder.csv`` and ``ladder.png`` of a ladder sweep in its output folder.

    Parameters
    ----------
    spec : Spec
        A sweep of named points.
    out : str, optional
        The sweep's output folder (default: ``spec.out``).
    n_examples : int >= 1
        Rate maps per configuration in the figure.
    threads : int, optional
        Kernel threads of the recordings of the maps (:func:`example_maps`).
    say : callable(str), optional
        Receives a line per configuration.

    Returns
    -------
    records : list of dict
        :func:`ladder_records`.
    files : list of str
        The three files written.
    """
    out = spec.out if out is None else os.fspath(out)
    records = ladder_records(spec, out, n_examples)
    maps, binnings = [], []
    for rec in records:
        if say is not None:
            where = (f"; maps of {rec['examples']['run']}" if rec["examples"] else "") + "".join(
                f"; missing {m['run']}: {m['why']}" for m in rec["missing"])
            say(f"{rec['point']}: {len(rec['seeds'])} of {len(rec['seeds']) + len(rec['missing'])} seeds "
                f"analysed{where}")
        ex = rec["examples"]
        if ex and ex["units"]:
            m, b = example_maps(os.path.join(out, ex["run"]), ex["units"], threads)
        else:
            m = b = None
        maps.append(m)
        binnings.append(b)
    files = [os.path.join(out, f"ladder.{ext}") for ext in ("json", "csv")]
    atomic_write_json(files[0], records)
    atomic_write(files[1], lambda fh: _write_csv(fh, records))
    fig = ladder_figure(records, maps, binnings, title=os.path.basename(os.path.normpath(out)))
    files += save_figure(fig, os.path.join(out, "ladder"))
    return records, files


def _write_csv(fh, records):
    """``ladder.csv``: a row of :data:`CSV_COLUMNS` per record; empty cells for None."""
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        h = r["hexagonal_fraction"]
        row = [r["point"], len(r["seeds"]), " ".join(map(str, r["seeds"])), " ".join(m["run"] for m in r["missing"]),
               h["mean"], h["min"], h["max"], *(r["mean_over_seeds"][k] for k in SEED_VALUES[1:])]
        writer.writerow(["" if v is None else v for v in row])
