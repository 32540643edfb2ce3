"""Training Sorscher et al.'s model (issue 18): place-cell readout, encoded initial state,
weight decay on Wrec, their settings, the grid-cells preset, held-out errors and resume."""

import json
import logging

import numpy as np
import pytest

from gridcore import ModelSpec, Params, PlaceCells, Regularization, get_backend
from gridcore.cli.train import build_parser, main, overrides_from_args
from gridcore.model import objective
from gridcore.sim.arenas import make_arena
from gridcore.sim.placecells import outputs_to_positions
from gridcore.train.config import (
    DEFAULTS,
    PLACE_CELL_SETTINGS,
    PRESETS,
    RunConfig,
    ScheduleSettings,
    make_config,
)
from gridcore.train.loop import (
    evaluate,
    held_out_trials,
    make_batch,
    normalised_error,
    schedule_error,
    start_schedule,
    update_schedule,
    with_least_error,
)
from gridcore.train.rundir import load_run

PLACE = ModelSpec(alpha=1.0, nonlinearity="relu", readout="place-cells", initial_state="encoded",
                  n_place_cells=32)
# A tiny version of the grid-cells preset that learns in tens of iterations: 32 units with biases
# and an orthogonal start, 32 Gaussian place cells of width 0.15 in a 1 x 1 arena, trials of 10 steps.
TINY = ["--preset", "grid-cells", "--backend", "numpy", "--dtype", "float64", "--threads", "1",
        "--rec-init", "orthogonal", "--frozen", "", "--lr-steps", "", "--n-units", "32", "--n-place-cells", "32",
        "--arena-size", "1.0", "--place-cells", "sigma=0.15", "--place-cells", "surround=false",
        "--n-trials", "50", "--curvature-trials", "25", "--n-steps", "10", "--checkpoint-every", "0",
        "--snapshot-at", "0", "--quiet"]


def run_cli(tmp_path, name, *extra):
    return main(["--out", str(tmp_path / name), *TINY, *extra])


def read_log(path):
    return [json.loads(line) for line in open(path)]


def nerr(path):
    return json.load(open(path / "final_metrics.json"))["nerr_heldout"]


# ---------------------------------------------------------------- settings

def test_new_settings_round_trip(tmp_path):
    cfg = make_config("quick", model={"alpha": 0.5, "nonlinearity": "relu", "readout": "place-cells",
                                      "initial_state": "encoded", "n_place_cells": 40},
                      place_cells={"sigma": 0.2, "layout": "lattice"}, lam_rec=1e-3, lam_rec_from=5)
    assert cfg.model == ModelSpec(0.5, "relu", "place-cells", "encoded", 40)
    assert cfg.task.place_cells == {**PLACE_CELL_SETTINGS, "sigma": 0.2, "layout": "lattice"}
    assert (cfg.schedule.lam_rec, cfg.schedule.lam_rec_from) == (1e-3, 5)
    assert cfg.shape == (64, 2, 40)
    assert cfg.layout.n_code == 40 and cfg.layout.size == 64 * 64 + 64 * 2 + 64 + 40 * 64 + 64 * 40
    d = cfg.to_dict()
    assert list(d) == list(DEFAULTS) and d["place_cells"]["sigma"] == 0.2 and d["lam_rec_from"] == 5
    assert RunConfig.from_dict(json.loads(json.dumps(d))) == cfg
    cfg.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == cfg
    # place_cells merges field by field, like motion and model.
    other = cfg.with_overrides(place_cells={"seed": 3}, model={"n_place_cells": 20})
    assert other.task.place_cells["sigma"] == 0.2 and other.task.place_cells["seed"] == 3
    assert other.model.n_place_cells == 20 and other.model.readout == "place-cells"
    assert cfg.differing(other) == ["model", "place_cells"]
    pc = cfg.make_place_cells()
    assert isinstance(pc, PlaceCells) and pc.n_cells == 40 and pc.sigma == 0.2 and pc.layout == "lattice"
    assert pc.arena.to_dict() == make_arena("square", 2.0).to_dict()
    assert make_config("quick").make_place_cells() is None          # the paper's model uses none


