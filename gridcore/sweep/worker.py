"""What runs on the workers: a point's training and analysis as tasks, the run lock, and stopping.

The tasks are plain functions of plain arguments, so they run the same on a
Dask worker, in a worker of a cluster elsewhere, or in this process
(``--serial``). Each returns a small dict (``status``, ``error``, ...) and
never raises for a run's own failure: bad settings or a diverged run are
reported and the other runs go on.

A task holds the exclusive lock of its run directory
(:func:`gridcore.util.dirlock.dir_lock`, the lock training takes too; the
kernel drops it when the process dies), so two invocations never write one
run at once: a second waits for the first.

Stopping (Ctrl-C of the sweep): training runs in a worker's thread, not its
main thread, so no signal reaches it. :func:`stop_sweep` raises
KeyboardInterrupt inside each of the sweep's training threads in the process
(CPython's asynchronous exception, checked between bytecodes, like a signal
handler's), and the training loop saves its checkpoint on KeyboardInterrupt
as it does on Ctrl-C; tasks that start later return at once.
"""

import ctypes
import json
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager

from gridcore.analysis.pipeline import AnalysisSettings, Steps, analyze_run
from gridcore.report.outputs import write_outputs
from gridcore.train.config import RESUME_MAY_CHANGE, RunConfig
from gridcore.train.loop import train
from gridcore.train.rundir import RunDir
from gridcore.util.dirlock import dir_lock

__all__ = ["NEW", "PARTIAL", "FINISHED", "run_state", "analysed", "train_point", "analyze_point",
           "train_and_analyze_point", "stop_sweep", "running", "dask_setup"]

NEW, PARTIAL, FINISHED = "new", "partial", "finished"

_registry_lock = threading.Lock()
_active = {}          # thread ident -> (sweep id, "train" or "analyze") of the task it runs
_stopped = set()      # sweep ids stopped in this process


def run_state(path, cfg):
    """Where the run in ``path`` stands for configuration ``cfg``: NEW, PARTIAL or FINISHED.

    NEW: no checkpoint yet (nothing, or killed before the first one);
    PARTIAL: a checkpoint to resume from; FINISHED: ``final.npz`` after
    ``cfg``'s iterations.

    Raises
    ------
    ValueError
        ``path`` holds a run with other settings (but for those a resumed
        run may change, :data:`gridcore.train.config.RESUME_MAY_CHANGE`), or
        an unreadable ``config.json``.
    """
    run = RunDir(path)
    if not os.path.exists(run.config):
        return NEW
    diff = run.read_config().differing(cfg, ignore=RESUME_MAY_CHANGE)
    if diff:
        raise ValueError(f"{run.path} holds a run made with other settings ({', '.join(diff)}); "
                         "move it away or write the sweep to another out folder")
    if not os.path.exists(run.checkpoint):
        return NEW
    return FINISHED if _final_iterations(run) == cfg.optimizer.iterations else PARTIAL


