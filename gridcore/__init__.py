"""gridcore: train continuous-time RNNs on path integration, fast, on a CPU.

The notebook workflow: :func:`load_run` (a trained run: ``run.record``,
``run.plot_rate_maps``, ``run.units``; :mod:`gridcore.workflow`, imported on
first use). The stable public API: :class:`ModelSpec` (which network), :class:`Params`,
:class:`ParamLayout`, :class:`Batch`, :class:`Regularization`,
:func:`init_params`, :func:`get_backend`, :class:`Stepper` (a trained network
stepped online, one agent or a batch) and the NumPy reference kernels in
:mod:`gridcore.reference` (``forward``, ``loss``, ``gradient``,
``gn_product``). The maths is in ``docs/math.md``; the package's layers are
described in ``docs/guide.md``.
"""

from gridcore.backends import BACKEND_NAMES, available_backends, get_backend, reference
from gridcore.model import (
                            ALPHA,
                            PAPER,
                            Batch,
                            CounterNoise,
                            ForwardState,
                            ModelSpec,
                            ParamLayout,
                            Params,
                            Regularization,
                            StreamResult,
                            init_params,
                            param_count,
)
from gridcore.sim.placecells import PlaceCells
from gridcore.sim.stepper import Stepper
from gridcore.version import __version__

__all__ = ["ALPHA", "BACKEND_NAMES", "PAPER", "Batch", "CounterNoise", "ForwardState", "ModelSpec", "ParamLayout",
           "Params", "PlaceCells", "Regularization", "Stepper", "StreamResult", "available_backends", "get_backend",
           "init_params", "param_count", "reference", "__version__", "load_run", "Run"]


def __getattr__(name):
    # The workflow pulls in the analysis and matplotlib: loaded when first asked for, not on `import gridcore`.
    if name in ("load_run", "Run"):
        from gridcore import workflow
        return getattr(workflow, name)
    raise AttributeError(f"module 'gridcore' has no attribute {name!r}")
