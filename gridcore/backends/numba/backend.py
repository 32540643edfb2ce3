"""The Numba backend: public wrappers that validate, coerce and launch :mod:`gridcore.backends.numba.kernels`.

The public methods and their checks are those of
:class:`gridcore.backends.base.Backend`. The wrappers hand the kernels
C-contiguous writeable arrays of the backend's dtype (float64, or float32:
the trial arrays cast once per batch by :meth:`gridcore.Batch.arrays`, the
stacked weights built in it), Python floats, bools and ints only, so each
kernel is compiled once per dtype, and cached on disk (``cache=True``) for
later processes. Parameters, ``v``, gradients and ``G v`` stay float64.

Threads: ``NumbaBackend(threads=k)`` splits the trials into k blocks run by k
Numba threads; results are bit-identical for a fixed k. The kernels do their
own matrix products (no BLAS), so no library's thread pool competes with them.
"""

import threading

import numba
import numpy as np
from llvmlite import binding as llvm
from numba.np.ufunc import parallel as _numba_parallel

from gridcore.backends.base import Backend
from gridcore.backends.numba import kernels as nk
from gridcore.model import noise as noise_mod
from gridcore.model import objective
from gridcore.model.batch import encoded_state
from gridcore.util.checks import MAX_THREADS, check_dtype, check_threads

_EMPTY = np.empty((0, 0, 0))  # stands for a missing (M, T, N) array: keeps one kernel signature per dtype
_LAUNCH_LOCK = threading.Lock()
_SCRATCH = threading.local()


def _scratch(name, shape, dtype):
    """An array of ``shape`` and ``dtype`` owned by the calling thread, reused by its later calls.

    The (M, T, N) scratch of the gradient and GN product is written in full by
    every call; reusing it saves the kernel from faulting in and zeroing fresh
    pages (a paper-size gradient on 2 threads went from 0.22 to 0.19 s). Like the C
    core's workspaces, it is kept per Python thread, so concurrent calls from
    a thread pool never share it, and freed with the thread.
    """
    arrays = _SCRATCH.__dict__.setdefault("arrays", {})
    if name not in arrays or arrays[name].shape != shape or arrays[name].dtype != dtype:
        arrays[name] = None  # release the old array before allocating the new one
        arrays[name] = np.empty(shape, dtype)
    return arrays[name]


def _threading_layer():
    """Numba's threading layer ("omp", "tbb" or "workqueue"), starting Numba's threads if needed."""
    _numba_parallel._launch_threads()  # private, but the only way to learn the layer without compiling
    return numba.threading_layer()


def _check_threads(threads):
    """Thread count as int: None means all Numba threads (at most MAX_THREADS); 0 or more than Numba has is refused."""
    limit = min(numba.config.NUMBA_NUM_THREADS, MAX_THREADS)
    if threads is None:
        return limit
    return check_threads(threads, limit, f"NUMBA_NUM_THREADS, by default the number of CPU cores; set that "
                                         f"variable before starting Python to allow more, up to MAX_THREADS = "
                                         f"{MAX_THREADS}")


def _kernel_array(a, dtype=np.float64):
    """``a`` as the kernels' array type: a writeable, aligned, C-contiguous array of ``dtype``."""
    a = np.ascontiguousarray(a, dtype)
    return a if a.flags.writeable and a.flags.aligned else a.copy()


_NO_CTR = np.zeros(3, dtype=np.uint64)
_NOISE_TABLE = np.stack([noise_mod.TABLE_Q, noise_mod.TABLE_D])


def _noise_args(noise, dtype):
    """The kernels' ``noise, noise_kind, ctr, tab, std`` for None, an array or a CounterNoise."""
    empty = _EMPTY.astype(dtype)
    if isinstance(noise, noise_mod.CounterNoise):
        ctr = np.array([noise.seed, noise.trial0, noise.step0], dtype=np.uint64)
        return empty, 2, ctr, _NOISE_TABLE, noise.std
    if noise is None:
        return empty, 0, _NO_CTR, _NOISE_TABLE, 0.0
    return _kernel_array(noise, dtype), 1, _NO_CTR, _NOISE_TABLE, 0.0


