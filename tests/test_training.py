"""Training runs: the CLI end to end, checkpoints, exact resume, the schedule."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import threadpoolctl

from gridcore import Params
from gridcore.cli.train import main
from gridcore.train import loop as training
from gridcore.train.config import make_config
from gridcore.train.loop import start_schedule, train, update_schedule

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
        assert all(ra[k] == rb[k] for k in set(ra) & set(rb) if k != "seconds")


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
    assert (cfg["n_units"], cfg["n_trials"], cfg["n_steps"]) == (100, 500, 500)
    assert make_config("paper", arena="hexagon")["rec_init"] == "gaussian"
    terms = {"E": 0.3, "R_L2": 0.5, "R_FR": 0.2}
    reg = start_schedule(cfg, terms)
    assert reg.lam_l2 * terms["R_L2"] == pytest.approx(terms["E"])
    assert reg.lam_fr * terms["R_FR"] == pytest.approx(terms["E"] / 10)
    # E falls: lam_fr is capped so that lam_fr R_FR <= E/3; lam_l2 decays.
    later = {"E": 0.01, "R_L2": 0.5, "R_FR": 0.2}
    nxt = update_schedule(cfg, reg, later)
    assert nxt.lam_fr * later["R_FR"] == pytest.approx(later["E"] / 3)
    assert nxt.lam_l2 == pytest.approx(reg.lam_l2 * cfg["l2_decay"])
    # While E is large the cap does not bind.
    assert update_schedule(cfg, reg, terms).lam_fr == reg.lam_fr