def test_old_config_files_load_with_the_defaults(tmp_path):
    new = make_config("quick").to_dict()
    old = {k: v for k, v in new.items()
           if k not in ("place_cells", "lam_rec", "lam_rec_from", "motion_model", "frozen")}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = RunConfig.load(tmp_path / "config.json")
    assert cfg == make_config("quick")
    assert cfg.task.place_cells == PLACE_CELL_SETTINGS and cfg.schedule.lam_rec == 0.0
    assert cfg.schedule.lam_rec_from == 0 and cfg.network.frozen == ()


@pytest.mark.parametrize("readout, regularised, expected", [
    ("xy", True, "excess"), ("place-cells", True, "total"), ("place-cells", False, "excess")])
def test_old_config_files_keep_their_schedule_error(tmp_path, readout, regularised, expected):
    # Files written before schedule_error existed ran with "total"; where E_min is 0 or unused it
    # makes no difference, and they load as new files of such runs are written (the default).
    model = {"readout": readout, "n_place_cells": 16 if readout == "place-cells" else 0}
    new = make_config("quick", model=model, l2=regularised, metabolic=regularised).to_dict()
    assert new["schedule_error"] == "excess"
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in new.items() if k != "schedule_error"}))
    cfg = RunConfig.load(tmp_path / "config.json")
    assert cfg.schedule.schedule_error == expected
    assert cfg.differing(make_config("quick", model=model, l2=regularised, metabolic=regularised)) == (
        [] if expected == "excess" else ["schedule_error"])


@pytest.mark.parametrize("override, message", [
    ({"place_cells": {"sigma": -1}}, "place_cells: sigma must be finite and > 0"),
    ({"place_cells": {"layout": "hex"}}, "place_cells: unknown layout 'hex'; allowed: 'random', 'lattice'"),
    ({"place_cells": {"surround": "yes"}}, "place_cells: surround must be True or False"),
    ({"place_cells": {"surround_scale": 0.5}}, "place_cells: surround_scale must be finite and > 1"),
    ({"place_cells": {"seed": -2}}, "place_cells: seed must be a non-negative int"),
    ({"place_cells": {"n_cells": 64}}, r"unknown place_cells settings \['n_cells'\]; allowed: sigma, surround, "
                                       r"surround_scale, layout, seed \(the number of cells is the model's"),
    ({"place_cells": 3}, "place_cells must be a dict"),
    ({"lam_rec": -1e-4}, "lam_rec must be finite and >= 0"),
    ({"lam_rec": float("nan")}, "lam_rec must be finite and >= 0"),
    ({"lam_rec_from": -1}, "lam_rec_from must be an integer >= 0"),
    ({"lam_rec_from": 1.5}, "lam_rec_from must be an integer >= 0"),
    ({"model": {"readout": "softmax"}}, "unknown readout 'softmax'; allowed: 'xy', 'place-cells'"),
    ({"model": {"initial_state": "random"}}, "unknown initial_state 'random'; allowed: 'zero', 'encoded'"),
    ({"model": {"nonlinearity": "sigmoid"}}, "unknown nonlinearity 'sigmoid'"),
    ({"model": {"readout": "place-cells"}}, "n_place_cells must be >= 1 for readout 'place-cells'"),
    ({"model": {"n_place_cells": 8}}, "n_place_cells must be 0 unless readout is 'place-cells'"),
    ({"model": {"readout": "place-cells", "n_place_cells": 1}}, "n_place_cells must be >= 2 for a run"),
    ({"frozen": "b"}, "frozen must be a list of parameter block names"),
    ({"frozen": ["bias"]}, "unknown frozen 'bias'; allowed: 'Wrec', 'Win', 'b', 'Wout', 'Wenc'"),
    ({"frozen": ["b", "b"]}, "frozen names a block twice"),
    ({"frozen": ["Wenc"]}, "frozen names Wenc, but the model has no Wenc block"),
    ({"rec_init": "torch"}, "unknown rec_init 'torch'; allowed: 'orthogonal', 'gaussian', 'uniform'"),
    ({"schedule_error": "kl"}, "unknown schedule_error 'kl'; allowed: 'excess', 'total'"),
])
def test_bad_new_settings_are_named(override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_config("quick", **override)


def test_cli_flags_merge_into_the_model(capsys):
    args = build_parser().parse_args(["--alpha", "0.5", "--readout", "place-cells", "--n-place-cells", "16",
                                      "--place-cells", "sigma=0.3", "--place-cells", "surround=false",
                                      "--place-cells", "layout=lattice", "--lam-rec", "1e-4",
                                      "--lam-rec-from", "7", "--nonlinearity", "relu",
                                      "--initial-state", "encoded"])
    over = overrides_from_args(args)
    assert over["model"] == {"alpha": 0.5, "nonlinearity": "relu", "readout": "place-cells",
                             "initial_state": "encoded", "n_place_cells": 16}
    assert over["place_cells"] == {"sigma": 0.3, "surround": False, "layout": "lattice"}
    assert (over["lam_rec"], over["lam_rec_from"]) == (1e-4, 7)
    cfg = make_config("quick", **over)
    assert cfg.model.alpha == 0.5 and cfg.task.place_cells["surround"] is False
    # Only the given fields change: the preset's model keeps the others.
    cfg = make_config("grid-cells", **overrides_from_args(build_parser().parse_args(["--n-place-cells", "64"])))
    assert cfg.model == ModelSpec(1.0, "relu", "place-cells", "encoded", 64)
    assert overrides_from_args(build_parser().parse_args([])) == {}
    cfg = make_config("grid-cells", **overrides_from_args(build_parser().parse_args(
        ["--lr", "5e-4", "--lr-steps", "4000:3e-4,9000:1e-4"])))
    assert cfg.optimizer.adam.lr == 5e-4 and cfg.optimizer.adam.lr_steps == ((4000, 3e-4), (9000, 1e-4))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--lr-steps", "4000"])
    assert "expected comma-separated ITERATION:LR pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--place-cells", "n_cells=4"])
    assert "expected KEY=VALUE with KEY one of sigma, surround" in capsys.readouterr().err