def _final_iterations(run):
    """Iterations of the run's ``final.npz`` (from ``final_metrics.json``, written after it), or None."""
    try:
        with open(run.metrics) as fh:
            return json.load(fh)["iterations"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def analysed(path):
    """Whether ``path/analysis/`` holds an analysis of the run's current ``final.npz``."""
    report = os.path.join(path, "analysis", "report.html")
    final = RunDir(path).final
    return os.path.exists(report) and os.path.exists(final) and os.path.getmtime(report) >= os.path.getmtime(final)


@contextmanager
def _run_lock(path):
    """Hold the exclusive lock of run directory ``path`` (created if needed), waiting for another holder."""
    os.makedirs(path, exist_ok=True)
    with dir_lock(path, wait=True):
        yield


@contextmanager
def _stoppable(sweep, kind):
    """Register this thread's task (``kind``) with :func:`stop_sweep` for sweep ``sweep``; yields False if it
    is stopped already."""
    ident = threading.get_ident()
    with _registry_lock:
        go = sweep not in _stopped
        if go:
            _active[ident] = (sweep, kind)
    try:
        yield go
    finally:
        with _registry_lock:
            _active.pop(ident, None)


def stop_sweep(sweep):
    """Stop sweep ``sweep`` in this process: KeyboardInterrupt in its running tasks, later ones return at once.

    Returns the number of tasks interrupted. Called on every worker by the
    sweep's client (``Client.run``) when the sweep is stopped.
    """
    with _registry_lock:
        _stopped.add(sweep)
        idents = [i for i, (s, _) in _active.items() if s == sweep]
        for ident in idents:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
    return len(idents)


def running(sweep):
    """Trainings of sweep ``sweep`` running in this process now (the progress line's count, via ``Client.run``)."""
    with _registry_lock:
        return sum(task == (sweep, "train") for task in _active.values())


def _where():
    return f"{socket.gethostname()}:{os.getpid()}"


def train_point(path, config, sweep):
    """Train, resume or skip the run in ``path``: the training task of one point.

    Parameters
    ----------
    path : str
        The run directory (absolute: workers may start elsewhere).
    config : dict
        Its settings, :meth:`RunConfig.to_dict`.
    sweep : str
        The sweep's id (for :func:`stop_sweep`).

    Returns
    -------
    dict
        ``status``: ``"finished"`` (trained now), ``"skipped"`` (finished
        before), ``"stopped"`` (interrupted with a checkpoint, or not started)
        or ``"failed"``; ``resumed_from`` (iteration of the checkpoint it
        continued from, None for a fresh start); ``seconds`` (wall time of
        this task, s); ``error`` (``"Type: message"`` or None); ``worker``
        (``host:pid``).
    """
    t0 = time.perf_counter()
    result = {"status": "failed", "resumed_from": None, "error": None, "worker": _where()}
    try:
        cfg = RunConfig.from_dict(config)
        with _run_lock(path), _stoppable(sweep, "train") as go:
            if not go:
                result["status"] = "stopped"
            else:
                state = run_state(path, cfg)  # again: another holder of the lock may have changed it
                if state == FINISHED:
                    result["status"] = "skipped"
                else:
                    if state == PARTIAL:
                        result["resumed_from"] = RunDir(path).checkpoint_iteration()
                    train(cfg, path, resume=state == PARTIAL, stream=None)
                    result["status"] = "finished"
    except KeyboardInterrupt:
        result["status"] = "stopped"
    except Exception as err:  # the run's own failure: reported, the sweep goes on
        result["error"] = f"{type(err).__name__}: {err}"
    result["seconds"] = time.perf_counter() - t0
    return result


def analyze_point(path, backend, threads, settings, sweep, trained=None):
    """``python -m gridcore.analyze --quick`` on the finished run in ``path``: the analysis task of one point.

    Parameters
    ----------
    path : str
        The run directory.
    backend : str
    threads : int or None
    settings : dict
        Keywords of :meth:`AnalysisSettings.make` (e.g. ``{"quick": True}``).
    sweep : str
        The sweep's id.
    trained : dict or None
        The result of the point's :func:`train_point` when it ran in this
        sweep (the analysis is skipped unless it finished).

    Returns
    -------
    dict
        ``status``: ``"analysed"``, ``"skipped"`` (already analysed, or
        the run did not finish), ``"stopped"`` or ``"failed"``; ``error``;
        ``seconds``; ``worker``.
    """
    t0 = time.perf_counter()
    result = {"status": "skipped", "error": None, "worker": _where()}
    if trained is not None and trained["status"] not in ("finished", "skipped"):
        return {**result, "seconds": 0.0}
    try:
        # Right after its training, the analysis is still the run's task: the progress line counts it running.
        with _run_lock(path), _stoppable(sweep, "analyze" if trained is None else "train") as go:
            if not go:
                result["status"] = "stopped"
            elif not analysed(path):
                steps = Steps(None)
                write_outputs(analyze_run(path, (), backend, threads, AnalysisSettings.make(**settings), steps), steps)
                result["status"] = "analysed"
    except KeyboardInterrupt:
        result["status"] = "stopped"
    except Exception as err:
        result["status"], result["error"] = "failed", f"{type(err).__name__}: {err}"
    result["seconds"] = time.perf_counter() - t0
    return result


def train_and_analyze_point(path, config, sweep, backend, threads, settings):
    """:func:`train_point`, then :func:`analyze_point` of the run it trained, as one task.

    One task, so that a worker analyses each run as soon as it is trained:
    as two tasks, Dask hands a worker whose training ends the next queued
    training before the analysis that has just become ready.

    Returns
    -------
    dict
        ``train`` and ``analysis``: the two tasks' results.
    """
    trained = train_point(path, config, sweep)
    return {"train": trained, "analysis": analyze_point(path, backend, threads, settings, sweep, trained)}


def dask_setup(worker):
    """Dask preload of the sweep's local workers: ignore SIGINT.

    Ctrl-C in a terminal reaches the whole process group; the workers must
    outlive it so that :func:`stop_sweep` can checkpoint their runs (the
    client stops them, then closes the cluster).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
