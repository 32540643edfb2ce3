"""``Stepper``: a trained network advanced one Euler step at a time, for one agent or a batch.

For agent simulators (RatInABox, a game loop, a robot), which move their
agents themselves and ask the network once per step where it thinks they
are. ``reset`` sets the model's initial state ``x_0`` (0, or ``Wenc c`` from
the start's place-cell code: ``docs/math.md`` eq. F0) and returns its
outputs ``y_0``; each ``step(inputs)`` takes one Euler step (eq. F3) and
returns the outputs of the new state (eq. F1-F2). After ``t`` steps the
outputs equal ``y_t`` of a forward pass over the same inputs, to round-off.

The C core's stepping API (``grc_stepper``, ``grc_step``: packed weights
and scratch made once, no allocation per step) runs it when it is built;
otherwise the NumPy reference's forward pass, one step per call (slower).
Shapes: B agents, N units, Nin inputs, Nout outputs, Nc entries of a start
code; float64.
"""

import numpy as np

from gridcore.backends import get_backend
from gridcore.model.batch import encoded_state
from gridcore.model.noise import CounterNoise
from gridcore.model.nonlinearity import phi
from gridcore.model.params import Params
from gridcore.model.spec import PAPER, check_spec
from gridcore.sim.placecells import outputs_to_positions
from gridcore.util.checks import as_float_array, check_choice, check_positive_int, check_threads

try:
    from gridcore.backends.c.backend import ISAS, model_struct
    from gridcore.backends.c.ccore import ffi, lib
except ImportError as err:      # no C core built: the NumPy implementation runs
    ffi = lib = None
    C_MISSING = str(err)
else:
    C_MISSING = None

__all__ = ["Stepper", "STEPPER_BACKENDS"]

STEPPER_BACKENDS = ("auto", "c", "numpy")


