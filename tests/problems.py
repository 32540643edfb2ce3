"""Small random problems shared by the kernel tests of every backend."""

import numpy as np

from gridcore import Batch, Params, Regularization


def random_problem(n_units=6, n_in=2, n_out=2, n_trials=3, n_steps=7, seed=0,
                   noise=True, lam_l2=0.3, lam_fr=0.2):
    """Random params (non-zero Wout and b), a batch and a regularisation.

    Weights are scaled so the units are neither linear nor saturated, which
    makes every term of the gradient matter.
    """
    rng = np.random.default_rng(seed)
    params = Params(
        Wrec=rng.standard_normal((n_units, n_units)) * 1.2 / np.sqrt(n_units),
        Win=rng.standard_normal((n_units, n_in)),
        b=0.3 * rng.standard_normal(n_units),
        Wout=rng.standard_normal((n_out, n_units)) / np.sqrt(n_units),
    )
    inputs = rng.standard_normal((n_trials, n_steps, n_in))
    targets = rng.standard_normal((n_trials, n_steps, n_out))
    xi = 0.5 * rng.standard_normal((n_trials, n_steps, n_units)) if noise else None
    return params, Batch(inputs, targets, xi), Regularization(lam_l2, lam_fr)
