"""Sweeps (issue 20): the spec and its errors, run names, skip/resume, failures, summary.csv, Ctrl-C,
a LocalCluster of 2 workers equal to the runs made one by one, and a killed worker's run retried."""

import csv
import io
import os
import re
import signal
import threading
import time

import numpy as np
import pytest

from gridcore.cli.sweep import build_parser, main
from gridcore.sweep import cluster
from gridcore.sweep.runner import run_sweep
from gridcore.sweep.spec import SpecError, load_spec, parse_spec, run_name
from gridcore.sweep.summary import columns, last_iteration
from gridcore.sweep.worker import FINISHED, NEW, PARTIAL, run_state, stop_sweep, train_point
from gridcore.train.config import RunConfig, make_config
from gridcore.train.loop import train

# Tiny runs: milliseconds per iteration on the NumPy reference, one thread (bits fixed by the count).
TINY = dict(n_units=8, n_trials=10, curvature_trials=5, n_steps=10, iterations=3, eval_trials=8,
            backend="numpy", threads=1, checkpoint_every=1)
SMALL_ANALYSIS = dict(quick=True, n_trials=16, long_steps=1000, block_steps=500, shuffles=5, bins=8)
RESULTS = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "results")   # the committed sweep files


def spec(**changes):
    data = {"preset": "quick", "seeds": [0, 1], "base": dict(TINY), "vary": {"noise_std": [0.0, 0.1]}}
    data.update(changes)
    return parse_spec(data, default_out="runs/test")


def final(path):
    with np.load(os.path.join(path, "final.npz")) as data:
        return {k: data[k].copy() for k in data.files}


