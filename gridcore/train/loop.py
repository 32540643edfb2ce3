"""The training loop: minibatches, the regularisation schedule, the model
problem HF optimises, held-out evaluation, checkpoints and resume.

:func:`train` takes a :class:`gridcore.train.config.RunConfig` and hands each
stage its part: :func:`make_batch` the task settings, :func:`start_schedule`
and :func:`update_schedule` the schedule settings, :class:`ModelProblem` the
model spec, the optimiser step its HF or Adam settings.

A run lives in one directory; :mod:`gridcore.train.rundir` lists its files.

Every random draw comes from ``numpy.random.SeedSequence(seed, spawn_key=...)``
keyed by the iteration, so a resumed run sees the same batches as an
uninterrupted one and ends with the same parameters (same thread count).
"""

import copy
import json
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager

import numpy as np

from gridcore.backends import blas_limits, get_backend
from gridcore.model import objective
from gridcore.model.batch import Batch, Regularization
from gridcore.model.noise import CounterNoise
from gridcore.model.params import Params, init_params
from gridcore.model.spec import PAPER
from gridcore.sim.arenas import make_arena
from gridcore.sim.placecells import outputs_to_positions
from gridcore.sim.trajectories import simulate
from gridcore.train.config import RESUME_MAY_CHANGE, RunConfig
from gridcore.train.heldout import normalised_error, readout_floor, speed_use, trials_baseline
from gridcore.train.hf import (
    OPTIMIZER_STATES,
    AdamState,
    HFState,
    adam_step,
    hf_step,
)
from gridcore.train.memory import check_run_memory
from gridcore.train.rundir import RunDir
from gridcore.train.timing import Timings
from gridcore.util.dirlock import dir_lock
from gridcore.util.fileio import atomic_savez, atomic_write, atomic_write_json, load_npz
from gridcore.version import __version__

log = logging.getLogger(__name__)