def _stacked(blocks, n_rows, n_cols, dtype):
    """Zero matrix ``(n_rows, pad8(n_cols))`` of ``dtype`` holding each ``blocks[(r, c)]`` from row r, column c.

    The kernels' matrix products take their right factor with a multiple of
    8 columns (one vector).
    """
    w = np.zeros((n_rows, -(-n_cols // 8) * 8), dtype)
    for (r, c), block in blocks.items():
        block = np.atleast_2d(block)
        w[r:r + block.shape[0], c:c + block.shape[1]] = block
    return w


def _forward_weights(params, dtype):
    """``[[Wrec', Wout'], [Win', 0], [b, 0]]``: one product per step gives F2 and F3."""
    n, n_in, n_out = params.shape
    return _stacked({(0, 0): params.Wrec.T, (0, n): params.Wout.T, (n, 0): params.Win.T,
                     (n + n_in, 0): params.b}, n + n_in + 1, n + n_out, dtype)


def _rop_weights(params, dv, dtype):
    """``[[Wrec', Wout'], [V_rec', V_out'], [V_in', 0], [v_b, 0]]``: G2 and G3 in one product."""
    n, n_in, n_out = params.shape
    return _stacked({(0, 0): params.Wrec.T, (0, n): params.Wout.T, (n, 0): dv.Wrec.T, (n, n): dv.Wout.T,
                     (2 * n, 0): dv.Win.T, (2 * n + n_in, 0): dv.b}, 2 * n + n_in + 1, n + n_out, dtype)


def _backward_weights(params, dtype):
    """``[[Wrec], [Wout]]``: B2's ``alpha Wrec' g + Wout' e`` in one product."""
    n, _, n_out = params.shape
    return _stacked({(0, 0): params.Wrec, (n, 0): params.Wout}, n + n_out, n, dtype)


def _offsets(layout):
    """Flat offsets of Wrec, Win, b and Wout (int64), for the kernels' gradient flattening."""
    return np.array([layout[name].offset for name in _KERNEL_BLOCKS], dtype=np.int64)


# The kernels compute the blocks Wrec, Win, b and Wout, the first Pk entries of
# the flat vector; Wenc, the last block (encoded initial state only), is
# formed here from the adjoints g_0 of x_0 that the kernels return.
_KERNEL_BLOCKS = ("Wrec", "Win", "b", "Wout")
_READOUT_CODES = {"xy": 0, "place-cells": 1}


def _readout_code(spec):
    """Integer code of the readout for the kernels (0: "xy", 1: "place-cells")."""
    return _READOUT_CODES[spec.readout]


def _kernel_size(layout):
    """Pk, the length of the blocks the kernels compute (all but Wenc, which comes last)."""
    assert layout.names[:len(_KERNEL_BLOCKS)] == _KERNEL_BLOCKS
    return layout["Wout"].stop


def _initial_states(params, batch, dtype):
    """x_0 (M, N) of every trial in ``dtype``: 0, or ``Wenc c`` under the encoded initial state (eq. F0)."""
    if params.n_code:
        return _kernel_array(encoded_state(params, batch.start_codes), dtype)
    return np.zeros((batch.n_trials, params.n_units), dtype)


def _with_wenc(head, gx0, codes, reg_wenc, sq=None):
    """Append the Wenc block to the kernels' (Pk,) result.

    ``head`` is the gradient or GN product of the first four blocks, ``gx0``
    (M, N) the adjoints of x_0, ``codes`` (M, Nc) the start codes and
    ``reg_wenc`` (N Nc,) the regulariser's share on Wenc (its gradient, or its
    Hessian times v). The block is ``sum_m gx0_m c_m'`` (eq. P5). With ``sq``
    (Pk,), the per-trial squares of the kernels, also return those of the block:
    ``mean_m (M gx0_m c_m' + r)**2 = M (gx0**2)' c**2 + 2 r sum_m gx0_m c_m' + r**2``,
    exactly, without an (M, N, Nc) array.
    """
    block = (gx0.T @ codes).ravel()
    out = np.concatenate([head, block + reg_wenc])
    if sq is None:
        return out
    sq_block = gx0.shape[0] * ((gx0 * gx0).T @ (codes * codes)).ravel() + 2.0 * reg_wenc * block + reg_wenc ** 2
    return out, np.concatenate([sq, sq_block])


class NumbaBackend(Backend):
    """Forward pass, loss, gradient and GN product compiled by Numba, parallel over trials.

    Parameters
    ----------
    threads : int or None
        Numba threads, 1 to ``numba.config.NUMBA_NUM_THREADS`` (None: all of
        them). The trials are split into this many contiguous blocks; results
        are bit-identical for a given thread count.
    dtype : {"float64", "float32"}
        Element type of the kernels' arrays.

    Notes
    -----
    Each Python thread that calls :meth:`gradient` or :meth:`gn_product` keeps
    an (M, T, N) scratch array for each (200 MB each at the paper's size)
    until its next call with other sizes, or its end.
    """

    name = "numba"

    def __init__(self, threads=None, dtype="float64"):
        self.threads = _check_threads(threads)
        self.dtype = check_dtype(dtype)

    def _blocks(self, n_trials):
        """Blocks of trials (= threads) of a call: no more than there are trials. Empty blocks
        would only add zeros, so this changes no bits."""
        return min(self.threads, n_trials)

    def _launch(self, kernel, *args):
        """Run ``kernel`` on as many Numba threads as it has blocks of trials (its last argument)."""
        previous = numba.get_num_threads()  # thread-local in Numba: safe from a thread pool
        numba.set_num_threads(args[-1])
        try:
            if _serial_launches():
                with _LAUNCH_LOCK:
                    return kernel(*args)
            return kernel(*args)
        finally:
            numba.set_num_threads(previous)

    def _run(self, params, inputs, noise, x0, spec, keep_u):
        m, t_steps, _ = inputs.shape
        n, _, n_out = params.shape
        dt = self.dtype
        u = np.empty((m, t_steps, n), dt) if keep_u else _EMPTY.astype(dt)
        y = np.empty((m, t_steps, n_out), dt)
        x_end = np.empty((m, n), dt)
        x0 = np.zeros((m, n), dt) if x0 is None else _kernel_array(x0, dt)
        self._launch(nk.forward_kernel, _forward_weights(params, dt), _kernel_array(inputs, dt),
                     *_noise_args(noise, dt), x0, spec.alpha, spec.phi_code, keep_u, u, y, x_end,
                     self._blocks(m))
        return None, (u if keep_u else None), y, x_end

    def _loss(self, params, batch, reg, spec):
        dt = self.dtype
        inputs, targets, noise, _ = batch.arrays(dt)
        sums = self._launch(nk.loss_kernel, _forward_weights(params, dt), _kernel_array(inputs, dt),
                            *_noise_args(noise, dt), _initial_states(params, batch, dt),
                            _kernel_array(targets, dt), spec.alpha, spec.phi_code, _readout_code(spec),
                            self._blocks(batch.n_trials))
        return objective.terms_from_sums(params, reg, sums[0], sums[1], batch.n_trials, batch.n_steps,
                                         spec.readout)

    def _gradient(self, params, batch, reg, spec, sq_grad):
        m, t_steps = batch.n_trials, batch.n_steps
        n, _, n_out = params.shape
        dt = self.dtype
        inputs, targets, noise, _ = batch.arrays(dt)
        pk = _kernel_size(params.layout)
        u = _scratch("u", (m, t_steps, n), dt)
        gx0 = np.empty((m, n), dt)
        reg_grad = objective.l2_hessian_diag(params.layout, reg) * params.flat   # quadratic regularisers
        sums, grad, sq = self._launch(
            nk.gradient_kernel, _forward_weights(params, dt), _backward_weights(params, dt),
            _kernel_array(inputs, dt), *_noise_args(noise, dt), _initial_states(params, batch, dt),
            _kernel_array(targets, dt), spec.alpha, spec.phi_code, _readout_code(spec),
            objective.error_scale(m, t_steps, n_out, spec.readout),
            objective.rate_scale(n, m, t_steps, reg.lam_fr), reg_grad[:pk], sq_grad, u, gx0,
            _offsets(params.layout), self._blocks(m))
        if params.n_code:
            if sq_grad:
                grad, sq = _with_wenc(grad, gx0, batch.start_codes, reg_grad[pk:], sq)
            else:
                grad = _with_wenc(grad, gx0, batch.start_codes, reg_grad[pk:])
        terms = objective.terms_from_sums(params, reg, sums[0], sums[1], m, t_steps, spec.readout)
        return terms, grad, (sq if sq_grad else None)

    def _gn_product(self, params, batch, u, y, v, reg, mu, spec):
        dv = params.with_flat(v)
        m, t_steps = batch.n_trials, batch.n_steps
        n, _, n_out = params.shape
        dt = self.dtype
        pk = _kernel_size(params.layout)
        reg_v = objective.l2_hessian_diag(params.layout, reg) * dv.flat
        dx0 = (_kernel_array(encoded_state(dv, batch.start_codes), dt) if params.n_code
               else np.zeros((m, n), dt))                                               # eq. P6
        gx0 = np.empty((m, n), dt)
        gv = self._launch(
            nk.gn_kernel, _rop_weights(params, dv, dt), _backward_weights(params, dt), _kernel_array(u, dt),
            _EMPTY.astype(dt) if y is None else _kernel_array(y, dt), _kernel_array(batch.arrays(dt)[0], dt),
            dx0, spec.alpha, spec.phi_code, _readout_code(spec),
            objective.error_scale(m, t_steps, n_out, spec.readout),
            objective.rate_scale(n, m, t_steps, reg.lam_fr + mu), reg_v[:pk],
            _scratch("du", (m, t_steps, n), dt), _scratch("e", (m, t_steps, n_out), dt), gx0,
            _offsets(params.layout), self._blocks(m))
        return _with_wenc(gv, gx0, batch.start_codes, reg_v[pk:]) if params.n_code else gv

    def info(self):
        """How this backend runs, for ``python -m gridcore info`` and bug reports.

        Returns
        -------
        dict with ``backend`` ("numba"), ``threads`` (this backend's), ``dtype``,
        ``max_threads`` (NUMBA_NUM_THREADS), ``threading_layer``, ``cache_dir``
        (where the compiled kernels are cached), ``cpu_target`` (the CPU the
        kernels are compiled for), ``blas`` and ``numba_version``.
        """
        return {
            "backend": self.name,
            "threads": self.threads,
            "dtype": self.dtype.name,
            "max_threads": numba.config.NUMBA_NUM_THREADS,
            "threading_layer": _threading_layer(),
            "cache_dir": nk.forward_kernel._cache._cache_path,  # private attribute: where cache=True writes
            "cpu_target": numba.config.CPU_NAME or llvm.get_host_cpu_name(),
            "blas": "none: built-in tiled matrix kernels, vectorised by LLVM",
            "numba_version": numba.__version__,
        }


def _serial_launches():
    """True when parallel launches from several Python threads must take turns.

    Numba's "workqueue" layer aborts the process on concurrent launches;
    "omp" and "tbb" are thread-safe. Before Numba starts its threads the
    layer is unknown, so the first launches take turns too.
    """
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:
        return True
