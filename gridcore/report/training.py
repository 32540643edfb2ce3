"""What training a run cost, from its ``log.jsonl``: iteration times and where they went.

:func:`training_time` summarises the records (``metrics["training"]``);
:func:`training_text` says it in one sentence for ``report.html``. Records
written before the per-iteration breakdown existed (``time`` and ``calls``)
give the times only.
"""

import statistics

from gridcore.train.timing import PARTS

__all__ = ["training_text", "training_time"]

_NAMES = {"gn": "GN products", "forward": "forward passes for them", "gradient": "gradients",
          "loss": "loss evaluations", "batch": "minibatches", "eval": "held-out evaluations", "other": "other"}


def training_time(records):
    """Summary of a run's log records, or None without records.

    Returns
    -------
    dict with ``iterations`` (records), ``hours`` (summed ``seconds``),
    ``median_seconds`` (per iteration) and, over the records that have the
    breakdown (``timed_iterations`` of them, 0 if none), ``share`` (each
    part's and ``other``'s fraction of their summed time), ``median_part_seconds``
    and ``median_calls`` (GN products and loss evaluations per iteration).
    """
    if not records:
        return None
    seconds = [r["seconds"] for r in records]
    out = {"iterations": len(records), "hours": sum(seconds) / 3600.0,
           "median_seconds": statistics.median(seconds)}
    timed = [r for r in records if "time" in r]
    out["timed_iterations"] = len(timed)
    if timed:
        keys = (*PARTS, "other")
        total = sum(r["time"]["total"] for r in timed)
        out["share"] = {k: sum(r["time"][k] for r in timed) / total if total > 0 else 0.0 for k in keys}
        out["median_part_seconds"] = {k: statistics.median(r["time"][k] for r in timed) for k in keys}
        out["median_calls"] = {k: statistics.median(r["calls"][k] for r in timed) for k in ("gn", "loss")}
    return out


def training_text(t):
    """One sentence on :func:`training_time`'s summary ``t`` (None: the run has no log records)."""
    if t is None:
        return "Training: no log records."
    text = (f"Training: {t['iterations']} iterations in {t['hours']:.2f} h, median "
            f"{t['median_seconds']:.2f} s per iteration")
    if not t["timed_iterations"]:
        return text + " (no breakdown: logged before it was recorded)."
    shares = sorted(t["share"].items(), key=lambda kv: -kv[1])
    parts = ", ".join(f"{_NAMES[k]} {100 * v:.0f}%" for k, v in shares if v >= 0.005)
    calls = t["median_calls"]
    return (text + f"; of the time: {parts}; per iteration (medians) {calls['gn']:g} GN products and "
            f"{calls['loss']:g} loss evaluations.")
