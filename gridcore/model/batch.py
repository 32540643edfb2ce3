"""What a kernel call takes and returns: a minibatch, regularisation weights,
forward states, and the argument checks every backend shares."""

from dataclasses import dataclass

import numpy as np

from gridcore.model.params import Params
from gridcore.util.checks import as_float_array, check_nonneg_float, check_positive_int


@dataclass(frozen=True)
class Regularization:
    """Weights of the regularisers: ``loss = E + lam_l2 * R_L2 + lam_fr * R_FR``."""

    lam_l2: float = 0.0
    lam_fr: float = 0.0

    def __post_init__(self):
        for name in ("lam_l2", "lam_fr"):
            object.__setattr__(self, name, check_nonneg_float(name, getattr(self, name)))


@dataclass(frozen=True)
class Batch:
    """A minibatch of M trials of T steps, checked and converted once on creation.

    Attributes
    ----------
    inputs : (M, T, Nin) float64
        ``inputs[:, t]`` drives the step from ``x_t`` to ``x_{t+1}``.
    targets : (M, T, Nout) float64
        Desired outputs ``y_t`` (positions, arena units).
    noise : (M, T, N) float64 or None
        The noise ``xi_t`` added inside the Euler step (already scaled by its
        standard deviation); ``None`` means no noise.
    """

    inputs: np.ndarray
    targets: np.ndarray
    noise: np.ndarray = None

    def __post_init__(self):
        inputs = as_float_array("inputs", self.inputs, (None, None, None))
        _check_not_empty(inputs)
        m, t = inputs.shape[:2]
        targets = as_float_array("targets", self.targets, (m, t, None))
        noise = None if self.noise is None else as_float_array("noise", self.noise, (m, t, None))
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "noise", noise)

    n_trials = property(lambda self: self.inputs.shape[0], doc="M")
    n_steps = property(lambda self: self.inputs.shape[1], doc="T")

    def subset(self, n_trials):
        """The first ``n_trials`` trials (views, no copy): the curvature sub-batch."""
        n_trials = check_positive_int("n_trials", n_trials)
        if n_trials > self.n_trials:
            raise ValueError(f"n_trials must be <= {self.n_trials}, got {n_trials}")
        noise = None if self.noise is None else self.noise[:n_trials]
        return Batch(self.inputs[:n_trials], self.targets[:n_trials], noise)


@dataclass
class ForwardState:
    """What a forward pass returns and what BPTT and the GN product reuse.

    Attributes
    ----------
    x : (M, T, N) or None
        Unit activations ``x_t`` (backends may omit them: nothing downstream needs them).
    u : (M, T, N)
        Rates ``u_t = phi(x_t)``.
    y : (M, T, Nout)
        Outputs ``y_t = Wout u_t``.
    x_end : (M, N)
        ``x_T``, the state after the last input: pass it as ``x0`` to continue
        the same trials in the next chunk of time.
    """

    x: np.ndarray
    u: np.ndarray
    y: np.ndarray
    x_end: np.ndarray


@dataclass
class StreamResult:
    """What a streaming forward pass returns: ``y`` (M, T, Nout), ``u`` (M, T, N) or None, ``x_end`` (M, N)."""

    y: np.ndarray
    u: np.ndarray
    x_end: np.ndarray


def _check_params(params, spec):
    if not isinstance(params, Params):
        raise TypeError(f"params must be a gridcore.Params, got {type(params).__name__}")
    return params.check_spec(spec)


def check_problem(params, batch, reg, spec):
    """Validate the arguments shared by ``loss``, ``gradient`` and ``gn_product``; return the spec."""
    spec = _check_params(params, spec)
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a gridcore.Batch, got {type(batch).__name__}")
    if not isinstance(reg, Regularization):
        raise TypeError(f"reg must be a gridcore.Regularization, got {type(reg).__name__}")
    check_against(params, batch)
    return spec


def _check_not_empty(inputs):
    if inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs must hold at least one trial and one step, got shape {inputs.shape}")


def check_against(params, batch):
    """Raise ValueError unless ``batch`` fits ``params`` (Nin, Nout and N of the noise)."""
    n, n_in, n_out = params.shape
    for name, arr, want in (("inputs", batch.inputs, n_in), ("targets", batch.targets, n_out),
                            ("noise", batch.noise, n)):
        if arr is not None and arr.shape[2] != want:
            raise ValueError(f"batch.{name} must have last axis {want} to match the parameters "
                             f"(n_units, n_in, n_out) = {params.shape}, got shape {arr.shape}")


def check_forward_args(params, inputs, noise, x0, spec):
    """Validate the arguments of a forward pass; return clean ``(inputs, noise, x0, spec)``.

    ``noise`` and ``x0`` may be None (no noise; start from the spec's initial state).
    """
    spec = _check_params(params, spec)
    n, n_in, _ = params.shape
    inputs = as_float_array("inputs", inputs, (None, None, n_in))
    _check_not_empty(inputs)
    m, t = inputs.shape[:2]
    if noise is not None:
        noise = as_float_array("noise", noise, (m, t, n))
    if x0 is not None:
        x0 = as_float_array("x0", x0, (m, n))
    return inputs, noise, x0, spec


def check_state(state, params, batch, contiguous=True):
    """Return ``state.u`` (M, T, N), raising unless ``state`` is a forward state of
    ``batch`` under ``params``; C-contiguous (copied if needed) when ``contiguous``."""
    want = (batch.n_trials, batch.n_steps, params.n_units)
    u = getattr(state, "u", None)
    if not isinstance(u, np.ndarray) or u.shape != want or u.dtype != np.float64:
        got = None if u is None else (u.shape, u.dtype)
        raise ValueError(f"state must be the forward state of this batch with u of shape {want} "
                         f"float64, got {got}")
    return np.ascontiguousarray(u) if contiguous else u


def check_gn_args(params, batch, state, v, reg, mu, spec, contiguous=True):
    """Validate the arguments of ``gn_product``; return clean ``(spec, u, v, mu)``.

    ``u`` is ``state.u`` (see :func:`check_state`), ``v`` a float64 (P,) vector.
    """
    spec = check_problem(params, batch, reg, spec)
    u = check_state(state, params, batch, contiguous)
    v = as_float_array("v", v, (params.flat.size,))
    return spec, u, v, check_nonneg_float("mu", mu)