def test_cli_names_a_bad_model_setting(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "r"), "--readout", "place-cells", "--quiet"]) == 2
    assert "n_place_cells must be >= 1 for readout 'place-cells'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_grid_cells_preset():
    cfg = make_config("grid-cells")
    assert cfg.model == ModelSpec(alpha=1.0, nonlinearity="relu", readout="place-cells", initial_state="encoded",
                                  n_place_cells=512)
    assert cfg.network.n_units == 512 and cfg.shape == (512, 2, 512) and cfg.layout.n_code == 512
    assert cfg.network.rec_init == "uniform" and cfg.network.frozen == ("b",) and cfg.compute.dtype == "float32"
    t = cfg.task
    assert (t.arena, t.arena_size, t.motion_model, t.start, t.encoding, t.n_steps, t.noise_std) == \
        ("square", 2.2, "smooth", "uniform", "velocity", 20, 0.0)
    assert make_arena(t.arena, t.arena_size).bounds == pytest.approx((-1.1, -1.1, 1.1, 1.1))
    s = cfg.schedule
    assert (s.l2, s.metabolic, s.lam_rec, s.lam_rec_from) == (False, False, 1e-4, 0)
    assert cfg.optimizer.name == "adam" and cfg.optimizer.n_trials == 200
    assert cfg.make_place_cells().n_cells == 512
    assert "grid-cells" in PRESETS and make_config("grid-cells", optimizer="hf").optimizer.name == "hf"


# ---------------------------------------------------------------- batches and evaluation

