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
from dataclasses import asdict

import numpy as np

from . import __version__
from ._validate import check_choice, check_nonneg_float, check_positive_int
from .arenas import ARENA_NAMES, make_arena
from .backends import blas_limits, get_backend
from .hf import AdamSettings, AdamState, HFSettings, HFState, adam_step, hf_step
from .model import (ALPHA, REC_INITS, Batch, Params, Regularization, atomic_savez, atomic_write,
                    atomic_write_json, init_params, load_npz, param_count)
from .trajectories import ENCODINGS, MOTION_DEFAULTS, simulate

log = logging.getLogger(__name__)

OPTIMIZERS = ("hf", "adam")
# The paper's initialisation per arena (Sec. 2.3); the circle is ours.
PAPER_REC_INIT = {"square": "orthogonal", "triangle": "orthogonal", "hexagon": "gaussian",
                  "circle": "orthogonal"}

DEFAULTS = {
    "arena": "square",
    "arena_size": 2.0,           # arena units: side of the equal-area square
    "encoding": "speed-angle",   # the paper's inputs: speed and heading angle
    "motion": {},                # overrides of trajectories.MOTION_DEFAULTS
    "n_units": 100,              # N
    "n_trials": 500,             # M, trials per minibatch (fresh each iteration)
    "n_steps": 500,              # T, Euler steps per trial
    "curvature_trials": 100,     # trials of the minibatch used for G v (HF)
    "alpha": ALPHA,              # dt / tau
    "noise_std": 0.1,            # sd of xi_t, per unit per step
    "rec_init": None,            # None: the paper's choice for the arena
    "optimizer": "hf",
    "iterations": 1000,
    "seed": 0,
    "backend": "auto",
    "threads": None,             # None: all cores
    "l2": True,                  # R_L2 on, with the paper's schedule
    "l2_decay": 0.99,            # lam_L2 *= l2_decay per iteration (our choice; App. E is vague)
    "l2_min": 1e-6,              # floor of lam_L2
    "metabolic": True,           # R_FR on
    "fr_init_ratio": 0.1,        # lam_FR R_FR starts at this fraction of E (App. E: E/10)
    "fr_max_ratio": 1.0 / 3.0,   # and is kept at most this fraction of E (App. E: E/3)
    "hf": asdict(HFSettings()),
    "adam": asdict(AdamSettings()),
    "eval_trials": 200,          # held-out trials for the normalised error
    "eval_every": 10,            # iterations between held-out evaluations (0: only at the end)
    "checkpoint_every": 10,
    "snapshot_every": 0,         # also keep parameters every K iterations (0: off)
    "snapshot_at": [],           # and at these iterations
}

PRESETS = {
    # The README default: minutes on 2 cores, already clearly better than a constant guess.
    "quick": {"n_units": 64, "n_trials": 100, "n_steps": 200, "curvature_trials": 50,
              "iterations": 150, "eval_every": 10, "snapshot_at": [0, 10, 50]},
    # The paper: N=100, M=500, T=500, noise and metabolic cost on, 90% zero speed.
    "paper": {"n_units": 100, "n_trials": 500, "n_steps": 500, "iterations": 1000,
              "snapshot_at": [0, 10, 20, 50, 100, 200, 500]},
}