def _seed_rng(seed, stream, index):
    """Generator for one purpose (stream 0: training batches, 1: evaluation) and index."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, index)))


def make_batch(task, arena, rng, n_trials, n_units, spec=PAPER, place_cells=None):
    """Simulate a minibatch of the task.

    Parameters
    ----------
    task : TaskSettings
        Steps per trial, encoding, motion and noise level.
    arena : Arena
        The task's arena (built once by the caller).
    rng : numpy.random.Generator
    n_trials : int
        M, trials in the batch.
    n_units : int
        N, units of the network (the noise has one value per unit and step;
        ``task.noise_source`` says whether it is an array or a CounterNoise).
    spec : ModelSpec
        The model: its readout sets the targets, its initial state the start codes.
    place_cells : PlaceCells or None
        The run's place cells (:meth:`RunConfig.make_place_cells`); required
        when ``spec`` uses place cells.

    Returns
    -------
    (Batch, Trajectories)
        The batch's targets are the positions (M, T, 2) under the ``"xy"``
        readout and their place-cell code ``place_cells.encode(positions)``
        (M, T, Np) under ``"place-cells"``; its ``start_codes`` are the code
        of each trial's start position (M, Np) under the ``"encoded"``
        initial state, else None. The trajectories keep the positions (for
        the held-out error in arena units).
    """
    if spec.uses_place_cells and (place_cells is None or place_cells.n_cells != spec.n_place_cells):
        raise ValueError(f"the model's readout {spec.readout!r} / initial_state {spec.initial_state!r} needs "
                         f"the run's place cells ({spec.n_place_cells} of them), got {place_cells!r}")
    traj = simulate(arena, n_trials, task.n_steps, rng, encoding=task.encoding,
                    motion_model=task.motion_model, **task.motion)
    noise = None
    if task.noise_std > 0 and task.noise_source == "counter":
        noise = CounterNoise(seed=int(rng.integers(2**63)), std=task.noise_std)
    elif task.noise_std > 0:
        noise = rng.standard_normal((n_trials, task.n_steps, n_units)) * task.noise_std
    targets = place_cells.encode(traj.positions) if spec.readout == "place-cells" else traj.positions
    codes = place_cells.encode(traj.start) if spec.initial_state == "encoded" else None
    return Batch(traj.inputs, targets, noise, codes), traj


class ModelProblem:
    """The CTRNN on one minibatch, as the flat-vector problem ``gridcore.train.hf`` optimises.

    Parameters
    ----------
    backend : Backend
        From :func:`gridcore.backends.get_backend`.
    shape : (n_units, n_in, n_out)
    batch : Batch
    reg : Regularization
    curvature_trials : int
        The first trials of ``batch`` are used for ``G v`` and :meth:`curvature_loss`.
    spec : ModelSpec
        Also sets the flat vector's ``Wenc`` block (``spec.n_code`` columns).
    timings : Timings or None
        Where the calls' wall times are added (parts ``gn``, ``forward``,
        ``gradient``, ``loss``); None: a new one, :attr:`timings`.
    trainable : ndarray (P,) of 0/1, or None
        Mask of the trained entries (:func:`trainable_mask`): the gradient,
        its squares and ``G v`` are zero outside it, so neither optimiser
        moves the frozen blocks. None: every entry is trained.
    """

    def __init__(self, backend, shape, batch, reg, curvature_trials, spec=PAPER, timings=None, trainable=None):
        self.backend, self.shape, self.batch, self.reg, self.spec = backend, shape, batch, reg, spec
        self.trainable = trainable
        self.curv_batch = batch.subset(min(curvature_trials, batch.n_trials))
        self.timings = Timings() if timings is None else timings
        self.terms = None              # loss terms at the last gradient
        self._linearised = None        # (theta, params, ForwardState) of the last curvature()

    def _params(self, theta):
        return Params.from_flat(theta, *self.shape, self.spec.n_code)

    def loss(self, theta):
        """The loss at the flat parameters ``theta`` on the whole minibatch."""
        with self.timings.part("loss"):
            return self.backend.loss(self._params(theta), self.batch, self.reg, spec=self.spec)["loss"]

    def curvature_loss(self, theta):
        """The loss at ``theta`` on the curvature trials.

        At the point of the last :meth:`curvature` it comes from that call's
        forward state (no second forward pass), else from ``backend.loss``.
        """
        with self.timings.part("loss"):
            if self._linearised is not None and np.array_equal(theta, self._linearised[0]):
                _, params, state = self._linearised
                return self._loss_from_state(params, state)
            return self.backend.loss(self._params(theta), self.curv_batch, self.reg, spec=self.spec)["loss"]

    def _loss_from_state(self, params, state):
        """The curvature trials' loss from their rates ``state.u`` (M, T, N) and outputs ``state.y`` (M, T, Nout)."""
        b = self.curv_batch
        u = state.u.reshape(-1)
        return objective.terms_from_sums(params, self.reg, objective.error_sum(self.spec.readout, state.y, b.targets),
                                         u @ u, b.n_trials, b.n_steps, self.spec.readout)["loss"]

    def gradient(self, theta):
        """``(loss, grad, sq_grad)`` at ``theta``; keeps the loss terms in :attr:`terms`."""
        with self.timings.part("gradient"):
            self.terms, g, sq = self.backend.gradient(self._params(theta), self.batch, self.reg,
                                                      spec=self.spec, sq_grad=True)
        if self.trainable is not None:
            g, sq = g * self.trainable, sq * self.trainable
        return self.terms["loss"], g, sq

    def curvature(self, theta):
        """``gv(v, mu)``: the Gauss-Newton product at ``theta`` on the curvature trials."""
        params = self._params(theta)
        b = self.curv_batch
        with self.timings.part("forward"):
            state = self.backend.forward(params, b.inputs, b.noise, spec=self.spec, start_codes=b.start_codes)
        self._linearised = (theta.copy(), params, state)

        def gv(v, mu):
            with self.timings.part("gn"):
                out = self.backend.gn_product(params, b, state, v, self.reg, mu=mu, spec=self.spec)
            # P G P: CG starts at 0 with a masked gradient, so its iterates stay in the trained subspace
            return out if self.trainable is None else out * self.trainable
        return gv


def trainable_mask(layout, frozen):
    """(P,) float64 mask, 0 over the blocks named in ``frozen`` and 1 elsewhere; None when none is frozen."""
    return 1.0 - layout.fill({name: 1.0 for name in frozen}) if frozen else None


