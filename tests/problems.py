"""Small random problems and the model specs shared by the kernel tests of every backend."""

import itertools

import numpy as np

from gridcore import Batch, ModelSpec, Params, Regularization
from gridcore.model.spec import INITIAL_STATES, NONLINEARITIES, READOUTS

N_PLACE_CELLS = 5  # place cells of the small problems' specs that use a place-cell code


def _spec(alpha, nonlinearity, readout, initial_state):
    uses = readout == "place-cells" or initial_state == "encoded"
    return ModelSpec(alpha=alpha, nonlinearity=nonlinearity, readout=readout, initial_state=initial_state,
                     n_place_cells=N_PLACE_CELLS if uses else 0)


# Every value each ModelSpec field can take (alpha at the paper's value and at 1,
# the discrete RNN): kernel tests run over all of them, so a new variant is tested
# by every backend as soon as it is allowed.
SPECS = [_spec(a, f, r, x0) for f, r, x0, a in itertools.product(NONLINEARITIES, READOUTS, INITIAL_STATES, (0.1, 1.0))]


def spec_id(spec):
    """Short test id of a spec: ``tanh-xy-zero-a0.1``."""
    return f"{spec.nonlinearity}-{spec.readout}-{spec.initial_state}-a{spec.alpha:g}"


def _distributions(rng, shape):
    """Random probability distributions over the last axis (softmax of Gaussians)."""
    z = np.exp(rng.standard_normal(shape))
    return z / z.sum(axis=-1, keepdims=True)


def random_problem(n_units=6, n_in=2, n_out=None, n_trials=3, n_steps=7, seed=0,
                   noise=True, lam_l2=0.3, lam_fr=0.2, lam_rec=0.15, spec=None):
    """Random params (non-zero Wout and b), a batch and a regularisation.

    ``n_out`` defaults to the outputs of ``spec`` (the paper's model if None).
    Weights are scaled so the units are neither linear nor saturated, which
    makes every term of the gradient matter. Under the place-cell readout the
    targets, and under the encoded initial state the start codes, are random
    distributions; ``Wenc`` is scaled so ``x_0`` is of order 1.
    """
    spec = spec or ModelSpec()
    n_out = spec.n_out if n_out is None else n_out
    rng = np.random.default_rng(seed)
    n_code = spec.n_code
    params = Params(
        Wrec=rng.standard_normal((n_units, n_units)) * 1.2 / np.sqrt(n_units),
        Win=rng.standard_normal((n_units, n_in)),
        b=0.3 * rng.standard_normal(n_units),
        Wout=rng.standard_normal((n_out, n_units)) / np.sqrt(n_units),
        Wenc=2.0 * rng.standard_normal((n_units, n_code)) if n_code else None,
    )
    inputs = rng.standard_normal((n_trials, n_steps, n_in))
    if spec.readout == "place-cells":
        targets = _distributions(rng, (n_trials, n_steps, n_out))
    else:
        targets = rng.standard_normal((n_trials, n_steps, n_out))
    xi = 0.5 * rng.standard_normal((n_trials, n_steps, n_units)) if noise else None
    codes = _distributions(rng, (n_trials, n_code)) if n_code else None
    return params, Batch(inputs, targets, xi, codes), Regularization(lam_l2, lam_fr, lam_rec)
