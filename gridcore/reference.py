"""The NumPy reference: forward pass, loss, BPTT gradient and Gauss-Newton product.

Written for clarity; every fast backend is tested against it. Each function
implements the equation of the same name in ``docs/math.md``:

- :func:`forward`      -- math.md section 1, the Euler forward pass (eq. F1-F3)
- :func:`loss`         -- math.md section 2 (eq. L1-L4)
- :func:`gradient`     -- math.md section 3, back-propagation through time (eq. B1-B7)
- :func:`gn_product`   -- math.md section 4, R-op forward pass then BPTT (eq. G1-G5)
- :func:`forward_stream` -- the forward pass in chunks of time, for long paths

Shapes: M trials, T time steps, N units, Nin inputs, Nout outputs; all float64.
"""

import numpy as np

from ._validate import check_positive_int
from .model import (ALPHA, ForwardState, Params, StreamResult, check_forward_args,
                    check_gn_args, check_problem)

name = "numpy"


def forward(params, inputs, noise=None, x0=None, alpha=ALPHA):
    """Run the network (math.md eq. F1-F3).

    Parameters
    ----------
    params : Params
    inputs : (M, T, Nin) array; ``inputs[:, t]`` drives the step ``x_t -> x_{t+1}``
    noise : (M, T, N) array or None; ``xi_t``, added inside the step like the bias
    x0 : (M, N) array or None; initial activations (default 0)
    alpha : float; ``dt / tau``

    Returns
    -------
    ForwardState with ``x``, ``u`` (M, T, N), ``y`` (M, T, Nout) and ``x_end`` (M, N).
    """
    return _forward(params, *check_forward_args(params, inputs, noise, x0, alpha))


def _forward(params, inputs, noise, x0, alpha):
    """:func:`forward` on arguments already checked."""
    m, t_steps, _ = inputs.shape
    n = params.n_units
    # States are stored time-major (T, M, N) so each step reads and writes
    # contiguous blocks; the (M, T, N) arrays returned are transposed views.
    x = np.empty((t_steps, m, n))
    u = np.empty((t_steps, m, n))
    xt = np.zeros((m, n)) if x0 is None else x0.copy()
    for t in range(t_steps):
        x[t] = xt
        u[t] = np.tanh(xt)
        drive = u[t] @ params.Wrec.T + inputs[:, t] @ params.Win.T + params.b
        if noise is not None:
            drive += noise[:, t]
        xt = (1 - alpha) * xt + alpha * drive
    return ForwardState(x=_tm(x), u=_tm(u), y=_tm(_apply(u, params.Wout)), x_end=xt)


def _tm(a):
    """Swap the trial and time axes: (M, T, K) <-> (T, M, K), a view."""
    return a.transpose(1, 0, 2)


def _apply(a, w):
    """``w`` applied to every vector of ``a``: (A, B, K), (J, K) -> (A, B, J).

    One 2-D matrix product: NumPy's stacked matmul is slow for small K.
    """
    return (a.reshape(-1, a.shape[2]) @ w.T).reshape(a.shape[0], a.shape[1], w.shape[0])


def _terms(params, y, u, targets, reg):
    """Loss terms from outputs and rates (math.md eq. L1-L4)."""
    n = params.n_units
    terms = {
        "E": np.mean((y - targets) ** 2),
        "R_L2": np.sum(params.Win ** 2) / (n * params.n_in) + np.sum(params.Wout ** 2) / (n * params.n_out),
        "R_FR": np.mean(u ** 2),
    }
    terms["loss"] = terms["E"] + reg.lam_l2 * terms["R_L2"] + reg.lam_fr * terms["R_FR"]
    return {k: float(v) for k, v in terms.items()}


def loss(params, batch, reg, alpha=ALPHA):
    """Loss terms on a batch: dict with ``E``, ``R_L2``, ``R_FR`` and ``loss`` (math.md eq. L1-L4)."""
    alpha = check_problem(params, batch, reg, alpha)
    state = _forward(params, batch.inputs, batch.noise, None, alpha)
    return _terms(params, state.y, state.u, batch.targets, reg)