def make_config(preset=None, **overrides):
    """A full, validated run configuration: defaults, then a preset, then overrides.

    Unknown keys raise ValueError listing the allowed ones.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if preset is not None:
        check_choice("preset", preset, tuple(PRESETS))
        cfg.update(copy.deepcopy(PRESETS[preset]))
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown setting {key!r}; allowed: {', '.join(sorted(DEFAULTS))}")
        if key in ("hf", "adam", "motion"):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return validate_config(cfg)


def validate_config(cfg):
    """Check every setting; fill ``rec_init`` from the arena. Returns the config."""
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {', '.join(sorted(DEFAULTS))}")
    check_choice("arena", cfg["arena"], ARENA_NAMES)
    check_choice("encoding", cfg["encoding"], tuple(ENCODINGS))
    check_choice("optimizer", cfg["optimizer"], OPTIMIZERS)
    for key in ("n_units", "n_trials", "n_steps", "curvature_trials", "iterations", "eval_trials"):
        check_positive_int(key, cfg[key])
    for key in ("noise_std", "l2_decay", "l2_min", "fr_init_ratio", "fr_max_ratio", "arena_size", "alpha"):
        check_nonneg_float(key, cfg[key])
    for key in ("eval_every", "checkpoint_every", "snapshot_every", "seed"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 0:
            raise ValueError(f"{key} must be an integer >= 0, got {cfg[key]!r}")
    if cfg["curvature_trials"] > cfg["n_trials"]:
        raise ValueError(f"curvature_trials must be <= n_trials = {cfg['n_trials']}, "
                         f"got {cfg['curvature_trials']}")
    unknown = set(cfg["motion"]) - set(MOTION_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown motion settings {sorted(unknown)}; allowed: {', '.join(MOTION_DEFAULTS)}")
    if cfg["rec_init"] is None:
        cfg["rec_init"] = PAPER_REC_INIT[cfg["arena"]]
    check_choice("rec_init", cfg["rec_init"], REC_INITS)
    HFSettings(**cfg["hf"])
    AdamSettings(**cfg["adam"])
    return cfg


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
    """The CTRNN on one minibatch, as the flat-vector problem ``gridcore.hf`` optimises.

    Parameters
    ----------
    backend : a backend from ``gridcore.get_backend``
    shape : (n_units, n_in, n_out)
    batch : Batch
    reg : Regularization
    curvature_trials : int; the first trials of ``batch`` are used for ``G v``
    alpha : float; dt / tau
    """

    def __init__(self, backend, shape, batch, reg, curvature_trials, alpha=ALPHA):
        self.backend, self.shape, self.batch, self.reg, self.alpha = backend, shape, batch, reg, alpha
        self.curv_batch = batch.subset(min(curvature_trials, batch.n_trials))
        self.terms = None              # loss terms at the last gradient

    def _params(self, theta):
        return Params.from_flat(theta, *self.shape)

    def loss(self, theta):
        return self.backend.loss(self._params(theta), self.batch, self.reg, alpha=self.alpha)["loss"]

    def gradient(self, theta):
        self.terms, g, sq = self.backend.gradient(self._params(theta), self.batch, self.reg,
                                                  alpha=self.alpha, sq_grad=True)
        return self.terms["loss"], g, sq

    def curvature(self, theta):
        params = self._params(theta)
        b = self.curv_batch
        state = self.backend.forward(params, b.inputs, b.noise, alpha=self.alpha)

        def gv(v, mu):
            return self.backend.gn_product(params, b, state, v, self.reg, mu=mu, alpha=self.alpha)
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


# ---------------------------------------------------------------- run directory


def _config_for_compare(cfg):
    # These may change on resume without changing the numbers.
    return {k: v for k, v in cfg.items() if k not in ("iterations", "checkpoint_every", "threads", "backend")}


class RunDir:
    """Paths and files of one run directory."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.config = os.path.join(self.path, "config.json")
        self.log = os.path.join(self.path, "log.jsonl")
        self.checkpoint = os.path.join(self.path, "checkpoint.npz")
        self.final = os.path.join(self.path, "final.npz")
        self.metrics = os.path.join(self.path, "final_metrics.json")
        self.snapshots = os.path.join(self.path, "snapshots")

    def snapshot(self, iteration):
        return os.path.join(self.snapshots, f"iter_{iteration:06d}.npz")

    def read_log(self):
        """The records of ``log.jsonl``, one dict per iteration (FileNotFoundError if absent)."""
        with open(self.log) as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def read_config(self):
        try:
            with open(self.config) as fh:
                return validate_config(json.load(fh))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.config}: no such file; is {self.path} a gridcore run directory?") from None
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{self.config}: unreadable run configuration ({err})") from None


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


def evaluate(params, batch, backend, alpha=ALPHA):
    """Normalised error of ``params`` on ``batch`` (see :func:`normalised_error`)."""
    return normalised_error(backend.forward(params, batch.inputs, batch.noise, alpha=alpha).y, batch.targets)


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
    shape = (cfg["n_units"], ENCODINGS[cfg["encoding"]], 2)
    opt_cls = HFState if cfg["optimizer"] == "hf" else AdamState
    backend = get_backend(cfg["backend"], cfg["threads"])
    if resume:
        saved = run.read_config()
        diff = sorted(k for k in set(_config_for_compare(saved)) | set(_config_for_compare(cfg))
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
        params = init_params(*shape, seed=np.random.SeedSequence(cfg["seed"], spawn_key=(2,)),
                             rec_init=cfg["rec_init"])
        theta = params.flat.copy()
        opt_state = HFState(cfg["hf"]["damping"]) if opt_cls is HFState else AdamState.zeros(theta.size)
        # The schedule starts from the initial network on its own batch (stream 0, index 0).
        reg = start_schedule(cfg, backend.loss(params, make_batch(cfg, arena, _seed_rng(cfg, 0, 0))[0],
                                               Regularization(), alpha=cfg["alpha"]))
        params.save(run.snapshot(0))
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
                problem = ModelProblem(backend, shape, batch, reg, cfg["curvature_trials"], cfg["alpha"])
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
                    rec["nerr"] = evaluate(Params.from_flat(theta, *shape), held_out, backend, cfg["alpha"])
                rec["seconds"] = time.perf_counter() - t0
                logfh.write(json.dumps(rec) + "\n")
                logfh.flush()
                if stream is not None:
                    print(_progress(rec, total, cfg["optimizer"]), file=stream, flush=True)
                if it in cfg["snapshot_at"] or (cfg["snapshot_every"] and it % cfg["snapshot_every"] == 0):
                    Params.from_flat(theta, *shape).save(run.snapshot(it))
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
    params.save(run.final)
    atomic_write_json(run.metrics, {"nerr_heldout": evaluate(params, held_out, backend, cfg["alpha"]),
                              "eval_trials": cfg["eval_trials"], "iterations": total,
                              "gridcore_version": __version__})
    return params
