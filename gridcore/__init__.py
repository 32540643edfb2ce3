"""gridcore: train continuous-time RNNs on path integration, fast, on a CPU.

The stable public API: :class:`Params`, :class:`Batch`, :class:`Regularization`,
:func:`init_params` and the NumPy reference kernels in :mod:`gridcore.reference`
(``forward``, ``loss``, ``gradient``, ``gn_product``). The maths is in
``docs/math.md``.
"""

from . import reference
from .model import ALPHA, Batch, ForwardState, Params, Regularization, init_params, param_count

__version__ = "0.1.0"

__all__ = ["ALPHA", "Batch", "ForwardState", "Params", "Regularization", "init_params",
           "param_count", "reference", "__version__"]
