"""One held-out error per run, and the verdict on speed: final_metrics.json, the log and the
analysis's C1 agree, against the heading-only integrator on the same trials."""

import json

import numpy as np
import pytest

from gridcore.analysis.tracking import held_out_tracking
from gridcore.backends import get_backend
from gridcore.train.config import make_config
from gridcore.train.heldout import (
    MAX_ERROR_RATIO,
    MIN_STEP_GAIN,
    normalised_error,
    readout_floor,
    speed_use,
    trials_baseline,
)
from gridcore.train.loop import held_out_trials, train
from gridcore.train.rundir import load_run

TINY = dict(n_units=10, n_trials=16, n_steps=30, curvature_trials=8, iterations=3, eval_every=1,
            eval_trials=12, backend="numpy", threads=1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("heldout") / "run"
    train(make_config("quick", **TINY), out, stream=None)
    return out


def test_final_metrics_log_and_analysis_give_one_error(run_dir):
    metrics = json.loads((run_dir / "final_metrics.json").read_text())
    last = [json.loads(line) for line in open(run_dir / "log.jsonl")][-1]
    assert metrics["nerr_heldout"] == last["nerr"]
    track, outputs, positions = held_out_tracking(load_run(run_dir), get_backend("numpy", 1))
    assert track["normalised_error"] == pytest.approx(metrics["nerr_heldout"], rel=1e-12)
    assert track["n_trials"] == TINY["eval_trials"] and outputs.shape == positions.shape == (12, 30, 2)
    assert track["heading_baseline_normalised_error"] == metrics["heading_baseline_nerr"]


def test_final_metrics_say_whether_the_network_uses_speed(run_dir):
    metrics = json.loads((run_dir / "final_metrics.json").read_text())
    run = load_run(run_dir)
    _, traj = held_out_trials(run.settings, run.arena)
    assert metrics["heading_baseline_nerr"] == trials_baseline(traj, run.arena, run.spec) > 0
    ratio = metrics["nerr_heldout"] / metrics["heading_baseline_nerr"]
    assert metrics["error_ratio"] == pytest.approx(ratio)
    assert metrics["integrates_speed"] == (ratio <= MAX_ERROR_RATIO) is False     # 3 iterations: not yet
    assert metrics["verdict"].startswith("does not integrate speed: held-out error ")


@pytest.mark.parametrize("error,gain,integrates", [(0.05, 0.95, True), (0.05, None, True), (0.05, 0.5, False),
                                                   (0.15, 0.95, False), (0.1, 0.95, True)])
def test_speed_use_needs_both_tests(error, gain, integrates):
    got = speed_use(error, 0.2, gain)
    assert got["integrates_speed"] is integrates and got["error_ratio"] == pytest.approx(error / 0.2)
    assert got["verdict"].startswith("integrates speed:" if integrates else "does not integrate speed:")
    assert f"{error:.3f}" in got["verdict"] and "0.200" in got["verdict"]
    assert (f"{gain:.2f}" in got["verdict"] and f"above {MIN_STEP_GAIN:g}" in got["verdict"]) if gain else \
        "step_gain" not in got



@pytest.mark.parametrize("floor,tells", [(0.0, True), (0.09, True), (0.11, False), (0.3, False)])
def test_speed_use_cannot_tell_below_the_readouts_resolution(floor, tells):
    got = speed_use(0.05, 0.2, 0.95, floor=floor)
    assert got["error_ratio"] == pytest.approx(0.25)
    assert ("readout_floor" in got) == (floor > 0)
    if tells:
        assert got["integrates_speed"] is True and got["verdict"].startswith("integrates speed:")
    else:    # a perfect integrator read through the readout would fail the test: no verdict either way
        assert got["integrates_speed"] is None and "step_gain" not in got
        assert got["verdict"].startswith("cannot tell whether it integrates speed:")
        assert f"{floor:.4f}" in got["verdict"] and "0.2000" in got["verdict"]


def test_the_readout_floor_is_the_true_positions_decoded(tmp_path):
    cfg = make_config("grid-cells", n_units=8, n_trials=6, curvature_trials=3, n_steps=9, iterations=2, eval_trials=7,
                      backend="numpy", threads=1, dtype="float64")    # 512 place cells, as Sorscher et al.
    train(cfg, tmp_path / "run", stream=None)
    run = load_run(tmp_path / "run")
    _, traj = held_out_trials(run.settings, run.arena, run.place_cells)
    pc = run.place_cells
    explicit = normalised_error(pc.decode(pc.encode(traj.positions)), traj.positions)
    floor = readout_floor(traj.positions, run.spec, pc, chunk=5)       # chunks of 5 rows give the same
    assert floor == pytest.approx(explicit, rel=1e-12) and 0 < floor < 1
    assert readout_floor(traj.positions, make_config("quick").model) == 0.0
    with pytest.raises(ValueError, match="needs the run's place_cells"):
        readout_floor(traj.positions, run.spec)
    # final_metrics.json and the analysis's C1 carry it and judge with it.
    metrics = json.loads((tmp_path / "run" / "final_metrics.json").read_text())
    assert metrics["readout_floor"] == pytest.approx(floor, rel=1e-12)
    assert metrics == {**metrics, **speed_use(metrics["nerr_heldout"], metrics["heading_baseline_nerr"], floor=floor)}
    track, _, _ = held_out_tracking(run, get_backend("numpy", 1))
    assert track["readout_floor"] == pytest.approx(floor, rel=1e-12)
    assert np.isfinite(track["heading_baseline_normalised_error"])
