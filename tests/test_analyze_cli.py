"""``python -m gridcore.analyze`` end to end on tiny trained runs."""

import json
import os
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from gridcore.cli.analyze import main
from gridcore.model.params import init_params
from gridcore.report import figures
from gridcore.train.config import make_config
from gridcore.train.loop import train

TINY = dict(n_units=12, n_trials=20, n_steps=40, curvature_trials=10, iterations=3, backend="numpy")
SMALL = ["--quick", "--backend", "numpy", "--n-trials", "20", "--long-steps", "2000",
         "--block-steps", "500", "--shuffles", "5", "--bins", "8", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    train(make_config("quick", **TINY), base / "ref", stream=None)
    train(make_config("quick", metabolic=False, **TINY), base / "nometabolic", stream=None)
    return base


@pytest.fixture(scope="module")
def analysed(runs):
    assert main([str(runs / "ref"), *SMALL, "--compare", str(runs / "nometabolic")]) == 0
    out = runs / "ref" / "analysis"
    with open(out / "metrics.json") as fh:
        metrics = json.load(fh)     # written with allow_nan=False: strict JSON
    return out, metrics


def test_writes_metrics_figures_and_report(analysed):
    out, m = analysed
    for key in ("tracking", "probe", "celltypes", "tuning", "selectivity", "development",
                "error_correction", "stability", "comparison", "settings", "conventions", "figures",
                "timings_s"):
        assert key in m, key
    assert set(m["figures"]) - {"grid_maps"} == {"tracking", "probe", "ratemaps", "tuning", "selectivity",
                                                 "development", "error_correction", "stability", "comparison"}
    assert ("grid_maps" in m["figures"]) == (m["celltypes"]["counts"]["grid"] > 0)   # only with grid units
    # The probe covers every snapshot and the final network (iterations 0 and 3 here).
    assert [o["iteration"] for o in m["probe"]["over_training"]] == [0, 3]
    assert m["probe"]["over_training"][-1]["median_gain"] == m["probe"]["final"]["summary"]["median_gain"]
    # Steps at the 10th, 50th, 90th percentile of the Rayleigh(0.06) moving speeds.
    assert m["probe"]["final"]["speeds"] == pytest.approx([0.027543, 0.070644, 0.128758], abs=1e-6)
    for fig in m["figures"].values():
        path = out / fig["file"]
        assert path.stat().st_size > 1000 and fig["caption"]
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    for fig in m["figures"].values():
        assert f"src='{fig['file']}'" in html
    assert not re.search(r"(src|href)=['\"]?(https?:|//|/)", html)        # offline: relative links only
    assert "<table>" in html and "C8" in html
    # The run's training time from its log.jsonl, with the breakdown of its 3 iterations.
    assert m["training"]["iterations"] == m["training"]["timed_iterations"] == 3
    assert "Training: 3 iterations" in html and "GN products" in html


def test_metrics_record_settings_conventions_and_thresholds(analysed, runs):
    _, m = analysed
    s = m["settings"]
    assert (s["backend"], s["n_trials"], s["n_steps"], s["n_shuffles"], s["long_steps"], s["bins"]) == \
        ("numpy", 20, 40, 5, 2000, 8)
    assert s["quick"] is True and s["stages"] == [0, 3]
    ct = m["celltypes"]
    assert ct["settings"]["percentile"] == 95.0 and len(ct["units"]["thresholds"]["border"]) == 12
    assert "Sargolini" in m["conventions"]["scores"]["grid60"]
    assert sum(ct["counts"][t] for t in ("grid", "border", "band", "irregular", "none")) == 12
    assert 0 <= m["tracking"]["normalised_error"] < 5
    dev = m["development"]
    assert dev["stages"] == [0, 3] and len(dev["travel_correlation"]) == 12
    assert dev["embedding"]["method"] in ("tsne", "mds")
    assert m["stability"]["n_blocks"] == 4
    assert m["comparison"]["runs"][1]["differs"] == {"metabolic": [True, False]}
    # The comparison's graded counts agree with the per-unit scores and nulls.
    units = ct["units"]
    ref = m["comparison"]["runs"][0]
    for k in ("grid60", "grid90", "border", "band"):
        beat = sum(1 for v, t in zip(units["scores"][k], units["thresholds"][k])
                   if v is not None and t is not None and v > t)
        assert ref["scores"][k]["passed"] == beat
    assert ref["n_periodic"] == sum(units["periodic"])
    # One error per run: the comparison shows each run's own held-out error, as its final_metrics.json.
    assert ref["normalised_error"] == m["tracking"]["normalised_error"]
    for row, name in zip(m["comparison"]["runs"], ("ref", "nometabolic")):
        with open(runs / name / "final_metrics.json") as fh:
            assert row["normalised_error"] == pytest.approx(json.load(fh)["nerr_heldout"], rel=1e-12)
    ramps = ct["ramps"]
    assert len(ramps["plane"]) == 12 and ref["ramps"] == ramps["n_ramps"]
    assert ramps["n_ramps"] == sum(1 for v in ramps["plane"] if v is not None and v >= ramps["threshold"])
    assert all(v is None or 0 <= v <= 1 for v in ramps["plane"])
    assert len(m["tuning"]["speed_curves"]) == 12


def test_same_seed_same_numbers(runs, analysed, tmp_path):
    _, m = analysed
    copy = tmp_path / "ref"
    shutil.copytree(runs / "ref", copy)
    shutil.rmtree(copy / "analysis")
    assert main([str(copy), *SMALL]) == 0
    with open(copy / "analysis" / "metrics.json") as fh:
        again = json.load(fh)
    for key in ("tracking", "celltypes", "error_correction", "stability", "development"):
        a = {k: v for k, v in m[key].items() if k != "settings"}
        b = {k: v for k, v in again[key].items() if k != "settings"}
        assert a == b, key


def test_units_csv_is_the_unit_table_and_coverage_is_warned(analysed):
    pd = pytest.importorskip("pandas")
    out, m = analysed
    table = pd.read_csv(out / "units.csv", keep_default_na=False, na_values=[""])
    units = m["celltypes"]["units"]
    assert list(table["unit"]) == list(range(12)) and list(table["type"]) == units["spatial_type"]
    for k in ("grid60", "border", "spatial_information", "speed_selectivity", "direction_selectivity"):
        want = np.array([np.nan if v is None else v for v in units["scores"][k]])
        np.testing.assert_allclose(table[k], want, rtol=1e-12, equal_nan=True)
        want = np.array([np.nan if v is None else v for v in units["thresholds"][k]])
        np.testing.assert_allclose(table[f"{k}_threshold"], want, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(table["plane"], [np.nan if v is None else v for v in
                                                m["celltypes"]["ramps"]["plane"]], rtol=1e-12, equal_nan=True)
    # 20 trials of 40 steps visit few of the 64 bins: the warning is in metrics.json and names the path.
    cov = m["celltypes"]["settings"]["coverage"]
    assert 0 < cov < 0.8 and m["celltypes"]["settings"]["coverage_warning"]
    assert [w for w in m["warnings"] if w.startswith("held-out trials: the path visits")]
    assert m["settings"]["physical_scale"]["metres_per_unit"] == 0.5


def test_figure_formats_on_request(runs, tmp_path, capsys):
    copy = tmp_path / "ref"
    shutil.copytree(runs / "ref", copy)
    shutil.rmtree(copy / "analysis")
    assert main([str(copy), *SMALL[:-1], "--figure-format", "svg", "pdf"]) == 0
    assert "warning: held-out trials: the path visits" in capsys.readouterr().err
    files = os.listdir(copy / "analysis")
    assert "ratemaps.svg" in files and "ratemaps.pdf" in files and "ratemaps.png" not in files
    with open(copy / "analysis" / "metrics.json") as fh:
        assert json.load(fh)["figures"]["ratemaps"]["file"] == "ratemaps.svg"
    with pytest.raises(SystemExit):
        main([str(copy), "--figure-format", "jpg"])
    assert "invalid choice: 'jpg'" in capsys.readouterr().err


def test_missing_final_is_a_clear_error(runs, tmp_path, capsys):
    broken = tmp_path / "unfinished"
    shutil.copytree(runs / "ref", broken)
    os.remove(broken / "final.npz")
    assert main([str(broken), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and f"{broken / 'final.npz'}: no such file" in err


def test_mismatched_checkpoint_is_a_clear_error(runs, tmp_path, capsys):
    broken = tmp_path / "wrongshape"
    shutil.copytree(runs / "ref", broken)
    init_params(30, 2, seed=0).save(broken / "final.npz")
    assert main([str(broken), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "final.npz" in err and "(30, 2, 2)" in err and "(12, 2, 2)" in err
    # A compared run with a broken file fails before any analysis starts.
    assert main([str(runs / "ref"), *SMALL, "--compare", str(broken)]) == 2
    assert "final.npz" in capsys.readouterr().err


def test_bad_options(runs, capsys):
    assert main([str(runs / "ref"), *SMALL, "--long-steps", "100"]) == 2
    assert "long_steps" in capsys.readouterr().err
    assert main([str(runs / "ref"), *SMALL, "--stages", "1,2"]) == 2
    assert "available: [0, 3]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(runs / "ref"), "--shuffles", "0"])


def wandering_csv(path, seconds=30.0, hz=25.0):
    """A smooth path in cm (a Lissajous figure in a 100 cm box), as a tracker's CSV with a short NaN gap."""
    t = np.arange(0.0, seconds, 1.0 / hz)
    x = 50 + 45 * np.sin(2 * np.pi * t / 13.0)
    y = 50 + 45 * np.sin(2 * np.pi * t / 7.7 + 0.5)
    rows = [f"{a},{b},{c}" for a, b, c in zip(t, x, y)]
    rows[100:105] = [f"{a},," for a in t[100:105]]
    path.write_text("time,x,y\n" + "\n".join(rows) + "\n")
    return path


def test_without_trajectory_nothing_changes(analysed):
    _, m = analysed
    assert m["trajectory"] is None and m["settings"]["trajectory"] is None


def test_trajectory_file_side_by_side_with_simulated(runs, tmp_path):
    run = tmp_path / "ref"
    shutil.copytree(runs / "ref", run)
    shutil.rmtree(run / "analysis", ignore_errors=True)
    file = wandering_csv(tmp_path / "rat.csv")
    assert main([str(run), *SMALL, "--trajectory", str(file)]) == 0
    with open(run / "analysis" / "metrics.json") as fh:
        m = json.load(fh)
    p = m["trajectory"]
    assert p["source"] == str(file) and p["path"]["dt_rule"] == "matched mean speed"
    assert p["path"]["resample"]["gaps_bridged"] == 1
    n = p["n_steps"]
    for name in ("real", "simulated"):
        q = p[name]
        assert q["tracking"]["n_steps"] == n and np.isfinite(q["tracking"]["normalised_error"])
        assert q["over_time"]["n_blocks"] == len(q["over_time"]["block_end_s"]) >= 1
        assert q["trials"]["n_trials"] == n // 40 and len(q["trials"]["squared_error_by_step"]) == 40
        assert len(q["celltypes"]["units"]["spatial_type"]) == 12
    # Matched time step: the same mean distance per step on both paths.
    assert p["real"]["statistics"]["speed"]["mean"] == pytest.approx(
        p["simulated"]["statistics"]["speed"]["mean"], rel=0.15)
    assert p["simulated"]["statistics"]["fraction_zero_speed"] > 0.8 > p["real"]["statistics"]["fraction_zero_speed"]
    assert len(p["map_correlation"]["per_unit"]) == 12 and 0 <= p["same_spatial_type"] <= 1
    assert p["comparison"]["runs"][1]["differs"] == {"trajectory": ["simulated", str(file)]}
    assert {"path_error", "path_maps"} <= set(m["figures"])
    for key in ("path_error", "path_maps"):
        assert (run / "analysis" / m["figures"][key]["file"]).stat().st_size > 1000
    html = (run / "analysis" / "report.html").read_text()
    assert "Real path: tracking" in html and "path_error.png" in html


def test_trajectory_sargolini(runs, tmp_path):
    pytest.importorskip("ratinabox")
    run = tmp_path / "ref"
    shutil.copytree(runs / "ref", run)
    assert main([str(run), *SMALL, "--trajectory", "sargolini", "--trajectory-duration", "20",
                 "--trajectory-dt", "0.05"]) == 0
    with open(run / "analysis" / "metrics.json") as fh:
        p = json.load(fh)["trajectory"]
    assert p["source"] == "ratinabox:sargolini" and p["dt_s"] == 0.05 and p["path"]["dt_rule"] == "given"
    assert p["n_steps"] == 400 and p["path"]["duration_s"] <= 20


def test_trajectory_errors(runs, tmp_path, capsys):
    assert main([str(runs / "ref"), *SMALL, "--trajectory", str(tmp_path / "none.csv")]) == 2
    assert "none.csv: no such path file" in capsys.readouterr().err
    assert main([str(runs / "ref"), *SMALL, "--trajectory", "x.csv", "--trajectory-dt", "0"]) == 2
    assert "trajectory_dt must be a positive number of seconds" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("t,x\n0,1\n1,2\n")
    assert main([str(runs / "ref"), *SMALL, "--trajectory", str(bad)]) == 2
    assert "no y position column" in capsys.readouterr().err


def test_grid_units_panel_shows_hexagonal_units_first_by_score():
    types = SimpleNamespace(spatial_type=np.array(["grid", "band", "grid", "grid", "grid"]),
                            grid_symmetry=np.array([90, 0, 60, 60, 90]),
                            scores={"grid60": np.array([0.1, 0.9, 0.4, 0.8, 0.2]),
                                    "grid90": np.array([0.5, 0.9, 0.0, 0.0, 0.7])})
    assert figures.grid_units(types) == [3, 2, 4, 0]
    assert figures.grid_units(types, limit=3) == [3, 2, 4]
    assert figures.grid_units_title("run", types, [3, 2, 4, 0]) == "run: its grid units"
    assert figures.grid_units_title("run", types, [3, 2, 4]) == "run: the first 3 of its 4 grid units"
