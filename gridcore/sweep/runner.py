"""Running a sweep: its points trained (and analysed) on Dask or in this process, with progress and a summary.

:func:`run_sweep` takes the points (:meth:`gridcore.sweep.spec.Spec.points`,
or any named configurations, as ``python -m gridcore.reproduce`` gives) and
the output folder, which the client and every worker must see at the same
path (one machine, or a shared file system on a cluster). Then:

- points with invalid settings are failed at once; finished runs are
  skipped (and counted), unfinished ones resumed from their checkpoints;
- each remaining point is one task (:func:`gridcore.sweep.worker.train_point`;
  with ``analyze``, :func:`~gridcore.sweep.worker.train_and_analyze_point`,
  which analyses the run right after its training); a worker's death makes
  Dask run the task again elsewhere, which resumes from the checkpoint
  (after ``distributed.scheduler.allowed-failures`` deaths, 3 by default, the
  run is reported as failed);
- a line per finished or failed run, and every ``progress_every`` seconds a
  progress line: runs finished, running, failed and waiting, iterations per
  second and an estimate of the time left (iterations left over the rate so far);
- Ctrl-C stops the sweep: each running run saves its checkpoint
  (:func:`gridcore.sweep.worker.stop_sweep`), waiting ones do not start, and
  the same command later resumes them; a second Ctrl-C leaves without waiting
  (the runs then resume from their last periodic checkpoint);
- ``summary.csv`` (:mod:`gridcore.sweep.summary`) is rewritten as runs end.
"""

import math
import os
import queue
import sys
import time
import uuid
from dataclasses import dataclass

from gridcore.sweep import cluster
from gridcore.sweep.summary import last_iteration, summary_row, write_summary
from gridcore.sweep.worker import (
    FINISHED,
    analysed,
    analyze_point,
    run_state,
    running,
    stop_sweep,
    train_and_analyze_point,
    train_point,
)

__all__ = ["run_sweep", "Outcome", "ANALYSIS"]

ANALYSIS = {"quick": True}
"""The analysis of ``--analyze``: ``python -m gridcore.analyze --quick`` (:meth:`AnalysisSettings.make` keywords)."""


@dataclass(frozen=True)
class Outcome:
    """What a sweep ended with.

    Attributes
    ----------
    finished, failed, unfinished : int
        Runs in each state (``unfinished``: not started or stopped with a checkpoint).
    analysis_failed : int
        Finished runs whose analysis failed.
    rows : list of dict
        The rows of ``summary.csv``, one per point, in the points' order.
    seconds : float
        Wall time of the sweep, s.
    """

    finished: int
    failed: int
    unfinished: int
    analysis_failed: int
    rows: list
    seconds: float


class _Job:
    """A point's state on the client: status, error, its futures and how far its training got."""

    def __init__(self, point, path):
        self.point, self.path = point, path
        self.status, self.error, self.analysis_error = "waiting", point.error, None
        self.train = self.analysis = None
        self.total = point.config.optimizer.iterations if point.config is not None else 0
        self.first = self.done = last_iteration(path)
        self.log_size = -1
        if self.error is None:
            try:
                if run_state(path, point.config) == FINISHED:
                    self.status, self.done = "finished", self.total
            except ValueError as err:
                self.error = str(err)
        if self.error is not None:
            self.status = "failed"

    def progress(self):
        """Re-read the last logged iteration when the log has grown (one ``stat`` otherwise)."""
        try:
            size = os.path.getsize(os.path.join(self.path, "log.jsonl"))
        except OSError:
            return
        if size != self.log_size:
            self.log_size, self.done = size, last_iteration(self.path)

    def row(self):
        error = self.error or (f"analysis: {self.analysis_error}" if self.analysis_error else None)
        status = "unfinished" if self.status == "waiting" else self.status
        return summary_row(self.path, self.point, status, error)