def test_make_batch_gives_codes_and_keeps_positions():
    cfg = make_config("grid-cells", n_units=8, n_steps=7, model={"n_place_cells": 30})
    arena = make_arena(cfg.task.arena, cfg.task.arena_size)
    pc = cfg.make_place_cells(arena)
    batch, traj = make_batch(cfg.task, arena, np.random.default_rng(0), 5, 8, cfg.model, pc)
    assert batch.targets.shape == (5, 7, 30) and batch.start_codes.shape == (5, 30)
    assert np.all(batch.targets >= 0) and np.allclose(batch.targets.sum(axis=2), 1)
    assert np.array_equal(batch.targets, pc.encode(traj.positions))
    assert np.array_equal(batch.start_codes, pc.encode(traj.positions[:, 0]))
    assert traj.positions.shape == (5, 7, 2) and batch.noise is None
    # The trajectories do not depend on the model: the same draws as for the x, y readout.
    plain, traj_xy = make_batch(cfg.task, arena, np.random.default_rng(0), 5, 8)
    assert np.array_equal(plain.targets, traj.positions) and plain.start_codes is None
    assert np.array_equal(traj_xy.inputs, traj.inputs)
    # Each part on its own.
    readout = ModelSpec(readout="place-cells", n_place_cells=30)
    b, _ = make_batch(cfg.task, arena, np.random.default_rng(0), 5, 8, readout, pc)
    assert b.targets.shape == (5, 7, 30) and b.start_codes is None
    encoded = ModelSpec(initial_state="encoded", n_place_cells=30)
    b, _ = make_batch(cfg.task, arena, np.random.default_rng(0), 5, 8, encoded, pc)
    assert np.array_equal(b.targets, traj.positions) and b.start_codes.shape == (5, 30)
    with pytest.raises(ValueError, match="needs the run's place cells \\(30 of them\\)"):
        make_batch(cfg.task, arena, np.random.default_rng(0), 5, 8, cfg.model)
    with pytest.raises(ValueError, match="needs the run's place cells"):
        make_batch(cfg.task, arena, np.random.default_rng(0), 5, 8, cfg.model, PlaceCells(arena, n_cells=12))


def test_held_out_error_is_in_arena_units_for_both_readouts():
    backend = get_backend("numpy")
    cfg = make_config("grid-cells", n_units=6, n_steps=5, eval_trials=40, model={"n_place_cells": 30})
    arena = make_arena(cfg.task.arena, cfg.task.arena_size)
    pc = cfg.make_place_cells(arena)
    batch, traj = held_out_trials(cfg, arena)
    assert batch.start_codes.shape == (40, 30) and np.array_equal(batch.targets, pc.encode(traj.positions))
    params = Params(np.zeros((6, 6)), np.zeros((6, 2)), np.zeros(6), np.random.default_rng(1).normal(size=(30, 6)),
                    np.random.default_rng(2).normal(size=(6, 30)))
    y = backend.forward(params, batch.inputs, spec=cfg.model, start_codes=batch.start_codes).y
    want = normalised_error(pc.decode(y), traj.positions)
    assert evaluate(params, batch, backend, cfg.model, traj.positions, pc) == want
    with pytest.raises(ValueError, match="needs the trials' positions"):
        evaluate(params, batch, backend, cfg.model)
    # The x, y readout: the outputs are the positions, as before.
    xy = make_config("quick", n_units=6, n_steps=5, eval_trials=40)
    batch, traj = held_out_trials(xy, make_arena("square"))
    p = Params(np.eye(6) * 0.5, np.ones((6, 2)), np.zeros(6), np.ones((2, 6)))
    y = backend.forward(p, batch.inputs, batch.noise).y
    assert evaluate(p, batch, backend) == normalised_error(y, batch.targets) == \
        evaluate(p, batch, backend, xy.model, traj.positions)
    assert np.array_equal(outputs_to_positions(y, xy.model), y)


# ---------------------------------------------------------------- the weight decay schedule

def test_lam_rec_schedule():
    s = ScheduleSettings(l2=False, metabolic=False, lam_rec=1e-4, lam_rec_from=3)
    assert [s.rec_weight(i) for i in range(1, 5)] == [0.0, 0.0, 1e-4, 1e-4]
    terms = {"E": 1.0, "R_L2": 1.0, "R_FR": 1.0}
    reg = start_schedule(s, terms)
    assert reg == Regularization(0.0, 0.0, 0.0)
    reg = update_schedule(s, reg, terms, 1)         # the weights of iteration 2
    assert reg.lam_rec == 0.0
    reg = update_schedule(s, reg, terms, 2)         # of iteration 3
    assert reg.lam_rec == 1e-4
    assert update_schedule(s, reg, terms).lam_rec == 1e-4                  # no iteration: kept
    assert start_schedule(ScheduleSettings(lam_rec=2e-4), terms).lam_rec == 2e-4   # from 0: at once
    # The paper's terms are unchanged by it.
    paper = ScheduleSettings()
    assert start_schedule(paper, terms) == Regularization(1.0, 0.1, 0.0)
    assert update_schedule(paper, start_schedule(paper, terms), terms, 1) == Regularization(0.99, 0.1, 0.0)


