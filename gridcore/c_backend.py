"""The C core (``csrc/``) as a backend: same functions and results as the reference.

The wrapper checks every argument with the validators the reference uses
(``gridcore.model``), so bad input raises the same ``TypeError``/``ValueError``
and never reaches C. Arrays are handed over as pointers, with no copy unless
the validators had to make one (wrong dtype or layout).

Concurrency: cffi releases the GIL during each C call. A C workspace may run
one call at a time, so each Python thread gets its own (created on its first
call, kept for its later calls, freed with the thread): one backend object
can be shared by a thread pool.
"""

import os
import threading

import numpy as np

from ._ccore import ffi, lib
from ._validate import check_positive_int
from .model import (ALPHA, ForwardState, StreamResult, check_forward_args,
                    check_gn_args, check_problem)

ISAS = {"auto": lib.GRC_ISA_AUTO, "generic": lib.GRC_ISA_GENERIC,
        "avx2": lib.GRC_ISA_AVX2, "avx512": lib.GRC_ISA_AVX512}


def _check(status):
    """Raise for a negative status of the C core (after validation only ENOMEM is expected)."""
    if status < 0:
        message = ffi.string(lib.grc_strerror(status)).decode()
        if status == lib.GRC_ENOMEM:
            raise MemoryError(f"gridcore C core: {message}")
        raise RuntimeError(f"gridcore C core: {message} (status {status})")


def _ptr(arr):
    """``double *`` to an ndarray's data (C-contiguous float64, checked by the caller)."""
    return ffi.from_buffer("double[]", arr)


def _opt_ptr(arr):
    return ffi.NULL if arr is None else _ptr(arr)


