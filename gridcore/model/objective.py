"""The training objective, written once for every core (``docs/math.md`` section 2)::

    loss = E + lam_l2 R_L2 + lam_fr R_FR
    E    = mean over M, T, Nout of (y - y*)^2                    (readout "xy")
    R_L2 = sum Win^2 / (N Nin) + sum Wout^2 / (N Nout)
    R_FR = mean over M, T, N of u^2

and the derivative scales that BPTT and the Gauss-Newton product use
(eq. B1, G4). The kernels return raw sums; these functions turn them into
the terms, so the normalisations live here only.
"""

import numpy as np


def l2_weights(layout):
    """Per-block weights of ``R_L2``: ``{block name: w}`` with ``R_L2 = sum_blocks w * sum(block**2)``."""
    n, n_in, n_out = layout.shape
    return {"Win": 1.0 / (n * n_in), "Wout": 1.0 / (n * n_out)}


def r_l2(params):
    """``R_L2`` of ``params`` (eq. L2)."""
    return float(sum(w * np.sum(getattr(params, name) ** 2) for name, w in l2_weights(params.layout).items()))


def l2_hessian_diag(layout, reg):
    """(P,) diagonal of the Hessian of ``lam_l2 R_L2`` in flat order; times theta it is the gradient."""
    return layout.fill({name: 2.0 * reg.lam_l2 * w for name, w in l2_weights(layout).items()})


def error_scale(n_trials, n_steps, n_out):
    """``c_y``: d E / d y = c_y (y - y*), and the GN product's output curvature ``H_y = c_y I`` (B1, G4)."""
    return 2.0 / (n_trials * n_steps * n_out)


def rate_scale(n_units, n_trials, n_steps, weight):
    """``c_u``: d (weight R_FR) / d u = c_u u; with ``weight = lam_fr + mu`` the GN rate curvature (B1, G4)."""
    return 2.0 * weight / (n_units * n_steps * n_trials)


def terms_from_sums(params, reg, sq_error, sq_rates, n_trials, n_steps):
    """Loss terms (eq. L1-L4) from ``sum (y - y*)**2`` and ``sum u**2`` over a batch.

    Returns
    -------
    dict with float ``E``, ``R_L2``, ``R_FR`` and ``loss``.
    """
    n, _, n_out = params.shape
    terms = {"E": float(sq_error) / (n_trials * n_steps * n_out), "R_L2": r_l2(params),
             "R_FR": float(sq_rates) / (n_trials * n_steps * n)}
    terms["loss"] = terms["E"] + reg.lam_l2 * terms["R_L2"] + reg.lam_fr * terms["R_FR"]
    return terms
