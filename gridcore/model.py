"""The CTRNN's parameters, a minibatch, the regularisation weights, forward states.

The model (SPEC section 2, derived in ``docs/math.md``)::

    x_{t+1} = (1 - alpha) x_t + alpha (Wrec u_t + Win I_t + b + xi_t),  u_t = tanh(x_t)
    y_t     = Wout u_t,                                                   x_0 = 0

with ``alpha = dt / tau`` (0.1 in the paper). These containers are shared by
every backend; the kernels themselves live in ``reference.py`` and the fast
cores.
"""

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from ._validate import (as_float_array, check_choice, check_nonneg_float,
                        check_positive_int)

ALPHA = 0.1  # dt / tau: Euler step as a fraction of the unit time constant (paper: dt = tau/10)
REC_INITS = ("orthogonal", "gaussian")
GAUSSIAN_REC_GAIN = 1.5  # paper Sec. 2.3: Wrec ~ N(0, 1.5^2 / N) in the hexagon
_PARAM_NAMES = ("Wrec", "Win", "b", "Wout")
_FILE_FORMAT = 1


def param_count(n_units, n_in, n_out):
    """Length of the flat parameter vector: N*N + N*Nin + N + Nout*N."""
    return n_units * (n_units + n_in + 1 + n_out)


class Params:
    """Network parameters held in one flat float64 buffer, with matrix views.

    Flat order (row-major within each block): ``[Wrec (N,N), Win (N,Nin), b (N,),
    Wout (Nout,N)]``. ``Wrec[i, j]`` is the weight from unit j to unit i.
    The arrays are read-only: build a new ``Params`` to change them.

    Parameters
    ----------
    Wrec : array_like, (N, N)
    Win : array_like, (N, Nin)
    b : array_like, (N,)
    Wout : array_like, (Nout, N)
    """

    __slots__ = ("_flat", "Wrec", "Win", "b", "Wout")

    def __init__(self, Wrec, Win, b, Wout):
        Wrec = as_float_array("Wrec", Wrec, (None, None))
        n = Wrec.shape[0]
        if Wrec.shape != (n, n):
            raise ValueError(f"Wrec must be square (N, N), got {Wrec.shape}")
        Win = as_float_array("Win", Win, (n, None))
        b = as_float_array("b", b, (n,))
        Wout = as_float_array("Wout", Wout, (None, n))
        flat = np.concatenate([Wrec.ravel(), Win.ravel(), b, Wout.ravel()])
        self._set_flat(flat, n, Win.shape[1], Wout.shape[0])

    def _set_flat(self, flat, n, n_in, n_out):
        flat.flags.writeable = False
        self._flat = flat
        sizes = np.cumsum([n * n, n * n_in, n])
        self.Wrec = flat[:sizes[0]].reshape(n, n)
        self.Win = flat[sizes[0]:sizes[1]].reshape(n, n_in)
        self.b = flat[sizes[1]:sizes[2]]
        self.Wout = flat[sizes[2]:].reshape(n_out, n)

    @classmethod
    def from_flat(cls, vec, n_units, n_in, n_out):
        """Build from a flat vector of length ``param_count(n_units, n_in, n_out)`` (copied)."""
        n, n_in, n_out = (check_positive_int(k, v) for k, v in
                          (("n_units", n_units), ("n_in", n_in), ("n_out", n_out)))
        flat = as_float_array("vec", vec, (param_count(n, n_in, n_out),)).copy()
        self = cls.__new__(cls)
        self._set_flat(flat, n, n_in, n_out)
        return self

    @property
    def flat(self):
        """The read-only flat parameter vector, shape ``(P,)``."""
        return self._flat

    @property
    def shape(self):
        """``(n_units, n_in, n_out)``."""
        return self.Wrec.shape[0], self.Win.shape[1], self.Wout.shape[0]

    n_units = property(lambda self: self.Wrec.shape[0], doc="N, number of recurrent units")
    n_in = property(lambda self: self.Win.shape[1], doc="Nin, number of inputs")
    n_out = property(lambda self: self.Wout.shape[0], doc="Nout, number of outputs")

    def with_flat(self, vec):
        """A new ``Params`` of the same shape holding ``vec``."""
        return Params.from_flat(vec, *self.shape)

    def __repr__(self):
        n, n_in, n_out = self.shape
        return f"Params(n_units={n}, n_in={n_in}, n_out={n_out})"

    def __eq__(self, other):
        return (isinstance(other, Params) and self.shape == other.shape
                and np.array_equal(self._flat, other._flat))

    __hash__ = None

    def save(self, path):
        """Write to ``path`` (``.npz``) atomically: a temporary file, then a rename."""
        atomic_savez(path, format=_FILE_FORMAT, Wrec=self.Wrec, Win=self.Win, b=self.b, Wout=self.Wout)

    @classmethod
    def load(cls, path, n_units=None, n_in=None, n_out=None):
        """Read a file written by :meth:`save`.

        If any of ``n_units``, ``n_in``, ``n_out`` is given, a file of another
        shape is refused. Missing or extra keys, inconsistent shapes and
        non-finite values raise ValueError naming the file.
        """
        data = load_npz(path, required=_PARAM_NAMES, optional=("format",))
        try:
            params = cls(*(data[k] for k in _PARAM_NAMES))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a valid parameter file: {err}") from None
        want = (n_units, n_in, n_out)
        if any(w is not None and w != g for w, g in zip(want, params.shape)):
            raise ValueError(f"{path}: parameters have (n_units, n_in, n_out) = {params.shape}, "
                             f"expected {tuple('any' if w is None else w for w in want)}")
        return params