def run_sweep(points, out, *, client=None, scheduler=None, workers=None, threads=None, serial=False,
              analyze=False, analysis=None, summary="summary.csv", stream=sys.stderr, progress_every=10.0,
              dashboard=None, stop_timeout=300.0):
    """Train (or resume, or skip) every point into ``out/<point.name>``; optionally analyse them.

    Parameters
    ----------
    points : sequence of Point
        Distinct names; ``config`` None (with ``error``) for refused settings.
    out : str
        The output folder (created); every worker must see it at this path.
    client : distributed.Client or None
        Run on this client's cluster (left open); else ``scheduler`` or a new LocalCluster.
    scheduler : str or None
        Address of an existing Dask scheduler (``tcp://host:8786``).
    workers : int >= 1 or None
        Worker processes of the LocalCluster (default: see :func:`gridcore.sweep.cluster.local_shape`).
    threads : int >= 1 or None
        Kernel threads of every run (default: the points' own ``threads`` if
        set, else the cores per worker; in ``serial``, all cores).
    serial : bool
        One point after another in this process, without Dask.
    analyze : bool
        Also analyse each finished run not yet analysed, on the workers.
    analysis : dict or None
        Keywords of :meth:`gridcore.analysis.pipeline.AnalysisSettings.make`
        (default :data:`ANALYSIS`: the quick analysis).
    summary : str or None
        File name of the summary in ``out`` (None: none).
    stream : file or None
        Where the progress lines go.
    progress_every : float or None
        Seconds between progress lines (0 or None: a line per finished run only).
    dashboard : str or None
        Address of the LocalCluster's Dask dashboard (e.g. ``":8787"``).
    stop_timeout : float
        Seconds to wait, after Ctrl-C, for the running runs to save their checkpoints.

    Returns
    -------
    Outcome

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C, after the runs were stopped and the summary written.
    ImportError
        Dask is not installed (and not ``serial``).
    """
    sweep = _Sweep(points, out, analyze, ANALYSIS if analysis is None else analysis, summary, stream,
                   progress_every)
    return sweep.run(client, scheduler, workers, threads, serial, dashboard, stop_timeout)


