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

Run folders need not all be on one disk: given the ``ladder.json`` of an
earlier ladder of the same spec (``earlier``), a run the output folder has
never seen (not trained there) takes its seed record from that file, as is,
and the configuration's ``from_earlier`` names it; a run in the output
folder, finished or not, is judged from its own files.

:func:`write_ladder` writes ``ladder.json`` (the records), ``ladder.csv``
(one row per configuration, :data:`CSV_COLUMNS`), ``ladder-maps.npz`` (the
example units' rate maps, :data:`MAPS_FILE`) and ``ladder.png``
(:func:`gridcore.report.figures.ladder_figure`) in the sweep's output
folder; ``python -m gridcore.sweep SPEC --ladder [--earlier LADDER_JSON]``
calls it. The figure's rate maps are recorded again (:func:`example_maps`):
the analysis keeps its maps only as a picture. ``ladder-maps.npz`` keeps
them, so that a later ladder can show a run whose folder is gone.
"""

import csv
import json
import os
import zipfile

import numpy as np

from gridcore.analysis.jsonready import finite_median, float_or_none
from gridcore.analysis.pipeline import held_out_recording
from gridcore.analysis.ratemaps import rate_maps, spatial_bins
from gridcore.backends import get_backend
from gridcore.report.figures import ladder_figure
from gridcore.report.outputs import save_figure
from gridcore.sim.arenas import arena_from_dict, make_arena
from gridcore.sweep.spec import SpecError
from gridcore.sweep.summary import last_iteration, summary_row
from gridcore.sweep.worker import FINISHED, NEW, analysed, run_state
from gridcore.train.rundir import RunDir, load_run
from gridcore.util.checks import check_positive_int
from gridcore.util.fileio import atomic_write, atomic_write_json, load_npz

__all__ = ["SEED_VALUES", "CSV_COLUMNS", "N_EXAMPLES", "MAPS_FILE", "ladder_records", "example_maps",
           "write_ladder"]

SEED_VALUES = ("hexagonal_fraction", "grid_fraction", "median_grid60_hexagonal", "grid60_q1", "grid60_median",
               "grid60_q3", "grid90_q1", "grid90_median", "grid90_q3", "nerr_heldout", "training_hours")
"""The numbers of one seed's record (``runs`` of a configuration), in order."""
CSV_COLUMNS = ("point", "n_seeds", "seeds", "missing", "hexagonal_fraction_mean", "hexagonal_fraction_min",
               "hexagonal_fraction_max") + tuple(f"{k}_mean" for k in SEED_VALUES[1:])
"""``ladder.csv``'s header: one row per configuration; ``<value>_mean`` is the mean over the seeds that have it."""
N_EXAMPLES = 6   # rate maps per configuration in the figure
MAPS_FILE = "ladder-maps.npz"
"""The example units' rate maps beside ``ladder.json``: per configuration with maps, an array (K, H, W) under its
name (the ``K`` units of its ``examples``, binned by their ``arena`` and ``bins``)."""
NOT_TRAINED = "not trained"   # why a run is missing when the output folder has never seen it
_RUN_KEYS = ("seed", "run", "n_units", "n_grid", "n_hexagonal") + SEED_VALUES    # a seed record's keys
_PER_UNIT = ("units", "grid60", "type", "grid_symmetry")                        # examples' lists, one item a unit


def ladder_records(spec, out=None, n_examples=N_EXAMPLES, earlier=None):
    """One record per configuration of a ladder sweep, from its analysed runs (see the module docstring).

    Parameters
    ----------
    spec : Spec
        A sweep of named points (:func:`gridcore.sweep.spec.load_spec`).
    out : str, optional
        The sweep's output folder (default: ``spec.out``).
    n_examples : int >= 1
        Units named as each configuration's examples: those with the
        highest grid60 scores of its first seed whose maps can be had (a run
        analysed in ``out``, or a run kept from ``earlier`` whose examples
        there are its own, at least ``n_examples`` units with their maps in
        :data:`MAPS_FILE` beside it; the first ``n_examples`` are kept).
    earlier : str, optional
        The ``ladder.json`` of an earlier ladder of the same spec. A run
        missing from ``out`` as not trained takes its seed record from it,
        as is, when it has one (same point, seed and run name).

    Returns
    -------
    list of dict (JSON-ready), one per point in the spec's order
        ``point`` (its name); ``settings`` (what it changes in the base);
        ``seeds`` (finished and analysed, or kept from ``earlier``, in the
        spec's order); ``missing`` (the other runs: ``run``, ``seed`` and
        ``why``); ``from_earlier`` (the runs of ``seeds`` kept from
        ``earlier``; empty without); ``runs`` (one dict per seed of
        ``seeds``: ``seed``, ``run``, ``n_units``, ``n_grid``,
        ``n_hexagonal``, then :data:`SEED_VALUES`: the fractions of all
        units that are hexagonal grid units and grid units, the median
        grid60 score of the hexagonal grid units, the quartiles (q1, median,
        q3) of the grid60 and grid90 scores over all units with a score,
        the held-out normalised error ``nerr_heldout`` and the training time
        in hours; None where undefined); ``hexagonal_fraction`` (``mean``,
        ``min``, ``max`` over the seeds); ``mean_over_seeds`` (the mean of
        each other value of :data:`SEED_VALUES` over the seeds that have
        it); ``examples`` (``seed``, ``run``, ``units``, their ``grid60``
        scores, spatial ``type`` and ``grid_symmetry``, and the maps'
        binning: the run's ``arena`` (:meth:`Arena.to_dict`) and the
        classifier's ``bins``; None without a seed whose maps can be had).

    Raises
    ------
    SpecError
        The spec varies settings instead of naming points.
    FileNotFoundError
        ``out`` holds none of the sweep's run directories; no file ``earlier``.
    ValueError
        ``earlier`` is not a ladder's JSON, or gives a point other settings than the spec.
    """
    return _ladder(spec, out, n_examples, earlier)[0]


def _ladder(spec, out, n_examples, earlier):
    """:func:`ladder_records`' records, and ``{point: maps (K, H, W)}`` of the examples kept from ``earlier``."""
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
    old, old_maps = ({}, {}) if earlier is None else _read_earlier(os.fspath(earlier), spec)
    records, kept_maps = [], {}
    for name, settings in spec.named.items():
        mine = [p for p in points if p.settings["point"] == name]
        rec, maps = _point_record(name, settings, mine, out, n_examples, old.get(name), old_maps.get(name))
        records.append(rec)
        if maps is not None:
            kept_maps[name] = maps
    return records, kept_maps


def _point_record(name, settings, points, out, n_examples, old, old_maps):
    """One configuration's record (:func:`ladder_records`) and, when its examples are kept from the earlier
    ladder, their maps (n_examples, H, W) (else None).

    ``points`` are its runs in the spec's order, ``old`` its record in the
    earlier ``ladder.json`` and ``old_maps`` its maps (K, H, W) there (None
    without either).
    """
    runs, missing, kept, examples, maps = [], [], [], None, None
    for point in points:
        path = os.path.join(out, point.name)
        why = _missing(path, point)
        # Only a run this folder has never seen comes from the earlier ladder: the folder's own state wins.
        run = _earlier_run(old, point) if why == NOT_TRAINED else None
        if why is not None and run is None:
            missing.append({"run": point.name, "seed": point.seed, "why": why})
            continue
        if run is None:
            units = _units(path)
            run = _seed_record(path, point, units)
            if examples is None:
                examples = _examples(path, units, run, n_examples)
        else:
            kept.append(point.name)
            if examples is None:
                examples, maps = _earlier_examples(old, old_maps, point.name, n_examples)
        runs.append(run)
    hexagonal = [r["hexagonal_fraction"] for r in runs]
    return {
        "point": name, "settings": settings, "seeds": [r["seed"] for r in runs], "missing": missing,
        "from_earlier": kept, "runs": runs,
        "hexagonal_fraction": {"mean": _mean(hexagonal), "min": min(hexagonal, default=None),
                               "max": max(hexagonal, default=None)},
        "mean_over_seeds": {k: _mean([r[k] for r in runs]) for k in SEED_VALUES[1:]},
        "examples": examples,
    }, maps


def _read_earlier(path, spec):
    """The records of the earlier ladder ``path`` by point (the spec's points only), and its example maps by point
    (:data:`MAPS_FILE` beside it; empty without); ValueError when a point's settings differ from the spec's."""
    expected = ("give the ladder.json of an earlier --ladder of the same spec (a list of records with 'point', "
                "'settings' and 'runs')")
    try:
        with open(path) as fh:
            records = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"earlier: {path}: no such file; {expected}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"earlier: {path} is not JSON ({err}); {expected}") from None
    problem = _ladder_problem(records)
    if problem is not None:
        raise ValueError(f"earlier: {path} is not a ladder: {problem}; {expected}")
    old = {r["point"]: r for r in records if r["point"] in spec.named}
    for name, rec in old.items():
        if rec["settings"] != spec.named[name]:
            raise ValueError(f"earlier: {path} gives point {name!r} the settings {rec['settings']}, but "
                             f"{spec.path or 'the spec'} gives it {spec.named[name]}; an earlier ladder must come "
                             "from the same spec")
    maps_path = os.path.join(os.path.dirname(path), MAPS_FILE)
    maps = load_npz(maps_path, (), [r["point"] for r in records]) if os.path.exists(maps_path) else {}
    return old, maps


def _ladder_problem(records):
    """What keeps ``records`` (a JSON value) from being a ladder's records, or None when nothing does."""
    if not isinstance(records, list):
        return f"it holds a {type(records).__name__}, not a list"
    for i, r in enumerate(records):
        if not (isinstance(r, dict) and {"point", "settings", "runs"} <= set(r) and isinstance(r["point"], str)):
            return f"entry {i} is not a dict with 'point' (a name), 'settings' and 'runs'"
        if not (isinstance(r["runs"], list) and all(isinstance(x, dict) and set(_RUN_KEYS) <= set(x)
                                                    for x in r["runs"])):
            return f"the runs of {r['point']!r} are not seed records (dicts with {', '.join(_RUN_KEYS)})"
    return None


def _earlier_run(old, point):
    """The seed record of ``point`` (same seed and run name) in its configuration's earlier record, or None."""
    if old is None:
        return None
    return next((r for r in old["runs"] if r["seed"] == point.seed and r["run"] == point.name), None)


def _earlier_examples(old, old_maps, run, n):
    """The earlier record's examples, cut to ``n`` units, and their maps (n, H, W), when they are ``run``'s, have
    ``n`` units or more, their binning and their maps (``old_maps``, (K, H, W)); else (None, None)."""
    ex = old.get("examples")
    if (not isinstance(ex, dict) or ex.get("run") != run or old_maps is None or not {"arena", "bins"} <= set(ex)
            or len(ex["units"]) < n):
        return None, None
    binning = _binning(ex)
    if old_maps.shape != (len(ex["units"]), *binning.shape):     # not the maps of these units and bins
        return None, None
    return {k: v[:n] if k in _PER_UNIT else v for k, v in ex.items()}, old_maps[:n]


def _missing(path, point):
    """Why the run in ``path`` is not in the ladder, or None when it finished and was analysed."""
    if point.error is not None:
        return f"invalid settings: {point.error}"
    try:
        state = run_state(path, point.config)
    except ValueError as err:
        return str(err)
    if state == NEW:
        return NOT_TRAINED
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


def _examples(path, units, run, n):
    """The ``n`` units with the highest grid60 scores of the analysed run in ``path`` (its ``units`` and seed
    record), their labels, and the binning of their maps (the run's arena and the classifier's bins)."""
    g60 = units["grid60"]
    order = [int(u) for u in np.argsort(-np.nan_to_num(g60, nan=-np.inf), kind="stable") if np.isfinite(g60[u])]
    shown = order[:n]
    task = RunDir(path).read_config().task
    return {"seed": run["seed"], "run": run["run"], "units": shown, "grid60": [float(g60[u]) for u in shown],
            "type": [str(units["type"][u]) for u in shown],
            "grid_symmetry": [int(units["grid_symmetry"][u]) for u in shown],
            "arena": make_arena(task.arena, task.arena_size).to_dict(),
            "bins": int(_analysis_metrics(path)["celltypes"]["settings"]["bins"])}


def _binning(examples):
    """The bins of a configuration's example maps, from the arena and bins its ``examples`` name."""
    return spatial_bins(arena_from_dict(examples["arena"]), examples["bins"])


def _analysis_metrics(path):
    """``analysis/metrics.json`` of the analysed run in ``path``."""
    with open(os.path.join(path, "analysis", "metrics.json")) as fh:
        return json.load(fh)


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
    metrics = _analysis_metrics(path)
    s, ct = metrics["settings"], metrics["celltypes"]["settings"]
    run = load_run(path)
    backend = get_backend(s["backend"], s["threads"] if threads is None else threads)
    _, rec = held_out_recording(run, backend, s["seed"], s["n_trials"], s["n_steps"], s["test_noise_std"])
    maps = rate_maps(rec.rates[..., list(units)], rec.positions, run.arena, ct["bins"], ct["smooth_sigma_bins"])
    return maps, spatial_bins(run.arena, ct["bins"])


def write_ladder(spec, out=None, n_examples=N_EXAMPLES, threads=None, say=None, earlier=None):
    """Write ``ladder.json``, ``ladder.csv``, ``ladder-maps.npz`` and ``ladder.png`` of a ladder sweep in its output
    folder.

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
    earlier : str, optional
        The ``ladder.json`` of an earlier ladder of the same spec
        (:func:`ladder_records`); examples kept from it take their maps from
        :data:`MAPS_FILE` beside it, so their runs need not be on disk.

    Returns
    -------
    records : list of dict
        :func:`ladder_records`.
    files : list of str
        The four files written, in that order.
    """
    out = spec.out if out is None else os.fspath(out)
    records, kept_maps = _ladder(spec, out, n_examples, earlier)
    maps = {}
    for rec in records:
        if say is not None:
            say(_say_line(rec, earlier))
        ex, name = rec["examples"], rec["point"]
        if ex and ex["units"]:    # maps kept from the earlier ladder, else those of a run in ``out`` recorded again
            maps[name] = kept_maps[name] if name in kept_maps else example_maps(os.path.join(out, ex["run"]),
                                                                                ex["units"], threads)[0]
    binnings = [_binning(r["examples"]) if r["point"] in maps else None for r in records]
    files = [os.path.join(out, name) for name in ("ladder.json", "ladder.csv", MAPS_FILE)]
    atomic_write_json(files[0], records)
    atomic_write(files[1], lambda fh: _write_csv(fh, records))
    atomic_write(files[2], lambda fh: _write_npz(fh, maps), "wb")
    fig = ladder_figure(records, [maps.get(r["point"]) for r in records], binnings,
                        title=os.path.basename(os.path.normpath(out)))
    files += save_figure(fig, os.path.join(out, "ladder"))
    return records, files


def _say_line(rec, earlier):
    """A configuration's line: its seeds, those kept from ``earlier``, whose maps it shows, its missing runs."""
    n = len(rec["seeds"])
    kept = f"; {len(rec['from_earlier'])} kept from {earlier}" if rec["from_earlier"] else ""
    where = f"; maps of {rec['examples']['run']}" if rec["examples"] else ""
    missing = "".join(f"; missing {m['run']}: {m['why']}" for m in rec["missing"])
    return f"{rec['point']}: {n} of {n + len(rec['missing'])} seeds analysed{kept}{where}{missing}"


def _write_npz(fh, arrays):
    """``arrays`` (name -> ndarray) as an ``.npz`` archive (``numpy.load`` reads it) in the binary file ``fh``.

    As ``numpy.savez`` writes it, but any point name is an array name
    there, also ``file``, savez's own argument.
    """
    with zipfile.ZipFile(fh, "w") as archive:
        for name, a in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)


def _write_csv(fh, records):
    """``ladder.csv``: a row of :data:`CSV_COLUMNS` per record; empty cells for None."""
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        h = r["hexagonal_fraction"]
        row = [r["point"], len(r["seeds"]), " ".join(map(str, r["seeds"])), " ".join(m["run"] for m in r["missing"]),
               h["mean"], h["min"], h["max"], *(r["mean_over_seeds"][k] for k in SEED_VALUES[1:])]
        writer.writerow(["" if v is None else v for v in row])