def init_params(n_units, n_in, n_out, seed, rec_init="orthogonal"):
    """The paper's initialisation (Sec. 2.3).

    ``Wrec`` orthogonal (square and triangle arenas) or Gaussian with variance
    ``1.5**2 / N`` (hexagon); ``Win ~ N(0, 1/Nin)``; ``b = 0``; ``Wout = 0``.

    Parameters
    ----------
    n_units, n_in, n_out : int
    seed : int or numpy.random.Generator
    rec_init : {"orthogonal", "gaussian"}
    """
    n, n_in, n_out = (check_positive_int(k, v) for k, v in
                      (("n_units", n_units), ("n_in", n_in), ("n_out", n_out)))
    check_choice("rec_init", rec_init, REC_INITS)
    rng = np.random.default_rng(seed)
    if rec_init == "orthogonal":
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        Wrec = q * np.sign(np.diag(r))  # sign fix makes Q Haar-distributed
    else:
        Wrec = rng.standard_normal((n, n)) * (GAUSSIAN_REC_GAIN / np.sqrt(n))
    Win = rng.standard_normal((n, n_in)) / np.sqrt(n_in)
    return Params(Wrec, Win, np.zeros(n), np.zeros((n_out, n)))


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
        Rates ``u_t = tanh(x_t)``.
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


def check_alpha(alpha):
    """Return ``alpha`` (dt/tau) as float, or raise unless 0 < alpha <= 1."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be a real number, got {alpha!r}") from None
    if not 0.0 < a <= 1.0:  # also rejects NaN
        raise ValueError(f"alpha (dt/tau) must be in (0, 1], got {alpha!r}")
    return a


def check_problem(params, batch, reg, alpha):
    """Validate the arguments shared by ``loss``, ``gradient`` and ``gn_product``; return alpha."""
    if not isinstance(params, Params):
        raise TypeError(f"params must be a gridcore.Params, got {type(params).__name__}")
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a gridcore.Batch, got {type(batch).__name__}")
    if not isinstance(reg, Regularization):
        raise TypeError(f"reg must be a gridcore.Regularization, got {type(reg).__name__}")
    check_against(params, batch)
    return check_alpha(alpha)


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


def check_forward_args(params, inputs, noise, x0, alpha):
    """Validate the arguments of a forward pass; return clean ``(inputs, noise, x0, alpha)``.

    ``noise`` and ``x0`` may be None (no noise; start from ``x_0 = 0``).
    """
    if not isinstance(params, Params):
        raise TypeError(f"params must be a gridcore.Params, got {type(params).__name__}")
    n, n_in, _ = params.shape
    inputs = as_float_array("inputs", inputs, (None, None, n_in))
    _check_not_empty(inputs)
    m, t = inputs.shape[:2]
    if noise is not None:
        noise = as_float_array("noise", noise, (m, t, n))
    if x0 is not None:
        x0 = as_float_array("x0", x0, (m, n))
    return inputs, noise, x0, check_alpha(alpha)


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


def check_gn_args(params, batch, state, v, reg, mu, alpha, contiguous=True):
    """Validate the arguments of ``gn_product``; return clean ``(alpha, u, v, mu)``.

    ``u`` is ``state.u`` (see :func:`check_state`), ``v`` a float64 (P,) vector.
    """
    alpha = check_problem(params, batch, reg, alpha)
    u = check_state(state, params, batch, contiguous)
    v = as_float_array("v", v, (params.flat.size,))
    return alpha, u, v, check_nonneg_float("mu", mu)


def atomic_write(path, write, mode="w"):
    """Call ``write(fh)`` on a temporary file in the same folder, then rename it over ``path``.

    A reader never sees a half-written file, and an interrupted write leaves
    the previous file intact.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path, **arrays):
    """``numpy.savez`` written atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays), "wb")


def atomic_write_json(path, obj):
    """Strict JSON (NaN refused) written atomically (see :func:`atomic_write`)."""
    def write(fh):
        json.dump(obj, fh, indent=1, allow_nan=False)
        fh.write("\n")
    atomic_write(path, write, "w")


def load_npz(path, required, optional=()):
    """Read an ``.npz`` into a dict, refusing unreadable files and wrong keys with ValueError."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: unreadable .npz file ({err})") from None
    missing = [k for k in required if k not in data]
    extra = sorted(set(data) - set(required) - set(optional))
    if missing or extra:
        raise ValueError(f"{path}: expected keys {list(required)}, missing {missing}, unexpected {extra}")
    return data