def same_bits(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def read_summary(out):
    with open(os.path.join(out, "summary.csv")) as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- the spec

def test_product_zip_seeds_and_names():
    points = spec(vary={"noise_std": [0.0, 0.1], "n_units": [8, 16]}).points()
    assert [p.name for p in points[:3]] == ["noise_std=0.0,n_units=8,seed=0", "noise_std=0.0,n_units=8,seed=1",
                                            "noise_std=0.0,n_units=16,seed=0"]
    assert len(points) == 8 and all(p.error is None for p in points)
    p = points[2]
    assert (p.config.task.noise_std, p.config.network.n_units, p.config.seed) == (0.0, 16, 0)
    assert p.config.optimizer.iterations == 3 and p.settings == {"noise_std": 0.0, "n_units": 16}
    zipped = spec(combine="zip", seeds={"start": 5, "count": 2},
                  vary={"noise_std": [0.0, 0.1], "n_units": [8, 16]}).points()
    assert [p.name for p in zipped] == ["noise_std=0.0,n_units=8,seed=5", "noise_std=0.0,n_units=8,seed=6",
                                        "noise_std=0.1,n_units=16,seed=5", "noise_std=0.1,n_units=16,seed=6"]
    assert [p.name for p in spec(vary={}).points()] == ["seed=0", "seed=1"]


def test_dict_settings_merge_with_base_and_preset():
    s = spec(base={**TINY, "motion": {"start": "uniform"}},
             vary={"motion": {"p_zero_speed": [0.5, 0.9]}, "hf": [{"damping": 1.0}, {"damping": 2.0}]}, seeds=[0])
    points = s.points()
    assert [p.name for p in points[:2]] == ["motion.p_zero_speed=0.5,hf.damping=1.0,seed=0",
                                            "motion.p_zero_speed=0.5,hf.damping=2.0,seed=0"]
    cfg = points[1].config
    assert dict(cfg.task.motion) == {"start": "uniform", "p_zero_speed": 0.5}
    assert cfg.optimizer.hf.damping == 2.0
    # the preset's dict settings are merged into, not replaced
    gc = parse_spec({"preset": "grid-cells", "vary": {"model": {"n_place_cells": [16, 32]}}}, default_out="x")
    assert [p.config.model.nonlinearity for p in gc.points()] == ["relu", "relu"]
    assert [p.config.model.n_place_cells for p in gc.points()] == [16, 32]


def test_run_name_formats():
    assert run_name({"l2_decay": 1e-05, "l2": False, "encoding": "speed-cos-sin", "snapshot_at": [0, 10]}, 3) == \
        "l2_decay=1e-05,l2=false,encoding=speed-cos-sin,snapshot_at=0-10,seed=3"
    assert run_name({"motion": {"start": "uniform", "p_zero_speed": 0.5}}, 0) == \
        "motion.start=uniform,motion.p_zero_speed=0.5,seed=0"
    assert run_name({"arena": "a b/c"}, 0) == "arena=a_b_c,seed=0"


@pytest.mark.parametrize("changes,message", [
    ({"presets": "quick"}, "unknown key 'presets'; allowed: preset, out, seeds, combine, base, vary"),
    ({"preset": "fast"}, "preset must be one of quick, paper, grid-cells, got 'fast'"),
    ({"combine": "cross"}, "combine must be one of product, zip, got 'cross'"),
    ({"out": ""}, "out must be the output folder"),
    ({"base": {"n_unit": 8}}, r"base.n_unit: unknown setting; allowed: arena, .*n_units"),
    ({"vary": {"noise": [0.1]}}, r"vary.noise: unknown setting; allowed: "),
    ({"vary": {"noise_std": 0.1}}, "vary.noise_std must be a non-empty list of values, got 0.1"),
    ({"vary": {"noise_std": []}}, "vary.noise_std must be a non-empty list"),
    ({"vary": {"noise_std": [0.1, 0.1]}}, "vary.noise_std lists 0.1 twice"),
    ({"vary": {"seed": [1, 2]}}, "vary.seed cannot be set here: give the seeds as the top-level `seeds`"),
    ({"base": {"seed": 1}}, "base.seed cannot be set here"),
    ({"vary": {"threads": [1, 2]}}, "vary.threads cannot be set here: the threads per run are one value"),
    ({"combine": "zip", "vary": {"noise_std": [0.0, 0.1], "n_units": [8]}},
     "combine = \"zip\" needs lists of equal length in vary, got noise_std: 2, n_units: 1"),
    ({"seeds": 3}, r"seeds must be a non-empty list of integers >= 0 or a table \{start = 0, count = N\}, got 3"),
    ({"seeds": [0, -1]}, "seeds must be a non-empty list"),
    ({"seeds": [1, 1]}, "seeds lists a seed twice"),
    ({"seeds": {"count": 0}}, "seeds.count must be an integer >= 1, got 0"),
    ({"seeds": {"first": 0}}, "seeds as a table needs count"),
    ({"base": {**TINY, "n_units": -1}}, "no run of the sweep has valid settings; the first, "
                                        "noise_std=0.0,seed=0: n_units must be"),
])
def test_spec_errors_name_the_key_and_the_allowed_values(changes, message):
    with pytest.raises(SpecError, match=message):
        spec(**changes).points()


def test_invalid_point_fails_alone():
    points = spec(vary={"curvature_trials": [5, 50]}).points()
    assert [p.error is None for p in points] == [True, True, False, False]
    assert points[2].error.startswith("curvature_trials must be <= n_trials = 10")


def test_load_spec_reads_toml_and_names_the_file(tmp_path):
    path = tmp_path / "noise.toml"
    path.write_text('seeds = [0]\n[base]\niterations = 2\n[vary]\nnoise_std = [0.0, 0.1]\n'
                    'motion.p_zero_speed = [0.5]\n')
    s = load_spec(path)
    assert s.out == os.path.join("runs", "noise") and s.preset == "quick"
    assert list(s.vary) == ["noise_std", "motion.p_zero_speed"]
    path.write_text("seeds = [0\n")
    with pytest.raises(SpecError, match=f"{path}: not a TOML file"):
        load_spec(path)
    path.write_text("[vary]\nfoo = [1]\n")
    with pytest.raises(SpecError, match=f"{path}: vary.foo: unknown setting"):
        load_spec(path)


def test_named_points_change_the_base_one_setting_each(tmp_path):
    path = tmp_path / "ladder.toml"
    path.write_text('preset = "quick"\nseeds = [0, 1]\n[base]\nn_units = 8\nnoise_std = 0.1\n'
                    '[base.model]\nnonlinearity = "relu"\n'
                    '[points.base]\n[points.tanh]\nmodel.nonlinearity = "tanh"\n'
                    '[points.quiet]\nnoise_std = 0.0\n')
    points = load_spec(path).points()
    assert [p.name for p in points] == ["base,seed=0", "base,seed=1", "tanh,seed=0", "tanh,seed=1",
                                        "quiet,seed=0", "quiet,seed=1"]
    assert all(p.error is None for p in points) and points[3].settings == {"point": "tanh"}
    got = [(p.config.model.nonlinearity, p.config.task.noise_std, p.config.seed) for p in points[::2]]
    assert got == [("relu", 0.1, 0), ("tanh", 0.1, 0), ("relu", 0.0, 0)]
    # The base's other model fields are the preset's: only the point's field changes.
    assert points[2].config.model.alpha == points[0].config.model.alpha


def test_the_committed_c2_seeds_are_the_paper_runs_but_for_the_seed():
    path = os.path.join(RESULTS, "c2-seeds.toml")
    points = load_spec(path).points()
    assert [p.name for p in points] == [f"arena={a},seed={s}" for a in ("square", "triangle", "hexagon")
                                        for s in (1, 2)]
    for p in points:
        committed = RunConfig.load(os.path.join(os.path.dirname(path), p.config.task.arena, "config.json"))
        # The same recipe: only the seed, the noise's source (counter-based draws) and the precision differ.
        assert p.config.differing(committed, ignore=("threads",)) == ["dtype", "noise_source", "seed"]


@pytest.mark.parametrize("name, runs, setting", [
    ("grid-cells-arenas", ["arena=triangle,seed=0", "arena=hexagon,seed=0"], "arena"),
    ("grid-cells-seeds", ["seed=1", "seed=2"], "seed"),
])
def test_the_committed_sweeps_of_the_positive_control_are_its_recipe_but_for_one_setting(name, runs, setting):
    points = load_spec(os.path.join(RESULTS, f"{name}.toml")).points()
    assert [p.name for p in points] == runs
    committed = RunConfig.load(os.path.join(RESULTS, "grid-cells", "config.json"))
    for p in points:
        assert p.config.differing(committed, ignore=("threads",)) == [setting]


@pytest.mark.parametrize("spec, recipe", [("grid-cells-noise-seeds", "noise-0.02"),
                                          ("grid-cells-pc1024-seeds", "noise-0.02-pc-1024"),
                                          ("grid-cells-256-seeds", "noise-0.02-256")])
def test_the_committed_seed_sweeps_are_their_recipe_but_for_the_seed(spec, recipe):
    points = load_spec(os.path.join(RESULTS, f"{spec}.toml")).points()
    recipes = load_spec(os.path.join(RESULTS, "grid-recipes.toml")).points()
    seed0 = next(p for p in recipes if p.name == f"{recipe},seed=0")
    assert [p.name for p in points] == ["seed=1", "seed=2"]
    for p in points:
        assert p.config.differing(seed0.config) == ["seed"]


def test_the_committed_grid_recipes_change_the_positive_control_in_the_settings_they_name():
    points = load_spec(os.path.join(RESULTS, "grid-recipes.toml")).points()
    committed = RunConfig.load(os.path.join(RESULTS, "grid-cells", "config.json"))
    changed = {p.name: p.config.differing(committed, ignore=("threads",)) for p in points}
    assert changed == {"weight-decay-3e-4,seed=0": ["lam_rec"], "place-cells-0.08,seed=0": ["place_cells"],
                       "metabolic-small,seed=0": ["fr_init_ratio", "fr_max_ratio", "metabolic", "schedule_error"],
                       "decay-from-3000,seed=0": ["lam_rec_from"], "no-weight-decay,seed=0": ["lam_rec"],
                       "noise-0.02,seed=0": ["noise_std"], "noise-0.04,seed=0": ["noise_std"],
                       "noise-0.03,seed=0": ["noise_std"], "noise-0.08,seed=0": ["noise_std"],
                       "noise-0.02-decay-3e-4,seed=0": ["lam_rec", "noise_std"],
                       "noise-0.02-1024,seed=0": ["iterations", "n_units", "noise_std"],
                       "noise-0.02-lr3e-4,seed=0": ["adam", "iterations", "noise_std"],
                       "noise-0.02-lr1e-4,seed=0": ["adam", "iterations", "noise_std"],
                       "noise-0.02-lattice,seed=0": ["noise_std", "place_cells"],
                       "noise-0.02-surround-1.5,seed=0": ["noise_std", "place_cells"],
                       "noise-0.02-surround-3,seed=0": ["noise_std", "place_cells"],
                       "noise-0.02-pc-1024,seed=0": ["model", "noise_std"],
                       "noise-0.02-pc-2048,seed=0": ["model", "noise_std"],
                       "noise-0.02-trials-50,seed=0": ["n_steps", "noise_std"],
                       "noise-0.02-trials-50-15k,seed=0": ["iterations", "n_steps", "noise_std"],
                       "torus,seed=0": ["arena"], "noise-0.02-torus,seed=0": ["arena", "noise_std"],
                       "noise-0.02-batch-400,seed=0": ["n_trials", "noise_std"],
                       "noise-0.02-decay-2e-4,seed=0": ["lam_rec", "noise_std"],
                       "noise-0.02-alpha-0.5,seed=0": ["model", "noise_std"],
                       "noise-0.02-lr2e-3,seed=0": ["adam", "noise_std"],
                       "noise-0.02-256,seed=0": ["n_units", "noise_std"],
                       "noise-0.02-256-10k,seed=0": ["iterations", "n_units", "noise_std"],
                       "noise-0.02-128,seed=0": ["n_units", "noise_std"],
                       "noise-0.02-256-pc-1024,seed=0": ["model", "n_units", "noise_std"],
                       "noise-0.03-256,seed=0": ["n_units", "noise_std"],
                       "noise-0.02-decay-2e-4-10k,seed=0": ["iterations", "lam_rec", "noise_std"]}


@pytest.mark.parametrize("name", ["ladder-down", "ladder-up"])
def test_the_committed_ladders_are_valid(name):
    path = os.path.join(RESULTS, f"{name}.toml")
    points = load_spec(path).points()
    assert len(points) >= 8 and all(p.error is None for p in points)
    # Each rung changes the settings its name says and nothing else of the first point's (seeds aside).
    first = points[0].config.to_dict()
    for p in points:
        changed = {k for k, v in p.config.to_dict().items() if v != first[k] and k != "seed"}
        same = p.settings["point"] == points[0].settings["point"]
        assert len(changed) <= 3 and (len(changed) == 0) == same, (p.name, changed)


@pytest.mark.parametrize("changes, message", [
    ({"points": {"a=b": {}}}, "points.a=b: a point's name is its directory"),
    ({"points": {".x": {}}}, r"points..x: a point's name is its directory"),
    ({"points": {"x": {"noise": 1}}}, "points.x.noise: unknown setting; allowed: "),
    ({"points": {"x": {"seed": 1}}}, "points.x.seed cannot be set here"),
    ({"points": [1]}, "points must be a table of named configurations"),
    ({"points": {"x": {}}, "vary": {"noise_std": [0.1]}}, "give either vary .* or points .*, not both"),
])
def test_named_point_errors(changes, message):
    data = {"preset": "quick", "base": dict(TINY), **changes}
    with pytest.raises(SpecError, match=message):
        parse_spec(data, default_out="runs/test")


# ---------------------------------------------------------------- runs in this process

def test_serial_sweep_skip_resume_failure_and_summary(tmp_path):
    out = str(tmp_path / "sweep")
    points = spec(vary={"noise_std": [0.0, 0.1], "curvature_trials": [5, 50]}, seeds=[0]).points()
    # A partial run of one point (1 of its 3 iterations) is resumed; a failing one reported.
    first = points[0]
    train(first.config.with_overrides(iterations=1), os.path.join(out, first.name), stream=None)
    assert run_state(os.path.join(out, first.name), first.config) == PARTIAL
    log = io.StringIO()
    outcome = run_sweep(points, out, serial=True, stream=log)
    assert (outcome.finished, outcome.failed, outcome.unfinished) == (2, 2, 0)
    text = log.getvalue()
    assert "resumed from iteration 1" in text
    assert "failed curvature_trials=50" not in text      # the names are in spec order
    assert "failed noise_std=0.0,curvature_trials=50,seed=0: curvature_trials must be <= n_trials = 10" in text
    # resumed = uninterrupted
    fresh = tmp_path / "fresh"
    train(first.config, fresh, stream=None)
    assert same_bits(final(os.path.join(out, first.name)), final(fresh))

    rows = read_summary(out)
    assert list(rows[0]) == columns(["noise_std", "curvature_trials"])
    assert [r["run"] for r in rows] == [p.name for p in points]
    assert [r["status"] for r in rows] == ["finished", "failed", "finished", "failed"]
    r = rows[2]
    assert (r["noise_std"], r["curvature_trials"], r["seed"], r["iterations"], r["of"], r["threads"]) == \
        ("0.1", "5", "0", "3", "3", "1")
    assert float(r["wall_s"]) > 0 and r["nerr_iteration"] == "3" and r["error"] == "" and r["grid"] == ""
    assert 0 < float(r["nerr"]) < 10 and rows[1]["iterations"] == "" and "n_trials = 10" in rows[1]["error"]

    # Again: nothing trained, the finished runs untouched.
    stamp = os.path.getmtime(os.path.join(out, points[2].name, "final.npz"))
    log = io.StringIO()
    again = run_sweep(points, out, serial=True, stream=log)
    assert "2 finished before, 2 invalid, 0 to train" in log.getvalue()
    assert os.path.getmtime(os.path.join(out, points[2].name, "final.npz")) == stamp
    assert again.rows == outcome.rows

    # More iterations later: the finished runs are continued, not redone.
    longer = spec(base={**TINY, "iterations": 4}, seeds=[0], vary={"noise_std": [0.1], "curvature_trials": [5]})
    log = io.StringIO()
    assert run_sweep(longer.points(), out, serial=True, stream=log).finished == 1
    assert "resumed from iteration 3" in log.getvalue() and read_summary(out)[0]["iterations"] == "4"


def test_a_run_dir_of_other_settings_is_refused_not_overwritten(tmp_path):
    out = str(tmp_path / "sweep")
    p = spec(seeds=[0], vary={}).points()[0]
    train(p.config.with_overrides(noise_std=0.3), os.path.join(out, p.name), stream=None)
    outcome = run_sweep([p], out, serial=True, stream=None)
    assert outcome.failed == 1
    assert "holds a run made with other settings (noise_std)" in outcome.rows[0]["error"]


def test_analyze_fills_the_unit_types(tmp_path):
    out = str(tmp_path / "sweep")
    points = spec(seeds=[0], vary={}).points()
    outcome = run_sweep(points, out, serial=True, analyze=True, analysis=SMALL_ANALYSIS, stream=None)
    row = read_summary(out)[0]
    assert outcome.analysis_failed == 0 and os.path.exists(os.path.join(out, "seed=0", "analysis", "report.html"))
    assert sum(int(row[t]) for t in ("grid", "border", "band", "irregular", "none")) == TINY["n_units"]
    assert float(row["analysis_nerr"]) > 0


def test_stop_checkpoints_the_running_training(tmp_path):
    # Ctrl-C of a sweep: stop_sweep raises KeyboardInterrupt in the training thread; the run saves
    # the iteration it reached and resumes to the same bits as an uninterrupted run.
    cfg = make_config("quick", **{**TINY, "iterations": 200, "checkpoint_every": 0, "eval_every": 0})
    path = str(tmp_path / "run")
    results = []
    worker = threading.Thread(target=lambda: results.append(train_point(path, cfg.to_dict(), "s1")))
    worker.start()
    while (seen := last_iteration(path)) < 5:
        time.sleep(0.01)
    assert stop_sweep("s1") == 1
    worker.join()
    assert results[0]["status"] == "stopped"
    assert run_state(path, cfg) == PARTIAL
    with np.load(os.path.join(path, "checkpoint.npz")) as data:
        saved = int(data["iteration"])
    # the iteration reached; the log may hold one more, whose step was cut before it counted
    assert seen - 1 <= saved < 200 and last_iteration(path) in (saved, saved + 1)
    assert train_point(path, cfg.to_dict(), "s1")["status"] == "stopped"      # the sweep is stopped
    resumed = train_point(path, cfg.to_dict(), "s2")
    assert resumed["status"] == "finished" and resumed["resumed_from"] == saved
    train(cfg, tmp_path / "fresh", stream=None)
    assert same_bits(final(path), final(tmp_path / "fresh"))


# ---------------------------------------------------------------- the command line

def test_cli_errors_dry_run_and_exit_status(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('preset = "fast"\n')
    assert main([str(bad), "--serial"]) == 2
    assert "gridcore.sweep: error: " in capsys.readouterr().err
    good = tmp_path / "good.toml"
    base = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in TINY.items())
    good.write_text(f'out = "{tmp_path / "out"}"\nseeds = [0]\n[base]\n{base}\n[vary]\ncurvature_trials = [5, 50]\n')
    assert main([str(good), "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == "curvature_trials=5,seed=0  new"
    assert listed[1].startswith("curvature_trials=50,seed=0  invalid: ")
    assert main([str(good), "--serial", "--quiet"]) == 1                    # one run failed
    assert main([str(good), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "curvature_trials=5,seed=0  finished"
    with pytest.raises(SystemExit):
        main([str(good), "--serial", "--workers", "2"])


def test_local_shape_fills_the_cores():
    assert cluster.local_shape(9, cores=2) == (2, 1)
    assert cluster.local_shape(1, cores=8) == (1, 8)
    assert cluster.local_shape(3, cores=8) == (3, 2)
    assert cluster.local_shape(9, threads=2, cores=8) == (4, 2)
    assert cluster.local_shape(9, workers=3, cores=8) == (3, 2)
    assert cluster.local_shape(9, workers=4, threads=4, cores=2) == (4, 4)


# ---------------------------------------------------------------- on a LocalCluster

@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    c = cluster.start_local_cluster(2, 1)
    yield c
    c.close()
    c.cluster.close()


def test_local_cluster_equals_the_runs_made_one_by_one(client, tmp_path):
    points = spec(vary={"noise_std": [0.0, 0.1]}).points()
    out = str(tmp_path / "sweep")
    log = io.StringIO()
    outcome = run_sweep(points, out, client=client, stream=log, progress_every=0.2)
    assert outcome.finished == 4 and outcome.failed == 0
    counts = [int(m) for m in re.findall(r"(\d+) running", log.getvalue())]
    assert max(counts, default=0) <= 2                                      # one training per worker
    workers = {line.rsplit(" on ", 1)[1].split(")")[0] for line in log.getvalue().splitlines() if "finished n" in line}
    assert len(workers) == 2                                                # both workers trained
    assert cluster.cluster_threads(client) == max(1, cluster.usable_cores() // 2)
    for p in points:
        alone = tmp_path / "alone" / p.name
        train(p.config, alone, stream=None)
        assert same_bits(final(os.path.join(out, p.name)), final(alone)), p.name
    # A second invocation does no work (and starts no cluster).
    log = io.StringIO()
    assert run_sweep(points, out, stream=log).finished == 4
    assert "4 finished before, 0 invalid, 0 to train" in log.getvalue() and "running on" not in log.getvalue()
    # The same through the scheduler's address (--scheduler), threads from its workers.
    log = io.StringIO()
    assert run_sweep(points[:2], str(tmp_path / "by-address"), scheduler=client.scheduler.address, stream=log,
                     progress_every=0).finished == 2
    assert f"the Dask scheduler {client.scheduler.address}, {cluster.cluster_threads(client)} thread" in log.getvalue()
    assert same_bits(final(tmp_path / "by-address" / points[0].name), final(os.path.join(out, points[0].name)))


def _kill_worker_at(marker, name, line):
    """On a worker: the training of run ``name`` kills its process (SIGKILL) at progress line ``line``, once."""
    import gridcore.sweep.worker as worker_module
    real = worker_module.train

    class Killer:
        lines = 0

        def write(self, text):
            if text.startswith("it "):
                Killer.lines += 1
                if Killer.lines == line:
                    open(marker, "w").close()
                    os.kill(os.getpid(), signal.SIGKILL)

        def flush(self):
            pass

    def train(cfg, out, resume=False, stream=None):
        killing = os.path.basename(out) == name and not os.path.exists(marker)
        return real(cfg, out, resume=resume, stream=Killer() if killing else stream)
    worker_module.train, worker_module.real_train = train, real


def _restore_train():
    import gridcore.sweep.worker as worker_module
    worker_module.train = getattr(worker_module, "real_train", worker_module.train)


def test_killed_worker_resumes_from_its_checkpoint(client, tmp_path):
    import cloudpickle
    cloudpickle.register_pickle_by_value(__import__(__name__))
    points = spec(vary={"noise_std": [0.0, 0.1]}).points()
    victim = points[1].name
    marker = str(tmp_path / "killed")
    client.run(_kill_worker_at, marker, victim, 2)   # dies after logging iteration 2, before checkpointing it
    try:
        log = io.StringIO()
        outcome = run_sweep(points, str(tmp_path / "sweep"), client=client, stream=log, progress_every=0)
    finally:
        client.run(_restore_train)
    assert os.path.exists(marker)
    assert outcome.finished == 4
    assert f"finished {victim}: 3 iterations" in log.getvalue()
    line = next(t for t in log.getvalue().splitlines() if f"finished {victim}" in t)
    assert line.endswith("resumed from iteration 1)")
    for p in points:
        alone = tmp_path / "alone" / p.name
        train(p.config, alone, stream=None)
        assert same_bits(final(tmp_path / "sweep" / p.name), final(alone)), p.name
    assert run_state(str(tmp_path / "sweep" / victim), points[1].config) == FINISHED
    assert run_state(str(tmp_path / "nothing"), points[1].config) == NEW


def _break_running(broken):
    """On a worker: the progress lines' count of its running trainings fails (as from a lost worker), or not."""
    import gridcore.sweep.worker as worker_module
    real = getattr(worker_module, "real_running", worker_module.running)

    def running(sweep):
        raise OSError("connection to the worker closed")
    worker_module.running, worker_module.real_running = (running if broken else real), real


def test_a_worker_that_does_not_answer_the_progress_line_does_not_end_the_sweep(client, tmp_path):
    import cloudpickle
    cloudpickle.register_pickle_by_value(__import__(__name__))
    points = spec(vary={"noise_std": [0.0]}).points()
    client.run(_break_running, True, workers=[sorted(client.scheduler_info()["workers"])[0]])
    try:
        log = io.StringIO()
        outcome = run_sweep(points, str(tmp_path / "sweep"), client=client, stream=log, progress_every=0.05)
    finally:
        client.run(_break_running, False)
    assert outcome.finished == 2 and outcome.failed == 0
    lines = [t for t in log.getvalue().splitlines() if " finished, " in t]
    assert lines and not any(" running" in t for t in lines)          # the count left out, not made up


def test_analyze_option_chooses_the_analysis():
    parser = build_parser()
    assert parser.parse_args(["s.toml"]).analyze is None
    assert parser.parse_args(["s.toml", "--analyze"]).analyze == "quick"
    assert parser.parse_args(["s.toml", "--analyze", "full"]).analyze == "full"
    with pytest.raises(SystemExit):
        parser.parse_args(["s.toml", "--analyze", "slow"])


def test_local_cluster_analyses_a_finished_run_before_training_more(client, tmp_path):
    # On 2 workers: the analyses of runs trained before go first, and each run trained now is analysed
    # right after its training, before its worker trains another (as two tasks per run, a worker would
    # take the next training first), so a sweep stopped early has analysed what it trained.
    points = spec(vary={"noise_std": [0.0, 0.05, 0.1, 0.2]}).points()
    out, analysis = str(tmp_path / "sweep"), dict(SMALL_ANALYSIS, stages=(TINY["iterations"],))
    assert run_sweep(points[:2], out, client=client, stream=None).finished == 2
    before = {p.name for p in points[:2]}
    log = io.StringIO()
    outcome = run_sweep(points, out, client=client, analyze=True, analysis=analysis, stream=log, progress_every=0)
    assert outcome.finished == 8 and outcome.analysis_failed == 0
    lines = log.getvalue().splitlines()
    events = re.findall(r"^\[ *[\d.]+ s\] (finished|analysed) ([^:\s]+)", log.getvalue(), re.M)
    assert sorted(run for kind, run in events if kind == "analysed") == sorted(p.name for p in points), lines
    assert events[0][0] == "analysed" and events[0][1] in before, lines
    # Never more trained runs waiting for their analysis than there are workers.
    waiting = np.cumsum([1 if kind == "finished" else -(run not in before)
                         for kind, run in events])
    assert waiting.max() <= 2, lines
    trained_now = [e for e in events if e[1] not in before]
    assert len(trained_now) == 12, lines
    for (first, name), (second, after) in zip(trained_now[::2], trained_now[1::2]):
        assert (first, second, after) == ("finished", "analysed", name), lines
    for p in points:
        assert os.path.exists(os.path.join(out, p.name, "analysis", "metrics.json"))
