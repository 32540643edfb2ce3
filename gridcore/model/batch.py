"""What a kernel call takes and returns: a minibatch, regularisation weights,
forward states, and the argument checks every backend shares."""

from dataclasses import dataclass

import numpy as np

from gridcore.model.noise import CounterNoise
from gridcore.model.params import Params
from gridcore.util.checks import all_finite, as_float_array, check_nonneg_float, check_positive_int


@dataclass(frozen=True)
class Regularization:
    """Weights of the regularisers: ``loss = E + lam_l2 R_L2 + lam_fr R_FR + lam_rec R_rec``.

    ``R_L2`` is the paper's mean square of Win and Wout, ``R_FR`` the mean
    squared rate, ``R_rec`` the (unnormalised) sum of squares of Wrec, the
    weight decay of Sorscher et al. (docs/math.md eq. L2-L3, section 7).
    """

    lam_l2: float = 0.0
    lam_fr: float = 0.0
    lam_rec: float = 0.0

    def __post_init__(self):
        for name in ("lam_l2", "lam_fr", "lam_rec"):
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
        Under the ``"place-cells"`` readout, each ``targets[m, t]`` is a
        probability distribution over the Nout cells (the place-cell code).
    noise : (M, T, N) float64, CounterNoise or None
        The noise ``xi_t`` added inside the Euler step (already scaled by its
        standard deviation), or a :class:`CounterNoise` that the kernels
        evaluate in place (no array); ``None`` means no noise.
    start_codes : (M, Nc) float64 or None
        The place-cell code ``c`` of each trial's start position, from which
        the ``"encoded"`` initial state makes ``x_0 = Wenc c``; None otherwise.
    """

    inputs: np.ndarray
    targets: np.ndarray
    noise: np.ndarray = None
    start_codes: np.ndarray = None

    def __post_init__(self):
        inputs = as_float_array("inputs", self.inputs, (None, None, None))
        _check_not_empty(inputs)
        m, t = inputs.shape[:2]
        targets = as_float_array("targets", self.targets, (m, t, None))
        noise = check_noise(self.noise, m, t, None)
        codes = None if self.start_codes is None else as_float_array("start_codes", self.start_codes, (m, None))
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "noise", noise)
        object.__setattr__(self, "start_codes", codes)
        object.__setattr__(self, "_distributions", None)  # cache of targets_are_distributions()
        object.__setattr__(self, "_cast", {})  # dtype -> arrays(dtype)

    n_trials = property(lambda self: self.inputs.shape[0], doc="M")
    n_steps = property(lambda self: self.inputs.shape[1], doc="T")

    def arrays(self, dtype):
        """``(inputs, targets, noise, start_codes)`` as C-contiguous arrays of ``dtype``.

        float64 gives the attributes themselves; float32 (a float32 core's
        boundary) converts them once and keeps the copies, since HF calls the
        kernels many times on one batch. A CounterNoise or None noise, and None
        start codes, are returned as they are.
        """
        dtype = np.dtype(dtype)
        if dtype == np.float64:
            return self.inputs, self.targets, self.noise, self.start_codes
        if dtype not in self._cast:
            self._cast[dtype] = tuple(a if a is None or isinstance(a, CounterNoise)
                                      else np.ascontiguousarray(a, dtype=dtype)
                                      for a in (self.inputs, self.targets, self.noise, self.start_codes))
        return self._cast[dtype]

    def subset(self, n_trials):
        """The first ``n_trials`` trials (views, no copy): the curvature sub-batch."""
        n_trials = check_positive_int("n_trials", n_trials)
        if n_trials > self.n_trials:
            raise ValueError(f"n_trials must be <= {self.n_trials}, got {n_trials}")
        noise = self.noise[:n_trials] if isinstance(self.noise, np.ndarray) else self.noise
        codes = None if self.start_codes is None else self.start_codes[:n_trials]
        return Batch(self.inputs[:n_trials], self.targets[:n_trials], noise, codes)

    def targets_are_distributions(self, tol=1e-6):
        """True if every ``targets[m, t]`` is >= 0 and sums to 1 within ``tol`` (checked once, cached)."""
        if self._distributions is None:
            t = self.targets
            ok = bool(t.min() >= 0.0) and bool(np.all(np.abs(t.sum(axis=2) - 1.0) <= tol))
            object.__setattr__(self, "_distributions", ok)
        return self._distributions


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
    check_codes(batch.start_codes, params, spec, "batch.start_codes")
    if spec.readout == "place-cells" and not batch.targets_are_distributions():
        raise ValueError("batch.targets must be place-cell codes under the 'place-cells' readout: every "
                         "targets[m, t] >= 0 and summing to 1 (gridcore.PlaceCells.encode makes them)")
    return spec


def check_codes(codes, params, spec, name):
    """Raise unless ``codes`` (M, Nc) is given exactly when ``spec``'s initial state is encoded.

    ``codes`` was already converted to float64 (M, any); this checks Nc.
    """
    if spec.initial_state == "encoded":
        if codes is None:
            raise ValueError(f"{name} is required by initial_state 'encoded' (x_0 = Wenc c): the place-cell "
                             f"code (M, {params.n_code}) of each trial's start position")
        if codes.shape[1] != params.n_code:
            raise ValueError(f"{name} must have shape (M, {params.n_code}) (n_place_cells), got {codes.shape}")
    elif codes is not None:
        raise ValueError(f"{name} is only used by initial_state 'encoded'; the spec's initial_state is "
                         f"{spec.initial_state!r} (pass None)")


def _check_not_empty(inputs):
    if inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs must hold at least one trial and one step, got shape {inputs.shape}")


def check_against(params, batch):
    """Raise ValueError unless ``batch`` fits ``params`` (Nin, Nout and N of the noise)."""
    n, n_in, n_out = params.shape
    for name, arr, want in (("inputs", batch.inputs, n_in), ("targets", batch.targets, n_out),
                            ("noise", batch.noise, n)):
        if isinstance(arr, np.ndarray) and arr.shape[2] != want:
            raise ValueError(f"batch.{name} must have last axis {want} to match the parameters "
                             f"(n_units, n_in, n_out) = {params.shape}, got shape {arr.shape}")


def check_forward_args(params, inputs, noise, x0, spec, start_codes=None):
    """Validate the arguments of a forward pass; return clean ``(inputs, noise, x0, spec)``.

    ``noise`` and ``x0`` may be None (no noise; start from the spec's initial
    state). Under the ``"encoded"`` initial state, ``x0`` None needs
    ``start_codes`` (M, Nc) and is returned as ``x_0 = Wenc c`` (eq. F0).
    """
    spec = _check_params(params, spec)
    n, n_in, _ = params.shape
    inputs = as_float_array("inputs", inputs, (None, None, n_in))
    _check_not_empty(inputs)
    m, t = inputs.shape[:2]
    noise = check_noise(noise, m, t, n)
    if x0 is not None:
        if start_codes is not None:
            raise ValueError("pass x0 or start_codes, not both (start_codes make x0 = Wenc c)")
        x0 = as_float_array("x0", x0, (m, n))
    elif start_codes is not None or spec.initial_state == "encoded":
        codes = None if start_codes is None else as_float_array("start_codes", start_codes, (m, None))
        check_codes(codes, params, spec, "start_codes")
        x0 = encoded_state(params, codes)
    return inputs, noise, x0, spec


def check_noise(noise, m, t, n):
    """``noise`` as None, a checked (m, t, n) float64 array (n None: any) or a CounterNoise
    (None too when its std is 0, so that the kernels skip it)."""
    if noise is None:
        return None
    if isinstance(noise, CounterNoise):
        return noise if noise.std > 0 else None
    return as_float_array("noise", noise, (m, t, n))


def noise_slice(noise, lo, hi):
    """The noise of steps ``lo:hi`` (a view of an array, a shifted CounterNoise, or None)."""
    if isinstance(noise, CounterNoise):
        return noise.shifted(lo)
    return None if noise is None else noise[:, lo:hi]


def encoded_state(params, codes):
    """``x_0 = Wenc c`` for each trial (math.md eq. F0): (M, Nc) codes -> (M, N), C-contiguous."""
    return np.ascontiguousarray(codes @ params.Wenc.T)


def check_state(state, params, batch, contiguous=True, dtype=np.float64):
    """Return ``state.u`` (M, T, N), raising unless ``state`` is a forward state of
    ``batch`` under ``params`` from a backend computing in ``dtype`` (u of that
    dtype); C-contiguous (copied if needed) when ``contiguous``."""
    want = (batch.n_trials, batch.n_steps, params.n_units)
    u = getattr(state, "u", None)
    if not isinstance(u, np.ndarray) or u.shape != want or u.dtype != dtype:
        got = None if u is None else (u.shape, u.dtype)
        raise ValueError(f"state must be the forward state of this batch with u of shape {want} "
                         f"{np.dtype(dtype).name} (from a backend of that dtype), got {got}")
    if not getattr(state, "_finite", False):   # once per state: HF reuses it for every CG iteration
        y = getattr(state, "y", None)
        if not all_finite(u) or (isinstance(y, np.ndarray) and not all_finite(y)):
            raise ValueError("state.u or state.y contains NaN or infinite values: the forward pass "
                             "diverged (NaN or huge parameters or inputs) or the state was modified")
        state._finite = True
    return np.ascontiguousarray(u) if contiguous else u


def check_gn_args(params, batch, state, v, reg, mu, spec, contiguous=True, dtype=np.float64):
    """Validate the arguments of ``gn_product``; return clean ``(spec, u, y, v, mu)``.

    ``u`` is ``state.u`` (see :func:`check_state`, of the backend's
    ``dtype``); ``y`` is ``state.y`` (M, T, Nout), checked and C-contiguous
    in ``dtype`` under the ``"place-cells"`` readout (its curvature needs the
    softmax of the outputs), else None; ``v`` a float64 (P,) vector.
    """
    spec = check_problem(params, batch, reg, spec)
    u = check_state(state, params, batch, contiguous, dtype)
    y = None
    if spec.readout == "place-cells":
        y = getattr(state, "y", None)
        want = (batch.n_trials, batch.n_steps, params.n_out)
        if not isinstance(y, np.ndarray) or y.shape != want:
            got = None if y is None else y.shape
            raise ValueError(f"state must be the forward state of this batch with y of shape {want}, got {got}")
        y = as_float_array("state.y", y, want, dtype=dtype)
    v = as_float_array("v", v, (params.flat.size,))
    return spec, u, y, v, check_nonneg_float("mu", mu)