def _backward(params, u, ey, eu, alpha):
    """BPTT of the (linearised) network (math.md eq. B2-B3), time-major.

    ``u`` (T, M, N) are the rates; ``ey`` (T, M, Nout) and ``eu`` (T, M, N)
    the derivatives of the objective with respect to ``y_t`` and, directly,
    to ``u_t``. Returns the adjoints ``gx`` (T, M, N) of ``x_t``.
    """
    t_steps, m, n = u.shape
    gu = _apply(ey, params.Wout.T) + eu               # direct paths y_t <- u_t and R(u_t)
    gx = np.empty_like(u)
    gnext = np.zeros((m, n))                          # gx_T = 0: x_T is not used
    for t in range(t_steps - 1, -1, -1):
        g = gu[t] + alpha * (gnext @ params.Wrec)     # u_t -> x_{t+1} through Wrec
        gnext = (1 - u[t] ** 2) * g + (1 - alpha) * gnext
        gx[t] = gnext
    return gx


def _sum_outer(a, b):
    """``sum_{t,m} a[t,m] b[t,m]'``: (T,M,I), (T,M,J) -> (I,J), as one matrix product."""
    return a.reshape(-1, a.shape[2]).T @ b.reshape(-1, b.shape[2])


def _weight_grads(params, inputs, u, ey, gx, alpha):
    """Gradients of the weights from the time-major adjoints (math.md eq. B4-B6),
    summed over trials; ``inputs`` is (T, M, Nin).

    Returns a flat vector in ``Params`` order, without the L2 term.
    """
    gnext = gx[1:]                                    # gx_{t+1} pairs with u_t, I_t for t < T-1
    dWrec = alpha * _sum_outer(gnext, u[:-1])
    dWin = alpha * _sum_outer(gnext, inputs[:-1])
    db = alpha * gnext.sum(axis=(0, 1))
    dWout = _sum_outer(ey, u)
    return np.concatenate([dWrec.ravel(), dWin.ravel(), db, dWout.ravel()])


def _l2_curvature(params, reg):
    """Diagonal of the Hessian of ``lam_l2 * R_L2`` in flat order (math.md eq. L2)."""
    n, n_in, n_out = params.shape
    return np.concatenate([np.zeros(n * n), np.full(n * n_in, 2 * reg.lam_l2 / (n * n_in)),
                           np.zeros(n), np.full(n_out * n, 2 * reg.lam_l2 / (n * n_out))])


def _per_trial_sq(params, inputs, u, ey, gx, alpha, reg):
    """Mean over trials of the squared per-trial gradients (math.md eq. B7); time-major inputs."""
    m = u.shape[1]
    gnext = gx[1:]
    per_trial = np.concatenate([
        alpha * np.einsum("tmi,tmj->mij", gnext, u[:-1], optimize=True).reshape(m, -1),
        alpha * np.einsum("tmi,tmk->mik", gnext, inputs[:-1], optimize=True).reshape(m, -1),
        alpha * gnext.sum(axis=0),
        np.einsum("tmo,tmi->moi", ey, u, optimize=True).reshape(m, -1),
    ], axis=1) * m                                    # gradient of the trial's own loss L_m
    per_trial += _l2_curvature(params, reg) * params.flat
    return np.mean(per_trial ** 2, axis=0)


def gradient(params, batch, reg, alpha=ALPHA, sq_grad=False):
    """Loss terms and the gradient of ``loss`` by hand-written BPTT (math.md section 3).

    Returns
    -------
    terms : dict with ``E``, ``R_L2``, ``R_FR``, ``loss``
    grad : (P,) float64, in ``Params.flat`` order
    sq : (P,) float64, only if ``sq_grad``: ``mean_m (dL_m/dtheta)**2`` over the
        per-trial losses ``L_m`` (``loss = mean_m L_m``), for HF's diagonal
        preconditioner (math.md eq. B7).
    """
    alpha = check_problem(params, batch, reg, alpha)
    state = _forward(params, batch.inputs, batch.noise, None, alpha)
    m, t_steps, n = state.u.shape
    u, inputs = _tm(state.u), _tm(batch.inputs)
    ey = 2.0 / (m * t_steps * params.n_out) * _tm(state.y - batch.targets)   # eq. B1
    eu = 2.0 * reg.lam_fr / (n * t_steps * m) * u
    gx = _backward(params, u, ey, eu, alpha)
    grad = _weight_grads(params, inputs, u, ey, gx, alpha)
    grad += _l2_curvature(params, reg) * params.flat                          # R_L2 is quadratic
    terms = _terms(params, state.y, state.u, batch.targets, reg)
    if sq_grad:
        return terms, grad, _per_trial_sq(params, inputs, u, ey, gx, alpha, reg)
    return terms, grad


