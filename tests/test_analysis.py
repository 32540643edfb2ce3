"""The paper's analyses (gridcore.analysis: tracking, unitsummary, development, compare) on synthetic inputs."""

import os
import sys
import warnings

import numpy as np
import pytest

from gridcore.analysis.celltypes import CellTypes
from gridcore.analysis.compare import compare_runs
from gridcore.analysis.development import embed, select_stages, stage_responses
from gridcore.analysis.ratemaps import map_correlation
from gridcore.analysis.tracking import (
    INTERACTION_GROUPS,
    error_correction,
    heading_baseline,
    long_path,
    stability,
    tracking,
)
from gridcore.analysis.unitsummary import (
    grid_symmetry_counts,
    heading_wrap,
    pick_examples,
    ramps,
    selectivity,
    tuning_summary,
)
from gridcore.model.params import init_params
from gridcore.train.config import make_config
from gridcore.train.loop import train
from gridcore.train.rundir import load_run

# ---------------------------------------------------------------- C7 error correction


def _traces(n_next_per_trial, t0=100, t_steps=200, drop_per=0.1):
    """Error 1 up to the first interaction at t0, then 1 - drop_per (1 + n) after it, where n
    interactions follow at t0 + 2, t0 + 4, ... (within the 50-step window)."""
    m = len(n_next_per_trial)
    err = np.ones((m, t_steps))
    boundary = np.zeros((m, t_steps), bool)
    for i, n in enumerate(n_next_per_trial):
        boundary[i, t0] = True
        boundary[i, t0 + 2 + 2 * np.arange(n)] = True
        err[i, t0 + 1:] = 1 - drop_per * (1 + n)
    return err, boundary


def test_error_correction_drop_per_group_is_known():
    ns = [0, 0, 0, 1, 1, 3, 4, 5, 2, 7, 9]
    err, boundary = _traces(ns)
    ec = error_correction(err, boundary, window=50)
    groups = {tuple(g["range"]): g for g in ec["groups"]}
    assert [groups[r]["n_trials"] for r in INTERACTION_GROUPS] == [3, 2, 4, 2]
    assert groups[(0, 0)]["drop"] == pytest.approx(0.1)
    assert groups[(1, 1)]["drop"] == pytest.approx(0.2)
    assert groups[(2, 5)]["drop"] == pytest.approx(0.1 * (1 + np.mean([3, 4, 5, 2])))
    assert groups[(6, 50)]["drop"] == pytest.approx(0.1 * (1 + 8))
    assert groups[(0, 0)]["before"] == pytest.approx(1.0)
    assert groups[(0, 0)]["relative_drop"] == pytest.approx(0.1)
    # The curve is 1 up to offset 0 and lower from offset +1 on.
    mean = np.array(groups[(1, 1)]["mean"])
    assert np.allclose(mean[:51], 1.0) and np.allclose(mean[51:], 0.8)
    assert len(mean) == len(ec["offsets"]) == 101
    assert ec["drops_increase"] is None      # only the (0, 0) group has >= 5 trials
    assert ec["n_aligned"] == len(ns) and ec["no_interaction"]["n_trials"] == 0


