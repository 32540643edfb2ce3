"""The sweep's ``summary.csv``: one row per run, read from its run directory.

Columns, in order:

``run``
    the run directory's name (under the sweep's output folder);
``status``
    ``finished``, ``failed`` or ``unfinished`` (not started, or stopped with
    a checkpoint: the next invocation resumes it);
*one column per varied setting*
    by dotted name (``noise_std``, ``motion.p_zero_speed``), the point's value;
``seed``
``iterations``, ``of``
    iterations done (the last line of ``log.jsonl``) and configured;
``wall_s``
    training wall time, s: the iteration times of ``log.jsonl`` summed (the
    iterations kept: those redone after a resume count once);
``threads``
    kernel threads of the run's last session;
``nerr``, ``nerr_iteration``
    the last held-out tracking error (error / that of the best constant
    guess; at the final iteration it is ``final_metrics.json``'s) and its iteration;
``analysis_nerr``, ``grid``, ``border``, ``band``, ``irregular``, ``none``, ``speed``, ``direction``
    from ``analysis/metrics.json`` when the run is analysed (else empty): the
    analysis's tracking error and its unit-type counts;
``error``
    why the run (or its analysis, prefixed ``analysis:``) failed.
"""

import csv
import json
import os

from gridcore.train.rundir import RunDir
from gridcore.util.fileio import atomic_write

__all__ = ["UNIT_TYPES", "columns", "summary_row", "write_summary", "last_iteration"]

UNIT_TYPES = ("grid", "border", "band", "irregular", "none", "speed", "direction")
_BEFORE = ("run", "status")
_AFTER = ("seed", "iterations", "of", "wall_s", "threads", "nerr", "nerr_iteration", "analysis_nerr") + UNIT_TYPES \
    + ("error",)


def columns(setting_names):
    """The header of ``summary.csv`` for sweeps varying ``setting_names`` (dotted names, in order)."""
    return list(_BEFORE) + list(setting_names) + list(_AFTER)


def summary_row(path, point, status, error=None):
    """One run's row (see the module docstring) from its directory ``path``.

    Parameters
    ----------
    path : str
        The run directory (it may not exist yet).
    point : Point
        The sweep point (name, varied settings, seed, configuration).
    status : {"finished", "failed", "unfinished"}
    error : str or None

    Returns
    -------
    dict
        Column -> value (None for an empty cell).
    """
    run = RunDir(path)
    row = {"run": point.name, "status": status, **point.settings, "seed": point.seed, "error": error,
           "of": point.config.optimizer.iterations if point.config is not None else None}
    log = _read_log(run.log)
    if log:
        evals = [r for r in log if "nerr" in r]
        row.update(iterations=log[-1]["iteration"], wall_s=round(sum(r["seconds"] for r in log), 3),
                   threads=log[-1].get("threads"))
        if evals:
            row.update(nerr=evals[-1]["nerr"], nerr_iteration=evals[-1]["iteration"])
    try:
        with open(os.path.join(path, "analysis", "metrics.json")) as fh:
            metrics = json.load(fh)
        counts = metrics["celltypes"]["counts"]
        row.update(analysis_nerr=metrics["tracking"]["normalised_error"], **{t: counts.get(t) for t in UNIT_TYPES})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return row


def write_summary(path, rows, setting_names):
    """Write ``rows`` (:func:`summary_row`) as CSV to ``path``, atomically; empty cells for None."""
    header = columns(setting_names)

    def write(fh):
        writer = csv.DictWriter(fh, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in header})
    atomic_write(path, write)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def last_iteration(path):
    """The iteration of the last complete line of ``path``'s ``log.jsonl`` (0 when there is none).

    Reads only the file's tail, so it is cheap to call often on long logs.
    """
    log = RunDir(path).log
    try:
        with open(log, "rb") as fh:
            start = max(0, os.path.getsize(log) - 65536)
            fh.seek(start)
            lines = fh.read().split(b"\n")
    except OSError:
        return 0
    records = _records(lines[1:] if start else lines)  # the first line of a tail may be cut
    return records[-1]["iteration"] if records else 0


def _read_log(path):
    """The records of a ``log.jsonl`` ([] without one); lines that do not parse (a kill mid-write) are left out."""
    try:
        with open(path, "rb") as fh:
            return _records(fh.read().split(b"\n"))
    except OSError:
        return []


def _records(lines):
    records = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("iteration"), int):
            records.append(rec)
    return records
