"""The ingredient ladder of a sweep: its records against each run's own files, missing runs, the files and
figure, the command and its errors; a ladder that keeps the seeds of an earlier one."""

import csv
import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from test_sweep import SMALL_ANALYSIS, TINY

from gridcore.analysis.ratemaps import spatial_bins
from gridcore.analysis.scores import grid_score
from gridcore.cli.sweep import main
from gridcore.report.figures import ladder_figure
from gridcore.sim.arenas import arena_from_dict
from gridcore.sweep.ladder import CSV_COLUMNS, MAPS_FILE, N_EXAMPLES, example_maps, ladder_records, write_ladder
from gridcore.sweep.runner import run_sweep
from gridcore.sweep.spec import SpecError, load_spec
from gridcore.train.loop import train

# Tiny place-cell networks: their maps have grid scores (the tiny tanh x,y networks' ramps have none).
BASE = {**TINY, "n_units": 16, "dtype": "float64"}
POINTS = '[points.relu]\n[points.tanh]\nmodel.nonlinearity = "tanh"\n'
# The quick analysis, smaller, without the development step (its t-SNE is most of a tiny run's analysis).
ANALYSIS = dict(SMALL_ANALYSIS, bins=10, n_trials=150, stages=(TINY["iterations"],))


def write_spec(path, out, points=POINTS):
    base = "\n".join(f"{k} = {json.dumps(v)}" for k, v in BASE.items())
    path.write_text(f'preset = "grid-cells"\nout = "{out}"\nseeds = [0, 1]\n[base]\n{base}\n'
                    f"model.n_place_cells = 16\n{points}")
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A ladder of 2 points x 2 seeds: three runs analysed, the fourth (tanh, seed 1) trained only."""
    root = tmp_path_factory.mktemp("ladder")
    path = write_spec(root / "ladder.toml", root / "out")
    spec = load_spec(path)
    points = spec.points()
    run_sweep(points[:3], spec.out, serial=True, analyze=True, analysis=ANALYSIS, stream=None)
    run_sweep(points, spec.out, serial=True, stream=None)
    return spec, path


def expected(run_dir):
    """One seed's numbers, from the run's own files."""
    units = pd.read_csv(os.path.join(run_dir, "analysis", "units.csv"))
    hexagonal = (units["type"] == "grid") & (units["grid_symmetry"] == 60)
    g60 = units.loc[hexagonal, "grid60"].dropna()
    with open(os.path.join(run_dir, "final_metrics.json")) as fh:
        nerr = json.load(fh)["nerr_heldout"]
    with open(os.path.join(run_dir, "log.jsonl")) as fh:
        seconds = sum(json.loads(line)["seconds"] for line in fh)
    out = {"n_units": len(units), "hexagonal_fraction": hexagonal.mean(),
           "grid_fraction": (units["type"] == "grid").mean(),
           "median_grid60_hexagonal": g60.median() if len(g60) else None,
           "nerr_heldout": nerr, "training_hours": seconds / 3600}
    for k in ("grid60", "grid90"):
        out.update(zip((f"{k}_q1", f"{k}_median", f"{k}_q3"), units[k].dropna().quantile([0.25, 0.5, 0.75])))
    return out, units


def test_records_are_each_runs_own_numbers(sweep):
    spec, _ = sweep
    records = ladder_records(spec, n_examples=4)
    assert [r["point"] for r in records] == ["relu", "tanh"]
    assert [r["seeds"] for r in records] == [[0, 1], [0]]
    assert [r["from_earlier"] for r in records] == [[], []]
    assert records[1]["settings"] == {"model": {"nonlinearity": "tanh"}}
    scored = 0
    for rec in records:
        for run in rec["runs"]:
            want, units = expected(os.path.join(spec.out, run["run"]))
            assert run["run"] == f"{rec['point']},seed={run['seed']}"
            for k, v in want.items():
                # summary.csv's wall_s, which the hours come from, is rounded to the millisecond
                tol = 0.0005 / 3600 if k == "training_hours" else 1e-12
                assert run[k] == (None if v is None else pytest.approx(v, rel=1e-12, abs=tol)), (run["run"], k)
            scored += run["grid60_median"] is not None
        fractions = [run["hexagonal_fraction"] for run in rec["runs"]]
        assert rec["hexagonal_fraction"] == pytest.approx({"mean": np.mean(fractions), "min": min(fractions),
                                                           "max": max(fractions)})
        errors = [run["nerr_heldout"] for run in rec["runs"]]
        assert rec["mean_over_seeds"]["nerr_heldout"] == pytest.approx(np.mean(errors))
        # The examples: the first seed's units with the highest grid60 scores, best first.
        _, units = expected(os.path.join(spec.out, rec["runs"][0]["run"]))
        best = units.dropna(subset=["grid60"]).sort_values("grid60", ascending=False, kind="stable").head(4)
        ex = rec["examples"]
        assert ex["run"] == rec["runs"][0]["run"] and ex["units"] == list(best["unit"])
        assert ex["grid60"] == pytest.approx(list(best["grid60"])) and ex["type"] == list(best["type"])
    assert scored >= 2       # the comparisons above saw grid scores, not only empty ones


def test_runs_not_finished_or_not_analysed_are_missing(sweep, tmp_path):
    spec, _ = sweep
    tanh = ladder_records(spec)[1]
    assert [m["run"] for m in tanh["missing"]] == ["tanh,seed=1"]
    assert tanh["missing"][0]["why"].startswith("not analysed")
    # The same out folder with two more points: one never trained, one stopped after 1 of its iterations.
    more = write_spec(tmp_path / "more.toml", spec.out,
                      POINTS + "[points.wide]\nn_units = 20\n[points.short]\nn_units = 12\n")
    longer = load_spec(more)
    short = next(p for p in longer.points() if p.name == "short,seed=0")
    train(short.config.with_overrides(iterations=1), os.path.join(spec.out, short.name), stream=None)
    records = {r["point"]: r for r in ladder_records(longer)}
    assert records["wide"]["seeds"] == [] and records["wide"]["examples"] is None
    assert [(m["run"], m["why"]) for m in records["wide"]["missing"]] == [("wide,seed=0", "not trained"),
                                                                          ("wide,seed=1", "not trained")]
    assert records["short"]["missing"][0]["why"] == f"unfinished: iteration 1 of {TINY['iterations']}"
    assert records["wide"]["hexagonal_fraction"] == {"mean": None, "min": None, "max": None}


def test_files_figure_and_maps(sweep):
    spec, _ = sweep
    records, files = write_ladder(spec, n_examples=3, threads=1)
    assert [os.path.basename(f) for f in files] == ["ladder.json", "ladder.csv", MAPS_FILE, "ladder.png"]
    with open(files[0]) as fh:
        assert json.load(fh) == records
    with open(files[1]) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["point"], r["n_seeds"], r["seeds"], r["missing"]) for r in rows] == [
        ("relu", "2", "0 1", ""), ("tanh", "1", "0", "tanh,seed=1")]
    assert float(rows[0]["hexagonal_fraction_max"]) == records[0]["hexagonal_fraction"]["max"]
    assert float(rows[1]["nerr_heldout_mean"]) == pytest.approx(records[1]["runs"][0]["nerr_heldout"])
    image = imread(files[3])
    assert image.shape[0] > 1000 and image.shape[1] > 1000            # 200 dpi
    # The maps recorded again are the maps the analysis scored: their grid60 scores are units.csv's.
    ex = records[0]["examples"]
    maps, binning = example_maps(os.path.join(spec.out, ex["run"]), ex["units"])
    assert maps.shape == (3, *binning.shape)
    np.testing.assert_allclose(grid_score(maps, 60), ex["grid60"], rtol=1e-9, atol=1e-12)
    # The examples name their binning, and ladder-maps.npz keeps each configuration's maps.
    rebuilt = spatial_bins(arena_from_dict(ex["arena"]), ex["bins"])
    assert ex["bins"] == ANALYSIS["bins"] and rebuilt.shape == binning.shape
    np.testing.assert_array_equal(rebuilt.x_edges, binning.x_edges)
    np.testing.assert_array_equal(rebuilt.inside, binning.inside)
    with np.load(files[2]) as kept:
        assert sorted(kept.files) == ["relu", "tanh"]
        np.testing.assert_allclose(kept["relu"], maps, rtol=1e-9, atol=1e-12, equal_nan=True)
        assert kept["tanh"].shape == (3, *binning.shape)
    # One map per example unit, and a row label per configuration, also one without analysed runs.
    none = {**records[1], "seeds": [], "runs": [], "examples": None,
            "hexagonal_fraction": {"mean": None, "min": None, "max": None}}
    unmapped = {**records[1], "point": "kept", "examples": None}     # runs, but their maps not kept
    fig = ladder_figure([records[0], none, unmapped], [maps, None, None], [binning, None, None])
    assert sum(len(ax.images) for ax in fig.axes) == 3
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "relu\nseed 0" in texts and "tanh\nno analysed run" in texts and "no analysed run" in texts
    assert "kept\nmaps not kept" in texts
    with pytest.raises(ValueError, match="one entry per configuration"):
        ladder_figure(records, [maps], [binning])


def test_command_and_bad_input(sweep, tmp_path, capsys):
    spec, path = sweep
    stamp = os.path.getmtime(os.path.join(spec.out, "relu,seed=0", "final.npz"))
    assert main([str(path), "--ladder", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "tanh: 1 of 2 seeds analysed; maps of tanh,seed=0; missing tanh,seed=1: not analysed" in err
    assert f"done: {os.path.join(spec.out, 'ladder.json')}" in err
    assert os.path.getmtime(os.path.join(spec.out, "relu,seed=0", "final.npz")) == stamp    # nothing trained
    # A folder without the sweep's runs, and one that does not exist.
    (tmp_path / "empty").mkdir()
    assert main([str(path), "--ladder", "--out", str(tmp_path / "empty")]) == 2
    assert "holds none of the sweep's runs (e.g. " in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ladder_records(spec, tmp_path / "nowhere")
    assert not os.listdir(tmp_path / "empty")
    with pytest.raises(ValueError, match="n_examples must be a positive integer, got 0"):
        ladder_records(spec, n_examples=0)
    vary = tmp_path / "vary.toml"
    vary.write_text(f'out = "{spec.out}"\n[vary]\nnoise_std = [0.0, 0.1]\n')
    with pytest.raises(SpecError, match=r"a ladder summarises named points \(\[points.<name>\] tables\)"):
        ladder_records(load_spec(vary))
    with pytest.raises(SystemExit):
        main([str(path), "--ladder", "--analyze"])
    assert "--ladder trains nothing: it takes no --analyze" in capsys.readouterr().err


@pytest.fixture(scope="module")
def earlier(sweep, tmp_path_factory):
    """The fixture's ladder (N_EXAMPLES examples, as the command's), written in its out folder and kept in a folder
    of its own: (records, the path of its ladder.json; ladder-maps.npz beside it)."""
    spec, _ = sweep
    records, files = write_ladder(spec, threads=1)
    folder = tmp_path_factory.mktemp("earlier")
    for f in files[:3]:
        shutil.copy(f, folder)
    return records, str(folder / "ladder.json")


def second_out(spec, folder, runs=("relu,seed=1", "tanh,seed=1")):
    """A second out folder holding copies of some of the fixture's runs only (the others are not trained there)."""
    for run in runs:
        shutil.copytree(os.path.join(spec.out, run), folder / run)
    return str(folder)