def test_error_correction_monotonic_flag_and_no_interaction_growth():
    err, boundary = _traces([0] * 5 + [1] * 5 + [3] * 5)
    t = np.arange(200)
    flat = 0.01 * t                               # trials without interactions: linear growth
    err = np.vstack([err, np.tile(flat, (4, 1))])
    boundary = np.vstack([boundary, np.zeros((4, 200), bool)])
    ec = error_correction(err, boundary)
    assert ec["drops_increase"] is True
    g = ec["no_interaction"]
    assert g["n_trials"] == 4
    assert g["slope"] == pytest.approx(0.01) and g["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert g["r2"] == pytest.approx(1.0)
    assert g["t_ref"] == 100                      # the median first interaction
    assert np.allclose(g["aligned_mean"], flat[50:151])
    # Error growing after the interaction instead: the flag goes False.
    err2, b2 = _traces([0] * 5 + [1] * 5 + [3] * 5, drop_per=-0.1)
    assert error_correction(err2, b2)["drops_increase"] is False


def test_error_correction_leaves_out_trials_without_a_full_window():
    err, boundary = _traces([0, 0, 0], t0=30)     # first interaction before step 50
    err2, boundary2 = _traces([0, 0], t0=170)     # window runs past the end
    ec = error_correction(np.vstack([err, err2]), np.vstack([boundary, boundary2]))
    assert ec["n_with_interaction"] == 5 and ec["n_aligned"] == 0
    assert all(g["mean"] is None and g["drop"] is None for g in ec["groups"])


def test_error_correction_rejects_bad_arguments():
    err, boundary = _traces([0])
    with pytest.raises(ValueError, match="err and boundary"):
        error_correction(err, boundary[:, :10])
    with pytest.raises(ValueError, match="window"):
        error_correction(err, boundary, window=0)
    with pytest.raises(ValueError, match="pre_steps"):
        error_correction(err, boundary, window=5, pre_steps=10)


# ---------------------------------------------------------------- C8 stability


def test_stability_of_a_flat_error_trace():
    rng = np.random.default_rng(0)
    pos = rng.uniform(-1, 1, (2, 50_000, 2))
    err = np.full((2, 50_000), 0.05)
    st = stability(err, pos, block=10_000)
    const = np.mean(np.sum((pos - pos.reshape(-1, 2).mean(0)) ** 2, axis=2))
    assert st["n_blocks"] == 5 and st["block_end"] == [10_000, 20_000, 30_000, 40_000, 50_000]
    assert st["error"] == pytest.approx(0.05)
    assert st["constant_error"] == pytest.approx(const)
    assert st["ratio"] == pytest.approx(0.05 / const)
    assert st["slope_per_million_steps"] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(st["error_sd"], 0.0) and np.allclose(st["path_sd"], 0.0)
    assert st["first_block"] == st["last_block"] == pytest.approx(0.05)


def test_stability_slope_of_a_growing_error_and_partial_block():
    t = np.arange(25_000)
    err = (1e-6 * t)[None]                        # 1 per 10^6 steps
    pos = np.zeros((1, 25_000, 2))
    pos[0, :, 0] = np.where(t % 2, 1.0, -1.0)      # constant error exactly 1 around c = 0
    st = stability(err, pos, block=10_000)
    assert st["n_blocks"] == 2                      # the last 5,000 steps are left out
    assert st["slope_per_million_steps"] == pytest.approx(1.0)
    assert st["constant_mean"] == pytest.approx([1.0, 1.0])
    assert st["path_sd"] is None
    with pytest.raises(ValueError, match="shorter than one block"):
        stability(err[:, :500], pos[:, :500], block=1000)


def test_stability_of_a_diverged_path_reports_none_for_its_blocks_without_a_warning():
    rng = np.random.default_rng(1)
    pos = rng.uniform(-1, 1, (2, 300, 2))
    err = np.full((2, 300), 0.1)
    err[1, 250:] = np.inf                           # path 1 overflows at step 250
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # inf - inf in the sd of the last block must not warn
        st = stability(err, pos, block=100)
    assert st["diverged_at_step"] == 250
    assert st["error_mean"][:2] == pytest.approx([0.1, 0.1]) and st["error_mean"][2] is None
    assert st["error_sd"][:2] == pytest.approx([0.0, 0.0], abs=1e-15) and st["error_sd"][2] is None
    assert st["path_sd"][:2] == pytest.approx([0.0, 0.0], abs=1e-15) and st["path_sd"][2] is None
    assert st["error"] is None and st["first_block"] == pytest.approx(0.1)


def test_long_path_streams_and_matches_stability():
    params = init_params(8, 2, seed=0)
    from gridcore.backends import get_backend
    from gridcore.sim.arenas import make_arena
    seen = []
    out = long_path(params, get_backend("numpy"), make_arena("square"), 3000, seed=1, n_paths=2,
                       noise_std=0.1, block=1000, chunk_steps=700, bins=8,
                       progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3000, 3000) and len(seen) == 5            # 5 chunks of <= 700 steps
    assert out["n_blocks"] == 3 and out["n_paths"] == 2
    assert len(out["map_stability"]["correlation_first_vs_second_half"]) == 8
    assert len(out["boundary_interactions_per_block"]) == 3


def test_map_correlation():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 6, 6))
    b = a.copy()
    b[1] = -a[1]
    b[2, :2] = np.nan                              # NaN bins are left out
    r = map_correlation(a, b)
    assert r == pytest.approx([1.0, -1.0, 1.0])
    const = np.ones((1, 6, 6))
    assert np.isnan(map_correlation(const, a[:1])[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # maps of runaway activity must not overflow
        assert map_correlation(1e200 * a, b) == pytest.approx([1.0, -1.0, 1.0])


# ---------------------------------------------------------------- C1 tracking


def test_tracking_perfect_and_constant_outputs():
    rng = np.random.default_rng(2)
    p = rng.uniform(-1, 1, (4, 30, 2))
    perfect = tracking(p, p)
    assert perfect["normalised_error"] == 0.0 and perfect["squared_error"] == 0.0
    const = tracking(np.broadcast_to(p.mean(axis=(0, 1)), p.shape), p)
    assert const["normalised_error"] == pytest.approx(1.0)
    assert const["squared_error"] == pytest.approx(const["best_constant_error"])
    assert len(const["squared_error_by_step"]) == 30
    assert set(const["example_trials"]) == {"p25", "median", "p75"}
    with pytest.raises(ValueError, match="shape"):
        tracking(p[:, :, :1], p)


# ---------------------------------------------------------------- C3, C4 on a made-up classification


def _fake_types():
    n = 6
    st = np.array(["grid", "border", "band", "irregular", "grid", "none"], dtype=object)
    scores = {"grid60": np.array([0.9, 0.1, 0.0, 0.2, 0.5, 0.0]),
              "grid90": np.array([0.1, 0.1, 0.0, 0.1, 0.2, 0.0]),
              "border": np.array([0.1, 0.8, 0.2, 0.1, 0.0, 0.1]),
              "band": np.array([0.3, 0.1, 0.9, 0.2, 0.2, 0.1]),
              "spatial_information": np.array([0.5, 0.4, 0.3, 0.6, 0.2, 0.1]),
              "lifetime_sparseness": np.array([0.2, 0.1, 0.15, 0.3, 0.05, 0.01]),
              "speed_selectivity": np.array([0.1, 0.0, 0.3, 0.2, 0.1, 0.0]),
              "direction_selectivity": np.array([0.1, 0.2, 0.3, 1.0, 0.4, 0.9])}
    return CellTypes(scores=scores, thresholds={k: np.zeros(n) for k in scores}, null={},
                     spatial_type=st, grid_symmetry=np.array([60, 0, 0, 0, 60, 0]),
                     periodic=np.array([1, 0, 1, 0, 1, 0], bool),
                     speed_tuned=np.array([1, 0, 1, 1, 0, 0], bool),
                     direction_tuned=np.array([0, 0, 1, 1, 1, 1], bool),
                     labels=[("grid", "speed"), ("border",), ("band", "speed", "direction"),
                             ("irregular", "speed", "direction"), ("grid", "direction"), ("direction",)],
                     maps=np.zeros((n, 4, 4)))


def test_ramps_counts_the_planar_maps_per_type():
    from dataclasses import replace
    y, x = np.mgrid[0:4, 0:4].astype(float)
    bump = np.exp(-((x - 1.5) ** 2 + (y - 1.5) ** 2))
    maps = np.stack([x + y, bump, 2 * x - y + 0.05 * bump, bump, np.zeros((4, 4)), x])
    r = ramps(replace(_fake_types(), maps=maps))
    assert r["n_ramps"] == 3                       # the planes, not the bumps or the constant map
    assert r["plane"][0] == pytest.approx(1.0) and r["plane"][4] is None
    assert r["plane"][1] < 0.1
    assert r["median_plane_by_type"]["grid"] == pytest.approx(1.0)   # unit 0; unit 4 has no score
    assert set(r["median_plane_by_type"]) == {"grid", "border", "band", "irregular", "none"}
    assert ramps(replace(_fake_types(), maps=maps), threshold=0.0)["n_ramps"] == 5
    with pytest.raises(ValueError, match="threshold"):
        ramps(_fake_types(), threshold=90)


def test_heading_baseline_is_exact_at_constant_speed_and_about_0_2_on_the_paper_motion():
    from gridcore.sim.arenas import make_arena
    from gridcore.sim.trajectories import simulate
    square = make_arena("square")
    rng = np.random.default_rng(0)
    h = np.cumsum(rng.normal(0, 0.3, (20, 60)), axis=1)
    s = np.full(h.shape, 0.01)
    steps = s[..., None] * np.stack([np.cos(h), np.sin(h)], -1)
    p = np.concatenate([np.zeros((20, 1, 2)), np.cumsum(steps, axis=1)[:, :-1]], axis=1)
    assert heading_baseline(s, h, p, square) < 1e-25           # the mean speed is the speed
    t = simulate(square, 200, 500, 3)
    assert 0.15 < heading_baseline(t.speed, t.heading, t.positions, square) < 0.3
    # Walls: the estimate stays inside, so a path pressed into a corner is matched there.
    corner = np.broadcast_to([0.0, 0.0], (1, 400, 2)).copy()
    corner[0, 1:] = np.minimum(0.01 * np.arange(1, 400), 1.0)[:, None]
    hh = np.full((1, 400), np.pi / 4)
    ss = np.full((1, 400), 0.01 * np.sqrt(2))
    assert heading_baseline(ss, hh, corner, square) < 1e-20
    with pytest.raises(ValueError, match=r"speed and heading must have shape \(M, T\)"):
        heading_baseline(s, h[:, :-1], p, square)


def test_pick_examples_follows_the_papers_order():
    ex = pick_examples(_fake_types(), n_direction=2, n_grid=2, n_border=2, n_band=1)
    assert [(e["unit"], e["role"]) for e in ex] == [
        (3, "direction-selective"), (5, "direction-selective"), (0, "grid"), (4, "grid"),
        (1, "border"), (2, "band")]
    # One border unit short: the most informative unit left (5) makes up for it.
    ex = pick_examples(_fake_types(), n_direction=1, n_grid=2, n_border=2, n_band=1)
    assert [(e["unit"], e["role"]) for e in ex][-1] == (5, "most spatial information")
    assert ex[0]["labels"] == ["irregular", "speed", "direction"]


def test_heading_wrap_finds_units_driven_by_the_raw_angle():
    theta = np.linspace(-np.pi, np.pi, 36, endpoint=False) + np.pi / 36
    curves = np.stack([np.cos(theta - 1.0),          # a code of direction: smooth at +-180 deg
                       0.3 * theta,                   # the raw angle: steps by its whole range
                       np.zeros(36),                  # flat: no ratio
                       np.where(theta > 3.0, np.nan, theta)])   # an empty bin: no ratio
    w = heading_wrap(curves)
    assert w["ratio"][0] < 0.1 and w["ratio"][1] > 0.95 and w["ratio"][2:] == [None, None]
    assert w["n_above"] == 1 and 0.05 < w["median_step_ratio"] < 0.2
    with pytest.raises(ValueError, match="direction_curves"):
        heading_wrap(np.zeros(36))


def test_tuning_summary_and_selectivity():
    types = _fake_types()
    summ = tuning_summary(types, speed_r2=np.array([0.9, 0.1, 0.8, 0.7, 0.2, np.nan]), top_fraction=0.34)
    assert summ["by_type"]["grid"]["n"] == 2
    assert summ["by_type"]["border"]["median_speed_selectivity"] == 0.0
    assert summ["speed_tuned_fraction"] == pytest.approx(0.5)
    assert summ["median_speed_r2_of_speed_tuned"] == pytest.approx(0.8)
    assert summ["most_direction_tuned"]["units"] == [3, 5]
    sel = selectivity(types)
    assert sel["speed"] == list(types.scores["speed_selectivity"])
    rho = sel["spearman"]["direction_vs_spatial"]
    assert rho["n"] == 6 and -1 <= rho["rho"] <= 1
    counts = grid_symmetry_counts(types)
    assert counts == {"n_grid": 2, "n_grid60": 2, "n_grid90": 0, "median_grid60_of_grid_units": 0.7,
                      "median_grid90_of_grid_units": pytest.approx(0.15)}


# ---------------------------------------------------------------- C5 development


def test_select_stages():
    assert select_stages([0, 10, 30], 60) == [10, 30, 60]
    # intermediate: closest to the geometric mean of early and final in log-iterations
    assert select_stages([0, 10, 20, 50, 100, 200, 500], 1000) == [10, 100, 1000]
    assert select_stages([0], 3) == [0, 3]
    assert select_stages([], 3) == [3]
    assert select_stages([0, 10, 30, 90], 60) == [10, 30, 60]     # later snapshots ignored
    assert select_stages([0, 10, 30], 60, stages=[60, 0]) == [0, 60]
    with pytest.raises(ValueError, match="available: \\[0, 10, 30, 60\\]"):
        select_stages([0, 10, 30], 60, stages=[20])


def _clusters():
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(0, 0.1, (10, 5)), rng.normal(3, 0.1, (10, 5))])
    return np.linalg.norm(x[:, None] - x[None], axis=2)


