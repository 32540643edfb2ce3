"""The analyses on networks of Sorscher et al.'s kind: place-cell readout, encoded
initial state, ReLU units, alpha != 0.1, smooth motion (issue 18).

Unit tests of the recording (start codes on the first chunk only, decoded
outputs), the probe, the real-path helpers, and ``python -m gridcore.analyze``
end to end on tiny trained runs.
"""

import json
import math

import numpy as np
import pytest

from gridcore.analysis import pipeline
from gridcore.analysis.probes import _RAYLEIGH_Q, probe_speeds, step_response
from gridcore.analysis.recording import (
    _noise_chunks,
    output_positions,
    path_errors,
    record,
    record_trajectories,
    trial_start_codes,
)
from gridcore.analysis.tracking import heading_baseline, long_path
from gridcore.backends import available_backends, get_backend
from gridcore.cli.analyze import main
from gridcore.model.params import Params, init_params
from gridcore.model.spec import ModelSpec
from gridcore.sim.placecells import PlaceCells, outputs_to_positions
from gridcore.sim.realpaths import motion_mean_speed, to_trajectories
from gridcore.sim.trajectories import SMOOTH_MOTION_DEFAULTS, simulate
from gridcore.train.config import make_config
from gridcore.train.loop import train
from gridcore.train.rundir import load_run

NUMPY = get_backend("numpy")
SPEC = ModelSpec(alpha=0.5, nonlinearity="relu", readout="place-cells", initial_state="encoded",
                 n_place_cells=24)
SMALL = ["--quick", "--backend", "numpy", "--n-trials", "20", "--long-steps", "2000",
         "--block-steps", "500", "--shuffles", "5", "--bins", "8", "--embedding", "mds", "--quiet"]
TINY = dict(n_units=12, n_trials=20, n_steps=40, curvature_trials=10, iterations=3, backend="numpy",
            eval_trials=20)


def _backends():
    """The NumPy reference, and the C core when it is built here (fast to load)."""
    return ["numpy"] + [n for n in available_backends() if n == "c"]


def _network(spec, n_units=10, n_in=2, seed=0):
    """init_params with random (nonzero) readout weights, so decoded outputs vary."""
    p = init_params(n_units, n_in, seed, spec=spec)
    rng = np.random.default_rng(seed + 1)
    return Params(p.Wrec, p.Win, rng.standard_normal(n_units) * 0.1,
                  rng.standard_normal((spec.n_out, n_units)), p.Wenc)


def _smooth_trials(n_trials=3, n_steps=25, seed=4):
    return simulate("square", n_trials, n_steps, seed, motion_model="smooth")


# ---------------------------------------------------------------- recording


def test_start_codes_only_under_the_encoded_state():
    pc = PlaceCells("square", n_cells=24)
    start = np.array([[0.1, -0.3], [0.0, 0.0]])
    np.testing.assert_array_equal(trial_start_codes(SPEC, pc, start), pc.encode(start))
    zero = ModelSpec(readout="place-cells", n_place_cells=24)
    assert trial_start_codes(zero, pc, start) is None
    with pytest.raises(ValueError, match="encoded.*PlaceCells \\(24 cells\\)"):
        trial_start_codes(SPEC, None, start)
    with pytest.raises(ValueError, match="PlaceCells \\(24 cells\\)"):
        trial_start_codes(SPEC, PlaceCells("square", n_cells=10), start)


def test_output_positions_decodes_in_blocks(monkeypatch):
    import gridcore.analysis.recording as recording
    pc = PlaceCells("square", n_cells=24)
    y = np.random.default_rng(0).standard_normal((3, 50, 24))
    want = outputs_to_positions(y, SPEC, pc)
    monkeypatch.setattr(recording, "_DECODE_BUDGET", 24 * 7)       # blocks of 7 rows
    np.testing.assert_array_equal(output_positions(y, SPEC, pc), want)
    xy = ModelSpec()
    np.testing.assert_array_equal(output_positions(y[..., :2], xy), y[..., :2])
    with pytest.raises(ValueError, match="place-cells"):
        output_positions(y, SPEC, None)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("noise_std", [0.0, 0.2])
