"""Training runs: the CLI end to end, checkpoints, exact resume, the schedule."""

import dataclasses
import glob
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import threadpoolctl

from gridcore import PAPER, CounterNoise, ModelSpec, Params, Regularization
from gridcore.cli.reproduce import RUNS as REPRODUCE_RUNS
from gridcore.cli.train import main
from gridcore.sim.arenas import make_arena
from gridcore.train import loop as training
from gridcore.train.config import (
    DEFAULTS,
    PLACE_CELL_SETTINGS,
    RESUME_MAY_CHANGE,
    NetworkSettings,
    OutputSettings,
    RunConfig,
    ScheduleSettings,
    TaskSettings,
    make_config,
)
from gridcore.train.hf import HFSettings
from gridcore.train.loop import eval_batch, make_batch, start_schedule, train, update_schedule
from gridcore.train.rundir import load_run
from gridcore.train.timing import PARTS, Timings

TINY = ["--n-units", "12", "--n-trials", "24", "--n-steps", "40", "--curvature-trials", "12",
        "--backend", "numpy", "--eval-every", "2", "--quiet"]


def run_cli(tmp_path, name, *extra):
    return main(["--out", str(tmp_path / name), *TINY, *extra])


def read_log(path):
    return [json.loads(line) for line in open(path)]


def assert_same_log(a, b):
    """Same records but for timings; a run that ended early also evaluated at its last iteration."""
    a, b = read_log(a), read_log(b)
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert set(ra) ^ set(rb) <= {"nerr"}
        assert all(ra[k] == rb[k] for k in set(ra) & set(rb) - {"seconds", "time", "calls"})
        # The same work (but for that evaluation); only its wall time differs.
        assert {**ra["calls"], "eval": 0} == {**rb["calls"], "eval": 0}


def test_quick_preset_end_to_end(tmp_path):
    assert run_cli(tmp_path, "run", "--preset", "quick", "--iterations", "8", "--snapshot-at", "0,4") == 0
    run = tmp_path / "run"
    cfg = json.load(open(run / "config.json"))
    assert cfg["n_units"] == 12 and cfg["arena"] == "square" and cfg["rec_init"] == "orthogonal"
    log = read_log(run / "log.jsonl")
    assert [r["iteration"] for r in log] == list(range(1, 9))
    for key in ("E", "R_L2", "R_FR", "loss", "damping", "rho", "cg_iters", "step", "seconds"):
        assert key in log[0]
    assert log[-1]["E"] < log[0]["E"]
    metrics = json.load(open(run / "final_metrics.json"))
    assert metrics["nerr_heldout"] < 0.9                      # better than the best constant
    Params.load(run / "final.npz", n_units=12, n_in=2, n_out=2)
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["iter_000000.npz", "iter_000004.npz"]


def test_progress_lines(tmp_path, capsys):
    main(["--out", str(tmp_path / "r"), *TINY[:-1], "--iterations", "2"])
    err = capsys.readouterr().err
    assert "it 1/2" in err and "lambda" in err and "cg" in err and "nerr" in err
    # The time and where it went: GN products and loss evaluations with their counts.
    assert re.search(r"\d+\.\d\ds \(gn \d+\.\d\d/\d+ fwd .* loss \d+\.\d\d/\d+ batch .* other \d+\.\d\d\)", err)


@pytest.mark.parametrize("optimizer", ["hf", "adam"])
def test_log_has_the_time_breakdown(tmp_path, optimizer):
    assert run_cli(tmp_path, "r", "--optimizer", optimizer, "--iterations", "3") == 0
    for rec in read_log(tmp_path / "r" / "log.jsonl"):
        t, calls = rec["time"], rec["calls"]
        assert set(t) == {*PARTS, "other", "total"} and set(calls) == set(PARTS)
        assert all(v >= 0 for v in t.values()) and t["total"] == rec["seconds"] > 0
        assert sum(t[k] for k in PARTS) <= t["total"]
        assert sum(t[k] for k in PARTS) + t["other"] == pytest.approx(t["total"], rel=1e-9)
        assert calls["batch"] == calls["gradient"] == 1 and calls["eval"] == ("nerr" in rec)
        if optimizer == "hf":       # every CG iteration is a product, plus at least rho's
            assert calls["forward"] == 1 and calls["gn"] >= rec["cg_iters"] + 1 and calls["loss"] >= 1
        else:
            assert calls["gn"] == calls["forward"] == calls["loss"] == 0 == t["gn"] == t["loss"]


