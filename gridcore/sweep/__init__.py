"""Sweeps: many training runs (settings x seeds) on Dask, on one machine or a cluster.

- :mod:`gridcore.sweep.spec`: the TOML specification, checked, and its points (one run each, named
  from its settings);
- :mod:`gridcore.sweep.worker`: what runs on the workers: a point's training and analysis as tasks,
  the run lock, stopping with a checkpoint;
- :mod:`gridcore.sweep.cluster`: a LocalCluster of the right shape, an existing scheduler, threads per run;
- :mod:`gridcore.sweep.runner`: :func:`run_sweep`: skip, resume, retry, progress, Ctrl-C;
- :mod:`gridcore.sweep.summary`: ``summary.csv``, one row per run;
- :mod:`gridcore.sweep.ladder`: per named configuration of an analysed sweep, its grid-unit fractions
  over the seeds and example rate maps (``ladder.json``, ``ladder.csv``, ``ladder.png``);
- ``python -m gridcore.sweep``: the command line (:mod:`gridcore.cli.sweep`); ``docs/sweeps.md``.

Dask (``dask.distributed``) is an optional extra: ``pip install 'gridcore[sweep]'``; it is imported
only when a sweep starts on it.
"""

from gridcore.sweep.runner import Outcome, run_sweep
from gridcore.sweep.spec import Point, Spec, SpecError, load_spec, parse_spec

__all__ = ["Outcome", "Point", "Spec", "SpecError", "load_spec", "parse_spec", "run_sweep"]
