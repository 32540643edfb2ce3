"""The training time of a run in the report: the summary of log.jsonl's per-iteration breakdown."""

import pytest

from gridcore.report.training import training_text, training_time
from gridcore.train.timing import PARTS


def record(total, gn, loss_calls=3, gn_calls=40):
    time = {**dict.fromkeys(PARTS, 0.0), "gn": gn, "gradient": 0.5, "other": total - gn - 0.5, "total": total}
    calls = {**dict.fromkeys(PARTS, 1), "gn": gn_calls, "loss": loss_calls}
    return {"seconds": total, "time": time, "calls": calls}


def test_summary_of_timed_records():
    t = training_time([record(4.0, 3.0), record(6.0, 4.5, loss_calls=5, gn_calls=50), record(5.0, 4.0)])
    assert t["iterations"] == t["timed_iterations"] == 3 and t["hours"] == pytest.approx(15 / 3600)
    assert t["median_seconds"] == 5.0 and t["median_part_seconds"]["gn"] == 4.0
    assert t["share"]["gn"] == pytest.approx(11.5 / 15) and sum(t["share"].values()) == pytest.approx(1)
    assert t["median_calls"] == {"gn": 40, "loss": 3}
    text = training_text(t)
    assert text.startswith("Training: 3 iterations in 0.00 h, median 5.00 s per iteration")
    assert "GN products 77%, other 13%, gradients 10%;" in text and "40 GN products and 3 loss evaluations" in text


def test_summary_of_records_without_the_breakdown():
    t = training_time([{"seconds": 2.0}, {"seconds": 4.0}])      # logged before the breakdown existed
    assert t == {"iterations": 2, "hours": pytest.approx(6 / 3600), "median_seconds": 3.0, "timed_iterations": 0}
    assert training_text(t).endswith("(no breakdown: logged before it was recorded).")
    assert training_time([]) is None and training_text(None) == "Training: no log records."
