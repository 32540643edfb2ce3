"""The NumPy reference: forward pass, loss, BPTT gradient and Gauss-Newton product.

Written for clarity; every fast backend is tested against it. Each kernel
implements the equation of the same name in ``docs/math.md``:

- :func:`forward`      -- math.md section 1, the Euler forward pass (eq. F0-F3)
- :func:`loss`         -- math.md section 2 (eq. L1-L4) and section 7 (eq. P1, P4)
- :func:`gradient`     -- math.md section 3, back-propagation through time (eq. B1-B7)
- :func:`gn_product`   -- math.md section 4, R-op forward pass then BPTT (eq. G1-G5)
- :func:`forward_stream` -- the forward pass in chunks of time, for long paths

The module-level functions are the methods of one :class:`ReferenceBackend`
(the public wrappers and their checks are in :mod:`gridcore.backends.base`).
Shapes: M trials, T time steps, N units, Nin inputs, Nout outputs, Nc
place-cell code of the encoded initial state; all float64.
"""

import numpy as np

from gridcore.backends.base import Backend
from gridcore.model import objective
from gridcore.model.batch import encoded_state
from gridcore.model.noise import CounterNoise
from gridcore.model.nonlinearity import dphi, phi
from gridcore.util.checks import check_dtype, check_threads


def _tm(a):
    """Swap the trial and time axes: (M, T, K) <-> (T, M, K), a view."""
    return a.transpose(1, 0, 2)


def _apply(a, w):
    """``w`` applied to every vector of ``a``: (A, B, K), (J, K) -> (A, B, J).

    One 2-D matrix product: NumPy's stacked matmul is slow for small K.
    """
    return (a.reshape(-1, a.shape[2]) @ w.T).reshape(a.shape[0], a.shape[1], w.shape[0])


def _sum_outer(a, b):
    """``sum_{t,m} a[t,m] b[t,m]'``: (T,M,I), (T,M,J) -> (I,J), as one matrix product."""
    return a.reshape(-1, a.shape[2]).T @ b.reshape(-1, b.shape[2])