def but_from_earlier(records):
    """The records without their from_earlier lists."""
    return [{k: v for k, v in r.items() if k != "from_earlier"} for r in records]


def test_earlier_ladder_keeps_the_runs_not_trained_here(sweep, earlier, tmp_path):
    spec, _ = sweep
    full, first = earlier
    out = second_out(spec, tmp_path / "out")
    records, files = write_ladder(spec, out, threads=1, earlier=first)
    # Seed 0 of each point is kept from the earlier ladder, seed 1 is the out folder's (tanh's: not analysed).
    assert [r["from_earlier"] for r in records] == [["relu,seed=0"], ["tanh,seed=0"]]
    assert [r["seeds"] for r in records] == [[0, 1], [0]]
    assert but_from_earlier(records) == but_from_earlier(full)   # the numbers, the missing run and the examples
    with open(files[0]) as fh:
        assert json.load(fh) == records
    # The examples' runs are not on disk: their maps are the earlier file's, exactly, and the figure is drawn.
    assert not os.path.exists(os.path.join(out, "relu,seed=0"))
    with np.load(os.path.join(os.path.dirname(first), MAPS_FILE)) as old, np.load(files[2]) as new:
        assert sorted(new.files) == ["relu", "tanh"]
        for name in new.files:
            np.testing.assert_array_equal(new[name], old[name])
    assert imread(files[3]).shape[0] > 1000
    # Fewer examples: the earlier ones cut, with their maps.
    records, files = write_ladder(spec, out, n_examples=2, threads=1, earlier=first)
    assert records[0]["examples"] == {**full[0]["examples"], **{k: full[0]["examples"][k][:2] for k in
                                                                ("units", "grid60", "type", "grid_symmetry")}}
    with np.load(os.path.join(os.path.dirname(first), MAPS_FILE)) as old, np.load(files[2]) as new:
        np.testing.assert_array_equal(new["relu"], old["relu"][:2])
    # More examples than the earlier file has: relu's come from its next seed, here; tanh's next is not analysed.
    records = ladder_records(spec, out, n_examples=N_EXAMPLES + 1, earlier=first)
    assert records[0]["examples"] == ladder_records(spec, out, n_examples=N_EXAMPLES + 1)[0]["examples"]
    assert records[0]["examples"]["run"] == "relu,seed=1" and records[1]["examples"] is None
    # An earlier ladder without its maps file (as the committed seed-0 ladders): the same, for any n_examples.
    (tmp_path / "nomaps").mkdir()
    shutil.copy(first, tmp_path / "nomaps")
    records, files = write_ladder(spec, out, threads=1, earlier=tmp_path / "nomaps" / "ladder.json")
    assert records[0]["examples"]["run"] == "relu,seed=1" and records[1]["examples"] is None
    assert [r["from_earlier"] for r in records] == [["relu,seed=0"], ["tanh,seed=0"]]
    ex = records[0]["examples"]
    maps, _ = example_maps(os.path.join(out, ex["run"]), ex["units"], threads=1)
    with np.load(files[2]) as new:
        assert new.files == ["relu"]
        np.testing.assert_allclose(new["relu"], maps, rtol=1e-12, equal_nan=True)
    # Earlier maps of other bins than relu's examples', and examples not of the kept run (relu) or without their
    # binning (tanh): the next seed's.
    with np.load(os.path.join(os.path.dirname(first), MAPS_FILE)) as old:
        np.savez(tmp_path / "nomaps" / MAPS_FILE, relu=old["relu"][:, :-1], tanh=old["tanh"])
    records = ladder_records(spec, out, earlier=tmp_path / "nomaps" / "ladder.json")
    assert records[0]["examples"]["run"] == "relu,seed=1" and records[1]["examples"] == full[1]["examples"]
    (tmp_path / "other").mkdir()
    shutil.copy(os.path.join(os.path.dirname(first), MAPS_FILE), tmp_path / "other")
    relu, tanh = full
    relu = {**relu, "examples": {**relu["examples"], "run": "relu,seed=1"}}
    tanh = {**tanh, "examples": {k: v for k, v in tanh["examples"].items() if k != "bins"}}
    (tmp_path / "other" / "ladder.json").write_text(json.dumps([relu, tanh]))
    records = ladder_records(spec, out, earlier=tmp_path / "other" / "ladder.json")
    assert records[0]["examples"] == ladder_records(spec, out)[0]["examples"] and records[1]["examples"] is None