def test_least_error_is_the_cross_entropy_at_the_targets():
    rng = np.random.default_rng(0)
    assert objective.least_error("xy", rng.normal(size=(3, 4, 2))) == 0.0
    # Gaussian codes are positive everywhere, so their logs are outputs that reach E_min.
    pc = PlaceCells(make_arena("square", 1.0), 20, sigma=0.2, surround=False)
    targets = pc.encode(rng.uniform(-0.5, 0.5, (3 * 4, 2))).reshape(3, 4, 20)
    e_min = objective.least_error("place-cells", targets)
    at_targets = objective.error_sum("place-cells", np.log(targets), targets) / (3 * 4)
    assert e_min == pytest.approx(at_targets, rel=1e-12)
    assert objective.least_error("place-cells", targets, rows=5) == pytest.approx(e_min, rel=1e-14)
    assert e_min < np.log(20)                                   # below the uniform guess ...
    for _ in range(5):                                          # ... and below any other outputs
        other = objective.error_sum("place-cells", rng.normal(size=targets.shape), targets) / (3 * 4)
        assert other > e_min
    # Zero targets (a difference-of-Gaussians code has one per position) count 0 log 0 = 0.
    two = np.array([[[0.5, 0.5, 0.0]]])
    assert objective.least_error("place-cells", two) == pytest.approx(np.log(2), rel=1e-15)


def test_schedule_refers_to_the_excess_error():
    terms = {"E": 6.2, "E_min": 6.1, "R_L2": 0.5, "R_FR": 0.2}
    excess, total = ScheduleSettings(), ScheduleSettings(schedule_error="total")
    assert schedule_error(excess, terms) == pytest.approx(0.1) and schedule_error(total, terms) == 6.2
    assert schedule_error(excess, {"E": 6.2}) == 6.2                      # no E_min: 0 (the x, y readout)
    reg = start_schedule(excess, terms)
    assert reg.lam_l2 * terms["R_L2"] == pytest.approx(0.1) and reg.lam_fr * terms["R_FR"] == pytest.approx(0.01)
    reg = start_schedule(total, terms)
    assert reg.lam_l2 * terms["R_L2"] == pytest.approx(6.2) and reg.lam_fr * terms["R_FR"] == pytest.approx(0.62)
    # The cap lam_fr R_FR <= E'/3 binds on the excess error.
    later = {"E": 6.13, "E_min": 6.1, "R_L2": 0.5, "R_FR": 0.2}
    nxt = update_schedule(excess, start_schedule(excess, terms), later)
    assert nxt.lam_fr * later["R_FR"] == pytest.approx(0.01)
    assert update_schedule(total, start_schedule(total, terms), later).lam_fr == start_schedule(total, terms).lam_fr


def test_least_error_is_added_where_the_schedule_needs_it():
    cfg = make_config("quick", model={"readout": "place-cells", "n_place_cells": 16})
    batch, _ = make_batch(cfg.task, make_arena("square", 2.0), np.random.default_rng(0), 4, 8, cfg.model,
                          cfg.make_place_cells())
    terms = {"E": 3.0, "R_L2": 1.0, "R_FR": 1.0}
    added = with_least_error(cfg.schedule, terms, batch, cfg.model)
    assert added["E_min"] == objective.least_error("place-cells", batch.targets) and added["E_min"] > 0
    no_fr = ScheduleSettings(metabolic=False)                   # R_L2's weight only needs it at the start
    assert "E_min" not in with_least_error(no_fr, terms, batch, cfg.model)
    assert "E_min" in with_least_error(no_fr, terms, batch, cfg.model, start=True)
    for schedule in (ScheduleSettings(schedule_error="total"), ScheduleSettings(l2=False, metabolic=False)):
        assert with_least_error(schedule, terms, batch, cfg.model, start=True) is terms
    xy = make_config("quick")
    xy_batch, _ = make_batch(xy.task, make_arena("square", 2.0), np.random.default_rng(0), 4, 8, xy.model)
    assert with_least_error(xy.schedule, terms, xy_batch, xy.model, start=True) is terms


