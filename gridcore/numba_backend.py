"""The Numba backend: public wrappers that validate, coerce and launch :mod:`gridcore.numba_kernels`.

Every method has the signature of the function of the same name in
:mod:`gridcore.reference` and raises the same errors (it uses the same
validators). The wrappers hand the kernels float64 C-contiguous writeable
arrays, Python floats, bools and ints only, so each kernel is compiled once,
and cached on disk (``cache=True``) for later processes.

Threads: ``NumbaBackend(threads=k)`` splits the trials into k blocks run by k
Numba threads; results are bit-identical for a fixed k. The kernels do their
own matrix products (no BLAS), so no library's thread pool competes with them.
"""

import numbers
import threading

import numba
import numpy as np
from llvmlite import binding as llvm
from numba.np.ufunc import parallel as _numba_parallel

from . import numba_kernels as nk
from ._validate import check_positive_int
from .model import (ALPHA, ForwardState, Params, StreamResult, check_forward_args,
                    check_gn_args, check_problem)

_EMPTY = np.empty((0, 0, 0))  # stands for a missing (M, T, N) array: keeps one kernel signature
_LAUNCH_LOCK = threading.Lock()
_SCRATCH = threading.local()


def _scratch(name, shape):
    """A float64 array of ``shape`` owned by the calling thread, reused by its later calls.

    The (M, T, N) scratch of the gradient and GN product is written in full by
    every call; reusing it saves the kernel from faulting in and zeroing fresh
    pages (a paper-size gradient on 2 threads went from 0.22 to 0.19 s). Like the C
    core's workspaces, it is kept per Python thread, so concurrent calls from
    a thread pool never share it, and freed with the thread.
    """
    arrays = _SCRATCH.__dict__.setdefault("arrays", {})
    if name not in arrays or arrays[name].shape != shape:
        arrays[name] = None  # release the old array before allocating the new one
        arrays[name] = np.empty(shape)
    return arrays[name]


def _threading_layer():
    """Numba's threading layer ("omp", "tbb" or "workqueue"), starting Numba's threads if needed."""
    _numba_parallel._launch_threads()  # private, but the only way to learn the layer without compiling
    return numba.threading_layer()


def _check_threads(threads):
    """Thread count as int: None means all Numba threads; 0 or more than Numba has is refused."""
    limit = numba.config.NUMBA_NUM_THREADS
    if threads is None:
        return limit
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or not 1 <= threads <= limit:
        raise ValueError(f"threads must be an integer from 1 to {limit} (NUMBA_NUM_THREADS, by default "
                         f"the number of CPU cores; set that variable before starting Python to allow "
                         f"more), got {threads!r}")
    return int(threads)


def _kernel_array(a):
    """``a`` as the kernels' single array type: a writeable, aligned array (validators made it float64, C)."""
    return a if a.flags.writeable and a.flags.aligned else a.copy()


def _noise_args(noise):
    return (_EMPTY, False) if noise is None else (_kernel_array(noise), True)


