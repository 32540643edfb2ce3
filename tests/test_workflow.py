"""The notebook workflow (gridcore.load_run: record, rate maps, unit table, plots), figures that
compose, units.csv and the coverage warning."""

import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure

import gridcore
from gridcore.analysis.celltypes import classify
from gridcore.analysis.physical import PAPER_STEP_S, physical_scale
from gridcore.analysis.ratemaps import MIN_COVERAGE, rate_maps, spatial_bins
from gridcore.analysis.tracking import stability
from gridcore.analysis.unittable import unit_columns
from gridcore.report import figures
from gridcore.report.outputs import DPI, save_figure, write_unit_csv
from gridcore.sim.trajectories import simulate
from gridcore.train.config import make_config
from gridcore.train.loop import train

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny-square"
    # Noise on (the quick preset trains without): record() adds the training noise by default.
    train(make_config("quick", n_units=8, n_trials=10, n_steps=40, curvature_trials=5, iterations=2,
                      noise_std=0.1, backend="numpy"), out, stream=None)
    return gridcore.load_run(out)


@pytest.fixture(scope="module")
def rec(run):
    return run.record(30, 100, seed=3, backend="numpy")


def test_load_run_is_the_run_with_the_workflow(run):
    assert isinstance(run, gridcore.Run) and isinstance(run, gridcore.train.Run)
    assert run.config is run.settings and run.spec == run.settings.model and run.name == "tiny-square"
    assert run.params.shape == (8, 2, 2) and run.final_iteration == 2
    assert gridcore.get_backend("numpy").name == "numpy"
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        gridcore.load_run(run.path + "-missing")


def test_record_has_trial_and_time_axes_and_follows_the_seed(run, rec):
    assert rec.rates.shape == (30, 100, 8) and rec.outputs.shape == rec.positions.shape == (30, 100, 2)
    assert rec.speed.shape == rec.heading.shape == rec.boundary.shape == (30, 100)
    traj = simulate(run.arena, 30, 100, np.random.default_rng(3))
    np.testing.assert_array_equal(rec.positions, traj.positions)
    # The rates are the network's on those inputs (noise off: deterministic).
    quiet = run.record(30, 100, seed=3, noise_std=0.0, backend="numpy")
    u = gridcore.get_backend("numpy").forward(run.params, traj.inputs, None, spec=run.spec).u
    np.testing.assert_allclose(quiet.rates, u, rtol=1e-12, atol=1e-12)
    assert not np.allclose(quiet.rates, rec.rates)                 # the training noise by default
    assert run.record(2, seed=0, backend="numpy").rates.shape == (2, run.settings.task.n_steps, 8)
    with pytest.raises(ValueError, match="n_trials and n_steps are for simulated trials"):
        run.record(3, trajectory=traj)
    with pytest.raises(ValueError, match="n_trials"):
        run.record(0)


def test_record_along_given_trajectories(run):
    traj = simulate(run.arena, 2, 30, 7)
    rec = run.record(trajectory=traj, seed=1, backend="numpy")
    np.testing.assert_array_equal(rec.positions, traj.positions)
    assert rec.rates.shape == (2, 30, 8)


def test_rate_maps_of_a_recording(rec):
    maps = rec.rate_maps(bins=6)
    np.testing.assert_array_equal(maps, rate_maps(rec.activity, rec.positions.reshape(-1, 2), rec.arena, 6))
    assert maps.shape == (8, 6, 6)
    assert not np.allclose(rec.rate_maps(6, smooth=1.0), maps, equal_nan=True)