class CBackend:
    """The C core: forward, loss, gradient, GN product, streaming forward.

    Parameters
    ----------
    threads : int or None
        Threads (= partitions of the trials) per call; None uses all that
        OpenMP offers (``OMP_NUM_THREADS`` or the core count). Results are
        bit-identical for a fixed thread count, whether or not the core was
        built with OpenMP.
    isa : {"auto", "avx512", "avx2", "generic"}
        Instruction set of the kernels; "auto" picks the widest this CPU supports.

    Attributes
    ----------
    name : "c"
    threads : int, the thread count actually used.
    isa : str, the instruction set actually used.
    """

    name = "c"

    def __init__(self, threads=None, isa="auto"):
        if threads is None:
            threads = int(lib.grc_max_threads())
        self.threads = check_positive_int("threads", threads)
        if isa not in ISAS:
            raise ValueError(f"unknown isa {isa!r}; allowed: {', '.join(map(repr, ISAS))}")
        if isa != "auto" and not lib.grc_isa_available(ISAS[isa]):
            raise ValueError(f"isa {isa!r} is not available on this CPU or build; available: "
                             f"{', '.join(available_isas())}")
        self._isa_code = ISAS[isa]
        self._local = threading.local()
        self.isa = ffi.string(lib.grc_isa_name(lib.grc_workspace_isa(self._ws()))).decode()

    def _new_workspace(self):
        out = ffi.new("grc_workspace **")
        _check(lib.grc_workspace_create(self.threads, self._isa_code, out))
        return ffi.gc(out[0], lib.grc_workspace_destroy)

    def _ws(self):
        """This thread's workspace (created on first use, reused afterwards)."""
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = self._local.ws = self._new_workspace()
        return ws

    def workspace_bytes(self):
        """Scratch bytes held by the calling thread's workspace (0 before its first call)."""
        ws = getattr(self._local, "ws", None)
        return 0 if ws is None else int(lib.grc_workspace_bytes(ws))

    @staticmethod
    def _shape(params, m, t):
        n, n_in, n_out = params.shape
        return {"n_units": n, "n_in": n_in, "n_out": n_out, "n_trials": m, "n_steps": t}

    def _forward(self, params, inputs, noise, x0, alpha, keep_u):
        m, t, _ = inputs.shape
        n, _, n_out = params.shape
        u = np.empty((m, t, n)) if keep_u else None
        y = np.empty((m, t, n_out))
        x_end = np.empty((m, n))
        _check(lib.grc_forward(self._ws(), self._shape(params, m, t), _ptr(params.flat),
                               _ptr(inputs), _opt_ptr(noise), _opt_ptr(x0), alpha,
                               _opt_ptr(u), _ptr(y), _ptr(x_end)))
        return u, y, x_end

    def forward(self, params, inputs, noise=None, x0=None, alpha=ALPHA):
        """Run the network (math.md eq. F1-F3).

        Parameters
        ----------
        params : Params
        inputs : (M, T, Nin) array; ``inputs[:, t]`` drives the step ``x_t -> x_{t+1}``
        noise : (M, T, N) array or None
        x0 : (M, N) array or None; initial activations (default 0)
        alpha : float; ``dt / tau``

        Returns
        -------
        ForwardState with ``x = None`` (not needed downstream), ``u`` (M, T, N),
        ``y`` (M, T, Nout) and ``x_end`` (M, N).
        """
        inputs, noise, x0, alpha = check_forward_args(params, inputs, noise, x0, alpha)
        u, y, x_end = self._forward(params, inputs, noise, x0, alpha, keep_u=True)
        return ForwardState(x=None, u=u, y=y, x_end=x_end)

    def forward_stream(self, params, inputs, noise=None, x0=None, alpha=ALPHA, keep_u=False,
                       chunk_steps=4096):
        """Forward pass for long paths without storing the states (math.md eq. F1-F3).

        Parameters
        ----------
        params, inputs, noise, x0, alpha : as for :meth:`forward`
        keep_u : bool; also return the rates ``u`` (M, T, N)
        chunk_steps : int >= 1; accepted for the reference's signature. The C
            kernel never holds more than O(M N) scratch, whatever T, so it runs
            the whole path in one call.

        Returns
        -------
        StreamResult with ``y`` (M, T, Nout), ``u`` (M, T, N) or None, ``x_end`` (M, N).
        """
        inputs, noise, x0, alpha = check_forward_args(params, inputs, noise, x0, alpha)
        check_positive_int("chunk_steps", chunk_steps)
        u, y, x_end = self._forward(params, inputs, noise, x0, alpha, keep_u=bool(keep_u))
        return StreamResult(y=y, u=u, x_end=x_end)

    def loss(self, params, batch, reg, alpha=ALPHA):
        """Loss terms on a batch: dict with ``E``, ``R_L2``, ``R_FR`` and ``loss`` (math.md eq. L1-L4)."""
        alpha = check_problem(params, batch, reg, alpha)
        terms = ffi.new("double[4]")
        _check(lib.grc_loss(self._ws(), self._shape(params, batch.n_trials, batch.n_steps),
                            _ptr(params.flat), _ptr(batch.inputs), _ptr(batch.targets),
                            _opt_ptr(batch.noise), alpha, reg.lam_l2, reg.lam_fr, terms))
        return _terms(terms)

    def gradient(self, params, batch, reg, alpha=ALPHA, sq_grad=False):
        """Loss terms and the gradient of ``loss`` by BPTT (math.md eq. B1-B7).

        Returns
        -------
        terms : dict with ``E``, ``R_L2``, ``R_FR``, ``loss``
        grad : (P,) float64, in ``Params.flat`` order
        sq : (P,) float64, only if ``sq_grad``: ``mean_m (dL_m/dtheta)**2`` over the
            per-trial losses ``L_m`` (``loss = mean_m L_m``).
        """
        alpha = check_problem(params, batch, reg, alpha)
        terms = ffi.new("double[4]")
        grad = np.empty(params.flat.size)
        sq = np.empty(params.flat.size) if sq_grad else None
        _check(lib.grc_gradient(self._ws(), self._shape(params, batch.n_trials, batch.n_steps),
                                _ptr(params.flat), _ptr(batch.inputs), _ptr(batch.targets),
                                _opt_ptr(batch.noise), alpha, reg.lam_l2, reg.lam_fr, terms,
                                _ptr(grad), _opt_ptr(sq)))
        if sq_grad:
            return _terms(terms), grad, sq
        return _terms(terms), grad

    def gn_product(self, params, batch, state, v, reg, mu=0.0, alpha=ALPHA):
        """Gauss-Newton matrix times a vector, ``G v`` (math.md eq. G1-G5).

        Parameters
        ----------
        params : Params
        batch : Batch
        state : ForwardState of ``batch`` under ``params`` (only ``u`` (M, T, N) is used)
        v : (P,) vector in ``Params.flat`` order
        reg : Regularization
        mu : float >= 0; structural damping weight
        alpha : float; ``dt / tau``

        Returns
        -------
        (P,) float64
        """
        alpha, u, v, mu = check_gn_args(params, batch, state, v, reg, mu, alpha)
        gv = np.empty(params.flat.size)
        _check(lib.grc_gn_product(self._ws(), self._shape(params, batch.n_trials, batch.n_steps),
                                  _ptr(params.flat), _ptr(batch.inputs), _ptr(u), _ptr(v),
                                  alpha, reg.lam_l2, reg.lam_fr, mu, _ptr(gv)))
        return gv

    def info(self):
        """How the C core was built and how this backend runs it.

        Used by ``python -m gridcore info``.

        Returns
        -------
        dict with
            ``backend`` ("c"), ``threads`` (this backend's thread count),
            ``openmp`` (bool: compiled with OpenMP), ``max_threads`` (threads
            OpenMP offers), ``isa`` (instruction set in use), ``isas_available``
            (list), ``build_flags`` (compiler flags of the core), ``blas`` (the
            core's matrix products: its own register-blocked kernels, no BLAS),
            ``OPENBLAS_CORETYPE`` and ``OMP_NUM_THREADS`` (environment, or None).
        """
        return {
            "backend": self.name,
            "threads": self.threads,
            "openmp": bool(lib.grc_openmp_enabled()),
            "max_threads": int(lib.grc_max_threads()),
            "isa": self.isa,
            "isas_available": available_isas(),
            "build_flags": ffi.string(lib.grc_build_flags()).decode(),
            "blas": "none: built-in register-blocked matrix kernels",
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        }

    def __repr__(self):
        return f"CBackend(threads={self.threads}, isa={self.isa!r})"


def available_isas():
    """Instruction sets of the C kernels usable on this CPU, widest first."""
    return [name for name in ("avx512", "avx2", "generic") if lib.grc_isa_available(ISAS[name])]


def _terms(buf):
    terms = {"E": buf[0], "R_L2": buf[1], "R_FR": buf[2], "loss": buf[3]}
    return {k: float(v) for k, v in terms.items()}
