"""The C core (``csrc/``) as a backend: same functions and results as the reference.

The wrapper checks every argument with the validators the reference uses
(:class:`gridcore.backends.base.Backend`), so bad input raises the same ``TypeError``/``ValueError``
and never reaches C. Arrays are handed over as pointers, with no copy unless
the validators had to make one (wrong dtype or layout).

The model travels to C as a ``grc_model`` struct built from the
:class:`~gridcore.model.spec.ModelSpec` (:func:`model_struct`), with the codes
below; ``tests/test_c_core.py`` checks them against ``csrc/gridcore.h``. The
regularisation weights travel as a ``grc_reg`` struct (:func:`reg_struct`), the
place-cell codes of the trials' start positions (``Batch.start_codes``, the
``"encoded"`` initial state) as the ``codes`` array.

float32: with ``dtype="float32"`` the backend calls the ``grc_*_f32`` entry
points. The boundary is here: the checked float64 trial arrays (inputs,
targets, start codes, a noise array, x0) are cast to float32 on the way in
(a batch's once, :meth:`gridcore.Batch.arrays`), the forward states come
back float32 and go back to the GN product as they are; parameters, ``v``, loss terms, gradients and
``G v`` cross as float64 (C rounds the weights when it packs them).

Concurrency: cffi releases the GIL during each C call. A C workspace may run
one call at a time, so each Python thread gets its own (created on its first
call, kept for its later calls, freed with the thread): one backend object
can be shared by a thread pool.
"""

import os
import threading

import numpy as np

from gridcore.backends.base import Backend
from gridcore.backends.c.ccore import ffi, lib
from gridcore.model.noise import CounterNoise
from gridcore.model.spec import NONLINEARITIES
from gridcore.util.checks import MAX_THREADS, check_dtype, check_threads

ISAS = {"auto": lib.GRC_ISA_AUTO, "generic": lib.GRC_ISA_GENERIC,
        "avx2": lib.GRC_ISA_AVX2, "avx512": lib.GRC_ISA_AVX512}

# ModelSpec value -> grc_model code, written out here (not read from lib) so that
# the tests can check them against the header's GRC_PHI_*, GRC_READOUT_*, GRC_X0_*.
PHI_CODES = NONLINEARITIES              # the spec's own codes (ModelSpec.phi_code)
READOUT_CODES = {"xy": 0, "place-cells": 1}         # GRC_READOUT_XY, GRC_READOUT_PLACE_CELLS
INITIAL_STATE_CODES = {"zero": 0, "encoded": 1}     # GRC_X0_ZERO, GRC_X0_ENCODED


def _check(status):
    """Raise for a negative status of the C core (after validation only ENOMEM is expected)."""
    if status < 0:
        message = ffi.string(lib.grc_strerror(status)).decode()
        if status == lib.GRC_ENOMEM:
            raise MemoryError(f"gridcore C core: {message}")
        raise RuntimeError(f"gridcore C core: {message} (status {status})")


# C element type of each dtype's arrays, and the suffix of its entry points (grc_forward_f32, ...)
_C_TYPES = {np.dtype(np.float64): "double[]", np.dtype(np.float32): "float[]"}
_SUFFIXES = {np.dtype(np.float64): "", np.dtype(np.float32): "_f32"}


def _ptr(arr):
    """``double *`` or ``float *`` to an ndarray's data (C-contiguous, checked by the caller)."""
    return ffi.from_buffer(_C_TYPES[arr.dtype], arr)


def _opt_ptr(arr):
    return ffi.NULL if arr is None else _ptr(arr)


def model_struct(spec):
    """The ``grc_model`` of a spec, as the dict cffi passes by value.

    Parameters
    ----------
    spec : ModelSpec (validated)

    Returns
    -------
    dict with ``alpha`` (float, dt/tau), ``nonlinearity``, ``readout`` and
    ``initial_state`` (int codes of ``csrc/gridcore.h``).
    """
    return {"alpha": spec.alpha, "nonlinearity": PHI_CODES[spec.nonlinearity],
            "readout": READOUT_CODES[spec.readout],
            "initial_state": INITIAL_STATE_CODES[spec.initial_state]}


def reg_struct(reg):
    """The ``grc_reg`` of a :class:`~gridcore.Regularization`, as the dict cffi passes by value.

    Returns
    -------
    dict with float ``lam_l2``, ``lam_fr`` and ``lam_rec``.
    """
    return {"lam_l2": reg.lam_l2, "lam_fr": reg.lam_fr, "lam_rec": reg.lam_rec}


def noise_struct(noise):
    """The ``grc_noise`` of a checked noise (None, an (M, T, N) array or a CounterNoise), as a dict.

    The array, if any, must outlive the call: the dict holds only its pointer.
    """
    if isinstance(noise, CounterNoise):
        return {"xi": ffi.NULL, "std": noise.std, "seed": noise.seed, "trial0": noise.trial0,
                "step0": noise.step0}
    return {"xi": _opt_ptr(noise), "std": 0.0, "seed": 0, "trial0": 0, "step0": 0}