def start_schedule(schedule, terms):
    """Initial ``Regularization`` (that of iteration 1): the paper's schedule (App. E) and ``lam_rec``.

    ``lam_l2`` makes ``lam_l2 R_L2 = E'`` and ``lam_fr`` makes
    ``lam_fr R_FR = fr_init_ratio E'`` for the initial network, where ``E'``
    is :func:`schedule_error`; a switched-off term gets weight 0. ``lam_rec``
    is the schedule's ``lam_rec`` if it applies from iteration 1
    (``lam_rec_from <= 1``), else 0.

    Parameters
    ----------
    schedule : ScheduleSettings
    terms : dict
        Loss terms ``E``, ``R_L2``, ``R_FR`` of the initial network, and
        ``E_min`` where :func:`with_least_error` adds it.
    """
    error = schedule_error(schedule, terms)
    lam_l2 = error / terms["R_L2"] if schedule.l2 and terms["R_L2"] > 0 else 0.0
    lam_fr = (schedule.fr_init_ratio * error / terms["R_FR"]
              if schedule.metabolic and terms["R_FR"] > 0 else 0.0)
    return Regularization(lam_l2, lam_fr, schedule.rec_weight(1))


def schedule_error(schedule, terms):
    """The error ``E'`` the schedule's ratios refer to: ``E``, less ``terms["E_min"]`` (0 if absent) when
    ``schedule.schedule_error`` is ``"excess"`` (``docs/guide.md``, the objective and its schedule)."""
    return terms["E"] - terms.get("E_min", 0.0) if schedule.schedule_error == "excess" else terms["E"]


def with_least_error(schedule, terms, batch, spec, start=False):
    """``terms`` with ``E_min`` of ``batch`` (:func:`gridcore.model.objective.least_error`) where the
    schedule needs it: an ``"excess"`` schedule, a readout whose ``E_min`` is not 0, and a weight scaled to
    E (``R_L2``'s only at the ``start``); else ``terms`` itself."""
    needed = schedule.metabolic or (start and schedule.l2)
    if schedule.schedule_error != "excess" or spec.readout == "xy" or not needed:
        return terms
    return {**terms, "E_min": objective.least_error(spec.readout, batch.targets)}


def update_schedule(schedule, reg, terms, iteration=None):
    """The next iteration's weights.

    ``lam_l2`` decays by ``l2_decay`` (down to ``l2_min``); ``lam_fr`` is
    lowered when needed to keep ``lam_fr R_FR <= fr_max_ratio E'``
    (:func:`schedule_error`);
    ``lam_rec`` switches on at iteration ``lam_rec_from``.

    Parameters
    ----------
    schedule : ScheduleSettings
    reg : Regularization
        This iteration's weights.
    terms : dict
        This iteration's loss terms ``E``, ``R_FR`` (and ``E_min``: :func:`with_least_error`).
    iteration : int or None
        This iteration's number (from 1): the next one gets
        ``schedule.rec_weight(iteration + 1)``; None keeps ``reg.lam_rec``.
    """
    lam_l2, lam_fr = reg.lam_l2, reg.lam_fr
    if lam_l2 > 0:
        lam_l2 = max(lam_l2 * schedule.l2_decay, schedule.l2_min)
    if lam_fr > 0:
        error = schedule_error(schedule, terms)
        if lam_fr * terms["R_FR"] > schedule.fr_max_ratio * error:
            lam_fr = schedule.fr_max_ratio * error / terms["R_FR"]
    lam_rec = reg.lam_rec if iteration is None else schedule.rec_weight(iteration + 1)
    return Regularization(lam_l2, lam_fr, lam_rec)


def _params(theta, layout):
    """``Params`` of the flat vector ``theta`` laid out as ``layout`` (copied)."""
    return Params.from_flat(theta, *layout.shape, layout.n_code)


def _save_checkpoint(run, iteration, theta, opt_state, reg):
    atomic_savez(run.checkpoint, format=1, iteration=np.int64(iteration), theta=theta,
                 lam_l2=np.float64(reg.lam_l2), lam_fr=np.float64(reg.lam_fr), lam_rec=np.float64(reg.lam_rec),
                 **opt_state.to_arrays())