def test_runs_in_the_out_folder_are_its_own(sweep, earlier, tmp_path):
    spec, _ = sweep
    full, first = earlier
    with open(first) as fh:
        relu, tanh = json.load(fh)
    relu["runs"][0]["hexagonal_fraction"] = 0.75          # seed 0: not in the out folder, kept as is
    relu["runs"][1]["nerr_heldout"] = 99.0                # seed 1: the out folder's
    tanh["runs"].append({**tanh["runs"][0], "seed": 1, "run": "tanh,seed=1"})   # in the out folder, not analysed
    other = {"point": "other", "settings": {"n_units": 3}, "runs": []}             # not in the spec: ignored
    changed = tmp_path / "ladder.json"
    changed.write_text(json.dumps([relu, tanh, other]))
    records = ladder_records(spec, second_out(spec, tmp_path / "out"), earlier=changed)
    assert records[0]["runs"] == [relu["runs"][0], full[0]["runs"][1]]
    assert records[0]["hexagonal_fraction"]["max"] == 0.75
    assert records[0]["hexagonal_fraction"]["mean"] == pytest.approx((0.75 + full[0]["runs"][1]["hexagonal_fraction"])
                                                                      / 2, rel=1e-15)
    assert records[0]["mean_over_seeds"]["nerr_heldout"] == pytest.approx(
        (full[0]["runs"][0]["nerr_heldout"] + full[0]["runs"][1]["nerr_heldout"]) / 2, rel=1e-15)
    assert records[1]["seeds"] == [0] and records[1]["from_earlier"] == ["tanh,seed=0"]
    assert [m["run"] for m in records[1]["missing"]] == ["tanh,seed=1"]
    assert records[1]["missing"][0]["why"].startswith("not analysed")
    # A run of the earlier file under another name (another seed's) is not this run's record.
    relu["runs"][0]["run"] = "relu,seed=7"
    changed.write_text(json.dumps([relu, tanh]))
    records = ladder_records(spec, tmp_path / "out", earlier=changed)
    assert records[0]["seeds"] == [1] and records[0]["from_earlier"] == []
    assert records[0]["missing"] == [{"run": "relu,seed=0", "seed": 0, "why": "not trained"}]


