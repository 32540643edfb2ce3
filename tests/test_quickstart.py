"""The README's first command trains a network that integrates speed (slow: the whole quick preset)."""

import json

import pytest

from gridcore.analysis.probes import probe_speeds, step_gain, step_response
from gridcore.backends import get_backend
from gridcore.train.config import make_config
from gridcore.train.heldout import MAX_ERROR_RATIO, MIN_STEP_GAIN
from gridcore.train.loop import train
from gridcore.train.rundir import load_run


@pytest.mark.slow
def test_quick_preset_integrates_speed(tmp_path):
    train(make_config("quick", arena="square"), tmp_path / "run", stream=None)
    metrics = json.loads((tmp_path / "run" / "final_metrics.json").read_text())
    assert metrics["integrates_speed"], metrics["verdict"]
    assert metrics["nerr_heldout"] <= MAX_ERROR_RATIO * metrics["heading_baseline_nerr"]
    run = load_run(tmp_path / "run")
    probe = step_response(run.params, get_backend("auto"), run.settings.task.encoding,
                          speeds=probe_speeds(run.settings.task), spec=run.spec)
    assert step_gain(probe["summary"]) > MIN_STEP_GAIN