@pytest.mark.parametrize("readout", ["xy", "place-cells"])
def test_schedule_error_in_a_run(tmp_path, readout):
    # The paper's schedule (L2 and metabolic cost: its preset) on the tiny model, scaled to either error.
    extra = ["--preset", "paper", "--iterations", "2", "--eval-every", "0", "--readout", readout] + (
        ["--n-place-cells", "0"] if readout == "xy" else [])
    runs = {}
    for choice in ("excess", "total"):
        assert main(["--out", str(tmp_path / choice), *TINY, *extra, "--schedule-error", choice]) == 0
        runs[choice] = read_log(tmp_path / choice / "log.jsonl")
        assert RunConfig.load(tmp_path / choice / "config.json").schedule.schedule_error == choice
    if readout == "xy":                                         # E_min = 0: the same run, but for wall times
        def numbers(log):
            return [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in log]
        assert numbers(runs["excess"]) == numbers(runs["total"])
        return
    first = {k: r[0] for k, r in runs.items()}
    assert "E_min" not in first["total"] and 0 < first["excess"]["E_min"] < first["excess"]["E"]
    # Both weights start E / (E - E_min) of the initial network's batch times smaller.
    ratio = first["total"]["lam_l2"] / first["excess"]["lam_l2"]
    assert ratio > 1 and first["total"]["lam_fr"] / first["excess"]["lam_fr"] == pytest.approx(ratio, rel=1e-9)


def test_lam_rec_switches_on_in_a_run(tmp_path):
    assert run_cli(tmp_path, "r", "--iterations", "4", "--lam-rec", "0.01", "--lam-rec-from", "3",
                   "--eval-every", "0") == 0
    log = read_log(tmp_path / "r" / "log.jsonl")
    assert [r["lam_rec"] for r in log] == [0.0, 0.0, 0.01, 0.01]
    assert all(r["R_rec"] > 0 for r in log)
    assert log[2]["loss"] == pytest.approx(log[2]["E"] + 0.01 * log[2]["R_rec"], rel=1e-12)
    assert log[1]["loss"] == log[1]["E"]
    with np.load(tmp_path / "r" / "checkpoint.npz") as ck:
        assert float(ck["lam_rec"]) == 0.01


def test_encoded_state_from_the_centre_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gridcore.train.loop"):
        assert run_cli(tmp_path, "r", "--iterations", "1", "--motion", "start=centre") == 0
    assert "--motion start=uniform" in caplog.text
    assert json.load(open(tmp_path / "r" / "config.json"))["motion"] == {"start": "centre"}   # not changed
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gridcore.train.loop"):
        assert run_cli(tmp_path, "u", "--iterations", "1") == 0
    assert "start=uniform" not in caplog.text


# ---------------------------------------------------------------- training from the command line

@pytest.mark.parametrize("optimizer, iterations, extra", [("hf", 30, []), ("adam", 100, ["--lr", "0.02"])])
def test_tiny_grid_cell_network_learns(tmp_path, optimizer, iterations, extra):
    assert run_cli(tmp_path, "r", "--optimizer", optimizer, "--iterations", str(iterations),
                   "--eval-every", "10", *extra) == 0
    run = tmp_path / "r"
    log = read_log(run / "log.jsonl")
    assert log[-1]["E"] < log[0]["E"] - 0.3                   # cross-entropy, nats
    assert nerr(run) < 0.6                                      # the constant guess is 1
    assert log[-1]["nerr"] == nerr(run)
    loaded = load_run(run)
    assert loaded.spec == PLACE and loaded.place_cells == loaded.settings.make_place_cells()
    assert loaded.params.n_code == 32 and loaded.params.shape == (32, 2, 32)
    # The run's held-out error again from what load_run gives.
    batch, traj = held_out_trials(loaded.settings, loaded.arena)
    assert evaluate(loaded.params, batch, get_backend("numpy"), loaded.spec, traj.positions,
                    loaded.place_cells) == nerr(run)


@pytest.mark.parametrize("optimizer", ["hf", "adam"])
def test_frozen_blocks_stay_at_their_start(tmp_path, optimizer):
    # Sorscher et al.'s network: no biases (b frozen at 0) and Wrec drawn uniform; the other blocks learn.
    assert run_cli(tmp_path, "r", "--optimizer", optimizer, "--iterations", "8", "--eval-every", "0",
                   "--frozen", "b,Win", "--rec-init", "uniform", "--lr", "0.02") == 0
    cfg = json.load(open(tmp_path / "r" / "config.json"))
    assert cfg["frozen"] == ["Win", "b"] and cfg["rec_init"] == "uniform"
    start, end = Params.load(tmp_path / "r" / "snapshots" / "iter_000000.npz"), load_run(tmp_path / "r").params
    assert np.all(end.b == 0) and np.array_equal(end.Win, start.Win)
    assert np.abs(start.Wrec).max() <= 1 / np.sqrt(32)
    for name in ("Wrec", "Wout", "Wenc"):
        assert not np.array_equal(getattr(end, name), getattr(start, name)), name
    assert read_log(tmp_path / "r" / "log.jsonl")[-1]["E"] < read_log(tmp_path / "r" / "log.jsonl")[0]["E"]


