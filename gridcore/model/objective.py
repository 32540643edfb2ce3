"""The training objective, written once for every core (``docs/math.md`` sections 2 and 7)::

    loss  = E + lam_l2 R_L2 + lam_fr R_FR + lam_rec R_rec
    E     = mean over M, T, Nout of (y - y*)^2                     (readout "xy")
          = mean over M, T of sum_k y*_k (lse(y) - y_k)            (readout "place-cells")
    R_L2  = sum Win^2 / (N Nin) + sum Wout^2 / (N Nout)
    R_FR  = mean over M, T, N of u^2
    R_rec = sum Wrec^2
    E_min = 0                                                       (readout "xy")
          = mean over M, T of -sum_k y*_k log y*_k                  (readout "place-cells")

``E_min`` is the least E any outputs reach on the targets (E - E_min is the
mean Kullback-Leibler divergence under the place-cell readout), to which the
regularisation schedule may refer (``docs/guide.md``). Here too are the
derivative scales that BPTT and the Gauss-Newton product use (eq. B1, G4,
P2-P3). The kernels return raw sums; these functions turn them
into the terms, so the normalisations live here only.
"""

import numpy as np


def l2_weights(layout):
    """Per-block weights of ``R_L2``: ``{block name: w}`` with ``R_L2 = sum_blocks w * sum(block**2)``."""
    n, n_in, n_out = layout.shape
    return {"Win": 1.0 / (n * n_in), "Wout": 1.0 / (n * n_out)}


def r_l2(params):
    """``R_L2`` of ``params`` (eq. L2)."""
    return float(sum(w * np.sum(getattr(params, name) ** 2) for name, w in l2_weights(params.layout).items()))


def r_rec(params):
    """``R_rec = sum Wrec**2``, the weight decay on the recurrent weights (eq. P4)."""
    return float(np.sum(params.Wrec ** 2))


def l2_hessian_diag(layout, reg):
    """(P,) diagonal of the Hessian of ``lam_l2 R_L2 + lam_rec R_rec`` in flat order.

    Both terms are quadratic, so this vector times theta is their gradient.
    """
    weights = {name: 2.0 * reg.lam_l2 * w for name, w in l2_weights(layout).items()}
    weights["Wrec"] = 2.0 * reg.lam_rec
    return layout.fill(weights)


def error_count(readout, n_trials, n_steps, n_out):
    """The divisor of ``E``: ``E = (error sum) / error_count`` (M T Nout for "xy", M T for "place-cells")."""
    return n_trials * n_steps * (n_out if readout == "xy" else 1)


def error_scale(n_trials, n_steps, n_out, readout="xy"):
    """``c_y``, the scale of d E / d y and of the output curvature ``H_y`` (eq. B1, G4, P2-P3).

    "xy": ``d E / d y = c_y (y - y*)``, ``H_y = c_y I`` with ``c_y = 2/(M T Nout)``.
    "place-cells": ``d E / d y = c_y (p - y*)``, ``H_y = c_y (diag p - p p')``
    with ``c_y = 1/(M T)`` and ``p = softmax(y)``.
    """
    return (2.0 if readout == "xy" else 1.0) / error_count(readout, n_trials, n_steps, n_out)


def rate_scale(n_units, n_trials, n_steps, weight):
    """``c_u``: d (weight R_FR) / d u = c_u u; with ``weight = lam_fr + mu`` the GN rate curvature (B1, G4)."""
    return 2.0 * weight / (n_units * n_steps * n_trials)


def softmax(y):
    """``p = softmax(y)`` over the last axis, computed stably: (..., K) -> (..., K)."""
    z = np.exp(y - y.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def error_sum(readout, y, targets):
    """The sum behind ``E``: ``sum (y - y*)**2`` ("xy") or ``sum_{m,t} sum_k y*_k (lse(y) - y_k)``
    ("place-cells", eq. P1) over arrays (..., Nout)."""
    if readout == "xy":
        return float(np.sum((y - targets) ** 2))
    top = y.max(axis=-1, keepdims=True)
    lse = top + np.log(np.exp(y - top).sum(axis=-1, keepdims=True))
    return float(np.sum(targets * (lse - y)))


def least_error(readout, targets, rows=256):
    """``E_min`` of targets (M, T, Nout): 0 for "xy"; for "place-cells" the mean entropy of the target
    distributions (nats), which E reaches where ``softmax(y) = y*``. Summed ``rows`` positions at a time,
    so that no (M, T, Nout) temporary is made."""
    if readout == "xy":
        return 0.0
    t = np.asarray(targets)
    flat = t.reshape(-1, t.shape[-1])
    logs = np.empty((rows, flat.shape[1]))
    total = 0.0
    for lo in range(0, len(flat), rows):
        chunk = flat[lo:lo + rows]
        out = logs[:len(chunk)]
        out.fill(0.0)                        # 0 log 0 = 0
        np.log(chunk, out=out, where=chunk > 0)
        total += float(np.vdot(chunk, out))
    return -total / error_count(readout, t.shape[0], t.shape[1], t.shape[2])


def terms_from_sums(params, reg, err_sum, sq_rates, n_trials, n_steps, readout="xy"):
    """Loss terms (eq. L1-L4, P1, P4) from the error sum (:func:`error_sum`) and ``sum u**2`` over a batch.

    Returns
    -------
    dict with float ``E``, ``R_L2``, ``R_FR``, ``R_rec`` and ``loss``.
    """
    n, _, n_out = params.shape
    terms = {"E": float(err_sum) / error_count(readout, n_trials, n_steps, n_out), "R_L2": r_l2(params),
             "R_FR": float(sq_rates) / (n_trials * n_steps * n), "R_rec": r_rec(params)}
    terms["loss"] = (terms["E"] + reg.lam_l2 * terms["R_L2"] + reg.lam_fr * terms["R_FR"]
                     + reg.lam_rec * terms["R_rec"])
    return terms
