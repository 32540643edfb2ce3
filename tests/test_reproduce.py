"""``python -m gridcore.reproduce``: run configurations, train/collect/analyse on tiny runs."""

import json
import os

import pytest

from gridcore.cli import reproduce
from gridcore.cli.reproduce import (
    RUNS,
    analyze_runs,
    collect,
    main,
    pilot,
    run_config,
    train_runs,
)
from gridcore.train.config import RunConfig, make_config

TINY = dict(n_units=10, n_trials=16, n_steps=30, curvature_trials=8, iterations=2, backend="numpy",
            eval_trials=8)
SMALL = dict(backend="numpy", quick=True, n_trials=16, long_steps=1000, block_steps=500, shuffles=5,
             bins=8)


def test_runs_are_the_paper_preset_with_one_change_each():
    base = run_config("square")
    paper = make_config("paper", arena="square")
    keys = ("n_units", "n_trials", "n_steps", "noise_std", "metabolic", "encoding")
    assert {k: base.to_dict()[k] for k in keys} == {k: paper.to_dict()[k] for k in keys}
    assert base.output.snapshot_every == reproduce.SNAPSHOT_EVERY
    expected = {"triangle": {"arena": "triangle"},
                "hexagon": {"arena": "hexagon", "rec_init": "gaussian"},
                "square-no-metabolic": {"metabolic": False},
                "square-no-noise": {"noise_std": 0.0},
                "square-speed-cos-sin": {"encoding": "speed-cos-sin"},
                "square-velocity": {"encoding": "velocity"},
                "square-units-x10": {"arena_size": 20.0, "motion": {"speed_scale": 0.6, "max_speed": 2.5}},
                "square-no-l2": {"l2": False}}
    for name, change in expected.items():
        cfg = run_config(name)
        assert cfg.differing(base) == sorted(change), name
        assert all(cfg.to_dict()[k] == v for k, v in change.items()), name
    assert set(RUNS) == {"square", *expected}


def test_unknown_run_is_refused():
    with pytest.raises(ValueError, match="unknown run 'circle'; allowed: square"):
        run_config("circle")
    with pytest.raises(SystemExit) as exc:
        main(["--analyze-only", "--runs", "square,circle"])
    assert exc.value.code == 2


def test_train_collect_analyze(tmp_path):
    out, results = tmp_path / "runs", tmp_path / "results"
    configs = {"square": make_config("quick", **TINY),
               "square-no-metabolic": make_config("quick", metabolic=False, **TINY)}
    train_runs(configs, out, stream=None)
    final = (out / "square" / "final.npz").read_bytes()
    train_runs(configs, out, stream=None)                       # finished runs are left alone
    assert (out / "square" / "final.npz").read_bytes() == final

    status = reproduce.training_status(["square", "hexagon"], out)
    assert status["square"]["finished"] and status["square"]["iteration"] == TINY["iterations"]
    assert status["square"]["nerr_iteration"] == TINY["iterations"] and status["square"]["hours"] > 0
    assert status["hexagon"] == {"iteration": 0, "of": 1000, "finished": False, "nerr": None,
                                 "nerr_iteration": None, "hours": 0.0}
    assert reproduce.status_table(status).splitlines()[3].startswith("| hexagon | 0 / 1000 | no | - |")
    with pytest.raises(FileNotFoundError, match="not finished"):
        collect(["square-no-noise"], out, results)
    with pytest.raises(FileNotFoundError, match="no finished run in"):
        analyze_runs(["square"], results, stream=None, **SMALL)
    collect(list(configs), out, out)                            # trained in place: a no-op
    assert (out / "square" / "checkpoint.npz").exists()
    collect(list(configs), out, results)
    kept = sorted(os.listdir(results / "square"))
    assert kept == sorted(reproduce.KEEP)                       # no checkpoint
    assert (results / "square" / "final.npz").read_bytes() == final

    done = analyze_runs(["square", "square-no-metabolic", "hexagon"], results, stream=None, **SMALL)
    assert done == ["square", "square-no-metabolic"]
    with open(results / "square" / "analysis" / "metrics.json") as fh:
        m = json.load(fh)
    assert [r["label"] for r in m["comparison"]["runs"]] == ["square", "square-no-metabolic"]
    assert (results / "square-no-metabolic" / "analysis" / "report.html").exists()

    with open(results / "summary.json") as fh:
        summary = json.load(fh)
    assert list(summary) == ["square", "square-no-metabolic"]
    row = summary["square"]
    assert row["iterations"] == TINY["iterations"] and row["nerr"] == m["tracking"]["normalised_error"]
    assert sum(row[t] for t in ("grid", "border", "band", "irregular", "none")) == TINY["n_units"]
    assert summary["square-no-metabolic"]["metabolic"] is False
    ref = m["comparison"]["runs"][0]
    assert [row[f"beat_{k}"] for k in ("grid60", "grid90", "border", "band")] == \
        [ref["scores"][k]["passed"] for k in ("grid60", "grid90", "border", "band")]
    assert row["periodic"] == ref["n_periodic"]
    assert (row["ramps"], row["median_plane"]) == (ref["ramps"], ref["median_plane"])
    table = (results / "summary.md").read_text().splitlines()
    assert len(table) == 4 and table[2].startswith("| square | 2 |")
    # Analysing one run keeps the others' rows, and square still compares
    # with the finished ablation it was not asked to analyse.
    analyze_runs(["square"], results, stream=None, **SMALL)
    with open(results / "summary.json") as fh:
        assert list(json.load(fh)) == ["square", "square-no-metabolic"]
    with open(results / "square" / "analysis" / "metrics.json") as fh:
        assert [r["label"] for r in json.load(fh)["comparison"]["runs"]] == ["square", "square-no-metabolic"]


def test_train_defaults_to_the_committed_results(monkeypatch):
    # Training in place keeps each run's checkpoint in the repository, so a
    # run that outlives a session resumes from a clean checkout.
    seen = []
    monkeypatch.setattr(reproduce, "train_runs", lambda configs, out, stream, **kw: seen.append((list(configs), out)))
    main(["--train", "--runs", "hexagon", "--quiet"])
    main(["--train", "--runs", "square", "--out", "elsewhere", "--quiet"])
    assert seen == [(["hexagon"], reproduce.RESULTS), (["square"], "elsewhere")]


def test_pilot_table(tmp_path):
    tiny = {k: v for k, v in TINY.items() if k != "backend"}
    rows = pilot(tmp_path / "runs", tmp_path, backend="numpy", stream=None, **tiny)
    assert list(rows) == list(reproduce.PILOT_RUNS)
    assert rows["square-velocity"]["changes"] == "encoding=velocity"
    assert rows["square"]["changes"] == "none (the paper's settings)"
    # The probe's step scales with the run's speeds: 10x in the 10x-unit run.
    assert rows["square-units-x10"]["step"] == pytest.approx(10 * rows["square"]["step"])
    with open(tmp_path / "pilot.json") as fh:
        assert json.load(fh) == json.loads(json.dumps(rows))
    assert (tmp_path / "pilot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "pilot.md").read_text().splitlines()
    assert len(table) == 2 + len(rows)
    assert "| square-units-x10 | arena_size=20.0, speed_scale=0.6, max_speed=2.5 |" in table[5]
    # The pilot's runs have the paper's noise and L2 penalty but where a run takes them away.
    for name in rows:
        cfg = RunConfig.load(tmp_path / "runs" / "pilot" / name / "config.json")
        assert (cfg.task.noise_std, cfg.schedule.l2) == (0.0 if name == "square-no-noise" else 0.1,
                                                         name != "square-no-l2"), name