class CBackend(Backend):
    """The C core: forward, loss, gradient, GN product, streaming forward.

    Parameters
    ----------
    threads : int in 1..MAX_THREADS (256) or None
        Threads (= partitions of the trials) per call; None uses all that
        OpenMP offers (``OMP_NUM_THREADS`` or the core count, at most
        MAX_THREADS). Results are bit-identical for a fixed thread count,
        whether or not the core was built with OpenMP.
    isa : {"auto", "avx512", "avx2", "generic"}
        Instruction set of the kernels; "auto" picks the widest this CPU supports.
    dtype : {"float64", "float32"}
        Element type of the kernels (the grc_* or grc_*_f32 entry points).

    Attributes
    ----------
    name : "c"
    threads : int, the thread count actually used.
    isa : str, the instruction set actually used.
    dtype : np.dtype
    """

    name = "c"

    def __init__(self, threads=None, isa="auto", dtype="float64"):
        if threads is None:
            threads = int(lib.grc_max_threads())        # already capped at MAX_THREADS
        self.threads = check_threads(threads)
        self.dtype = check_dtype(dtype)
        suffix = _SUFFIXES[self.dtype]
        self._c_forward, self._c_loss, self._c_gradient, self._c_gn = (
            getattr(lib, f"grc_{op}{suffix}") for op in ("forward", "loss", "gradient", "gn_product"))
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
        """The ``grc_shape`` of ``params`` and M = ``m`` trials of T = ``t`` steps, as a dict."""
        n, n_in, n_out = params.shape
        return {"n_units": n, "n_in": n_in, "n_out": n_out, "n_trials": m, "n_steps": t,
                "n_code": params.n_code}

    def _run(self, params, inputs, noise, x0, spec, keep_u):
        # An encoded initial state arrives as x0 = Wenc c (the base class forms it), which
        # overrides the model's initial state in C: no codes are needed here.
        m, t, _ = inputs.shape
        n, _, n_out = params.shape
        u = np.empty((m, t, n), self.dtype) if keep_u else None
        y = np.empty((m, t, n_out), self.dtype)
        x_end = np.empty((m, n), self.dtype)
        inputs, noise, x0 = (a if a is None or isinstance(a, CounterNoise)
                             else np.ascontiguousarray(a, dtype=self.dtype) for a in (inputs, noise, x0))
        _check(self._c_forward(self._ws(), self._shape(params, m, t), model_struct(spec),
                               _ptr(params.flat), _ptr(inputs), noise_struct(noise), ffi.NULL,
                               _opt_ptr(x0), _opt_ptr(u), _ptr(y), _ptr(x_end)))
        return None, u, y, x_end

    def _loss(self, params, batch, reg, spec):
        terms = ffi.new("double[5]")
        inputs, targets, noise, codes = batch.arrays(self.dtype)
        _check(self._c_loss(self._ws(), self._shape(params, batch.n_trials, batch.n_steps),
                            model_struct(spec), _ptr(params.flat), _ptr(inputs), _ptr(targets),
                            noise_struct(noise), _opt_ptr(codes), reg_struct(reg), terms))
        return _terms(terms)

    def _gradient(self, params, batch, reg, spec, sq_grad):
        terms = ffi.new("double[5]")
        grad = np.empty(params.flat.size)
        sq = np.empty(params.flat.size) if sq_grad else None
        inputs, targets, noise, codes = batch.arrays(self.dtype)
        _check(self._c_gradient(self._ws(), self._shape(params, batch.n_trials, batch.n_steps),
                                model_struct(spec), _ptr(params.flat), _ptr(inputs), _ptr(targets),
                                noise_struct(noise), _opt_ptr(codes), reg_struct(reg), terms,
                                _ptr(grad), _opt_ptr(sq)))
        return _terms(terms), grad, sq

    def _gn_product(self, params, batch, u, y, v, reg, mu, spec):
        gv = np.empty(params.flat.size)
        inputs, _, _, codes = batch.arrays(self.dtype)
        _check(self._c_gn(self._ws(), self._shape(params, batch.n_trials, batch.n_steps),
                          model_struct(spec), _ptr(params.flat), _ptr(inputs), _opt_ptr(codes),
                          _ptr(u), _opt_ptr(y), _ptr(v), reg_struct(reg), mu, _ptr(gv)))
        return gv

    def info(self):
        """How the C core was built and how this backend runs it.

        Used by ``python -m gridcore info``.

        Returns
        -------
        dict with
            ``backend`` ("c"), ``abi_version`` (the C core's GRC_ABI_VERSION),
            ``threads`` (this backend's thread count), ``dtype`` ("float64" or
            "float32"), ``max_threads_cap`` (MAX_THREADS),
            ``openmp`` (bool: compiled with OpenMP), ``max_threads`` (threads
            OpenMP offers), ``isa`` (instruction set in use), ``isas_available``
            (list), ``build_flags`` (compiler flags of the core), ``blas`` (the
            core's matrix products: its own register-blocked kernels, no BLAS),
            ``OPENBLAS_CORETYPE`` and ``OMP_NUM_THREADS`` (environment, or None).
        """
        return {
            "backend": self.name,
            "abi_version": int(lib.grc_abi_version()),
            "threads": self.threads,
            "dtype": self.dtype.name,
            "max_threads_cap": MAX_THREADS,
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
        return f"CBackend(threads={self.threads}, isa={self.isa!r}, dtype={self.dtype.name!r})"


def available_isas():
    """Instruction sets of the C kernels usable on this CPU, widest first."""
    return [name for name in ("avx512", "avx2", "generic") if lib.grc_isa_available(ISAS[name])]


def _terms(buf):
    terms = {"E": buf[0], "R_L2": buf[1], "R_FR": buf[2], "R_rec": buf[3], "loss": buf[4]}
    return {k: float(v) for k, v in terms.items()}