def test_earlier_file_errors(sweep, earlier, tmp_path):
    spec, _ = sweep
    _, first = earlier
    with open(first) as fh:
        relu, tanh = json.load(fh)
    bad = tmp_path / "ladder.json"
    bad.write_text(json.dumps([relu, {**tanh, "settings": {"model": {"nonlinearity": "sigmoid"}}}]))
    with pytest.raises(ValueError, match=re.escape(f"earlier: {bad} gives point 'tanh' the settings "
                                                   "{'model': {'nonlinearity': 'sigmoid'}}, but ") + ".* gives it "
                       + re.escape("{'model': {'nonlinearity': 'tanh'}}; an earlier ladder must come from the same")):
        ladder_records(spec, earlier=bad)
    expected = "give the ladder.json of an earlier --ladder of the same spec"
    for text, problem in [(json.dumps({"point": "relu"}), "it holds a dict, not a list"),
                          (json.dumps([{"point": "relu", "settings": {}}]), "entry 0 is not a dict with 'point'"),
                          (json.dumps([{**relu, "runs": [{"seed": 0}]}]), "the runs of 'relu' are not seed records")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=re.escape(f"earlier: {bad} is not a ladder: {problem}") + ".*" + expected):
            ladder_records(spec, earlier=bad)
    bad.write_text("point,settings\n")
    with pytest.raises(ValueError, match=re.escape(f"earlier: {bad} is not JSON (") + ".*" + expected):
        ladder_records(spec, earlier=bad)
    with pytest.raises(FileNotFoundError, match=re.escape(f"earlier: {tmp_path / 'none.json'}: no such file; ")):
        ladder_records(spec, earlier=tmp_path / "none.json")


def test_command_with_earlier(sweep, earlier, tmp_path, capsys):
    spec, path = sweep
    full, first = earlier
    out = second_out(spec, tmp_path / "out")
    assert main([str(path), "--ladder", "--out", out, "--earlier", first, "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert f"relu: 2 of 2 seeds analysed; 1 kept from {first}; maps of relu,seed=0\n" in err
    assert (f"tanh: 1 of 2 seeds analysed; 1 kept from {first}; maps of tanh,seed=0; missing tanh,seed=1: "
            "not analysed") in err
    with open(os.path.join(out, "ladder.json")) as fh:
        assert but_from_earlier(json.load(fh)) == but_from_earlier(full)
    assert os.path.exists(os.path.join(out, MAPS_FILE)) and os.path.exists(os.path.join(out, "ladder.png"))
    assert main([str(path), "--ladder", "--out", out, "--earlier", str(tmp_path / "none.json")]) == 2
    assert "error: earlier: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(path), "--earlier", first])
    assert "--earlier adds an earlier ladder's seeds to a ladder: it needs --ladder" in capsys.readouterr().err