class Stepper:
    """A trained network stepped online (math.md eq. F0-F3).

    Parameters
    ----------
    params : Params
        The network.
    spec : ModelSpec
        Its model (alpha, phi, readout, initial state).
    place_cells : PlaceCells or None
        The run's place cells: needed to decode place-cell outputs into
        positions (:attr:`position`) and to start the encoded initial state
        from a position (``reset(start=...)``).
    backend : {"auto", "c", "numpy"}
        "auto": the C core if it is built, else NumPy.
    threads : int
        C core: partitions of the agents (at most one per 32 agents); the
        numbers do not depend on it.
    noise : CounterNoise or None
        Noise of every step (math.md section 8): agent b at step t gets the
        noise of trial ``noise.trial0 + b`` and step ``noise.step0 + t`` of a
        forward pass. None: no noise (how a trained network is usually run).

    Attributes
    ----------
    x, u : ndarray, (N,) or (B, N)
        State and rates after the last ``reset`` or ``step``.
    y : ndarray, (Nout,) or (B, Nout)
        Its outputs (copied into each return value).
    t : int
        Steps taken since ``reset``.
    backend : str
        "c" or "numpy": what runs the steps.
    """

    def __init__(self, params, spec=PAPER, place_cells=None, backend="auto", threads=1, noise=None):
        if not isinstance(params, Params):
            raise TypeError(f"params must be a gridcore.Params, got {type(params).__name__}")
        self.spec = params.check_spec(check_spec(spec))
        self.params = params
        self.place_cells = place_cells
        check_choice("backend", backend, STEPPER_BACKENDS)
        if backend == "c" and lib is None:
            raise ValueError(f"backend 'c' is not available: {C_MISSING}")
        self.backend = "c" if backend != "numpy" and lib is not None else "numpy"
        self.threads = check_threads(threads)
        if noise is not None and not isinstance(noise, CounterNoise):
            raise TypeError(f"noise must be a gridcore.CounterNoise or None, got {type(noise).__name__}")
        self.noise = noise if noise is not None and noise.std > 0 else None
        self._capacity = 0
        self._c = None
        self._reference = get_backend("numpy") if self.backend == "numpy" else None
        self.x = self.u = self.y = None
        self.t = 0

    @classmethod
    def from_run(cls, run, **kwargs):
        """The stepper of a trained run (:func:`gridcore.train.rundir.load_run`'s ``Run``:
        its ``params``, ``spec`` and ``place_cells``); ``kwargs`` as for the constructor."""
        return cls(run.params, run.spec, place_cells=run.place_cells, **kwargs)

    # ---- the C core

    def _stepper(self, n_agents):
        """The C ``grc_stepper`` for at least ``n_agents`` agents (made again only to grow)."""
        if n_agents > self._capacity:
            n, n_in, n_out = self.params.shape
            shape = {"n_units": n, "n_in": n_in, "n_out": n_out, "n_trials": n_agents, "n_steps": 1,
                     "n_code": self.params.n_code}
            out = ffi.new("grc_stepper **")
            _check(lib.grc_stepper_create(shape, model_struct(self.spec), _ptr(self.params.flat),
                                          self.threads, ISAS["auto"], out))
            self._c = ffi.gc(out[0], lib.grc_stepper_destroy)
            self._capacity = n_agents
        return self._c

    def _bind(self, n_agents):
        """Arrays x, u, y of ``n_agents`` agents and, for C, their pointers and a noise struct."""
        n, _, n_out = self.params.shape
        self._x, self._u, self._y = np.zeros((n_agents, n)), np.empty((n_agents, n)), np.empty((n_agents, n_out))
        if self.backend == "c":
            self._ptrs = (_ptr(self._x), _ptr(self._u), _ptr(self._y))
            self._noise_c = ffi.new("grc_noise *")
            if self.noise is not None:
                self._noise_c.std, self._noise_c.seed = self.noise.std, self.noise.seed
                self._noise_c.trial0 = self.noise.trial0

    # ---- the public interface

    def reset(self, start=None, n_agents=None, codes=None):
        """Set every agent to the model's initial state; return its outputs ``y_0``.

        Parameters
        ----------
        start : array_like, (2,) or (B, 2), optional
            Start positions (arena units): under the ``"encoded"`` initial
            state ``x_0 = Wenc c`` with ``c = place_cells.encode(start)``
            (eq. F0). Under ``"zero"`` (x_0 = 0) the network assumes the
            arena centre, so a start must not be given.
        n_agents : int, optional
            B, when neither ``start`` nor ``codes`` gives it; None (and 1-D
            ``start``/``codes``): one agent, and arrays without the agent axis.
        codes : array_like, (Nc,) or (B, Nc), optional
            Start codes instead of ``start`` (the encoded initial state only).

        Returns
        -------
        ndarray, (Nout,) for one agent or (B, Nout)
        """
        codes = self._start_codes(start, codes)
        if codes is not None:
            single = codes.ndim == 1
            codes = np.atleast_2d(codes)
            if n_agents is not None and n_agents != len(codes):
                raise ValueError(f"n_agents = {n_agents!r} but {len(codes)} start positions or codes were given")
            n_agents = len(codes)
        else:
            single = n_agents is None
            n_agents = 1 if single else check_positive_int("n_agents", n_agents)
        self._single = single
        self._bind(n_agents)
        if self.backend == "c":
            _check(lib.grc_stepper_start(self._stepper(n_agents), n_agents, _opt_ptr(codes), *self._ptrs))
        else:
            if codes is not None:
                self._x[:] = encoded_state(self.params, codes)
            self._outputs_numpy()
        self.t = 0
        return self._publish()

    def step(self, inputs, xi=None):
        """One Euler step of every agent (eq. F3); return the outputs of the new state.

        Parameters
        ----------
        inputs : array_like, (Nin,) for one agent or (B, Nin)
            ``I_t``, in the network's input encoding (arena units per step, radians).
        xi : array_like, (N,) or (B, N), optional
            Noise of this step, in place of the constructor's ``noise``.

        Returns
        -------
        ndarray, (Nout,) or (B, Nout)
            ``y_{t+1}``; :attr:`u` and :attr:`x` hold the new rates and state.
        """
        if self.x is None:
            raise RuntimeError("call reset() before step()")
        b, n_in = self._x.shape[0], self.params.n_in
        want = (n_in,) if self._single else (b, n_in)
        if not (type(inputs) is np.ndarray and inputs.shape == want and inputs.dtype == np.float64
                and inputs.flags.c_contiguous):
            inputs = as_float_array("inputs", inputs, want, finite=False)   # C checks finiteness
        if xi is not None:
            xi = as_float_array("xi", xi, self._x.shape[1:] if self._single else self._x.shape)
        inputs, xi = self._unaliased(inputs), self._unaliased(xi)
        if self.backend == "c":
            self._step_c(inputs, xi)
        else:
            self._step_numpy(inputs.reshape(b, n_in), xi)
        self.t += 1
        return self._publish()

    @property
    def position(self):
        """The positions the current outputs report (arena units), (2,) or (B, 2);
        place-cell outputs are decoded with the run's ``place_cells``."""
        return outputs_to_positions(self.y, self.spec, self.place_cells)

    def outputs(self, x):
        """Rates and outputs ``(u, y)`` of given states ``x`` (N,) or (B, N), without stepping."""
        x = np.atleast_2d(as_float_array("x", x, (None,) * np.ndim(x)))
        if x.shape[1] != self.params.n_units:
            raise ValueError(f"x must have shape (N,) or (B, N) with N = {self.params.n_units}, got {x.shape}")
        u = phi(x, self.spec.nonlinearity)
        return u, u @ self.params.Wout.T

    # ---- helpers

    def _unaliased(self, a):
        """``a``, or a copy of it if it shares memory with the agents' x, u or y (say
        ``step(stepper.u)``), which the step overwrites: C would refuse it (GRC_EOVERLAP)."""
        if a is not None and any(np.may_share_memory(a, b) for b in (self._x, self._u, self._y)):
            return a.copy()
        return a

    def _start_codes(self, start, codes):
        encoded = self.spec.initial_state == "encoded"
        if start is not None and codes is not None:
            raise ValueError("pass start or codes, not both")
        if not encoded:
            if start is not None or codes is not None:
                raise ValueError(f"the initial state is {self.spec.initial_state!r} (x_0 = 0: the network "
                                 "assumes the arena centre), so start and codes cannot be given")
            return None
        if start is not None:
            if self.place_cells is None:
                raise ValueError("start positions need the run's place_cells (Stepper(..., place_cells=)) "
                                 "to make the start codes of the encoded initial state; or pass codes")
            start = np.asarray(start, dtype=np.float64)
            if start.ndim not in (1, 2):
                raise ValueError(f"start must have shape (2,) or (B, 2), got {start.shape}")
            codes = self.place_cells.encode(start)
        if codes is None:
            raise ValueError("the encoded initial state (x_0 = Wenc c) needs start (positions) or codes")
        codes = np.asarray(codes)
        n_code = self.params.n_code
        codes = as_float_array("codes", codes, (n_code,) if codes.ndim == 1 else (None, n_code))
        return codes

    def _step_c(self, inputs, xi):
        noise = self._noise_c
        noise.step0 = (self.noise.step0 if self.noise is not None else 0) + self.t
        if xi is not None:
            if self.noise is not None:
                raise ValueError("xi cannot be given: this stepper has counter-based noise (noise=)")
            noise = ffi.new("grc_noise *", {"xi": _ptr(xi)})
        status = lib.grc_step(self._c, self._x.shape[0], _ptr(inputs), noise[0], *self._ptrs)
        if status == lib.GRC_ENONFINITE:
            what = "inputs contains" if not np.isfinite(inputs).all() else "the state x has"
            raise ValueError(f"{what} NaN or infinite values (the network diverged if it is the state)")
        _check(status)

    def _step_numpy(self, inputs, xi):
        b = self._x.shape[0]
        noise = None
        if xi is not None:
            noise = xi.reshape(b, 1, -1)
        elif self.noise is not None:
            noise = self.noise.shifted(self.t)
        state = self._reference.forward(self.params, inputs[:, None], noise=noise, x0=self._x, spec=self.spec)
        self._x[:] = state.x_end
        self._outputs_numpy()

    def _outputs_numpy(self):
        self._u[:], self._y[:] = self.outputs(self._x)

    def _publish(self):
        """Set x, u, y (views without the agent axis for one agent); return a copy of y."""
        if self._single:
            self.x, self.u, self.y = self._x[0], self._u[0], self._y[0]
        else:
            self.x, self.u, self.y = self._x, self._u, self._y
        return self.y.copy()


def _ptr(arr):
    """``double *`` to a C-contiguous float64 array's data."""
    return ffi.from_buffer("double[]", arr)


def _opt_ptr(arr):
    return ffi.NULL if arr is None else _ptr(arr)


def _check(status):
    """Raise for a negative status of the C core (after Python's checks only ENOMEM is expected)."""
    if status < 0:
        message = ffi.string(lib.grc_strerror(status)).decode()
        if status == lib.GRC_ENOMEM:
            raise MemoryError(f"gridcore C core: {message}")
        raise RuntimeError(f"gridcore C core: {message} (status {status})")