def test_timings_add_up():
    timings = Timings()
    for _ in range(3):
        with timings.part("gn"):
            time.sleep(0.002)
    with pytest.raises(KeyError), timings.part("eval"):
        raise KeyError("a failing call is timed too")
    rec = timings.record()
    assert rec["calls"] == {**dict.fromkeys(PARTS, 0), "gn": 3, "eval": 1}
    assert rec["time"]["gn"] >= 0.006 and rec["time"]["total"] >= rec["time"]["gn"] + rec["time"]["eval"]


@pytest.mark.parametrize("optimizer", ["hf", "adam"])
def test_resume_equals_uninterrupted(tmp_path, optimizer):
    common = ["--optimizer", optimizer, "--checkpoint-every", "2"]
    assert run_cli(tmp_path, "whole", *common, "--iterations", "5") == 0
    assert run_cli(tmp_path, "parts", *common, "--iterations", "3") == 0
    assert run_cli(tmp_path, "parts", "--resume", "--iterations", "5") == 0
    a, b = tmp_path / "whole", tmp_path / "parts"
    assert Params.load(a / "final.npz") == Params.load(b / "final.npz")       # bit for bit
    assert_same_log(a / "log.jsonl", b / "log.jsonl")


def test_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    cfg = make_config("quick", n_units=10, n_trials=16, n_steps=30, curvature_trials=8, iterations=5,
                      backend="numpy", checkpoint_every=100, eval_every=0)
    whole = train(cfg, tmp_path / "whole", stream=None)
    real_step = training.hf_step
    calls = {"n": 0}

    def interrupt_on_fourth(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_step(*args, **kw)

    monkeypatch.setattr(training, "hf_step", interrupt_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", stream=None)
    with np.load(tmp_path / "cut" / "checkpoint.npz") as ck:
        assert int(ck["iteration"]) == 3                       # nothing already done is lost
    monkeypatch.setattr(training, "hf_step", real_step)
    resumed = train(cfg, tmp_path / "cut", resume=True, stream=None)
    assert resumed == whole
    assert_same_log(tmp_path / "cut" / "log.jsonl", tmp_path / "whole" / "log.jsonl")


def test_sigterm_saves_the_checkpoint(tmp_path):
    # A background job ignores SIGINT; sessions and batch systems stop it with SIGTERM.
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "gridcore.train", "--out", str(out), *TINY,
                             "--iterations", "100000", "--checkpoint-every", "1000"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "log.jsonl").exists() or len(read_log(out / "log.jsonl")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode != 0 and "continue with --resume" in err
    with np.load(out / "checkpoint.npz") as ck:
        saved = int(ck["iteration"])
    last = read_log(out / "log.jsonl")[-1]["iteration"]
    # Nothing done is lost (an iteration counts once logged and then recorded as done).
    assert saved >= 3 and last - 1 <= saved <= last


@pytest.mark.parametrize("backend, blas", [("c", 1), ("numpy", 2)])
def test_training_caps_blas_threads(tmp_path, monkeypatch, backend, blas):
    # The C and Numba cores thread themselves; spinning BLAS workers would steal their cores.
    seen = []
    real_step = training.hf_step

    def step(*args, **kw):
        seen.append({p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"})
        return real_step(*args, **kw)

    monkeypatch.setattr(training, "hf_step", step)
    cfg = make_config("quick", n_units=10, n_trials=16, n_steps=30, curvature_trials=8, iterations=2,
                      backend=backend, threads=2, eval_every=0)
    train(cfg, tmp_path / "r", stream=None)
    assert seen == [{blas}, {blas}]
    assert [r["threads"] for r in read_log(tmp_path / "r" / "log.jsonl")] == [2, 2]


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    assert run_cli(tmp_path, "r", "--iterations", "1") == 0
    assert run_cli(tmp_path, "r", "--iterations", "1") == 2
    assert "already holds a run; use --resume" in capsys.readouterr().err


def test_resume_refuses_other_settings(tmp_path, capsys):
    assert run_cli(tmp_path, "r", "--iterations", "1") == 0
    assert main(["--out", str(tmp_path / "r"), "--resume", "--n-units", "13", "--quiet"]) == 2
    assert "other settings (n_units)" in capsys.readouterr().err


def test_resume_refuses_corrupted_checkpoint(tmp_path, capsys):
    assert run_cli(tmp_path, "r", "--iterations", "1") == 0
    (tmp_path / "r" / "checkpoint.npz").write_bytes(b"\x00garbage")
    assert main(["--out", str(tmp_path / "r"), "--resume", "--iterations", "2", "--quiet"]) == 2
    assert "unreadable .npz" in capsys.readouterr().err


def test_resume_refuses_checkpoint_of_another_shape(tmp_path, capsys):
    assert run_cli(tmp_path, "r", "--iterations", "1") == 0
    ck = dict(np.load(tmp_path / "r" / "checkpoint.npz"))
    ck["theta"] = np.zeros(10)
    np.savez(tmp_path / "r" / "checkpoint.npz", **ck)
    assert main(["--out", str(tmp_path / "r"), "--resume", "--iterations", "2", "--quiet"]) == 2
    assert "does not match the run's (n_units, n_in, n_out) = (12, 2, 2)" in capsys.readouterr().err


def test_resume_without_a_run(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "none"), "--resume", "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_arguments_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--arena", "octagon"])
    assert "invalid choice: 'octagon'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="curvature_trials must be <= n_trials"):
        make_config("quick", n_trials=10, curvature_trials=20)
    with pytest.raises(ValueError, match="unknown setting 'lerning_rate'"):
        make_config("quick", lerning_rate=1)
    with pytest.raises(ValueError, match="unknown motion settings"):
        make_config("quick", motion={"sped": 1})


def test_ablation_flags(tmp_path):
    assert run_cli(tmp_path, "r", "--iterations", "1", "--no-noise", "--no-metabolic", "--no-l2") == 0
    cfg = json.load(open(tmp_path / "r" / "config.json"))
    assert cfg["noise_std"] == 0 and cfg["metabolic"] is False and cfg["l2"] is False
    rec = read_log(tmp_path / "r" / "log.jsonl")[0]
    assert rec["lam_l2"] == 0 and rec["lam_fr"] == 0


def test_paper_schedule():
    cfg = make_config("paper")
    assert (cfg.network.n_units, cfg.optimizer.n_trials, cfg.task.n_steps) == (100, 500, 500)
    assert make_config("paper", arena="hexagon").network.rec_init == "gaussian"
    terms = {"E": 0.3, "R_L2": 0.5, "R_FR": 0.2}
    reg = start_schedule(cfg.schedule, terms)
    assert reg.lam_l2 * terms["R_L2"] == pytest.approx(terms["E"])
    assert reg.lam_fr * terms["R_FR"] == pytest.approx(terms["E"] / 10)
    # E falls: lam_fr is capped so that lam_fr R_FR <= E/3; lam_l2 decays.
    later = {"E": 0.01, "R_L2": 0.5, "R_FR": 0.2}
    nxt = update_schedule(cfg.schedule, reg, later)
    assert nxt.lam_fr * later["R_FR"] == pytest.approx(later["E"] / 3)
    assert nxt.lam_l2 == pytest.approx(reg.lam_l2 * cfg.schedule.l2_decay)
    # While E is large the cap does not bind.
    assert update_schedule(cfg.schedule, reg, terms).lam_fr == reg.lam_fr


# ---------------------------------------------------------------- the run configuration

RESULTS = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "results")


def test_run_config_is_frozen_and_round_trips(tmp_path):
    cfg = make_config("quick", arena="hexagon", hf={"damping": 1.0}, motion={"speed_scale": 0.6})
    assert cfg.network.rec_init == "gaussian" and cfg.optimizer.hf.damping == 1.0
    assert cfg.optimizer.hf.boost == HFSettings().boost          # the other HF fields keep their defaults
    assert cfg.task.motion == {"speed_scale": 0.6} and cfg.model == PAPER
    assert cfg.output.snapshot_at == (0, 10, 50) and cfg.shape == (64, 2, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.task.arena = "square"
    with pytest.raises(TypeError):
        cfg.task.motion["speed_scale"] = 1.0
    with pytest.raises(TypeError):                                 # typed parts only, no flat-name reads
        cfg["n_steps"]
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    cfg.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == cfg
    assert list(json.load(open(tmp_path / "config.json"))) == list(DEFAULTS)   # flat, in DEFAULTS' order
    assert pickle.loads(pickle.dumps(cfg)) == cfg and hash(cfg) == hash(make_config(
        "quick", arena="hexagon", hf={"damping": 1.0}, motion={"speed_scale": 0.6}))
    # with_overrides merges dict-valued settings as make_config does.
    other = cfg.with_overrides(iterations=9, hf={"boost": 2.0})
    assert other.optimizer.iterations == 9 and other.optimizer.hf.damping == 1.0
    assert cfg.differing(other) == ["hf", "iterations"]
    assert cfg.differing(other, ignore=RESUME_MAY_CHANGE) == ["hf"]


def test_run_config_parts_build_directly():
    cfg = RunConfig(task=TaskSettings(arena="hexagon", n_steps=20), network=NetworkSettings(n_units=8),
                    schedule=ScheduleSettings(metabolic=False), output=OutputSettings(snapshot_at=[3]),
                    model={"alpha": 0.2}, seed=4)
    assert cfg.network.rec_init == "gaussian" and cfg.model == ModelSpec(alpha=0.2)
    assert cfg == make_config(arena="hexagon", n_steps=20, n_units=8, metabolic=False, snapshot_at=[3],
                              model={"alpha": 0.2}, seed=4)
    with pytest.raises(TypeError, match="RunConfig.task must be a TaskSettings"):
        RunConfig(task={"arena": "square"})


PAPER_CONFIGS = [os.path.join(RESULTS, name, "config.json") for name in REPRODUCE_RUNS]
OTHER_CONFIGS = sorted(set(glob.glob(os.path.join(RESULTS, "*", "config.json"))) - set(PAPER_CONFIGS))


@pytest.mark.parametrize("path", OTHER_CONFIGS)
def test_committed_configs_of_every_setting_round_trip(path):
    with open(path) as fh:
        saved = json.load(fh)
    current = RunConfig.load(path).to_dict()

    def kept(full, part, where=""):      # every saved value as saved; later settings may be added
        for key, value in part.items():
            if isinstance(value, dict):
                kept(full[key], value, f"{where}{key}.")
            else:
                assert full[key] == value, f"{where}{key}"

    kept(current, saved)
    assert RunConfig.from_dict(current) == RunConfig.load(path)


@pytest.mark.parametrize("path", PAPER_CONFIGS)
def test_committed_configs_load_with_the_same_settings(path):
    # Written before the model spec: a top-level alpha, read as the paper's model with it.
    old = json.load(open(path))
    cfg = RunConfig.load(path)
    assert cfg.model == ModelSpec(alpha=old["alpha"])
    new = cfg.to_dict()
    assert new.pop("model") == ModelSpec(alpha=old["alpha"]).to_dict()
    assert "motion_model" not in old and new.pop("motion_model") == "paper"   # written before it existed
    # Written before place cells and the weight decay on Wrec: their defaults (the same numbers).
    assert new.pop("place_cells") == PLACE_CELL_SETTINGS and "place_cells" not in old
    assert (new.pop("lam_rec"), new.pop("lam_rec_from")) == (0.0, 0) and "lam_rec" not in old
    # Written before HF could evaluate steps on the curvature trials: HF as it was.
    assert new["hf"].pop("evaluate_on") == "gradient" and "evaluate_on" not in old["hf"]
    # Written before the counter-based noise: the (M, T, N) arrays they trained with.
    assert new.pop("noise_source") == "array" and "noise_source" not in old
    # Written before float32: computed in float64.
    assert new.pop("dtype") == "float64" and "dtype" not in old
    assert new["adam"].pop("lr_steps") == [] and "lr_steps" not in old["adam"]   # no step schedule
    assert new.pop("frozen") == [] and "frozen" not in old                     # every block trained
    # Written before schedule_error: the x, y readout's E_min is 0, so either is the paper's schedule.
    assert new.pop("schedule_error") == "excess" and "schedule_error" not in old
    assert new == {k: v for k, v in old.items() if k != "alpha"}
    # The flat format with a "model" dict (written since) reads the same.
    current = {**{k: v for k, v in old.items() if k != "alpha"}, "model": {"alpha": old["alpha"]}}
    assert RunConfig.from_dict(current) == cfg
    with pytest.raises(ValueError, match=r"unknown settings \['alpha'\]"):       # not both
        RunConfig.from_dict({**current, "alpha": 0.1})


def test_each_stage_gets_its_part():
    cfg = make_config("quick", n_units=5, n_steps=7, noise_std=0.5, encoding="speed-cos-sin")
    arena = make_arena(cfg.task.arena, cfg.task.arena_size)
    batch, traj = make_batch(cfg.task, arena, np.random.default_rng(0), 3, cfg.network.n_units)
    assert batch.inputs.shape == (3, 7, 3) and isinstance(batch.noise, CounterNoise)
    assert batch.noise.std == 0.5 and batch.noise.array(3, 7, 5).shape == (3, 7, 5)
    again, _ = make_batch(cfg.task, arena, np.random.default_rng(0), 3, cfg.network.n_units)
    assert again.noise == batch.noise                                   # the seed comes from the generator
    old = dataclasses.replace(cfg.task, noise_source="array")           # runs made before the counter
    assert make_batch(old, arena, np.random.default_rng(0), 3, 5)[0].noise.shape == (3, 7, 5)
    assert eval_batch(cfg, arena).inputs.shape == (cfg.output.eval_trials, 7, 3)
    off = ScheduleSettings(l2=False, metabolic=False)
    assert start_schedule(off, {"E": 1.0, "R_L2": 1.0, "R_FR": 1.0}) == Regularization(0.0, 0.0)


@pytest.mark.parametrize("override, message", [
    ({"l2_decay": 5}, r"l2_decay must be in \(0, 1\], got 5"),            # issue 23: lam_L2 grew 5x
    ({"l2_decay": 0}, r"l2_decay must be in \(0, 1\]"),
    ({"l2_decay": float("nan")}, r"l2_decay must be in \(0, 1\]"),
    ({"threads": "x"}, r"threads must be an integer in 1\.\.256"),
    ({"threads": 0}, r"threads must be an integer in 1\.\.256"),
    ({"threads": 40000}, r"threads must be an integer in 1\.\.256 .*got 40000"),    # issue 23
    ({"snapshot_at": 5}, "snapshot_at must be a list of iterations"),
    ({"snapshot_at": [1, -2]}, "snapshot_at entry must be an integer >= 0"),
    ({"n_units": 0}, "n_units must be a positive integer"),
    ({"n_steps": 2.5}, "n_steps must be a positive integer"),
    ({"iterations": True}, "iterations must be a positive integer"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"eval_every": -1}, "eval_every must be an integer >= 0"),
    ({"arena": "octagon"}, "unknown arena 'octagon'; allowed: 'square', 'triangle'"),
    ({"arena_size": 0}, "arena_size must be finite and > 0"),
    ({"encoding": "polar"}, "unknown encoding 'polar'; allowed: 'speed-angle'"),
    ({"optimizer": "sgd"}, "unknown optimizer 'sgd'; allowed: 'hf', 'adam'"),
    ({"backend": "gpu"}, "unknown backend 'gpu'; allowed: 'auto', 'numpy'"),
    ({"rec_init": "zeros"}, "unknown rec_init 'zeros'; allowed: 'orthogonal', 'gaussian'"),
    ({"noise_std": -0.1}, "noise_std must be finite and >= 0"),
    ({"noise_source": "philox"}, "unknown noise_source 'philox'; allowed: 'counter', 'array'"),
    ({"dtype": "float16"}, "unknown dtype 'float16'; allowed: 'float64', 'float32'"),
    ({"dtype": "float32", "backend": "numpy"}, "dtype 'float32' needs backend 'c', 'numba' or 'auto'"),
    ({"l2": "yes"}, "l2 must be true or false"),
    ({"fr_max_ratio": float("inf")}, "fr_max_ratio must be finite and >= 0"),
    ({"model": {"alpha": 2}}, r"alpha \(dt/tau\) must be in \(0, 1\]"),
    ({"model": {"phi": "relu"}}, "unknown model settings.*allowed: alpha, nonlinearity"),
    ({"hf": {"dampin": 1}}, r"unknown hf settings \['dampin'\]; allowed: damping, damping_min"),
    ({"hf": {"cg_max_iters": 2.5}}, "HFSettings.cg_max_iters must be a finite integer"),
    ({"adam": {"lr": "x"}}, "AdamSettings.lr must be a finite number"),
    ({"motion": {"sped": 1}}, r"unknown motion settings \['sped'\]; allowed: p_zero_speed"),
    ({"n_trials": 10, "curvature_trials": 11}, "curvature_trials must be <= n_trials = 10"),
    ({"lerning_rate": 1}, "unknown setting 'lerning_rate'; allowed: arena, arena_size"),
])
def test_bad_settings_are_named(override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_config("quick", **override)


def test_bad_config_files_are_named(tmp_path):
    good = make_config("quick").to_dict()
    for name, content in [("extra", {**good, "colour": 1}), ("missing", {k: v for k, v in good.items()
                                                                         if k != "seed"}),
                          ("decay", {**good, "l2_decay": 5})]:
        (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"extra: invalid run configuration \(unknown settings \['colour'\]; "
                                         "allowed: arena"):
        RunConfig.load(tmp_path / "extra")
    with pytest.raises(ValueError, match=r"missing: invalid run configuration \(missing settings \['seed'\]"):
        RunConfig.load(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"decay: invalid run configuration \(l2_decay must be in"):
        RunConfig.load(tmp_path / "decay")
    (tmp_path / "notjson").write_text("{")
    with pytest.raises(ValueError, match="notjson: unreadable run configuration"):
        RunConfig.load(tmp_path / "notjson")


def test_train_wants_a_run_config(tmp_path):
    with pytest.raises(TypeError, match="cfg must be a RunConfig"):
        train(make_config("quick").to_dict(), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_load_run_gives_the_typed_config(tmp_path):
    cfg = make_config("quick", n_units=6, n_trials=10, n_steps=20, curvature_trials=5, iterations=1,
                      backend="numpy", eval_every=0)
    train(cfg, tmp_path / "r", stream=None)
    run = load_run(tmp_path / "r")
    assert run.settings == cfg and run.spec == cfg.model and not hasattr(run, "config")
    assert run.shape == (6, 2, 2) and run.final_iteration == 1


# ---------------------------------------------------------------- resume (issue 23; the refusals are in
# tests/test_cli_errors.py)

def test_resume_drops_a_log_line_cut_short(tmp_path):
    common = ["--checkpoint-every", "1"]
    assert run_cli(tmp_path, "whole", *common, "--iterations", "3") == 0
    assert run_cli(tmp_path, "parts", *common, "--iterations", "2") == 0
    with open(tmp_path / "parts" / "log.jsonl", "a") as fh:
        fh.write('{"iteration": 3, "E": 0.')                   # killed mid-write
    assert run_cli(tmp_path, "parts", "--resume", "--iterations", "3") == 0
    assert Params.load(tmp_path / "whole" / "final.npz") == Params.load(tmp_path / "parts" / "final.npz")
    assert_same_log(tmp_path / "whole" / "log.jsonl", tmp_path / "parts" / "log.jsonl")


# ---------------------------------------------------------------- the motion model (issue 18, item 7)

def test_smooth_motion_model_trains(tmp_path):
    assert run_cli(tmp_path, "smooth", "--iterations", "2", "--motion-model", "smooth",
                   "--motion", "start=centre", "--motion", "dt=0.05", "--arena", "circle") == 0
    cfg = json.load(open(tmp_path / "smooth" / "config.json"))
    assert cfg["motion_model"] == "smooth" and cfg["motion"] == {"start": "centre", "dt": 0.05}
    run = load_run(tmp_path / "smooth")
    assert run.settings.task.motion_model == "smooth"
    log = read_log(tmp_path / "smooth" / "log.jsonl")
    assert len(log) == 2 and all(np.isfinite(r["loss"]) for r in log)
    # The batches come from the smooth model: uniform starts by default, speeds of v * dt.
    task = make_config(motion_model="smooth", n_steps=30).task
    _, traj = make_batch(task, make_arena("square"), np.random.default_rng(0), 50, 4)
    assert traj.motion_model == "smooth" and np.all(np.abs(traj.start) > 0)
    assert traj.speed.mean() == pytest.approx(0.13 * 2 * np.pi * np.sqrt(np.pi / 2) * 0.02, rel=0.1)


def test_resume_refuses_another_motion_model(tmp_path, capsys):
    assert run_cli(tmp_path, "r", "--iterations", "1") == 0
    assert json.load(open(tmp_path / "r" / "config.json"))["motion_model"] == "paper"
    assert main(["--out", str(tmp_path / "r"), "--resume", "--iterations", "2", "--motion-model", "smooth",
                 "--quiet"]) == 2
    assert "other settings (motion_model)" in capsys.readouterr().err


def test_motion_model_setting():
    assert DEFAULTS["motion_model"] == "paper" and TaskSettings().motion_model == "paper"
    cfg = make_config(motion_model="smooth", motion={"rotation_sd": 5.0})
    assert cfg.task.motion == {"rotation_sd": 5.0}
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown motion_model 'levy'; allowed: 'paper', 'smooth'"):
        make_config(motion_model="levy")
    # Each model takes its own settings.
    with pytest.raises(ValueError, match=r"unknown motion settings \['rotation_sd'\].*motion_model 'paper'"):
        make_config(motion={"rotation_sd": 5.0})
    with pytest.raises(ValueError, match=r"\['p_keep'\]; allowed: dt, rotation_sd.*motion_model 'smooth'"):
        make_config(motion_model="smooth", motion={"p_keep": 0.5})
