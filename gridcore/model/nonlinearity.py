"""The rate function ``phi`` and its derivative for NumPy code (``docs/math.md`` eq. F1, B2).

The Numba kernels (``gridcore/backends/numba/kernels.py``, ``_phi``) and the
C kernels (``csrc/grc_kernels.inc``, ``FN(phi)`` and ``FN(dphi)``) hold the same two
functions in their own language; a new nonlinearity adds one branch to
each of the three and its name to ``gridcore.model.spec.NONLINEARITIES``.
"""

import numpy as np


def phi(x, nonlinearity):
    """Rates ``u = phi(x)``, elementwise, as a new array."""
    if nonlinearity == "tanh":
        return np.tanh(x)
    if nonlinearity == "relu":
        return np.maximum(x, 0.0)
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def dphi(u, nonlinearity):
    """``phi'(x)`` written in terms of the rate ``u = phi(x)`` (tanh: ``1 - u**2``), elementwise."""
    if nonlinearity == "tanh":
        return 1.0 - u * u
    if nonlinearity == "relu":
        return (u > 0.0).astype(np.float64)      # relu'(x) = 1 where x > 0, i.e. where u > 0
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
