"""The files of one analysis in ``RUN_DIR/analysis/``: figures, ``metrics.json``, ``units.csv``, ``report.html``.

:func:`draw_figures` draws every figure of an
:class:`gridcore.analysis.pipeline.Analysis` (with
:mod:`gridcore.report.figures`) and saves each (:func:`save_figure`: PNG
at 200 dpi, PDF or SVG on request); :func:`write_outputs` does that as the
timed step ``figures`` and writes ``metrics.json`` (with the figures'
captions, the steps' timings and the run's training time from its
``log.jsonl``), ``units.csv`` (one row per unit,
:func:`gridcore.analysis.unittable.unit_columns`) and ``report.html``
(:mod:`gridcore.report.html`).
"""

import csv
import os

import numpy as np

from gridcore.analysis.physical import physical_scale
from gridcore.analysis.pipeline import run_name
from gridcore.analysis.unittable import unit_columns
from gridcore.report import figures
from gridcore.report import html as report
from gridcore.report.training import training_time
from gridcore.train.rundir import RunDir
from gridcore.util.checks import check_choice
from gridcore.util.fileio import atomic_write_json

__all__ = ["DPI", "FIGURE_FORMATS", "save_figure", "write_unit_csv", "draw_figures", "write_outputs"]

DPI = 200                                 # PNG resolution; PDF and SVG are vector
FIGURE_FORMATS = ("png", "pdf", "svg")


def save_figure(fig, stem, formats=("png",)):
    """Write ``fig`` as ``stem.<format>`` for each format; PNG at :data:`DPI` dpi.

    Parameters
    ----------
    fig : Figure
    stem : str
        Path without the extension.
    formats : sequence of {"png", "pdf", "svg"}

    Returns
    -------
    list of str
        The files written, in the order of ``formats``.
    """
    out = []
    for fmt in formats:
        check_choice("format", fmt, FIGURE_FORMATS)
        path = f"{stem}.{fmt}"
        # "tight" grows the canvas to hold every title, label and legend: nothing is cut off.
        fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.08)
        out.append(path)
    return out


def write_unit_csv(path, columns):
    """Write :func:`gridcore.analysis.unittable.unit_columns` as a CSV file (NaN as an empty field).

    Parameters
    ----------
    path : str
    columns : dict of str -> ndarray, shape (N,)
    """
    names = list(columns)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for row in zip(*(columns[k] for k in names)):
            w.writerow(["" if isinstance(v, float) and np.isnan(v) else v.item() if hasattr(v, "item") else v
                        for v in row])


def draw_figures(analysis, out_dir, formats=("png",)):
    """Every figure of one analysis, as files in ``out_dir``.

    Parameters
    ----------
    analysis : Analysis
        From :func:`gridcore.analysis.pipeline.analyze_run`.
    out_dir : str
        An existing directory.
    formats : sequence of {"png", "pdf", "svg"}
        The files of each figure (:func:`save_figure`).

    Returns
    -------
    dict of str -> str
        Figure key (as in ``metrics["figures"]``) -> file name of its first format in ``out_dir``.
    """
    a, m = analysis, analysis.metrics
    run, types, bins = a.run, a.types, a.bins
    track = m["tracking"]
    name = run_name(run.path)
    phys = physical_scale(run.settings.task)
    fig = {}
    fig["tracking"] = figures.tracking_figure(a.outputs, a.positions, run.arena, track["example_trials"],
                                              track["normalised_error"], physical=phys, title=name)
    fig["probe"] = figures.probe_figure(m["probe"], title=name)
    fig["ratemaps"] = figures.ratemap_panel(types.maps, types, run.arena, bins, physical=phys, title=name)
    grid = figures.grid_units(types)
    if grid:
        fig["grid_maps"] = figures.ratemap_panel(types.maps, types, run.arena, bins, units=grid, physical=phys,
                                                 title=figures.grid_units_title(name, types, grid))
    fig["tuning"] = figures.tuning_examples(m["tuning"]["examples"], types.maps, a.curves, types, run.arena,
                                            bins, physical=phys, title=name)
    fig["selectivity"] = figures.selectivity_figure(m["selectivity"], types.spatial_type, physical=phys,
                                                    title=name)
    if a.development is not None:
        fig["development"] = figures.development_figure(a.development, types, run.arena, bins, title=name)
    fig["error_correction"] = figures.error_correction_figure(m["error_correction"], physical=phys, title=name)
    fig["stability"] = figures.stability_figure(m["stability"], physical=phys, title=name)
    if m["comparison"] is not None:
        fig["comparison"] = figures.comparison_figure(
            m["comparison"], [types.maps] + [t.maps for t in a.compared_types], [types] + a.compared_types,
            [run.arena] + [o.arena for o in a.others], bins, title=f"{name} and the runs compared with it")
    if m["trajectory"] is not None:
        path_types = a.path_types
        fig["path_error"] = figures.path_figure(m["trajectory"], a.path_traces, run.arena, physical=phys,
                                                title=name)
        fig["path_maps"] = figures.comparison_figure(
            m["trajectory"]["comparison"], [path_types["simulated"].maps, path_types["real"].maps],
            [path_types["simulated"], path_types["real"]], [run.arena, run.arena], bins,
            title=f"{name} on a simulated and on the {m['trajectory']['source']} path")
    files = {"tracking": "tracking", "probe": "probe", "ratemaps": "ratemaps", "grid_maps": "grid_ratemaps",
             "tuning": "tuning_examples",
             "selectivity": "selectivity", "development": "development", "error_correction": "error_correction",
             "stability": "stability", "comparison": "comparison", "path_error": "path_error",
             "path_maps": "path_maps"}
    return {k: os.path.basename(save_figure(f, os.path.join(out_dir, files[k]), formats)[0])
            for k, f in fig.items()}


def write_outputs(analysis, steps, formats=("png",)):
    """Draw the figures (step ``figures``) and write ``metrics.json``, ``units.csv`` and ``report.html``.

    Parameters
    ----------
    analysis : Analysis
        From :func:`gridcore.analysis.pipeline.analyze_run`; its ``metrics``
        gain ``figures`` (file and caption of each), ``timings_s`` (each
        step's wall time and the ``total``) and ``training``
        (:func:`gridcore.report.training.training_time` of the run's log;
        None without one).
    steps : Steps
        The :class:`gridcore.analysis.pipeline.Steps` of the analysis.
    formats : sequence of {"png", "pdf", "svg"}
        Files of each figure; the report shows the first (PNG unless only vector formats are asked for).

    Returns
    -------
    out_dir : str
        ``RUN_DIR/analysis``.
    metrics : dict
        As written to ``metrics.json``.
    """
    out_dir = os.path.join(analysis.run.path, "analysis")
    os.makedirs(out_dir, exist_ok=True)
    files = steps.run("figures", "figures", draw_figures, analysis, out_dir, formats)
    write_unit_csv(os.path.join(out_dir, "units.csv"),
                   unit_columns(analysis.types, analysis.curves["speed_r2"]))
    metrics = analysis.metrics
    metrics["figures"] = {k: {"file": v, "caption": report.caption(k, metrics)} for k, v in files.items()}
    metrics["timings_s"] = {**steps.timings, "total": steps.elapsed()}
    run = RunDir(analysis.run.path)
    metrics["training"] = training_time(run.read_log() if os.path.exists(run.log) else [])
    atomic_write_json(os.path.join(out_dir, "metrics.json"), metrics)
    report.write_report(os.path.join(out_dir, "report.html"), metrics)
    return out_dir, metrics