class _Sweep:
    """One invocation of a sweep: its jobs, its output and the executor's loop."""

    def __init__(self, points, out, analyze, analysis, summary, stream, progress_every):
        names = [p.name for p in points]
        if len(set(names)) < len(names):
            raise ValueError(f"two points of the sweep share a name: {sorted(n for n in names if names.count(n) > 1)}")
        self.out = os.path.abspath(out)
        os.makedirs(self.out, exist_ok=True)
        self.jobs = [_Job(p, os.path.join(self.out, p.name)) for p in points]
        self.settings = list(dict.fromkeys(k for p in points for k in p.settings))
        self.analyze, self.analysis, self.stream = analyze, analysis, stream
        self.progress_every = progress_every or math.inf
        self.summary = None if summary is None else os.path.join(self.out, summary)
        self.rows = {}
        self.left = 0         # Dask task results still to come
        self.t0 = time.perf_counter()
        self.id = uuid.uuid4().hex[:8]

    # ---- output

    def say(self, text):
        if self.stream is not None:
            print(f"[{time.perf_counter() - self.t0:7.1f} s] {text}", file=self.stream, flush=True)

    def update(self, job):
        """Re-read ``job``'s summary row and rewrite ``summary.csv``."""
        self.rows[job.point.name] = job.row()
        if self.summary is not None:
            write_summary(self.summary, [self.rows[j.point.name] for j in self.jobs], self.settings)

    def progress_line(self, running=None):
        """Print the counts, the rate and the time left; ``running``: tasks running now (trainings and analyses)."""
        counts = {s: sum(j.status == s for j in self.jobs) for s in ("finished", "failed", "waiting")}
        for job in self.jobs:
            if job.status == "waiting":
                job.progress()
        done = sum(j.done - j.first for j in self.jobs if j.status != "failed")
        left = sum(j.total - j.done for j in self.jobs if j.status == "waiting")
        elapsed = time.perf_counter() - self.t0
        text = f"{counts['finished']}/{len(self.jobs)} finished"
        if running is not None:
            text += f", {running} running"
            counts["waiting"] -= running
        text += f", {counts['failed']} failed, {counts['waiting']} waiting"
        analyses = sum(j.analysis is not None and not j.analysis.done() for j in self.jobs)
        if analyses:
            text += f", {analyses} analyses to do"
        if done > 0 and left > 0:
            rate = done / elapsed
            text += f"; {rate:.3g} it/s, about {_duration(left / rate)} left"
        self.say(text)

    # ---- the sweep

    def run(self, client, scheduler, workers, threads, serial, dashboard, stop_timeout):
        train = [j for j in self.jobs if j.status == "waiting"]
        check = [j for j in self.jobs if j.status == "finished"] if self.analyze else []
        analyse_only = [j for j in check if not analysed(j.path)]
        self.rows = {j.point.name: j.row() for j in self.jobs}
        for job in self.jobs:
            self.update(job)
            if job.status == "failed":
                self.say(f"failed {job.point.name}: {job.error}")
        n_failed = sum(j.status == "failed" for j in self.jobs)
        self.say(f"sweep of {len(self.jobs)} runs in {self.out}: {len(self.jobs) - len(train) - n_failed} "
                 f"finished before, {n_failed} invalid, {len(train)} to train"
                 + (f", {len(analyse_only)} more to analyse" if self.analyze else ""))
        if train or analyse_only:
            given = {j.point.config.compute.threads for j in self.jobs if j.point.config is not None} - {None}
            threads = threads or (given.pop() if len(given) == 1 else None)
            try:
                if serial:
                    self.run_serial(train, analyse_only, threads)
                else:
                    self.run_dask(train, analyse_only, client, scheduler, workers, threads, dashboard, stop_timeout)
            except KeyboardInterrupt:
                for job in self.jobs:
                    self.update(job)
                left = sum(j.status == "waiting" for j in self.jobs)
                self.say(f"stopped: {left} runs unfinished; run the same command again to resume them")
                raise
        outcome = Outcome(finished=sum(j.status == "finished" for j in self.jobs),
                          failed=sum(j.status == "failed" for j in self.jobs),
                          unfinished=sum(j.status == "waiting" for j in self.jobs),
                          analysis_failed=sum(j.analysis_error is not None for j in self.jobs),
                          rows=[self.rows[j.point.name] for j in self.jobs], seconds=time.perf_counter() - self.t0)
        self.say(f"done: {outcome.finished} finished, {outcome.failed} failed, {outcome.unfinished} unfinished"
                 + (f", {outcome.analysis_failed} analyses failed" if outcome.analysis_failed else "")
                 + (f"; {self.summary}" if self.summary else ""))
        return outcome

    def config(self, job, threads):
        """The job's configuration as a dict, with the sweep's threads per run when set."""
        cfg = job.point.config if threads is None else job.point.config.with_overrides(threads=threads)
        return cfg.to_dict()

    def trained(self, job, result):
        """Record a training task's result."""
        name = job.point.name
        if result["status"] in ("finished", "skipped"):
            job.status, job.done = "finished", job.total
            resumed = "" if result["resumed_from"] is None else f", resumed from iteration {result['resumed_from']}"
            self.update(job)
            nerr = self.rows[name].get("nerr")
            self.say(f"finished {name}: {job.total} iterations" + ("" if nerr is None else f", error {nerr:.3g}")
                     + f" ({result['seconds']:.1f} s on {result['worker']}{resumed})")
        elif result["status"] == "failed":
            job.status, job.error = "failed", result["error"]
            self.update(job)
            self.say(f"failed {name}: {job.error}")
        else:  # stopped: stays waiting (unfinished), resumable
            self.update(job)

    def analysed(self, job, result):
        """Record an analysis task's result (that of a run whose training failed says so already)."""
        if job.status == "failed":
            return
        if result["status"] == "failed":
            job.analysis_error = result["error"]
            self.say(f"analysis of {job.point.name} failed: {job.analysis_error}")
        elif result["status"] == "analysed":
            self.say(f"analysed {job.point.name} ({result['seconds']:.1f} s)")
        self.update(job)

    def run_serial(self, train, analyse_only, threads):
        """Each job in this process, one after another (Ctrl-C reaches the training loop directly)."""
        def analyse(job, trained=None):
            result = analyze_point(job.path, job.point.config.compute.backend, threads, self.analysis, self.id,
                                   trained)
            self.analysed(job, result)
            if result["status"] == "stopped":
                raise KeyboardInterrupt

        for job in analyse_only:
            analyse(job)
        for job in train:
            result = train_point(job.path, self.config(job, threads), self.id)
            self.trained(job, result)
            if result["status"] == "stopped":
                raise KeyboardInterrupt
            if self.analyze:
                analyse(job, result)
            self.progress_line()

    def run_dask(self, train, analyse_only, client, scheduler, workers, threads, dashboard, stop_timeout):
        """Submit the jobs to Dask and follow them until all are done (or Ctrl-C)."""
        own = client is None
        if own and scheduler is None:
            workers, threads = cluster.local_shape(sum(j.point.config is not None for j in self.jobs),
                                                   workers, threads)
            client = cluster.start_local_cluster(workers, threads, dashboard)
            where = f"a LocalCluster of {workers} worker{'s' * (workers > 1)} x {threads} thread{'s' * (threads > 1)}"
        else:
            if own:
                client = cluster.connect(scheduler)
            threads = threads or cluster.cluster_threads(client)
            where = f"the Dask scheduler {client.scheduler.address}, {threads} threads per run"
        if dashboard and client.dashboard_link:
            where += f" (dashboard {client.dashboard_link})"
        self.say(f"running on {where}")
        events = queue.Queue()
        kinds = {}

        def submit(function, *args, kind, job):
            future = client.submit(function, *args, key=f"{kind}-{job.point.name}-{self.id}", pure=False)
            kinds[future.key] = (kind, job)
            future.add_done_callback(events.put)
            return future

        try:
            for job in analyse_only:
                job.analysis = submit(analyze_point, job.path, job.point.config.compute.backend, threads,
                                      self.analysis, self.id, kind="analyze", job=job)
            for job in train:
                if self.analyze:
                    job.train = job.analysis = submit(
                        train_and_analyze_point, job.path, self.config(job, threads), self.id,
                        job.point.config.compute.backend, threads, self.analysis, kind="train+analyze", job=job)
                else:
                    job.train = submit(train_point, job.path, self.config(job, threads), self.id, kind="train",
                                       job=job)
            self.left = len(kinds)
            try:
                self.follow(client, events, kinds, self.progress_every)
            except KeyboardInterrupt:
                self.say("stopping: the running runs save their checkpoints (Ctrl-C again to leave now; "
                         "they then resume from their last periodic checkpoint)")
                try:
                    client.run(stop_sweep, self.id)
                except Exception as err:  # a worker lost meanwhile: its run resumes from its last checkpoint
                    self.say(f"could not reach every worker ({type(err).__name__}: {err})")
                self.follow(client, events, kinds, self.progress_every, deadline=stop_timeout)
                raise
        finally:
            if own:
                client.close()
                if scheduler is None:
                    client.cluster.close()

    def follow(self, client, events, kinds, every, deadline=None):
        """Record the ``self.left`` task results still to come, with a progress line every ``every`` s."""
        end = None if deadline is None else time.monotonic() + deadline
        next_line = time.monotonic() + every
        while self.left > 0 and (end is None or time.monotonic() < end):
            wake = min(next_line, math.inf if end is None else end)
            try:
                future = events.get(timeout=None if wake == math.inf else max(0.05, wake - time.monotonic()))
            except queue.Empty:
                future = None
            if future is not None:
                self.left -= 1
                kind, job = kinds[future.key]
                result = _result(future)
                if kind == "train+analyze" and "train" in result:
                    self.trained(job, result["train"])
                    self.analysed(job, result["analysis"])
                else:  # a training, an analysis, or a task that failed as a whole (its training, then)
                    (self.analysed if kind == "analyze" else self.trained)(job, result)
            if time.monotonic() >= next_line:
                self.progress_line(running=_running_now(client, self.id))
                next_line += every


def _running_now(client, sweep):
    """Trainings of ``sweep`` running on ``client``'s workers, or None when a worker does not answer.

    A worker lost or restarted between two progress lines (its task goes to
    another worker and resumes from its checkpoint) must not end the sweep.
    """
    try:
        return sum(client.run(running, sweep).values())
    except Exception:  # CommClosedError, OSError, TimeoutError, or an error on the worker
        return None


def _result(future):
    """A task's result dict, or a failure one when its worker died too often or it was cancelled."""
    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return {"status": "stopped", "error": None, "seconds": 0.0, "worker": "-", "resumed_from": None}
    err = future.exception()
    if type(err).__name__ == "KilledWorker":
        text = (f"KilledWorker: the workers running it died too often (distributed.scheduler.allowed-failures); "
                f"out of memory, or a crash in the kernels? ({err})")
    else:
        text = f"{type(err).__name__}: {err}"
    return {"status": "failed", "error": text, "seconds": 0.0, "worker": "-", "resumed_from": None}


def _duration(seconds):
    """``"42 s"``, ``"3 min 20 s"`` or ``"2 h 05 min"``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
