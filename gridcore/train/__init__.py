"""Training: the run configuration, the optimisers, the training loop and run directories.

- :mod:`gridcore.train.config`: :class:`RunConfig` (frozen, validated settings
  in typed parts), defaults, presets, :func:`make_config`, ``config.json``;
- :mod:`gridcore.train.hf`: Hessian-free optimisation and Adam on flat vectors;
- :mod:`gridcore.train.loop`: minibatches, the regularisation schedule, the
  model problem, :func:`train` with checkpoints and exact resume;
- :mod:`gridcore.train.rundir`: the files of a run directory, :func:`load_run`;
- ``python -m gridcore.train``: the command line (:mod:`gridcore.cli.train`).
"""

from gridcore.train.config import RunConfig, make_config
from gridcore.train.loop import train
from gridcore.train.rundir import Run, RunDir, load_run

__all__ = ["Run", "RunConfig", "RunDir", "load_run", "make_config", "train"]