def _stacked(blocks, n_rows, n_cols):
    """Zero matrix ``(n_rows, pad8(n_cols))`` holding each ``blocks[(r, c)]`` from row r, column c.

    The kernels' matrix products take their right factor with a multiple of
    8 columns (one vector of doubles).
    """
    w = np.zeros((n_rows, -(-n_cols // 8) * 8))
    for (r, c), block in blocks.items():
        block = np.atleast_2d(block)
        w[r:r + block.shape[0], c:c + block.shape[1]] = block
    return w


def _forward_weights(params):
    """``[[Wrec', Wout'], [Win', 0], [b, 0]]``: one product per step gives F2 and F3."""
    n, n_in, n_out = params.shape
    return _stacked({(0, 0): params.Wrec.T, (0, n): params.Wout.T, (n, 0): params.Win.T,
                     (n + n_in, 0): params.b}, n + n_in + 1, n + n_out)


def _rop_weights(params, dv):
    """``[[Wrec', Wout'], [V_rec', V_out'], [V_in', 0], [v_b, 0]]``: G2 and G3 in one product."""
    n, n_in, n_out = params.shape
    return _stacked({(0, 0): params.Wrec.T, (0, n): params.Wout.T, (n, 0): dv.Wrec.T, (n, n): dv.Wout.T,
                     (2 * n, 0): dv.Win.T, (2 * n + n_in, 0): dv.b}, 2 * n + n_in + 1, n + n_out)


def _backward_weights(params):
    """``[[Wrec], [Wout]]``: B2's ``alpha Wrec' g + Wout' e`` in one product."""
    n, _, n_out = params.shape
    return _stacked({(0, 0): params.Wrec, (n, 0): params.Wout}, n + n_out, n)


def _l2_hessian_diag(params, reg):
    """Diagonal of the Hessian of ``lam_l2 * R_L2`` in flat order (L2); times theta it is the gradient."""
    n, n_in, n_out = params.shape
    return np.concatenate([np.zeros(n * n), np.full(n * n_in, 2 * reg.lam_l2 / (n * n_in)),
                           np.zeros(n), np.full(n_out * n, 2 * reg.lam_l2 / (n * n_out))])


def _terms(params, reg, sums, n_trials, n_steps):
    """Loss terms (L1-L4) from the kernels' ``[sum (y - y*)**2, sum u**2]``."""
    n, n_in, n_out = params.shape
    terms = {
        "E": float(sums[0]) / (n_trials * n_steps * n_out),
        "R_L2": float(np.sum(params.Win ** 2) / (n * n_in) + np.sum(params.Wout ** 2) / (n * n_out)),
        "R_FR": float(sums[1]) / (n_trials * n_steps * n),
    }
    terms["loss"] = terms["E"] + reg.lam_l2 * terms["R_L2"] + reg.lam_fr * terms["R_FR"]
    return terms


class NumbaBackend:
    """Forward pass, loss, gradient and GN product compiled by Numba, parallel over trials.

    Parameters
    ----------
    threads : int or None
        Numba threads, 1 to ``numba.config.NUMBA_NUM_THREADS`` (None: all of
        them). The trials are split into this many contiguous blocks; results
        are bit-identical for a given thread count.

    Notes
    -----
    Each Python thread that calls :meth:`gradient` or :meth:`gn_product` keeps
    an (M, T, N) scratch array for each (200 MB each at the paper's size)
    until its next call with other sizes, or its end.
    """

    name = "numba"

    def __init__(self, threads=None):
        self.threads = _check_threads(threads)

    def __repr__(self):
        return f"NumbaBackend(threads={self.threads})"

    def _launch(self, kernel, *args):
        """Run ``kernel`` on ``self.threads`` Numba threads."""
        previous = numba.get_num_threads()  # thread-local in Numba: safe from a thread pool
        numba.set_num_threads(self.threads)
        try:
            if _serial_launches():
                with _LAUNCH_LOCK:
                    return kernel(*args)
            return kernel(*args)
        finally:
            numba.set_num_threads(previous)

    def _forward(self, params, inputs, noise, x0, alpha, keep_u):
        m, t_steps, _ = inputs.shape
        n, _, n_out = params.shape
        u = np.empty((m, t_steps, n)) if keep_u else _EMPTY
        y = np.empty((m, t_steps, n_out))
        x_end = np.empty((m, n))
        x0 = np.zeros((m, n)) if x0 is None else _kernel_array(x0)
        self._launch(nk.forward_kernel, _forward_weights(params), _kernel_array(inputs), *_noise_args(noise),
                     x0, alpha, keep_u, u, y, x_end, self.threads)
        return u, y, x_end

    def forward(self, params, inputs, noise=None, x0=None, alpha=ALPHA):
        """Run the network (math.md eq. F1-F3); see :func:`gridcore.reference.forward`.

        Returns
        -------
        ForwardState with ``u`` (M, T, N), ``y`` (M, T, Nout), ``x_end`` (M, N)
        and ``x = None`` (nothing downstream needs the activations).
        """
        inputs, noise, x0, alpha = check_forward_args(params, inputs, noise, x0, alpha)
        u, y, x_end = self._forward(params, inputs, noise, x0, alpha, True)
        return ForwardState(x=None, u=u, y=y, x_end=x_end)

    def forward_stream(self, params, inputs, noise=None, x0=None, alpha=ALPHA, keep_u=False,
                       chunk_steps=4096):
        """Forward pass for long paths; see :func:`gridcore.reference.forward_stream`.

        The kernel holds one time step of state per trial, so the scratch
        memory is bounded without chunking: ``chunk_steps`` is validated for a
        common interface and otherwise unused.

        Returns
        -------
        StreamResult with ``y`` (M, T, Nout), ``u`` (M, T, N) or None, ``x_end`` (M, N).
        """
        inputs, noise, x0, alpha = check_forward_args(params, inputs, noise, x0, alpha)
        check_positive_int("chunk_steps", chunk_steps)
        keep_u = bool(keep_u)
        u, y, x_end = self._forward(params, inputs, noise, x0, alpha, keep_u)
        return StreamResult(y=y, u=u if keep_u else None, x_end=x_end)

    def loss(self, params, batch, reg, alpha=ALPHA):
        """Loss terms ``E``, ``R_L2``, ``R_FR``, ``loss`` (math.md eq. L1-L4), equal bit for bit
        to those :meth:`gradient` returns with the same thread count."""
        alpha = check_problem(params, batch, reg, alpha)
        sums = self._launch(nk.loss_kernel, _forward_weights(params), _kernel_array(batch.inputs),
                            *_noise_args(batch.noise), np.zeros((batch.n_trials, params.n_units)),
                            _kernel_array(batch.targets), alpha, self.threads)
        return _terms(params, reg, sums, batch.n_trials, batch.n_steps)

    def gradient(self, params, batch, reg, alpha=ALPHA, sq_grad=False):
        """Loss terms and gradient by BPTT (math.md eq. B1-B7); see :func:`gridcore.reference.gradient`.

        Returns
        -------
        terms : dict; grad : (P,); and, if ``sq_grad``, sq : (P,) the mean
        squared per-trial gradients (B7).
        """
        alpha = check_problem(params, batch, reg, alpha)
        m, t_steps = batch.n_trials, batch.n_steps
        n, _, n_out = params.shape
        sq_grad = bool(sq_grad)
        u = _scratch("u", (m, t_steps, n))
        sums, grad, sq = self._launch(
            nk.gradient_kernel, _forward_weights(params), _backward_weights(params),
            _kernel_array(batch.inputs), *_noise_args(batch.noise), _kernel_array(batch.targets), alpha,
            2.0 / (m * t_steps * n_out), 2.0 * reg.lam_fr / (n * t_steps * m),
            _l2_hessian_diag(params, reg) * params.flat, sq_grad, u, self.threads)
        terms = _terms(params, reg, sums, m, t_steps)
        return (terms, grad, sq) if sq_grad else (terms, grad)

    def gn_product(self, params, batch, state, v, reg, mu=0.0, alpha=ALPHA):
        """Gauss-Newton matrix times ``v`` with structural damping ``mu`` (math.md eq. G1-G5).

        See :func:`gridcore.reference.gn_product`; only ``state.u`` (M, T, N) is used.

        Returns
        -------
        (P,) float64
        """
        alpha, u, v, mu = check_gn_args(params, batch, state, v, reg, mu, alpha)
        dv = Params.from_flat(v, *params.shape)
        m, t_steps = batch.n_trials, batch.n_steps
        n, _, n_out = params.shape
        return self._launch(
            nk.gn_kernel, _rop_weights(params, dv), _backward_weights(params), _kernel_array(u),
            _kernel_array(batch.inputs), alpha, 2.0 / (m * t_steps * n_out),
            2.0 * (reg.lam_fr + mu) / (n * t_steps * m), _l2_hessian_diag(params, reg) * dv.flat,
            _scratch("du", (m, t_steps, n)), _scratch("e", (m, t_steps, n_out)), self.threads)

    def info(self):
        """How this backend runs, for ``python -m gridcore info`` and bug reports.

        Returns
        -------
        dict with ``backend`` ("numba"), ``threads`` (this backend's),
        ``max_threads`` (NUMBA_NUM_THREADS), ``threading_layer``, ``cache_dir``
        (where the compiled kernels are cached), ``cpu_target`` (the CPU the
        kernels are compiled for), ``blas`` and ``numba_version``.
        """
        return {
            "backend": self.name,
            "threads": self.threads,
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
