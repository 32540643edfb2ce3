"""What every backend shares: argument checks, the forward and streaming wrappers,
loss terms. A backend subclasses :class:`Backend` and implements four private
kernels on checked, C-contiguous float64 arrays (a float32 core casts them,
and reads states of its own dtype):

- ``_run(params, inputs, noise, x0, spec, keep_u)`` -> ``(x or None, u or None, y, x_end)``
- ``_loss(params, batch, reg, spec)`` -> dict of loss terms
- ``_gradient(params, batch, reg, spec, sq_grad)`` -> ``(terms, grad, sq or None)``
- ``_gn_product(params, batch, u, y, v, reg, mu, spec)`` -> ``G v`` (``y`` only
  under the place-cell readout, else None)

An encoded initial state reaches ``_run`` as ``x0`` (the wrappers form
``Wenc c``); the other kernels read ``batch.start_codes`` themselves.

Shapes: M trials, T time steps, N units, Nin inputs, Nout outputs; P parameters.
"""

import numpy as np

from gridcore.model.batch import (
    ForwardState,
    StreamResult,
    check_forward_args,
    check_gn_args,
    check_problem,
    noise_slice,
)
from gridcore.model.spec import PAPER
from gridcore.util.checks import check_positive_int


class Backend:
    """Base class of the compute backends: public methods with the checks, private kernels.

    Attributes
    ----------
    name : str
    threads : int or None
    dtype : np.dtype
        float64, or float32 for a C or Numba core asked for it: the element
        type the kernels compute in, and of the forward states they return
        (``u``, ``y``, ``x_end``). Parameters, ``v``, gradients and ``G v``
        are float64 whatever it is (the core casts at its boundary).
    contiguous_state : bool
        True if ``state.u`` is copied to C order when it is not (the compiled cores).
    stream_chunks : bool
        True if :meth:`forward_stream` must split long paths into chunks of
        ``chunk_steps`` (the reference stores every state of a call); the fast
        cores hold O(M N) scratch whatever T and run the path in one call.
    """

    name = None
    dtype = np.dtype(np.float64)
    stream_chunks = False
    contiguous_state = True  # the kernels read state.u as one C-contiguous block

    def forward(self, params, inputs, noise=None, x0=None, spec=PAPER, start_codes=None):
        """Run the network (math.md eq. F1-F3).

        Parameters
        ----------
        params : Params
        inputs : (M, T, Nin) array; ``inputs[:, t]`` drives the step ``x_t -> x_{t+1}``
        noise : (M, T, N) array, CounterNoise or None; ``xi_t``, added inside the
            step like the bias (a CounterNoise is evaluated in the kernels, math.md section 8)
        x0 : (M, N) array or None; initial activations (default: the spec's
            initial state, 0 or ``Wenc c``)
        spec : ModelSpec
        start_codes : (M, Nc) array or None; the place-cell codes ``c`` of the
            start positions, required by the ``"encoded"`` initial state unless ``x0`` is given

        Returns
        -------
        ForwardState with ``u`` (M, T, N), ``y`` (M, T, Nout), ``x_end`` (M, N)
        (of the backend's ``dtype``) and ``x`` (M, T, N) from the reference,
        None from the fast cores.
        """
        inputs, noise, x0, spec = check_forward_args(params, inputs, noise, x0, spec, start_codes)
        x, u, y, x_end = self._run(params, inputs, noise, x0, spec, True)
        return ForwardState(x=x, u=u, y=y, x_end=x_end)

    def forward_stream(self, params, inputs, noise=None, x0=None, spec=PAPER, keep_u=False,
                       chunk_steps=4096, start_codes=None):
        """Forward pass for long paths, with scratch memory bounded whatever T.

        Parameters
        ----------
        params, inputs, noise, x0, spec, start_codes : as for :meth:`forward`
        keep_u : bool; also return the rates ``u`` (M, T, N)
        chunk_steps : int >= 1; time steps per call when the backend stores
            states (the reference); the fast cores run the path in one call.

        Returns
        -------
        StreamResult with ``y`` (M, T, Nout), ``u`` (M, T, N) or None, ``x_end`` (M, N).
        """
        inputs, noise, x0, spec = check_forward_args(params, inputs, noise, x0, spec, start_codes)
        chunk_steps = check_positive_int("chunk_steps", chunk_steps)
        keep_u = bool(keep_u)
        t_steps = inputs.shape[1]
        if not self.stream_chunks or chunk_steps >= t_steps:
            _, u, y, x_end = self._run(params, inputs, noise, x0, spec, keep_u)
            return StreamResult(y=y, u=u if keep_u else None, x_end=x_end)
        ys, us = [], []
        for lo in range(0, t_steps, chunk_steps):
            hi = min(lo + chunk_steps, t_steps)
            _, u, y, x0 = self._run(params, inputs[:, lo:hi], noise_slice(noise, lo, hi),
                                 x0, spec, keep_u)
            ys.append(y)
            us.append(u)
        return StreamResult(y=np.concatenate(ys, axis=1), u=np.concatenate(us, axis=1) if keep_u else None,
                            x_end=x0)

    def loss(self, params, batch, reg, spec=PAPER):
        """Loss terms on a batch: dict with ``E``, ``R_L2``, ``R_FR``, ``R_rec`` and ``loss`` (math.md eq. L1-L4)."""
        spec = check_problem(params, batch, reg, spec)
        return self._loss(params, batch, reg, spec)

    def gradient(self, params, batch, reg, spec=PAPER, sq_grad=False):
        """Loss terms and the gradient of ``loss`` by hand-written BPTT (math.md section 3).

        Returns
        -------
        terms : dict with ``E``, ``R_L2``, ``R_FR``, ``R_rec``, ``loss``
        grad : (P,) float64, in ``Params.flat`` order
        sq : (P,) float64, only if ``sq_grad``: ``mean_m (dL_m/dtheta)**2`` over the
            per-trial losses ``L_m`` (``loss = mean_m L_m``), for HF's diagonal
            preconditioner (math.md eq. B7).
        """
        spec = check_problem(params, batch, reg, spec)
        terms, grad, sq = self._gradient(params, batch, reg, spec, bool(sq_grad))
        return (terms, grad, sq) if sq_grad else (terms, grad)

    def gn_product(self, params, batch, state, v, reg, mu=0.0, spec=PAPER):
        """Gauss-Newton matrix times a vector, ``G v`` (math.md section 4).

        ``G = J_y' H_y J_y + J_u' H_u J_u + Hess(lam_l2 R_L2 + lam_rec R_rec)``
        with ``H_u = 2 (lam_fr + mu)/(N T M) I`` and ``H_y = 2/(M T Nout) I``
        (x, y readout) or ``(diag p - p p')/(M T)`` per step, ``p = softmax(y)``
        (place-cell readout); ``mu`` is the structural damping weight (HF
        passes ``mu_sd * lambda``).

        Parameters
        ----------
        params : Params
        batch : Batch
        state : ForwardState of ``batch`` under ``params`` from a backend of
            this one's dtype (``u`` (M, T, N) is used, and ``y`` (M, T, Nout)
            under the place-cell readout)
        v : (P,) vector in ``Params.flat`` order
        reg : Regularization
        mu : float >= 0
        spec : ModelSpec

        Returns
        -------
        (P,) float64
        """
        spec, u, y, v, mu = check_gn_args(params, batch, state, v, reg, mu, spec,
                                          contiguous=self.contiguous_state, dtype=self.dtype)
        return self._gn_product(params, batch, u, y, v, reg, mu, spec)

    def __repr__(self):
        return f"{type(self).__name__}(threads={self.threads}, dtype={self.dtype.name!r})"
