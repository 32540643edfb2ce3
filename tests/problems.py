"""Small random problems and the model specs shared by the kernel tests of every backend."""

import itertools

import numpy as np

from gridcore import Batch, ModelSpec, Params, Regularization
from gridcore.model.spec import INITIAL_STATES, NONLINEARITIES, READOUTS

# Every value each ModelSpec field can take (alpha at the paper's value and at 1,
# the discrete RNN): kernel tests run over all of them, so a new variant is tested
# by every backend as soon as it is allowed.
SPECS = [ModelSpec(alpha=a, nonlinearity=f, readout=r, initial_state=x0)
         for f, r, x0, a in itertools.product(NONLINEARITIES, READOUTS, INITIAL_STATES, (0.1, 1.0))]


def spec_id(spec):
    """Short test id of a spec: ``tanh-xy-zero-a0.1``."""
    return f"{spec.nonlinearity}-{spec.readout}-{spec.initial_state}-a{spec.alpha:g}"


def random_problem(n_units=6, n_in=2, n_out=None, n_trials=3, n_steps=7, seed=0,
                   noise=True, lam_l2=0.3, lam_fr=0.2, spec=None):
    """Random params (non-zero Wout and b), a batch and a regularisation.

    ``n_out`` defaults to the outputs of ``spec`` (the paper's model if None).
    Weights are scaled so the units are neither linear nor saturated, which
    makes every term of the gradient matter.
    """
    n_out = (spec or ModelSpec()).n_out if n_out is None else n_out
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