def test_recording_with_the_encoded_state_is_one_forward_pass_from_wenc_c(backend, noise_std):
    """Chunks of 7 steps: only the first starts from Wenc c(start), the others continue from x_end."""
    be = get_backend(backend)
    pc = PlaceCells("square", n_cells=24, sigma=0.3)
    params = _network(SPEC)
    traj = _smooth_trials()
    m, t, _ = traj.inputs.shape
    rec = record_trajectories(params, be, traj, seed=9, noise_std=noise_std, spec=SPEC, place_cells=pc,
                              chunk_steps=7)
    noise = None
    if noise_std > 0:        # the draws run_chunks makes, chunk by chunk
        noise = np.concatenate([z for _, _, z in _noise_chunks(np.random.default_rng(9), m, t, 10, noise_std, 7)],
                               axis=1)
    x0 = pc.encode(traj.start) @ params.Wenc.T
    ref = NUMPY.forward(params, traj.inputs, noise, x0=x0, spec=SPEC)
    assert not np.allclose(x0, 0.0)
    tol = dict(rtol=1e-12, atol=1e-12) if backend == "numpy" else dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(rec.rates, ref.u, **tol)
    np.testing.assert_allclose(rec.activity, ref.u.reshape(m * t, -1), **tol)
    np.testing.assert_allclose(rec.outputs, pc.decode(ref.y), atol=1e-12)
    assert rec.outputs.shape == (m, t, 2) and rec.positions.shape == (m, t, 2)
    # The same with the first state given explicitly, and not the same from x_0 = 0.
    same = be.forward(params, traj.inputs, noise, spec=SPEC, start_codes=pc.encode(traj.start))
    np.testing.assert_allclose(same.u, ref.u, **tol)
    from_zero = NUMPY.forward(params, traj.inputs, noise, x0=np.zeros_like(x0), spec=SPEC)
    assert not np.allclose(from_zero.u[:, :3], ref.u[:, :3])
    # path_errors streams the same pass and keeps the squared error of the decoded position.
    err = path_errors(params, be, traj, noise_std, 9, SPEC, chunk_steps=7, place_cells=pc)
    np.testing.assert_allclose(err, np.sum((pc.decode(ref.y) - traj.positions) ** 2, axis=2), atol=1e-12)


def test_development_runs_every_trial_slice_from_its_start_code():
    from gridcore.analysis.development import stage_responses
    from gridcore.analysis.ratemaps import RateMapAccumulator
    pc = PlaceCells("square", n_cells=24)
    params = _network(SPEC)
    traj = _smooth_trials(n_trials=5)
    _, maps = stage_responses([params], NUMPY, traj, 0.0, seed=1, spec=SPEC, bins=5, trial_chunk=2,
                              place_cells=pc)
    rec = record_trajectories(params, NUMPY, traj, 0, spec=SPEC, place_cells=pc)
    acc = RateMapAccumulator(traj.arena, 5, 10)
    acc.add(rec.rates, traj.positions)
    np.testing.assert_allclose(maps[0], acc.maps(), rtol=1e-12, atol=1e-12)


def test_record_simulates_the_given_motion_model():
    pc = PlaceCells("square", n_cells=24)
    a = record(_network(SPEC), NUMPY, "square", 2, 30, seed=3, spec=SPEC, motion={"dt": 0.05},
               motion_model="smooth", place_cells=pc)
    traj = simulate("square", 2, 30, np.random.default_rng(3), motion_model="smooth", dt=0.05)
    np.testing.assert_array_equal(a.positions, traj.positions)
    assert np.all(a.speed > 0)                   # smooth foraging never stands still


def test_many_place_cell_outputs_run_in_shorter_chunks(monkeypatch):
    import gridcore.analysis.recording as recording
    calls = []
    real = recording.run_chunks

    def spy(*args, **kw):
        calls.append(args[6] if len(args) > 6 else kw.get("chunk_steps"))
        return real(*args, **kw)

    monkeypatch.setattr(recording, "run_chunks", spy)
    monkeypatch.setattr(recording, "_OUTPUT_BUDGET", 3 * 24 * 10)     # 10 steps of 3 trials x 24 outputs
    pc = PlaceCells("square", n_cells=24)
    traj = _smooth_trials()
    rec = recording.record_trajectories(_network(SPEC), NUMPY, traj, 0, spec=SPEC, place_cells=pc)
    assert calls == [10]
    full = recording.record_trajectories(_network(SPEC), NUMPY, traj, 0, spec=SPEC, place_cells=pc,
                                         chunk_steps=5)
    np.testing.assert_allclose(rec.activity, full.activity, rtol=1e-12, atol=1e-12)


