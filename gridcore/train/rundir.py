"""Run directories: the one place that knows their files, and a finished run loaded for analysis.

A run lives in one directory::

    config.json        everything needed to rerun (written once, checked on resume)
    log.jsonl          one line per iteration: threads, loss terms and weights, lambda, rho, CG iterations,
                       step, seconds
    checkpoint.npz     written atomically every ``checkpoint_every`` iterations and on Ctrl-C or SIGTERM
    snapshots/iter_NNNNNN.npz   parameters at chosen iterations (development analysis)
    final.npz          the trained parameters
    final_metrics.json normalised position error (arena units, either readout) on held-out trials
"""

import json
import os
import re
from dataclasses import dataclass

import numpy as np

from gridcore.model.params import Params
from gridcore.model.spec import ModelSpec
from gridcore.sim.arenas import Arena, make_arena
from gridcore.sim.placecells import PlaceCells
from gridcore.train.config import RunConfig
from gridcore.train.hf import OPTIMIZER_STATES


class RunDir:
    """Paths and files of one run directory.

    Parameters
    ----------
    path : str or path-like
        The run directory (need not exist yet).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.config = os.path.join(self.path, "config.json")
        self.log = os.path.join(self.path, "log.jsonl")
        self.checkpoint = os.path.join(self.path, "checkpoint.npz")
        self.final = os.path.join(self.path, "final.npz")
        self.metrics = os.path.join(self.path, "final_metrics.json")
        self.snapshots = os.path.join(self.path, "snapshots")

    def snapshot(self, iteration):
        """Path of the parameter snapshot of ``iteration``."""
        return os.path.join(self.snapshots, f"iter_{iteration:06d}.npz")

    def read_log(self):
        """The records of ``log.jsonl``, one dict per iteration (FileNotFoundError if absent).

        A last line without its newline is one a live run is still writing
        (each record is written with its newline): it is left out.
        """
        with open(self.log) as fh:
            lines = fh.readlines()
        if lines and not lines[-1].endswith("\n"):
            lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def checkpoint_iteration(self):
        """The iteration of ``checkpoint.npz``, or None without a readable one (resuming then says why)."""
        try:
            with np.load(self.checkpoint) as data:
                return int(data["iteration"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def read_config(self):
        """The run's :class:`RunConfig` from ``config.json``.

        Raises
        ------
        FileNotFoundError
            No ``config.json`` (the message asks whether this is a run
            directory, or, beside a checkpoint, says to start afresh).
        ValueError
            An unreadable or invalid file (the message names it and the reason).
        """
        try:
            return RunConfig.load(self.config)
        except FileNotFoundError:
            if os.path.exists(self.checkpoint):
                raise FileNotFoundError(
                    f"{self.config}: no such file beside {self.checkpoint}: the run's settings were never saved "
                    "(it was killed first) or were removed, so it cannot be resumed; start it afresh without "
                    "--resume (its checkpoint and log are then kept in an orphaned-N folder)") from None
            raise FileNotFoundError(f"{self.config}: no such file; is {self.path} a gridcore run directory?") from None


@dataclass(frozen=True, eq=False)
class Run:
    """A training run, as the analyses need it: a finished one, or one still training.

    Attributes
    ----------
    path : str
        The run directory.
    settings : RunConfig
        Its ``config.json`` (which holds ``settings.to_dict()``).
    params : Params
        The trained network (``final.npz``); of a run still training
        (``finished`` false), the parameters of its latest ``checkpoint.npz``.
    spec : ModelSpec
        The model the network was trained as (``settings.model``).
    arena : Arena
        The arena it was trained in (``settings.task``).
    place_cells : PlaceCells or None
        The place cells of its readout or encoded initial state
        (``settings.make_place_cells``); None when the model uses none.
        Decode outputs to positions with
        :func:`gridcore.sim.placecells.outputs_to_positions`.
    final_iteration : int
        Iterations trained (``settings.optimizer.iterations``); of a run
        still training, the checkpoint's iteration.
    snapshots : dict of int -> str
        Snapshot files ``snapshots/iter_NNNNNN.npz`` before the final iteration.
    finished : bool
        Whether ``params`` are the run's ``final.npz``.
    """

    path: str
    settings: RunConfig
    params: Params
    spec: ModelSpec
    arena: Arena
    place_cells: PlaceCells
    final_iteration: int
    snapshots: dict
    finished: bool = True

    @property
    def shape(self):
        """``(n_units, n_in, n_out)`` every parameter file of the run must have."""
        return self.settings.shape

    def stage_params(self, iteration):
        """Parameters at ``iteration`` (a snapshot, or ``params`` for the final one)."""
        if iteration == self.final_iteration:
            return self.params
        if iteration not in self.snapshots:
            raise ValueError(f"no snapshot of iteration {iteration} in {self.path}; available: "
                             f"{sorted(self.snapshots) + [self.final_iteration]}")
        return Params.load(self.snapshots[iteration], self.spec, *self.shape)

    @property
    def layout(self):
        """The :class:`ParamLayout` of the run's flat parameter vector (``settings.layout``)."""
        return self.settings.layout