def test_embed_mds_separates_clusters_and_falls_back_without_sklearn(monkeypatch):
    d = _clusters()
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)       # import fails
    coords, info = embed(d, seed=0, method="tsne")
    assert info["method"] == "mds" and "scikit-learn" in info["note"]
    assert coords.shape == (20, 2)
    # Classical MDS of Euclidean distances recovers them (here: 2 tight clusters 3 sqrt(5) apart).
    gap = np.linalg.norm(coords[:10].mean(0) - coords[10:].mean(0))
    assert gap == pytest.approx(3 * np.sqrt(5), rel=0.05)
    with pytest.raises(ValueError, match="method"):
        embed(d, seed=0, method="umap")


def test_embed_tsne_is_seeded():
    pytest.importorskip("sklearn")
    d = _clusters()
    a, info = embed(d, seed=4)
    b, _ = embed(d, seed=4)
    assert info["method"] == "tsne" and info["note"] is None
    assert np.array_equal(a, b)
    # Points of a cluster stay together.
    within = np.linalg.norm(a[:10] - a[:10].mean(0), axis=1).max()
    assert np.linalg.norm(a[:10].mean(0) - a[10:].mean(0)) > 2 * within


def test_stage_responses_same_network_twice_correlates_perfectly():
    from gridcore.backends import get_backend
    from gridcore.sim.trajectories import simulate
    p = init_params(5, 2, seed=0)
    traj = simulate("square", 6, 50, 0)
    corr, maps = stage_responses([p, p], get_backend("numpy"), traj, 0.1, seed=1, bins=6, trial_chunk=4)
    assert corr.shape == (10, 10) and maps.shape[:2] == (2, 5)
    assert np.allclose(corr[np.arange(5), 5 + np.arange(5)], 1.0)    # same noise for every stage
    assert np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1.0)