def test_long_path_with_the_smooth_model_and_place_cells():
    pc = PlaceCells("square", n_cells=24)
    out = long_path(_network(SPEC), NUMPY, pc.arena, 600, seed=1, motion_model="smooth", spec=SPEC,
                    block=200, chunk_steps=250, bins=6, place_cells=pc)
    assert out["n_blocks"] == 3 and np.isfinite(out["error"]) and np.isfinite(out["constant_error"])
    # Arena units: the decoded positions lie in the 2 x 2 square, so errors are at most its diagonal^2.
    assert 0 < out["error"] <= 8.0


def test_heading_baseline_from_the_start():
    traj = _smooth_trials(n_trials=20, n_steps=50)
    args = (traj.speed, traj.heading, traj.positions, traj.arena)
    from_start = heading_baseline(*args, start=traj.start)
    assert from_start < heading_baseline(*args)            # uniform starts: the centre is a poor guess
    with pytest.raises(ValueError, match="start must have shape"):
        heading_baseline(*args, start=traj.start[:3])


# ---------------------------------------------------------------- probe


def test_probe_speeds_of_the_smooth_model():
    smooth = make_config("quick", motion_model="smooth", motion={"dt": 0.05}).task
    s = SMOOTH_MOTION_DEFAULTS["rayleigh_scale"] * 0.05 * _RAYLEIGH_Q
    np.testing.assert_allclose(probe_speeds(smooth), s)
    paper = make_config("quick").task
    np.testing.assert_allclose(probe_speeds(paper), [0.027543, 0.070644, 0.128758], atol=1e-6)


def test_step_response_starts_from_the_centres_code_and_decodes():
    pc = PlaceCells("square", n_cells=24, sigma=0.3)
    params = _network(SPEC)
    r = step_response(params, NUMPY, "speed-angle", speeds=(0.05,), n_headings=8, settle=5, after=5,
                      spec=SPEC, place_cells=pc)
    # By hand: the rest trials, from x_0 = Wenc c(0), decoded at the end.
    h = -np.pi + (np.arange(8) + 0.5) * 2 * np.pi / 8
    inputs = np.stack([np.zeros((8, 11)), np.broadcast_to(h[:, None], (8, 11))], axis=-1)
    y = NUMPY.forward(params, inputs, x0=pc.encode(np.zeros((8, 2))) @ params.Wenc.T, spec=SPEC).y[:, -1]
    np.testing.assert_array_equal(r["rest_output"], pc.decode(y))
    assert r["response"].shape == (1, 8, 2) and np.all(np.isfinite(r["gain"]))
    with pytest.raises(ValueError, match="PlaceCells"):
        step_response(params, NUMPY, "speed-angle", n_headings=4, spec=SPEC)


# ---------------------------------------------------------------- real paths


def test_realpath_motion_matches_the_smooth_speed_per_step():
    task = make_config("quick", motion_model="smooth", motion={"dt": 0.04}).task
    mean = SMOOTH_MOTION_DEFAULTS["rayleigh_scale"] * 0.04 * math.sqrt(math.pi / 2)
    assert motion_mean_speed(pipeline.realpath_motion(task)) == pytest.approx(mean)
    paper = make_config("quick", motion={"speed_scale": 0.05}).task
    assert pipeline.realpath_motion(paper) == {"speed_scale": 0.05}