def load_run(path, unfinished=False):
    """Read a run directory written by ``python -m gridcore.train``.

    Only reads: a run still training (which holds the directory's lock)
    can be read while it trains; its parameter files are written atomically.

    Parameters
    ----------
    path : str or path-like
        The run directory.
    unfinished : bool
        Also read a run without ``final.npz`` (still training, or stopped):
        its latest ``checkpoint.npz`` stands for the final network
        (``finished`` false, ``final_iteration`` the checkpoint's iteration).

    Raises
    ------
    FileNotFoundError
        No such directory, no ``config.json``, or no ``final.npz`` (the run
        has not finished; with ``unfinished``, nor a checkpoint); the message
        names the file.
    ValueError
        ``final.npz`` (or the checkpoint) is unreadable or of another shape
        than the run's configuration (``n_units``, inputs of its encoding,
        the spec's outputs) or was saved under another model spec.
    """
    run = RunDir(path)
    if not os.path.isdir(run.path):
        raise FileNotFoundError(f"{run.path}: no such run directory")
    cfg = run.read_config()
    finished = os.path.exists(run.final)
    if finished:
        params = Params.load(run.final, cfg.model, *cfg.shape)
        final_iteration = cfg.optimizer.iterations
    elif not unfinished:
        raise FileNotFoundError(
            f"{run.final}: no such file; the run has not finished training (continue it with "
            f"python -m gridcore.train --out {run.path} --resume)")
    else:
        final_iteration, params = _checkpoint_params(run, cfg)
    snapshots = {}
    if os.path.isdir(run.snapshots):
        for name in os.listdir(run.snapshots):
            m = re.fullmatch(r"iter_(\d+)\.npz", name)
            if m and int(m.group(1)) < final_iteration:
                snapshots[int(m.group(1))] = os.path.join(run.snapshots, name)
    arena = make_arena(cfg.task.arena, cfg.task.arena_size)
    return Run(path=run.path, settings=cfg, params=params, spec=cfg.model, arena=arena,
               place_cells=cfg.make_place_cells(arena), final_iteration=final_iteration,
               snapshots=dict(sorted(snapshots.items())), finished=finished)


def _checkpoint_params(run, cfg):
    """``(iteration, Params)`` of the run's ``checkpoint.npz``, checked as a resume checks it."""
    # Late import: the training loop, which owns the checkpoint format, imports this module.
    from gridcore.train.loop import load_checkpoint
    if not os.path.exists(run.checkpoint):
        raise FileNotFoundError(f"{run.final}: no such file, nor {run.checkpoint}: the run has no parameters "
                                "beyond its snapshots yet")
    opt_cls = OPTIMIZER_STATES[cfg.optimizer.name]
    iteration, theta, _, _ = load_checkpoint(run, cfg.layout, opt_cls, cfg.optimizer.iterations)
    return iteration, Params.from_flat(theta, *cfg.layout.shape, cfg.layout.n_code)
