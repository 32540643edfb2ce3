"""JSON-ready numbers and the small reductions the paper's analyses share.

``metrics.json`` is strict JSON (no NaN): :func:`floats` and
:func:`float_or_none` turn NaN and infinities into None;
:func:`finite_median` and :func:`line_fit` skip non-finite values.
"""

import math

import numpy as np
import scipy.stats

__all__ = ["floats", "float_or_none", "finite_median", "line_fit"]


def floats(a):
    """Values as a flat list of floats, None for NaN and infinities (JSON has no NaN).

    Parameters
    ----------
    a : array_like, any shape
        Flattened in C order.

    Returns
    -------
    list of float or None
    """
    return [float(v) if np.isfinite(v) else None for v in np.ravel(a)]


def float_or_none(v):
    """``float(v)``, or None when ``v`` is None, NaN or infinite.

    Parameters
    ----------
    v : float or None

    Returns
    -------
    float or None
    """
    return float(v) if v is not None and np.isfinite(v) else None


def finite_median(v):
    """Median of the finite values, or None if there are none.

    Parameters
    ----------
    v : array_like, shape (n,)

    Returns
    -------
    float or None
    """
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else None


def line_fit(x, y):
    """Least-squares line ``y = a + b x`` over the points finite in both.

    Parameters
    ----------
    x, y : array_like, shape (n,)

    Returns
    -------
    slope, intercept, r2, slope_se : float
        The slope b (units of y per unit of x), the intercept a, R^2 and the
        standard error of b; all NaN with fewer than 2 points or a constant x.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan, math.nan
    fit = scipy.stats.linregress(x, y)
    r2 = fit.rvalue ** 2 if np.isfinite(fit.rvalue) else math.nan
    return float(fit.slope), float(fit.intercept), float(r2), float(fit.stderr)