@pytest.mark.parametrize("optimizer", ["hf", "adam"])
def test_resume_of_a_grid_cell_run_is_exact(tmp_path, optimizer):
    common = ["--optimizer", optimizer, "--eval-every", "2", "--lam-rec", "1e-3", "--lam-rec-from", "3"]
    assert run_cli(tmp_path, "whole", *common, "--iterations", "6") == 0
    assert run_cli(tmp_path, "parts", *common, "--iterations", "3") == 0
    assert main(["--out", str(tmp_path / "parts"), "--resume", "--iterations", "6", "--quiet"]) == 0
    a, b = tmp_path / "whole", tmp_path / "parts"
    assert Params.load(a / "final.npz") == Params.load(b / "final.npz")       # bit for bit, Wenc included
    with np.load(a / "checkpoint.npz") as ca, np.load(b / "checkpoint.npz") as cb:
        assert np.array_equal(ca["theta"], cb["theta"]) and float(ca["lam_rec"]) == float(cb["lam_rec"]) == 1e-3
    la, lb = read_log(a / "log.jsonl"), read_log(b / "log.jsonl")
    assert len(la) == len(lb) == 6
    for ra, rb in zip(la, lb):   # the same records but for timings (and nerr at the cut: its last iteration)
        assert set(ra) ^ set(rb) <= {"nerr"}
        assert all(ra[k] == rb[k] for k in set(ra) & set(rb) - {"seconds", "time", "calls"})
    assert nerr(a) == nerr(b)


def test_checkpoint_without_lam_rec_resumes_with_zero(tmp_path):
    # Checkpoints written before the weight decay existed hold no lam_rec.
    assert run_cli(tmp_path, "whole", "--iterations", "3", "--lam-rec", "0") == 0
    assert run_cli(tmp_path, "parts", "--iterations", "2", "--lam-rec", "0") == 0
    path = tmp_path / "parts" / "checkpoint.npz"
    ck = {k: v for k, v in np.load(path).items() if k != "lam_rec"}
    np.savez(path, **ck)
    assert main(["--out", str(tmp_path / "parts"), "--resume", "--iterations", "3", "--quiet"]) == 0
    assert Params.load(tmp_path / "whole" / "final.npz") == Params.load(tmp_path / "parts" / "final.npz")


def test_checkpoint_of_another_layout_is_refused(tmp_path, capsys):
    assert run_cli(tmp_path, "r", "--iterations", "1") == 0
    path = tmp_path / "r" / "checkpoint.npz"
    ck = dict(np.load(path))
    ck["theta"] = ck["theta"][:-32 * 32]                        # no Wenc block
    np.savez(path, **ck)
    assert main(["--out", str(tmp_path / "r"), "--resume", "--iterations", "2", "--quiet"]) == 2
    assert "does not match the run's (n_units, n_in, n_out) = (32, 2, 32) and a Wenc block of 32 columns" in \
        capsys.readouterr().err


def test_grid_cells_preset_runs_with_hf_at_full_size(tmp_path):
    # The preset at half its size (N = Np = 256, M = 200, T = 20) with HF, in float32 and without
    # biases: two iterations that lower the loss (4 s with the C core on 2 cores).
    assert main(["--out", str(tmp_path / "r"), "--preset", "grid-cells", "--optimizer", "hf", "--iterations", "2",
                 "--n-units", "256", "--n-place-cells", "256",
                 "--eval-every", "1", "--backend", "c", "--threads", "2", "--quiet"]) == 0
    log = read_log(tmp_path / "r" / "log.jsonl")
    assert all(r["accepted"] for r in log) and log[-1]["loss"] < log[0]["loss"]
    assert np.isfinite(nerr(tmp_path / "r"))
