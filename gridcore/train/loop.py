"""Training runs: configuration and presets, batches, the regularisation
schedule, the optimisation loop, checkpoints and resume.

A run lives in one directory::

    config.json        everything needed to rerun (written once, checked on resume)
    log.jsonl          one line per iteration: threads, loss terms, lambda, rho, CG iterations, step, seconds
    checkpoint.npz     written atomically every ``checkpoint_every`` iterations and on Ctrl-C or SIGTERM
    snapshots/iter_NNNNNN.npz   parameters at chosen iterations (development analysis)
    final.npz          the trained parameters
    final_metrics.json normalised error on held-out trials

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
import time
from contextlib import contextmanager

import numpy as np

from gridcore.backends import blas_limits, get_backend
from gridcore.model.batch import Batch, Regularization
from gridcore.model.params import Params, init_params, param_count
from gridcore.model.spec import PAPER
from gridcore.sim.arenas import make_arena
from gridcore.sim.trajectories import ENCODINGS, simulate
from gridcore.train.config import (
    model_spec,
)
from gridcore.train.hf import (
    AdamSettings,
    AdamState,
    HFSettings,
    HFState,
    adam_step,
    hf_step,
)
from gridcore.train.rundir import RunDir, config_for_compare
from gridcore.util.fileio import atomic_savez, atomic_write, atomic_write_json, load_npz
from gridcore.version import __version__

log = logging.getLogger(__name__)

def _seed_rng(cfg, stream, index):
    """Generator for one purpose (stream 0: training batches, 1: evaluation) and index."""
    return np.random.default_rng(np.random.SeedSequence(cfg["seed"], spawn_key=(stream, index)))


def make_batch(cfg, arena, rng, n_trials=None):
    """Simulate a minibatch for the run's settings; returns ``(Batch, Trajectories)``."""
    m = cfg["n_trials"] if n_trials is None else n_trials
    traj = simulate(arena, m, cfg["n_steps"], rng, encoding=cfg["encoding"], **cfg["motion"])
    noise = None
    if cfg["noise_std"] > 0:
        noise = rng.standard_normal((m, cfg["n_steps"], cfg["n_units"])) * cfg["noise_std"]
    return Batch(traj.inputs, traj.positions, noise), traj


def normalised_error(y, targets):
    """Mean squared error divided by that of the best constant output.

    The best constant is the mean target (per output) over all trials and
    steps; 1 means no better than always guessing it, 0 is perfect.

    Parameters
    ----------
    y, targets : (M, T, Nout)
    """
    const = np.mean((targets - targets.mean(axis=(0, 1))) ** 2)
    return float(np.mean((y - targets) ** 2) / const)


class ModelProblem:
    """The CTRNN on one minibatch, as the flat-vector problem ``gridcore.train.hf`` optimises.

    Parameters
    ----------
    backend : a backend from ``gridcore.get_backend``
    shape : (n_units, n_in, n_out)
    batch : Batch
    reg : Regularization
    curvature_trials : int; the first trials of ``batch`` are used for ``G v``
    spec : ModelSpec
    """

    def __init__(self, backend, shape, batch, reg, curvature_trials, spec=PAPER):
        self.backend, self.shape, self.batch, self.reg, self.spec = backend, shape, batch, reg, spec
        self.curv_batch = batch.subset(min(curvature_trials, batch.n_trials))
        self.terms = None              # loss terms at the last gradient

    def _params(self, theta):
        return Params.from_flat(theta, *self.shape)

    def loss(self, theta):
        return self.backend.loss(self._params(theta), self.batch, self.reg, spec=self.spec)["loss"]

    def gradient(self, theta):
        self.terms, g, sq = self.backend.gradient(self._params(theta), self.batch, self.reg,
                                                  spec=self.spec, sq_grad=True)
        return self.terms["loss"], g, sq

    def curvature(self, theta):
        params = self._params(theta)
        b = self.curv_batch
        state = self.backend.forward(params, b.inputs, b.noise, spec=self.spec)

        def gv(v, mu):
            return self.backend.gn_product(params, b, state, v, self.reg, mu=mu, spec=self.spec)
        return gv