def load_checkpoint(run, layout, opt_cls, iterations):
    """``(iteration, theta, opt_state, reg)`` from the run's checkpoint, refusing a mismatch.

    ``layout`` is the run's parameter layout; ``iterations`` the saved run's
    total: a checkpoint can never be past it. A checkpoint written before
    ``lam_rec`` existed resumes with ``lam_rec = 0``.
    """
    data = load_npz(run.checkpoint, required=("format", "iteration", "theta", "lam_l2", "lam_fr") + opt_cls.KEYS,
                    optional=("lam_rec",))
    if data["theta"].shape != (layout.size,):
        code = f" and a Wenc block of {layout.n_code} columns" if layout.n_code else ""
        raise ValueError(f"{run.checkpoint}: parameter vector of shape {data['theta'].shape} does not "
                         f"match the run's (n_units, n_in, n_out) = {layout.shape}{code} "
                         f"({layout.size} parameters)")
    fmt = data["format"]
    if fmt.shape != () or not np.issubdtype(fmt.dtype, np.integer) or fmt != 1:
        raise ValueError(f"{run.checkpoint}: field 'format' = {fmt.tolist()!r}, expected 1 (the only "
                         "checkpoint format; is the file from another program?)")
    it = data["iteration"]
    if it.shape != () or not np.issubdtype(it.dtype, np.integer) or not 0 <= it <= iterations:
        shown = it.item() if it.shape == () else f"of shape {it.shape}"
        raise ValueError(f"{run.checkpoint}: corrupted checkpoint (field 'iteration' = {shown}, not one of "
                         f"the run's iterations 0..{iterations} in {run.config})")
    try:
        theta = _params(data["theta"], layout).flat.copy()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{run.checkpoint}: corrupted checkpoint (field 'theta': {err})") from None
    try:
        reg = Regularization(*(np.asarray(data.get(k, 0.0)).tolist() for k in ("lam_l2", "lam_fr", "lam_rec")))
        opt_state = opt_cls.from_arrays(data, theta.size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{run.checkpoint}: corrupted checkpoint ({err})") from None
    return int(it), theta, opt_state, reg


def _kept_log_lines(path, iteration):
    """The lines of log ``path`` of iterations <= ``iteration`` (a resumed run redoes the rest); [] if absent.

    Only reads: the caller writes them back once every check has passed. A
    last line cut short (a kill mid-write) is dropped; any other unreadable
    line raises ValueError naming the file and line.
    """
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        raw = fh.readlines()
    lines = []
    for number, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            done = rec["iteration"]
        except (json.JSONDecodeError, KeyError, TypeError):
            if number == len(raw) and not line.endswith("\n"):
                break
            raise ValueError(f"{path}, line {number}: not a log record; repair or remove the line") from None
        if done <= iteration:
            lines.append(line)
    return lines


def _resume_point(run, cfg, opt_cls):
    """Everything a resume reads, checked before anything is written: ``(start, theta, opt_state, reg, log_lines)``.

    Raises ValueError (naming the file and field) for a run made with other
    settings, a corrupted checkpoint, one past ``cfg``'s iterations, or an
    unreadable log line; FileNotFoundError without ``config.json`` or a checkpoint.
    """
    saved = run.read_config()
    diff = saved.differing(cfg, ignore=RESUME_MAY_CHANGE)
    if diff:
        raise ValueError(f"{run.config}: the run was made with other settings ({', '.join(diff)}); "
                         "resume with the same settings or start a new --out directory")
    if not os.path.exists(run.checkpoint):
        raise FileNotFoundError(f"{run.checkpoint}: no such file; the run was stopped before its first "
                                "checkpoint: start it afresh (without --resume)")
    start, theta, opt_state, reg = load_checkpoint(run, cfg.layout, opt_cls, saved.optimizer.iterations)
    total = cfg.optimizer.iterations
    if start > total:
        raise ValueError(f"{run.path}: the run has done {start} iterations, more than the {total} "
                         f"asked for; resume with iterations >= {start} (nothing was changed)")
    return start, theta, opt_state, reg, _kept_log_lines(run.log, start)


def _set_aside_final(run, iteration):
    """Move a finished run's ``final.npz`` (and ``final_metrics.json``) to the snapshot of ``iteration``.

    Called when the run is resumed past it, so that no file claims the run
    ended there while training goes on; the parameters stay a snapshot.
    """
    os.makedirs(run.snapshots, exist_ok=True)
    if os.path.exists(run.final):
        os.replace(run.final, run.snapshot(iteration))
    if os.path.exists(run.metrics):
        os.replace(run.metrics, run.snapshot(iteration)[:-len(".npz")] + "_metrics.json")


def _set_aside_orphans(run):
    """Move a checkpoint and log left without ``config.json`` into ``orphaned-N/``; returns that folder.

    (A run killed before its settings were saved, or whose ``config.json``
    was removed: without the settings it cannot be resumed.)
    """
    k = 1
    while os.path.exists(os.path.join(run.path, f"orphaned-{k}")):
        k += 1
    folder = os.path.join(run.path, f"orphaned-{k}")
    os.makedirs(folder)
    for path in (run.checkpoint, run.log):
        if os.path.exists(path):
            os.replace(path, os.path.join(folder, os.path.basename(path)))
    return folder


def _time_text(rec):
    """The iteration's time and its parts that were called, e.g. ``4.21s (gn 3.10/43 fwd 0.03 grad 0.40 ...)``."""
    t, n = rec["time"], rec["calls"]
    names = {"gn": "gn", "forward": "fwd", "gradient": "grad", "loss": "loss", "batch": "batch", "eval": "eval"}
    # The call counts that vary (GN products, loss evaluations) follow their seconds.
    parts = [f"{short} {t[key]:.2f}" + (f"/{n[key]}" if key in ("gn", "loss") else "")
             for key, short in names.items() if n[key]]
    return f"{t['total']:.2f}s (" + " ".join(parts + [f"other {t['other']:.2f}"]) + ")"


def _progress(rec, total, optimizer):
    parts = [f"it {rec['iteration']:>{len(str(total))}}/{total}", f"loss {rec['loss']:.4e}",
             f"E {rec['E']:.4e}"]
    if optimizer == "hf":
        parts += [f"lambda {rec['damping']:.2e}", f"rho {rec['rho']:6.3f}", f"cg {rec['cg_iters']:3d}",
                  f"step {rec['step']:.2f}"]
    if "nerr" in rec:
        parts.append(f"nerr {rec['nerr']:.3f}")
    parts.append(_time_text(rec))
    return "  ".join(parts)


def held_out_trials(cfg, arena, place_cells=None):
    """The run's held-out trials (same task, their own seed stream): ``(Batch, Trajectories)``.

    Parameters
    ----------
    cfg : RunConfig
    arena : Arena
        The task's arena.
    place_cells : PlaceCells or None
        The run's place cells; None: ``cfg.make_place_cells(arena)``.
    """
    if place_cells is None:
        place_cells = cfg.make_place_cells(arena)
    return make_batch(cfg.task, arena, _seed_rng(cfg.seed, 1, 0), cfg.output.eval_trials,
                      cfg.network.n_units, cfg.model, place_cells)


def eval_batch(cfg, arena, place_cells=None):
    """The :class:`Batch` of :func:`held_out_trials`."""
    return held_out_trials(cfg, arena, place_cells)[0]


def reported_positions(params, batch, backend, spec=PAPER, place_cells=None):
    """The positions (arena units, (M, T, 2)) the network reports on ``batch``.

    The outputs themselves under the ``"xy"`` readout, the decoded place-cell
    logits under ``"place-cells"``
    (:func:`gridcore.sim.placecells.outputs_to_positions`), so both readouts'
    errors are in the same units and normalisation.

    Parameters
    ----------
    params : Params
    batch : Batch
    backend : Backend
    spec : ModelSpec
    place_cells : PlaceCells or None
        The run's place cells, required by the ``"place-cells"`` readout.
    """
    # forward_stream: the outputs only, without the (M, T, N) rates forward() would allocate.
    y = backend.forward_stream(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes).y
    return outputs_to_positions(y, spec, place_cells)


def evaluate(params, batch, backend, spec=PAPER, positions=None, place_cells=None):
    """Normalised position error of ``params`` on ``batch``: :func:`reported_positions`
    against the true positions (:func:`gridcore.train.heldout.normalised_error`).

    ``positions`` (M, T, 2) are the trials' true positions
    (``Trajectories.positions``); None: ``batch.targets`` (the positions under
    the ``"xy"`` readout). The other arguments are :func:`reported_positions`'.
    """
    if positions is None:
        if spec.readout != "xy":
            raise ValueError(f"evaluate needs the trials' positions under the {spec.readout!r} readout "
                             "(batch.targets are not positions)")
        positions = batch.targets
    # The torus needs the place-cell readout, so its place cells carry the arena whose distances count.
    arena = None if place_cells is None else place_cells.arena
    return normalised_error(reported_positions(params, batch, backend, spec, place_cells), positions, arena)


@contextmanager
def _term_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, so a killed run saves its checkpoint as on Ctrl-C.

    (Background jobs start with SIGINT ignored, and sessions and batch
    systems stop jobs with SIGTERM.) Only the main thread can handle signals.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(cfg, out, resume=False, stream=sys.stderr):
    """Run (or resume) training; returns the final ``Params``.

    Parameters
    ----------
    cfg : RunConfig
        From :func:`gridcore.train.config.make_config`.
    out : str or path-like
        The run directory (created if needed). Training holds its lock
        (:func:`gridcore.util.dirlock.dir_lock`) throughout.
    resume : bool
        Continue the run in ``out`` up to ``cfg.optimizer.iterations`` in
        total. Its saved settings must equal ``cfg`` but for
        :data:`gridcore.train.config.RESUME_MAY_CHANGE`. A finished run
        resumed past its end has its ``final.npz`` and
        ``final_metrics.json`` moved to the snapshot of that iteration
        (``snapshots/iter_NNNNNN.npz``, ``..._metrics.json``); one asked
        for the iterations it has done is left as it is.
    stream : file or None
        Where the per-iteration progress lines go (None: nowhere).

    Raises
    ------
    ValueError
        Resuming with other settings, with fewer iterations than already
        done, or from a corrupted checkpoint; a run too large for the
        machine's memory (:func:`gridcore.train.memory.check_run_memory`);
        ``out`` a file. Nothing in ``out`` is changed.
    FileExistsError
        ``out`` holds a run and ``resume`` is false.
    DirectoryLocked
        Another process trains in ``out``.
    """
    if not isinstance(cfg, RunConfig):
        raise TypeError(f"cfg must be a RunConfig (see gridcore.train.config.make_config), got {type(cfg).__name__}")
    run = RunDir(out)
    if os.path.exists(run.path) and not os.path.isdir(run.path):
        raise ValueError(f"{run.path} is a file, not a run directory; choose another --out")
    task, spec = cfg.task, cfg.model
    if spec.initial_state == "encoded" and task.start == "centre":
        log.warning("initial_state 'encoded' with trials that all start at the centre: every trial has the "
                    "same start code; --motion start=uniform lets them start anywhere")
    opt_cls = OPTIMIZER_STATES[cfg.optimizer.name]
    backend = get_backend(cfg.compute.backend, cfg.compute.threads, cfg.compute.dtype)
    check_run_memory(cfg, backend.name, backend.threads)
    # Every check before the first file is touched (the lock file included); again under the lock,
    # where another process can no longer change the run.
    if resume:
        _resume_point(run, cfg, opt_cls)
    elif os.path.exists(run.config) and (os.path.exists(run.checkpoint) or os.path.exists(run.log)):
        raise FileExistsError(f"{run.path} already holds a run; use --resume to continue it or choose another --out")
    os.makedirs(run.path, exist_ok=True)
    with dir_lock(run.path):
        point = _resume_point(run, cfg, opt_cls) if resume else None
        if point is not None and point[0] == cfg.optimizer.iterations and os.path.exists(run.final):
            log.info("%s has done its %d iterations already; nothing to do (nothing written)", run.path, point[0])
            return Params.load(run.final, spec, *cfg.shape)
        return _train(run, cfg, backend, point, stream)


def _train(run, cfg, backend, point, stream):
    """:func:`train` in the locked run directory, from ``point`` (:func:`_resume_point`) or afresh (None)."""
    task, opt, out_settings, spec = cfg.task, cfg.optimizer, cfg.output, cfg.model
    arena = make_arena(task.arena, task.arena_size)
    place_cells = cfg.make_place_cells(arena)
    shape, layout = cfg.shape, cfg.layout
    total = opt.iterations
    if point is not None:
        start, theta, opt_state, reg, log_lines = point
        if start < total:
            _set_aside_final(run, start)
        if os.path.exists(run.log):
            atomic_write(run.log, lambda fh: fh.writelines(log_lines))
        cfg.save(run.config)
        log.info("resuming %s after iteration %d", run.path, start)
    else:
        if not os.path.exists(run.config) and (os.path.exists(run.checkpoint) or os.path.exists(run.log)):
            log.warning("%s holds a checkpoint or log but no config.json (the run's settings), so it cannot be "
                        "resumed: moved them to %s and starting afresh", run.path, _set_aside_orphans(run))
        os.makedirs(run.snapshots, exist_ok=True)
        cfg.save(run.config)  # first: a run killed from here on can be resumed
        start = 0
        params = init_params(*shape[:2], seed=np.random.SeedSequence(cfg.seed, spawn_key=(2,)),
                             rec_init=cfg.network.rec_init, spec=spec)
        theta = params.flat.copy()
        opt_state = HFState(opt.hf.damping) if opt.name == "hf" else AdamState.zeros(theta.size)
        # The schedule starts from the initial network on its own batch (stream 0, index 0).
        first = make_batch(task, arena, _seed_rng(cfg.seed, 0, 0), opt.n_trials, cfg.network.n_units, spec,
                           place_cells)[0]
        terms = backend.loss(params, first, Regularization(), spec=spec)
        reg = start_schedule(cfg.schedule, with_least_error(cfg.schedule, terms, first, spec, start=True))
        params.save(run.snapshot(0), spec)
        _save_checkpoint(run, 0, theta, opt_state, reg)
    held_out, held_out_traj = held_out_trials(cfg, arena, place_cells)
    trainable = trainable_mask(layout, cfg.network.frozen)

    def nerr(params):
        return evaluate(params, held_out, backend, spec, held_out_traj.positions, place_cells)
    # Everything below the line is recomputed from `done` on resume; an
    # iteration only counts once `done` is assigned (one statement).
    done = (start, theta, opt_state, reg)
    try:
        with _term_as_interrupt(), blas_limits(backend), open(run.log, "a") as logfh:
            for it in range(start + 1, total + 1):
                timings = Timings()
                _, theta, opt_state, reg = done
                with timings.part("batch"):
                    batch, _ = make_batch(task, arena, _seed_rng(cfg.seed, 0, it), opt.n_trials,
                                          cfg.network.n_units, spec, place_cells)
                problem = ModelProblem(backend, shape, batch, reg, opt.curvature_trials, spec, timings, trainable)
                opt_state = copy.deepcopy(opt_state)
                if opt.name == "hf":
                    theta, info = hf_step(problem, theta, opt_state, opt.hf)
                else:
                    theta, info = adam_step(problem, theta, opt_state, opt.adam)
                terms = with_least_error(cfg.schedule, problem.terms, batch, spec)
                # threads: a resumed run may use another count (same maths, other round-off).
                rec = {"iteration": it, "threads": backend.threads, **terms,
                       "lam_l2": reg.lam_l2, "lam_fr": reg.lam_fr, "lam_rec": reg.lam_rec,
                       **{k: v for k, v in info.items() if k != "events" or v}}
                if (out_settings.eval_every and it % out_settings.eval_every == 0) or it == total:
                    with timings.part("eval"):
                        rec["nerr"] = nerr(_params(theta, layout))
                rec.update(timings.record())
                rec["seconds"] = rec["time"]["total"]
                logfh.write(json.dumps(rec) + "\n")
                logfh.flush()
                if stream is not None:
                    print(_progress(rec, total, opt.name), file=stream, flush=True)
                if out_settings.snapshot_due(it):
                    _params(theta, layout).save(run.snapshot(it), spec)
                done = (it, theta, opt_state, update_schedule(cfg.schedule, reg, terms, it))
                if out_settings.checkpoint_every and it % out_settings.checkpoint_every == 0:
                    _save_checkpoint(run, *done)
    except KeyboardInterrupt:
        _save_checkpoint(run, *done)
        print(f"interrupted: saved iteration {done[0]} to {run.checkpoint}; continue with --resume",
              file=sys.stderr)
        raise
    _save_checkpoint(run, *done)
    params = _params(done[1], layout)
    params.save(run.final, spec)
    error = nerr(params)
    baseline = trials_baseline(held_out_traj, arena, spec)
    floor = readout_floor(held_out_traj.positions, spec, place_cells)
    atomic_write_json(run.metrics, {"nerr_heldout": error, "heading_baseline_nerr": baseline,
                                    **speed_use(error, baseline, floor=floor), "eval_trials": out_settings.eval_trials,
                                    "iterations": total, "gridcore_version": __version__})
    return params
