"""The committed networks of docs/results reload and give their headline numbers again (slow)."""

import json
import os

import pytest

from gridcore.analysis.pipeline import record_and_classify
from gridcore.analysis.unitsummary import ramps
from gridcore.backends import get_backend
from gridcore.cli.reproduce import RESULTS, RUNS
from gridcore.train.rundir import load_run

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), RESULTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_committed_run_gives_its_headline_numbers(name):
    path = os.path.join(ROOT, name)
    metrics = os.path.join(path, "analysis", "metrics.json")
    if not os.path.exists(metrics):
        pytest.skip(f"{name} is not committed yet (no {metrics})")
    with open(metrics) as fh:
        m = json.load(fh)
    s = m["settings"]
    run = load_run(path)
    # Another backend or thread count changes the numbers by round-off only.
    _, _, track, types = record_and_classify(run, get_backend("auto"), s["seed"], s["n_trials"],
                                             s["n_steps"], s["test_noise_std"], s["bins"], s["n_shuffles"])
    assert track["normalised_error"] == pytest.approx(m["tracking"]["normalised_error"], rel=1e-6)
    counts = types.counts()
    for t in ("grid", "border", "band", "irregular"):
        # A unit whose score sits on its threshold may flip by round-off.
        assert abs(counts[t] - m["celltypes"]["counts"][t]) <= 1, t
    assert abs(ramps(types)["n_ramps"] - m["celltypes"]["ramps"]["n_ramps"]) <= 1