class ReferenceBackend(Backend):
    """The NumPy reference as a backend object.

    ``threads`` caps BLAS only inside :func:`gridcore.backends.blas_limits`
    (training); elsewhere NumPy's BLAS picks its own thread count
    (``OPENBLAS_NUM_THREADS``).
    """

    name = "numpy"
    stream_chunks = True
    contiguous_state = False

    def __init__(self, threads=None, dtype="float64"):
        if check_dtype(dtype) != np.float64:
            raise ValueError(f"dtype must be 'float64' for the NumPy reference (it is the float64 "
                             f"yardstick of the other cores), got {dtype!r}; dtype='float32' "
                             f"is for the 'c' and 'numba' backends")
        self.threads = None if threads is None else check_threads(threads)

    def _run(self, params, inputs, noise, x0, spec, keep_u=True):
        """Euler forward pass (eq. F1-F3) on checked arguments; returns ``(x, u, y, x_end)``, (M, T, .)."""
        m, t_steps, _ = inputs.shape
        n = params.n_units
        alpha = spec.alpha
        # States are stored time-major (T, M, N) so each step reads and writes
        # contiguous blocks; the (M, T, N) arrays returned are transposed views.
        x = np.empty((t_steps, m, n))
        u = np.empty((t_steps, m, n))
        xt = np.zeros((m, n)) if x0 is None else x0.copy()
        for t in range(t_steps):
            x[t] = xt
            u[t] = phi(xt, spec.nonlinearity)
            drive = u[t] @ params.Wrec.T + inputs[:, t] @ params.Win.T + params.b
            if isinstance(noise, CounterNoise):
                drive += noise.step(m, t, n)
            elif noise is not None:
                drive += noise[:, t]
            xt = (1 - alpha) * xt + alpha * drive
        return _tm(x), _tm(u), _tm(_apply(u, params.Wout)), xt

    def _loss(self, params, batch, reg, spec):
        _, u, y, _ = self._run(params, batch.inputs, batch.noise, _x0(params, batch), spec)
        return self._terms(params, reg, y, u, batch, spec)

    @staticmethod
    def _terms(params, reg, y, u, batch, spec):
        return objective.terms_from_sums(params, reg, objective.error_sum(spec.readout, y, batch.targets),
                                         np.sum(u ** 2), batch.n_trials, batch.n_steps, spec.readout)

    @staticmethod
    def _backward(params, u, ey, eu, spec):
        """BPTT of the (linearised) network (math.md eq. B2-B3), time-major.

        ``u`` (T, M, N) are the rates; ``ey`` (T, M, Nout) and ``eu`` (T, M, N)
        the derivatives of the objective with respect to ``y_t`` and, directly,
        to ``u_t``. Returns the adjoints ``gx`` (T, M, N) of ``x_t``.
        """
        t_steps, m, n = u.shape
        alpha = spec.alpha
        gu = _apply(ey, params.Wout.T) + eu               # direct paths y_t <- u_t and R(u_t)
        gx = np.empty_like(u)
        gnext = np.zeros((m, n))                          # gx_T = 0: x_T is not used
        for t in range(t_steps - 1, -1, -1):
            g = gu[t] + alpha * (gnext @ params.Wrec)     # u_t -> x_{t+1} through Wrec
            gnext = dphi(u[t], spec.nonlinearity) * g + (1 - alpha) * gnext
            gx[t] = gnext
        return gx

    @staticmethod
    def _weight_grads(params, batch, u, ey, gx, spec):
        """Gradients of the weights from the time-major adjoints (math.md eq. B4-B6, P5),
        summed over trials. Flat, without the L2 and R_rec terms."""
        alpha = spec.alpha
        inputs = _tm(batch.inputs)
        gnext = gx[1:]                                    # gx_{t+1} pairs with u_t, I_t for t < T-1
        blocks = {"Wrec": alpha * _sum_outer(gnext, u[:-1]),
                  "Win": alpha * _sum_outer(gnext, inputs[:-1]),
                  "b": alpha * gnext.sum(axis=(0, 1)),
                  "Wout": _sum_outer(ey, u)}
        if params.n_code:                                 # x_0 = Wenc c: gx_0 pairs with c (eq. P5)
            blocks["Wenc"] = gx[0].T @ batch.start_codes
        return params.layout.pack(blocks)

    @staticmethod
    def _per_trial_sq(params, batch, u, ey, gx, spec, l2_grad):
        """Mean over trials of the squared per-trial gradients (math.md eq. B7)."""
        m = u.shape[1]
        alpha = spec.alpha
        inputs = _tm(batch.inputs)
        gnext = gx[1:]
        blocks = {"Wrec": alpha * np.einsum("tmi,tmj->mij", gnext, u[:-1], optimize=True),
                  "Win": alpha * np.einsum("tmi,tmk->mik", gnext, inputs[:-1], optimize=True),
                  "b": alpha * gnext.sum(axis=0),
                  "Wout": np.einsum("tmo,tmi->moi", ey, u, optimize=True)}
        if params.n_code:
            blocks["Wenc"] = np.einsum("mi,mk->mik", gx[0], batch.start_codes)
        per_trial = np.concatenate([blocks[name].reshape(m, -1) for name in params.layout.names], axis=1)
        per_trial *= m                                    # gradient of the trial's own loss L_m
        per_trial += l2_grad
        return np.mean(per_trial ** 2, axis=0)

    def _gradient(self, params, batch, reg, spec, sq_grad):
        _, u_mt, y, _ = self._run(params, batch.inputs, batch.noise, _x0(params, batch), spec)
        m, t_steps, n = u_mt.shape
        u = _tm(u_mt)
        c_y = objective.error_scale(m, t_steps, params.n_out, spec.readout)
        if spec.readout == "xy":
            ey = c_y * _tm(y - batch.targets)                                       # eq. B1
        else:
            ey = c_y * _tm(objective.softmax(y) - batch.targets)                    # eq. P2
        eu = objective.rate_scale(n, m, t_steps, reg.lam_fr) * u
        gx = self._backward(params, u, ey, eu, spec)
        l2_grad = objective.l2_hessian_diag(params.layout, reg) * params.flat        # quadratic terms
        grad = self._weight_grads(params, batch, u, ey, gx, spec) + l2_grad
        terms = self._terms(params, reg, y, u_mt, batch, spec)
        sq = self._per_trial_sq(params, batch, u, ey, gx, spec, l2_grad) if sq_grad else None
        return terms, grad, sq

    def _gn_product(self, params, batch, u, y, v, reg, mu, spec):
        u = _tm(u)
        dv = params.with_flat(v)
        t_steps, m, n = u.shape
        alpha = spec.alpha
        inputs = _tm(batch.inputs)
        # R-op forward pass (eq. G1-G3): tangents du_t, dy_t of u_t, y_t along v.
        du = np.empty_like(u)
        # dx_0 = 0 when x_0 = 0; dWenc c under the encoded initial state (eq. P6)
        dx = np.zeros((m, n)) if params.n_code == 0 else encoded_state(dv, batch.start_codes)
        for t in range(t_steps):
            du[t] = dphi(u[t], spec.nonlinearity) * dx
            drive = du[t] @ params.Wrec.T + u[t] @ dv.Wrec.T + inputs[t] @ dv.Win.T + dv.b
            dx = (1 - alpha) * dx + alpha * drive
        dy = _apply(u, dv.Wout) + _apply(du, params.Wout)
        # Multiply by H (eq. G4, P3), then J' by BPTT of the same network (eq. G5).
        c_y = objective.error_scale(m, t_steps, params.n_out, spec.readout)
        if spec.readout == "xy":
            ey = c_y * dy
        else:
            p = _tm(objective.softmax(y))
            ey = c_y * p * (dy - np.sum(p * dy, axis=2, keepdims=True))           # (diag p - p p') dy
        eu = objective.rate_scale(n, m, t_steps, reg.lam_fr + mu) * du
        gx = self._backward(params, u, ey, eu, spec)
        return (self._weight_grads(params, batch, u, ey, gx, spec)
                + objective.l2_hessian_diag(params.layout, reg) * dv.flat)


def _x0(params, batch):
    """The batch's initial states: None (x_0 = 0) or ``Wenc c`` under the encoded initial state."""
    return None if params.n_code == 0 else encoded_state(params, batch.start_codes)


_REFERENCE = ReferenceBackend()
name = ReferenceBackend.name
forward = _REFERENCE.forward
forward_stream = _REFERENCE.forward_stream
loss = _REFERENCE.loss
gradient = _REFERENCE.gradient
gn_product = _REFERENCE.gn_product