def start_schedule(cfg, terms):
    """Initial ``Regularization`` of the paper's schedule (App. E).

    ``lam_l2`` makes ``lam_l2 R_L2 = E`` and ``lam_fr`` makes
    ``lam_fr R_FR = fr_init_ratio E`` for the initial network; a switched-off
    term gets weight 0.
    """
    lam_l2 = terms["E"] / terms["R_L2"] if cfg["l2"] and terms["R_L2"] > 0 else 0.0
    lam_fr = cfg["fr_init_ratio"] * terms["E"] / terms["R_FR"] if cfg["metabolic"] and terms["R_FR"] > 0 else 0.0
    return Regularization(lam_l2, lam_fr)


def update_schedule(cfg, reg, terms):
    """The next iteration's weights: ``lam_l2`` decays by ``l2_decay`` (to ``l2_min``);
    ``lam_fr`` is lowered when needed to keep ``lam_fr R_FR <= fr_max_ratio E``."""
    lam_l2, lam_fr = reg.lam_l2, reg.lam_fr
    if lam_l2 > 0:
        lam_l2 = max(lam_l2 * cfg["l2_decay"], cfg["l2_min"])
    if lam_fr > 0 and lam_fr * terms["R_FR"] > cfg["fr_max_ratio"] * terms["E"]:
        lam_fr = cfg["fr_max_ratio"] * terms["E"] / terms["R_FR"]
    return Regularization(lam_l2, lam_fr)


def _save_checkpoint(run, iteration, theta, opt_state, reg):
    atomic_savez(run.checkpoint, format=1, iteration=np.int64(iteration), theta=theta,
                 lam_l2=np.float64(reg.lam_l2), lam_fr=np.float64(reg.lam_fr), **opt_state.to_arrays())


