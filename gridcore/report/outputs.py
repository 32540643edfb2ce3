"""The files of one analysis in ``RUN_DIR/analysis/``: the figures, ``metrics.json`` and ``report.html``.

:func:`draw_figures` draws every figure of an
:class:`gridcore.analysis.pipeline.Analysis` (one PNG each, with
:mod:`gridcore.report.figures`); :func:`write_outputs` does that as the
timed step ``figures`` and writes ``metrics.json`` (with the figures'
captions, the steps' timings and the run's training time from its
``log.jsonl``) and ``report.html`` (:mod:`gridcore.report.html`).
"""

import os

from gridcore.report import figures
from gridcore.report import html as report
from gridcore.report.training import training_time
from gridcore.train.rundir import RunDir
from gridcore.util.fileio import atomic_write_json

__all__ = ["draw_figures", "write_outputs"]


def draw_figures(analysis, out_dir):
    """Every figure of one analysis, as PNG files in ``out_dir``.

    Parameters
    ----------
    analysis : Analysis
        From :func:`gridcore.analysis.pipeline.analyze_run`.
    out_dir : str
        An existing directory.

    Returns
    -------
    dict of str -> str
        Figure key (as in ``metrics["figures"]``) -> file name in ``out_dir``.
    """
    a, m = analysis, analysis.metrics
    run, types, bins = a.run, a.types, a.bins
    track = m["tracking"]
    fig = {}

    def f(name):
        return os.path.join(out_dir, name)

    fig["tracking"] = figures.tracking_figure(a.outputs, a.positions, run.arena, track["example_trials"],
                                              f("tracking.png"), track["normalised_error"])
    fig["probe"] = figures.probe_figure(m["probe"], f("probe.png"))
    fig["ratemaps"] = figures.ratemap_panel(types.maps, types, run.arena, bins, f("ratemaps.png"),
                                            title=f"{run.path}: rate maps of all units")
    fig["tuning"] = figures.tuning_examples(m["tuning"]["examples"], types.maps, a.curves, types, run.arena,
                                            bins, f("tuning_examples.png"))
    fig["selectivity"] = figures.selectivity_figure(m["selectivity"], types.spatial_type, f("selectivity.png"))
    if a.development is not None:
        fig["development"] = figures.development_figure(a.development, types, run.arena, bins,
                                                        f("development.png"))
    fig["error_correction"] = figures.error_correction_figure(m["error_correction"], f("error_correction.png"))
    fig["stability"] = figures.stability_figure(m["stability"], f("stability.png"))
    if m["comparison"] is not None:
        fig["comparison"] = figures.comparison_figure(
            m["comparison"], [types.maps] + [t.maps for t in a.compared_types], [types] + a.compared_types,
            [run.arena] + [o.arena for o in a.others], bins, f("comparison.png"))
    if m["trajectory"] is not None:
        path_types = a.path_types
        fig["path_error"] = figures.path_figure(m["trajectory"], a.path_traces, run.arena, f("path_error.png"))
        fig["path_maps"] = figures.comparison_figure(
            m["trajectory"]["comparison"], [path_types["simulated"].maps, path_types["real"].maps],
            [path_types["simulated"], path_types["real"]], [run.arena, run.arena], bins, f("path_maps.png"))
    return {k: os.path.basename(v) for k, v in fig.items()}


def write_outputs(analysis, steps):
    """Draw the figures (step ``figures``) and write ``metrics.json`` and ``report.html``.

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

    Returns
    -------
    out_dir : str
        ``RUN_DIR/analysis``.
    metrics : dict
        As written to ``metrics.json``.
    """
    out_dir = os.path.join(analysis.run.path, "analysis")
    os.makedirs(out_dir, exist_ok=True)
    files = steps.run("figures", "figures", draw_figures, analysis, out_dir)
    metrics = analysis.metrics
    metrics["figures"] = {k: {"file": v, "caption": report.caption(k, metrics)} for k, v in files.items()}
    metrics["timings_s"] = {**steps.timings, "total": steps.elapsed()}
    run = RunDir(analysis.run.path)
    metrics["training"] = training_time(run.read_log() if os.path.exists(run.log) else [])
    atomic_write_json(os.path.join(out_dir, "metrics.json"), metrics)
    report.write_report(os.path.join(out_dir, "report.html"), metrics)
    return out_dir, metrics