def test_cut_trials_are_the_paths_own_steps():
    t = np.linspace(0, 6, 108)
    pos = np.stack([0.8 * np.sin(t), 0.7 * np.cos(1.3 * t)], axis=1)
    path = to_trajectories(pos, simulate("square", 1, 2, 0).arena, "speed-cos-sin",
                           motion={"lead_in_steps": 5, "source": "test"})
    cut = pipeline.cut_trials(path, 25)
    assert cut.inputs.shape == (4, 25, 3) and cut.motion["lead_in_steps"] == 0
    assert cut.motion["split"] == {"n_trials": 4, "n_steps": 25, "moves_left_out": 2}
    for k in range(4):
        sl = slice(5 + 25 * k, 5 + 25 * (k + 1))
        np.testing.assert_array_equal(cut.inputs[k], path.inputs[0, sl])
        np.testing.assert_array_equal(cut.positions[k], path.positions[0, sl])
        np.testing.assert_array_equal(cut.boundary[k], path.boundary[0, sl])
        np.testing.assert_array_equal(cut.final_position[k], pos[5 + 25 * (k + 1)])
    with pytest.raises(ValueError, match="fewer than one trial"):
        pipeline.cut_trials(path, 200)


# ---------------------------------------------------------------- end to end


def _wandering_csv(path, seconds=30.0, hz=25.0):
    """A smooth path in cm (a Lissajous figure in a 100 cm box), as a tracker's CSV."""
    t = np.arange(0.0, seconds, 1.0 / hz)
    x = 50 + 45 * np.sin(2 * np.pi * t / 13.0)
    y = 50 + 45 * np.sin(2 * np.pi * t / 7.7 + 0.5)
    path.write_text("time,x,y\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(t, x, y)) + "\n")
    return path


MODELS = {
    # Sorscher et al.'s kind: everything new at once.
    "sorscher": dict(model={"nonlinearity": "relu", "readout": "place-cells", "initial_state": "encoded",
                            "n_place_cells": 24, "alpha": 0.5},
                     motion_model="smooth", place_cells={"sigma": 0.3}),
    # The place-cell readout from x_0 = 0 (real paths get a lead-in at the smooth model's speed).
    "readout_only": dict(model={"nonlinearity": "relu", "readout": "place-cells", "n_place_cells": 16,
                                "alpha": 0.3},
                         motion_model="smooth", motion={"start": "centre"}, place_cells={"layout": "lattice"}),
    # The x, y readout from an encoded state on the paper's motion.
    "encoded_xy": dict(model={"initial_state": "encoded", "n_place_cells": 20, "alpha": 0.2}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("pcruns")
    for name, settings in MODELS.items():
        train(make_config("quick", **TINY, **settings), base / name, stream=None)
    return base


@pytest.fixture(scope="module")
def analysed(runs, tmp_path_factory):
    csv = _wandering_csv(tmp_path_factory.mktemp("paths") / "rat.csv")
    assert main([str(runs / "sorscher"), *SMALL, "--compare", str(runs / "readout_only"),
                 "--trajectory", str(csv)]) == 0
    with open(runs / "sorscher" / "analysis" / "metrics.json") as fh:
        return runs / "sorscher" / "analysis", json.load(fh)


def test_cli_end_to_end_on_a_sorscher_network(analysed):
    out, m = analysed
    assert m["config"]["model"]["readout"] == "place-cells" and m["config"]["motion_model"] == "smooth"
    t = m["tracking"]
    for k in ("normalised_error", "squared_error", "best_constant_error", "heading_baseline_normalised_error"):
        assert np.isfinite(t[k]), k
    # Arena units: decoded positions and true positions lie in the 2 x 2 square.
    assert 0 < t["squared_error"] <= 8.0 and 0 < t["best_constant_error"] <= 2.0
    assert len(t["squared_error_by_step"]) == 40
    assert np.isfinite(m["stability"]["error"]) and m["stability"]["n_steps"] == 2000
    speeds = m["probe"]["final"]["speeds"]
    np.testing.assert_allclose(speeds, SMOOTH_MOTION_DEFAULTS["rayleigh_scale"] * 0.02 * _RAYLEIGH_Q)
    assert [o["iteration"] for o in m["probe"]["over_training"]] == [0, 3]
    assert len(m["celltypes"]["units"]["spatial_type"]) == 12
    # The real path: no lead-in (the network is given its start), speeds matched to the smooth model's.
    p = m["trajectory"]
    assert p["path"]["lead_in_steps"] == 0 and p["real"]["trials"]["lead_in_steps"] == 0
    assert p["real"]["trials"]["n_trials"] == p["n_steps"] // 40
    assert p["real"]["statistics"]["speed"]["mean"] == pytest.approx(
        p["simulated"]["statistics"]["speed"]["mean"], rel=0.15)
    for name in ("real", "simulated"):
        assert np.isfinite(p[name]["tracking"]["normalised_error"])
        assert np.isfinite(p[name]["trials"]["normalised_error"])
    assert m["comparison"]["runs"][1]["differs"]["model"][1]["initial_state"] == "zero"
    assert set(m["figures"]) >= {"tracking", "probe", "ratemaps", "stability", "comparison", "path_error"}
    for fig in m["figures"].values():
        assert (out / fig["file"]).stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "decoded place-cell read-out (24 cells" in html
    assert "starting where it is" in html


@pytest.mark.parametrize("name", ["readout_only", "encoded_xy"])
def test_analyze_run_on_other_variants(runs, name, tmp_path):
    csv = _wandering_csv(tmp_path / "rat.csv", seconds=20.0)
    settings = pipeline.AnalysisSettings.make(quick=True, n_trials=10, long_steps=1000, block_steps=500,
                                              shuffles=3, bins=6, embedding="mds", trajectory=str(csv))
    a = pipeline.analyze_run(str(runs / name), backend="numpy", settings=settings)
    run = load_run(runs / name)
    m = a.metrics
    # C1's outputs: the run's held-out trials, not the analysis's 10 test trials.
    assert a.outputs.shape == a.positions.shape == (run.settings.output.eval_trials, 40, 2)
    assert np.isfinite(m["tracking"]["normalised_error"]) and np.isfinite(m["stability"]["error"])
    assert 0 < m["tracking"]["squared_error"] <= 8.0
    lead = m["trajectory"]["path"]["lead_in_steps"]
    if run.spec.initial_state == "encoded":
        assert lead == 0
    else:
        assert lead > 0 and m["trajectory"]["real"]["trials"]["lead_in_steps"] > 0
    if run.settings.task.motion_model == "paper":
        assert m["probe"]["final"]["speeds"] == pytest.approx([0.027543, 0.070644, 0.128758], abs=1e-6)


def test_a_network_that_diverges_on_a_long_path_gets_an_infinite_error_not_a_crash():
    # W_rec = 3 I with ReLU and leak 0.5: active units double every step and overflow after ~1000 steps.
    pc = PlaceCells("square", n_cells=24)
    p = _network(SPEC)
    p = Params(3.0 * np.eye(p.n_units), p.Win, np.abs(p.b) + 0.1, p.Wout, p.Wenc)
    traj = _smooth_trials(n_trials=2, n_steps=1500)
    with np.errstate(over="ignore", invalid="ignore"):
        err = path_errors(p, NUMPY, traj, 0.0, 9, SPEC, chunk_steps=250, place_cells=pc)
        ref = NUMPY.forward(p, traj.inputs, None, spec=SPEC, start_codes=pc.encode(traj.start)).y
    first = int(np.flatnonzero(~np.isfinite(ref).all(axis=(0, 2)))[0])     # the first step any path overflows
    assert 500 < first < 1500
    np.testing.assert_allclose(err[:, :first], np.sum((pc.decode(ref[:, :first]) - traj.positions[:, :first]) ** 2,
                                                      axis=2), atol=1e-12)
    assert np.all(np.isinf(err[:, first:]))
    with np.errstate(over="ignore", invalid="ignore"):
        out = long_path(p, NUMPY, pc.arena, 3000, seed=1, motion_model="smooth", spec=SPEC, block=200,
                        chunk_steps=250, bins=6, place_cells=pc)
    k = out["diverged_at_step"]
    assert 0 < k < 3000 and out["error"] is None and out["ratio"] is None and out["last_block"] is None
    assert all(e is not None for e in out["error_mean"][:k // 200]) and out["error_mean"][-1] is None
    assert out["first_block"] is not None and np.isfinite(out["constant_error"])
    # The report states it instead of failing on the missing numbers.
    from gridcore.report import figures
    from gridcore.report.html import _diverged
    assert f"overflowed at step {k:,}" in _diverged(out)
    figures.stability_figure(out).clf()
    # A network that does not diverge says so.
    assert long_path(_network(SPEC), NUMPY, pc.arena, 600, seed=1, motion_model="smooth", spec=SPEC, block=200,
                     chunk_steps=250, bins=6, place_cells=pc)["diverged_at_step"] is None