def _load_checkpoint(run, shape, opt_cls):
    """``(iteration, theta, opt_state, reg)`` from the run's checkpoint, refusing a mismatch."""
    data = load_npz(run.checkpoint, required=("format", "iteration", "theta", "lam_l2", "lam_fr") + opt_cls.KEYS)
    if data["theta"].shape != (param_count(*shape),):
        raise ValueError(f"{run.checkpoint}: parameter vector of shape {data['theta'].shape} does not "
                         f"match the run's (n_units, n_in, n_out) = {shape}")
    try:
        theta = Params.from_flat(data["theta"], *shape).flat.copy()
        reg = Regularization(data["lam_l2"], data["lam_fr"])
        opt_state = opt_cls.from_arrays(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{run.checkpoint}: corrupted checkpoint ({err})") from None
    return int(data["iteration"]), theta, opt_state, reg


def _truncate_log(path, iteration):
    """Keep log lines of iterations <= ``iteration`` (a resumed run redoes the rest)."""
    if not os.path.exists(path):
        return
    with open(path) as fh:
        lines = [ln for ln in fh if ln.strip() and json.loads(ln)["iteration"] <= iteration]
    atomic_write(path, lambda fh: fh.writelines(lines))


def _progress(rec, total, optimizer):
    parts = [f"it {rec['iteration']:>{len(str(total))}}/{total}", f"loss {rec['loss']:.4e}",
             f"E {rec['E']:.4e}"]
    if optimizer == "hf":
        parts += [f"lambda {rec['damping']:.2e}", f"rho {rec['rho']:6.3f}", f"cg {rec['cg_iters']:3d}",
                  f"step {rec['step']:.2f}"]
    if "nerr" in rec:
        parts.append(f"nerr {rec['nerr']:.3f}")
    parts.append(f"{rec['seconds']:.2f}s")
    return "  ".join(parts)


def eval_batch(cfg, arena):
    """The run's held-out trials (same motion and noise level, their own seed stream)."""
    return make_batch(cfg, arena, _seed_rng(cfg, 1, 0), n_trials=cfg["eval_trials"])[0]


def evaluate(params, batch, backend, spec=PAPER):
    """Normalised error of ``params`` on ``batch`` (see :func:`normalised_error`)."""
    return normalised_error(backend.forward(params, batch.inputs, batch.noise, spec=spec).y, batch.targets)


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
    cfg : dict from :func:`make_config`
    out : run directory (created if needed)
    resume : continue the run in ``out`` up to ``cfg["iterations"]`` in total
    stream : where the per-iteration progress lines go (None: nowhere)
    """
    run = RunDir(out)
    arena = make_arena(cfg["arena"], cfg["arena_size"])
    spec = model_spec(cfg)
    shape = (cfg["n_units"], ENCODINGS[cfg["encoding"]], spec.n_out)
    opt_cls = HFState if cfg["optimizer"] == "hf" else AdamState
    backend = get_backend(cfg["backend"], cfg["threads"])
    if resume:
        saved = run.read_config()
        diff = sorted(k for k in set(config_for_compare(saved)) | set(config_for_compare(cfg))
                      if saved.get(k) != cfg.get(k))
        if diff:
            raise ValueError(f"{run.config}: the run was made with other settings ({', '.join(diff)}); "
                             "resume with the same settings or start a new --out directory")
        start, theta, opt_state, reg = _load_checkpoint(run, shape, opt_cls)
        _truncate_log(run.log, start)
        log.info("resuming %s after iteration %d", run.path, start)
    else:
        if os.path.exists(run.checkpoint) or os.path.exists(run.log):
            raise FileExistsError(f"{run.path} already holds a run; use --resume to continue it "
                                  "or choose another --out")
        os.makedirs(run.snapshots, exist_ok=True)
        start = 0
        params = init_params(*shape[:2], seed=np.random.SeedSequence(cfg["seed"], spawn_key=(2,)),
                             rec_init=cfg["rec_init"], spec=spec)
        theta = params.flat.copy()
        opt_state = HFState(cfg["hf"]["damping"]) if opt_cls is HFState else AdamState.zeros(theta.size)
        # The schedule starts from the initial network on its own batch (stream 0, index 0).
        reg = start_schedule(cfg, backend.loss(params, make_batch(cfg, arena, _seed_rng(cfg, 0, 0))[0],
                                               Regularization(), spec=spec))
        params.save(run.snapshot(0), spec)
        _save_checkpoint(run, 0, theta, opt_state, reg)
    atomic_write_json(run.config, cfg)
    held_out = eval_batch(cfg, arena)
    hf_settings, adam_settings = HFSettings(**cfg["hf"]), AdamSettings(**cfg["adam"])
    total = cfg["iterations"]
    # Everything below the line is recomputed from `done` on resume; an
    # iteration only counts once `done` is assigned (one statement).
    done = (start, theta, opt_state, reg)
    try:
        with _term_as_interrupt(), blas_limits(backend), open(run.log, "a") as logfh:
            for it in range(start + 1, total + 1):
                t0 = time.perf_counter()
                _, theta, opt_state, reg = done
                batch, _ = make_batch(cfg, arena, _seed_rng(cfg, 0, it))
                problem = ModelProblem(backend, shape, batch, reg, cfg["curvature_trials"], spec)
                opt_state = copy.deepcopy(opt_state)
                if cfg["optimizer"] == "hf":
                    theta, info = hf_step(problem, theta, opt_state, hf_settings)
                else:
                    theta, info = adam_step(problem, theta, opt_state, adam_settings)
                # threads: a resumed run may use another count (same maths, other round-off).
                rec = {"iteration": it, "threads": backend.threads, **problem.terms,
                       "lam_l2": reg.lam_l2, "lam_fr": reg.lam_fr,
                       **{k: v for k, v in info.items() if k != "events" or v}}
                if (cfg["eval_every"] and it % cfg["eval_every"] == 0) or it == total:
                    rec["nerr"] = evaluate(Params.from_flat(theta, *shape), held_out, backend, spec)
                rec["seconds"] = time.perf_counter() - t0
                logfh.write(json.dumps(rec) + "\n")
                logfh.flush()
                if stream is not None:
                    print(_progress(rec, total, cfg["optimizer"]), file=stream, flush=True)
                if it in cfg["snapshot_at"] or (cfg["snapshot_every"] and it % cfg["snapshot_every"] == 0):
                    Params.from_flat(theta, *shape).save(run.snapshot(it), spec)
                done = (it, theta, opt_state, update_schedule(cfg, reg, problem.terms))
                if cfg["checkpoint_every"] and it % cfg["checkpoint_every"] == 0:
                    _save_checkpoint(run, *done)
    except KeyboardInterrupt:
        _save_checkpoint(run, *done)
        print(f"interrupted: saved iteration {done[0]} to {run.checkpoint}; continue with --resume",
              file=sys.stderr)
        raise
    _save_checkpoint(run, *done)
    params = Params.from_flat(done[1], *shape)
    params.save(run.final, spec)
    atomic_write_json(run.metrics, {"nerr_heldout": evaluate(params, held_out, backend, spec),
                              "eval_trials": cfg["eval_trials"], "iterations": total,
                              "gridcore_version": __version__})
    return params
