"""Unit types over training (gridcore.analysis.emergence, ``python -m gridcore.analyze --emergence``; issue 21)."""

import json
import os
import shutil

import numpy as np
import pytest

from gridcore.analysis.celltypes import SPATIAL_TYPES
from gridcore.analysis.emergence import emergence, emergence_stages, emergence_table, training_seconds
from gridcore.backends import get_backend
from gridcore.cli.analyze import main
from gridcore.report.figures import emergence_figure
from gridcore.train.config import make_config
from gridcore.train.loop import train
from gridcore.train.rundir import RunDir, load_run
from gridcore.util.dirlock import LOCK_NAME, dir_lock

NUMPY = get_backend("numpy")
# A tiny network of Sorscher et al.'s kind (place-cell readout, encoded start, ReLU, smooth motion).
TINY = dict(n_units=12, n_trials=20, n_steps=20, curvature_trials=10, backend="numpy", eval_trials=20,
            eval_every=2, snapshot_at=[0, 2], model={"nonlinearity": "relu", "readout": "place-cells",
                                                     "initial_state": "encoded", "n_place_cells": 24,
                                                     "alpha": 0.5},
            motion_model="smooth", place_cells={"sigma": 0.3})
SIZES = dict(n_trials=40, shuffles=5, bins=8)
CLI_SIZES = ["--backend", "numpy", "--n-trials", "40", "--shuffles", "5", "--bins", "8", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``finished``: 4 iterations, snapshots at 0 and 2. ``training``: the same run extended to 8
    iterations and not yet finished: config.json says 8, checkpoint and log stop at 4, no final.npz."""
    base = tmp_path_factory.mktemp("emergence")
    train(make_config("quick", iterations=4, **TINY), base / "finished", stream=None)
    shutil.copytree(base / "finished", base / "training")
    os.remove(base / "training" / "final.npz")
    os.remove(base / "training" / "final_metrics.json")
    make_config("quick", iterations=8, **TINY).save(str(base / "training" / "config.json"))
    return base


def _listing(path):
    return sorted((os.path.relpath(os.path.join(d, f), path), os.path.getmtime(os.path.join(d, f)))
                  for d, _, files in os.walk(path) for f in files)


@pytest.fixture(scope="module")
def training(runs):
    run = load_run(runs / "training", unfinished=True)
    return run, emergence(run, NUMPY, **SIZES)


def test_a_run_still_training_loads_from_its_checkpoint(runs):
    run = load_run(runs / "training", unfinished=True)
    assert not run.finished and run.final_iteration == 4 and sorted(run.snapshots) == [0, 2]
    assert emergence_stages(run) == [0, 2, 4]
    assert emergence_stages(run, [4, 0]) == [0, 4]
    with pytest.raises(ValueError, match=r"available: \[0, 2, 4\]"):
        emergence_stages(run, [1])
    with pytest.raises(FileNotFoundError, match="final.npz: no such file"):
        load_run(runs / "training")
    assert load_run(runs / "finished", unfinished=True).finished


def test_stages_time_counts_and_tracking(runs, training):
    run, em = training
    assert [s["iteration"] for s in em["stages"]] == [0, 2, 4]
    assert [s["source"] for s in em["stages"]] == ["snapshot", "snapshot", "checkpoint"]
    assert em["run"]["finished"] is False and em["run"]["iterations"] == 8
    log = RunDir(run.path).read_log()
    secs = [s["training_seconds"] for s in em["stages"]]
    assert secs[0] == 0.0 and np.all(np.diff(secs) > 0)
    assert secs[2] == pytest.approx(sum(r["seconds"] for r in log))
    nerr = {r["iteration"]: r["nerr"] for r in log if "nerr" in r}
    for s in em["stages"]:
        assert sum(s["counts"][t] for t in SPATIAL_TYPES) == s["n_units"] == 12
        assert s["grid_fraction"] == s["counts"]["grid"] / 12
        above = s["grid_scores"]["n_grid60_above"]
        assert above["0.5"] <= above["0.3"] <= 12
        # The held-out error is the log's own evaluation on the run's held-out trials.
        if s["iteration"] in nerr:
            assert s["tracking"]["normalised_error"] == pytest.approx(nerr[s["iteration"]], rel=1e-9)
        c5 = s["c5"]
        assert c5["border"]["n"] + c5["grid"]["n"] + c5["rest"]["n"] == 12
    last = em["stages"][-1]["c5"]
    for g in ("border", "grid", "rest"):
        if last[g]["n"]:
            assert last[g]["median_map_correlation_to_last"] == pytest.approx(1.0)
            assert last[g]["fraction_same_type"] == 1.0
    assert em["settings"]["n_samples"] == 40 * 20
    json.dumps(em, allow_nan=False)
    assert "iteration" in emergence_table(em) and len(emergence_table(em).splitlines()) == 5


def test_every_stage_sees_the_same_trials_and_noise(runs, tmp_path):
    # Two identical networks at different iterations: the same recording, so every unit's map
    # correlates perfectly with its last-stage map and the classification is the same.
    twin = tmp_path / "twin"
    shutil.copytree(runs / "training", twin)
    shutil.copy(twin / "snapshots" / "iter_000002.npz", twin / "snapshots" / "iter_000000.npz")
    run = load_run(twin, unfinished=True)
    em = emergence(run, NUMPY, stages=[0, 2], noise_std=0.1, **SIZES)
    r = np.array(em["units"]["map_correlation_to_last"][0], dtype=float)
    live = np.isfinite(r)
    assert live.sum() >= 6
    np.testing.assert_allclose(r[live], 1.0, rtol=0, atol=1e-12)
    assert em["units"]["spatial_type"][0] == em["units"]["spatial_type"][1]
    first, second = em["stages"]
    assert first["counts"] == second["counts"]
    assert first["tracking"] == second["tracking"]
    assert first["grid_scores"] == second["grid_scores"]


def test_training_seconds_needs_every_iteration():
    recs = [{"iteration": i, "seconds": 0.5 * i} for i in (1, 2, 3, 5)]
    assert training_seconds(recs, [0, 1, 3, 4, 5]) == [0.0, 0.5, 3.0, None, None]
    assert training_seconds([], [0, 2]) == [0.0, None]


def test_read_log_leaves_out_a_line_being_written(tmp_path):
    run = RunDir(tmp_path)
    with open(run.log, "w") as fh:
        fh.write('{"iteration": 1, "seconds": 1.0}\n{"iteration": 2, "seconds": 2.0}\n{"iteration": 3, "sec')
    assert [r["iteration"] for r in run.read_log()] == [1, 2]


def test_cli_writes_json_and_figure_and_leaves_the_run_alone(runs, tmp_path, capsys):
    before = _listing(runs / "training")
    out = tmp_path / "em"
    with dir_lock(runs / "training"):          # as a live training process holds it
        assert main([str(runs / "training"), "--emergence", "--out", str(out), *CLI_SIZES[:-1]]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("] stage ") == 3 and "iteration 4 (checkpoint" in captured.err
    assert "r border" in captured.out
    with open(out / "emergence.json") as fh:
        em = json.load(fh)
    assert [s["iteration"] for s in em["stages"]] == [0, 2, 4] and os.path.getsize(out / "emergence.png") > 10_000
    after = [f for f in _listing(runs / "training") if f[0] != LOCK_NAME]
    assert after == [f for f in before if f[0] != LOCK_NAME]
    # A finished run: the default folder is its analysis/.
    fin = tmp_path / "finished"
    shutil.copytree(runs / "finished", fin)
    assert main([str(fin), "--emergence", "--stages", "0,4", *CLI_SIZES]) == 0
    with open(fin / "analysis" / "emergence.json") as fh:
        em = json.load(fh)
    assert [s["source"] for s in em["stages"]] == ["snapshot", "final"]


def test_cli_errors(runs, tmp_path, capsys):
    training = str(runs / "training")
    assert main([training, "--emergence", *CLI_SIZES]) == 2
    err = capsys.readouterr().err
    assert "give --out DIR" in err and "still training, at iteration 4" in err
    assert main([training, "--emergence", "--out", str(tmp_path / "x"), "--stages", "0,3", *CLI_SIZES]) == 2
    assert "available: [0, 2, 4]" in capsys.readouterr().err
    assert main([training, "--emergence", "--out", str(tmp_path / "x"), "--quick", *CLI_SIZES]) == 2
    assert "--quick: not with --emergence" in capsys.readouterr().err
    assert main([str(runs / "finished"), "--out", str(tmp_path / "x"), *CLI_SIZES]) == 2
    assert "--out is for --emergence" in capsys.readouterr().err
    empty = tmp_path / "empty"
    shutil.copytree(runs / "training", empty)
    os.remove(empty / "checkpoint.npz")
    assert main([str(empty), "--emergence", "--out", str(tmp_path / "x"), *CLI_SIZES]) == 2
    assert "checkpoint.npz: the run has no parameters" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")


def test_figure_without_log_times_and_without_border_units(training):
    _, em = training
    em = json.loads(json.dumps(em))
    for s in em["stages"]:
        s["training_hours"] = None
    em["stages"][-1]["c5"]["border"]["n"] = 0
    fig = emergence_figure(em, title="tiny")
    assert "training iteration" in fig.axes[0].get_xlabel()
    assert any("none at the last stage" in t.get_text() for t in fig.axes[1].get_legend().get_texts())


def test_stage_summary_scores_the_hexagonal_units_apart():
    from types import SimpleNamespace

    from gridcore.analysis.emergence import _stage_summary
    kinds = np.array(["grid", "grid", "grid", "border", "irregular"])
    types = SimpleNamespace(
        spatial_type=kinds, grid_symmetry=np.array([60, 60, 90, 60, 60]),
        scores={"grid60": np.array([0.9, 0.5, -0.4, 0.8, np.nan]), "grid90": np.array([0.1, 0.0, 1.2, 0.0, 0.0])},
        counts=lambda: {t: int(np.sum(kinds == t)) for t in SPATIAL_TYPES}, settings={"coverage": 1.0})
    track = {"normalised_error": 0.1, "squared_error": 0.2, "best_constant_error": 2.0, "n_trials": 3, "n_steps": 4}
    s = _stage_summary(types, track, {"normalised_error": 0.1})
    # Only the two 60-degree grid units count: not the 90-degree one, nor a border unit's high score.
    assert s["grid_scores"]["median_grid60_of_hexagonal_units"] == pytest.approx(0.7)
    assert s["grid_symmetry"]["median_grid60_of_grid_units"] == pytest.approx(0.5)
    assert s["grid_scores"]["n_grid60_above"] == {"0.3": 3, "0.5": 2}