# ---------------------------------------------------------------- C6 comparison


def test_compare_runs_lists_the_differing_settings():
    ref = make_config("quick")
    other = make_config("quick", metabolic=False, backend="numpy", threads=1)
    summ = [{"label": "a", "config": ref.to_dict()}, {"label": "b", "config": other.to_dict()}]
    cmp = compare_runs(summ)
    assert cmp["reference"] == "a"
    assert cmp["runs"][0]["differs"] == {}
    assert cmp["runs"][1]["differs"] == {"metabolic": [True, False]}   # backend/threads ignored
    with pytest.raises(ValueError, match="at least one"):
        compare_runs([])


# ---------------------------------------------------------------- run directories


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(make_config("quick", n_units=6, n_trials=10, n_steps=20, curvature_trials=5, iterations=2,
                      backend="numpy"), out, stream=None)
    return out


def test_load_run(tiny_run):
    run = load_run(tiny_run)
    assert run.params.shape == (6, 2, 2) and run.final_iteration == 2
    assert list(run.snapshots) == [0]
    assert run.stage_params(2) is run.params
    with pytest.raises(ValueError, match="no snapshot of iteration 1"):
        run.stage_params(1)


def test_load_run_errors_name_the_file(tiny_run, tmp_path):
    import shutil
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        load_run(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    os.remove(broken / "final.npz")
    with pytest.raises(FileNotFoundError, match=r"final\.npz: no such file.*not finished"):
        load_run(broken)
    init_params(7, 2, seed=0).save(broken / "final.npz")
    with pytest.raises(ValueError, match=r"final\.npz.*\(7, 2, 2\).*expected \(6, 2, 2\)"):
        load_run(broken)


def test_record_trajectories_matches_record():
    from gridcore.analysis.recording import record, record_trajectories
    from gridcore.backends import get_backend
    from gridcore.sim.trajectories import simulate
    p = init_params(5, 2, seed=0)
    b = get_backend("numpy")
    a = record(p, b, "square", 3, 30, seed=5, noise_std=0.1)
    rng = np.random.default_rng(5)
    traj = simulate("square", 3, 30, rng)
    c = record_trajectories(p, b, traj, rng, noise_std=0.1)
    for k in ("rates", "outputs", "positions", "speed", "heading", "boundary"):
        assert np.array_equal(getattr(a, k), getattr(c, k)), k
    assert (c.n_trials, c.n_steps) == (3, 30) and c.activity.shape == (90, 5)
    assert c.rates.shape == (3, 30, 5) and c.positions.shape == (3, 30, 2) and c.speed.shape == (3, 30)
    np.testing.assert_array_equal(c.activity[30:60], c.rates[1])
    later = c.from_step(10)
    assert later.rates.shape == (3, 20, 5) and np.array_equal(later.positions, traj.positions[:, 10:])
    with pytest.raises(ValueError, match="start must be an int in"):
        c.from_step(30)