def gn_product(params, batch, state, v, reg, mu=0.0, alpha=ALPHA):
    """Gauss-Newton matrix times a vector, ``G v`` (math.md section 4).

    ``G = J_y' H_y J_y + J_u' H_u J_u + lam_l2 * Hess(R_L2)`` with
    ``H_y = 2/(M T Nout) I`` and ``H_u = 2 (lam_fr + mu)/(N T M) I``; ``mu``
    is the structural damping weight (HF passes ``mu_sd * lambda``).

    Parameters
    ----------
    state : ForwardState of ``batch`` under ``params`` (only ``u`` is used)
    v : (P,) vector in ``Params.flat`` order
    mu : float >= 0

    Returns
    -------
    (P,) float64
    """
    alpha, u, v, mu = check_gn_args(params, batch, state, v, reg, mu, alpha, contiguous=False)
    u = _tm(u)
    dv = Params.from_flat(v, *params.shape)
    t_steps, m, n = u.shape
    inputs = _tm(batch.inputs)
    # R-op forward pass (eq. G1-G3): tangents du_t, dy_t of u_t, y_t along v.
    du = np.empty_like(u)
    dx = np.zeros((m, n))                             # dx_0 = 0: x_0 does not depend on theta
    for t in range(t_steps):
        du[t] = (1 - u[t] ** 2) * dx
        drive = du[t] @ params.Wrec.T + u[t] @ dv.Wrec.T + inputs[t] @ dv.Win.T + dv.b
        dx = (1 - alpha) * dx + alpha * drive
    dy = _apply(u, dv.Wout) + _apply(du, params.Wout)
    # Multiply by H (eq. G4), then J' by BPTT of the same network (eq. G5).
    ey = 2.0 / (m * t_steps * params.n_out) * dy
    eu = 2.0 * (reg.lam_fr + mu) / (n * t_steps * m) * du
    gx = _backward(params, u, ey, eu, alpha)
    return _weight_grads(params, inputs, u, ey, gx, alpha) + _l2_curvature(params, reg) * dv.flat


def forward_stream(params, inputs, noise=None, x0=None, alpha=ALPHA, keep_u=False,
                   chunk_steps=4096):
    """Forward pass for long paths, holding only one chunk of states at a time.

    Parameters
    ----------
    params, inputs, noise, x0, alpha : as for :func:`forward`
    keep_u : bool; also return the rates ``u`` (M, T, N)
    chunk_steps : int; time steps per chunk (bounds the scratch memory)

    Returns
    -------
    StreamResult with ``y`` (M, T, Nout), ``u`` (M, T, N) or None, ``x_end`` (M, N).
    """
    inputs, noise, x0, alpha = check_forward_args(params, inputs, noise, x0, alpha)
    chunk_steps = check_positive_int("chunk_steps", chunk_steps)
    m, t_steps, _ = inputs.shape
    y = np.empty((m, t_steps, params.n_out))
    u = np.empty((m, t_steps, params.n_units)) if keep_u else None
    for lo in range(0, t_steps, chunk_steps):
        hi = min(lo + chunk_steps, t_steps)
        st = _forward(params, inputs[:, lo:hi], None if noise is None else noise[:, lo:hi], x0, alpha)
        y[:, lo:hi] = st.y
        if keep_u:
            u[:, lo:hi] = st.u
        x0 = st.x_end
    return StreamResult(y=y, u=u, x_end=x0)