def test_units_table_has_a_row_per_unit_with_every_score_and_threshold(run, rec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a short recording covers little of the arena
        table = run.units(rec, bins=6, n_shuffles=5, seed=2)
        types = run.unit_types(rec, bins=6, n_shuffles=5, seed=2)
    assert len(table) == 8 and list(table.index) == list(range(8))
    for k in ("grid60", "grid90", "border", "band", "spatial_information", "speed_selectivity",
              "direction_selectivity"):
        np.testing.assert_array_equal(table[k].to_numpy(), types.scores[k])
        np.testing.assert_array_equal(table[f"{k}_threshold"].to_numpy(), types.thresholds[k])
        np.testing.assert_array_equal(table[f"{k}_passes"].to_numpy(), types.passes()[k])
    assert list(table["type"]) == [str(t) for t in types.spatial_type]
    assert set(table["type"]) <= {"grid", "border", "band", "irregular", "none"}
    assert table["speed_r2"].between(0, 1).all()
    with pytest.raises(TypeError, match="recording must be a Recording"):
        run.units(rec.rates)


def test_units_csv_reads_back_as_the_same_table(run, rec, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        types = run.unit_types(rec, bins=6, n_shuffles=5)
    cols = unit_columns(types, np.linspace(0, 1, 8))
    cols["grid60"][0] = np.nan                          # an undefined score is an empty field
    write_unit_csv(tmp_path / "units.csv", cols)
    back = pd.read_csv(tmp_path / "units.csv", keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(cols)
    for k, v in cols.items():
        if v.dtype.kind == "f":
            np.testing.assert_allclose(back[k].to_numpy(), v, rtol=1e-15, equal_nan=True)
        else:
            assert [str(x) for x in back[k]] == [str(x) for x in v], k
    with pytest.raises(ValueError, match="speed_r2 must have shape"):
        unit_columns(types, np.zeros(3))


def test_plot_rate_maps_composes(run, rec):
    fig = run.plot_rate_maps(rec, bins=6)
    assert isinstance(fig, Figure) and len(fig.axes) == 8 + 1             # maps and the colour bar
    assert "tiny-square" in fig._suptitle.get_text() and "box 1 x 1 m" in fig._suptitle.get_text()
    mine = Figure()
    assert run.plot_rate_maps(rec, units=[3, 1], bins=6, colour_scale="shared", fig=mine) is mine
    assert [a.get_title() for a in mine.axes[:2]] == ["unit 3", "unit 1"]
    cb = mine.axes[-1]
    assert "same scale" in cb.get_xlabel()
    with pytest.raises(ValueError, match="units must be a non-empty list of unit numbers in"):
        run.plot_rate_maps(rec, units=[8])
    with pytest.raises(ValueError, match="colour_scale must be one of"):
        run.plot_rate_maps(rec, colour_scale="global")
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        run.plot_rate_maps(rec, fig=mine.axes[0])


def test_one_panel_figures_draw_into_a_given_axes_and_labels_carry_units(run, tmp_path):
    err = np.abs(np.random.default_rng(0).standard_normal((2, 400))) * 0.1
    pos = np.random.default_rng(1).uniform(-1, 1, (2, 400, 2))
    st = {**stability(err, pos, 100), "n_paths": 2, "n_steps": 400}
    outer = Figure()
    ax = outer.add_subplot(2, 1, 2)
    assert figures.stability_figure(st, ax=ax, physical=run.physical, title="x") is outer
    assert ax.get_ylabel() == "squared error (m$^2$)" and ax.get_xlabel() == "time on the path (h)"
    plain = figures.stability_figure(st)
    assert plain.axes[0].get_xlabel() == "step" and "arena units" in plain.axes[0].get_ylabel()
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        figures.stability_figure(st, ax=outer)
    files = save_figure(plain, str(tmp_path / "st"), ("png", "pdf", "svg"))
    assert [f.rsplit(".", 1)[1] for f in files] == ["png", "pdf", "svg"]
    png = open(files[0], "rb").read()
    i = png.index(b"pHYs") + 4                                         # pixels per metre
    assert int.from_bytes(png[i:i + 4], "big") == round(DPI / 0.0254)
    assert open(files[1], "rb").read(4) == b"%PDF" and b"<svg" in open(files[2], "rb").read(400)
    with pytest.raises(ValueError, match="format"):
        save_figure(plain, str(tmp_path / "st"), ("jpg",))


def test_physical_scale_of_both_motion_models():
    paper = physical_scale(make_config("quick").task)
    assert paper.metres_per_unit == 0.5 and paper.seconds_per_step == PAPER_STEP_S
    # The paper motion's mean speed (0.0075 arena units per step) is the Sargolini rat's 12 cm/s.
    assert 0.115 < 0.0075 * paper.speed_per_unit_step < 0.125
    assert physical_scale(make_config("quick", arena_size=20.0).task).metres_per_unit == 0.05
    smooth = physical_scale(make_config("quick", motion_model="smooth").task)
    assert (smooth.metres_per_unit, smooth.seconds_per_step) == (1.0, 0.02)


def test_a_path_that_covers_little_of_the_arena_warns():
    arena = gridcore.train.rundir.make_arena("square", 2.0)
    rng = np.random.default_rng(0)
    n = 4000
    act = rng.standard_normal((n, 3)) * 0.1
    speed, heading = rng.uniform(0, 0.05, n), rng.uniform(-np.pi, np.pi, n)
    corner = rng.uniform(-1, -0.2, (n, 2))                       # 16% of the square
    with pytest.warns(UserWarning, match=r"visits 16% of the arena's bins .* below 80%"):
        t = classify(act, corner, speed, heading, arena, 10, n_shuffles=3)
    assert t.settings["coverage"] == pytest.approx(0.16) and "below" in t.settings["coverage_warning"]
    everywhere = rng.uniform(-1, 1, (n, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = classify(act, everywhere, speed, heading, arena, 10, n_shuffles=3)
    assert t.settings["coverage"] >= MIN_COVERAGE and t.settings["coverage_warning"] is None
    b = spatial_bins(arena, 10)
    assert b.coverage(np.ones(b.shape)) == 1.0 and b.coverage(np.zeros(b.n_bins)) == 0.0
