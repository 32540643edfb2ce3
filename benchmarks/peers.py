"""The same CTRNN in PyTorch and JAX, for timing gridcore against them.

Both follow docs/math.md: the Euler forward pass F1-F3 from x_0 = 0, the loss
L1-L4 (with the L2 and metabolic terms), its gradient by reverse-mode
autodiff, and the Gauss-Newton product built from autodiff alone:

    G v = J' (d^2 l_mu / dz^2) J v + Hess(lam_L2 R_L2 + lam_rec R_rec) v

where z = (y, u) are the network's outputs, J v is a jvp, J' a vjp, and the
Hessians of l_mu = E + (lam_FR + mu) R_FR (mu: structural damping) and of
the weight penalties are Hessian-vector products of those terms. The
PyTorch peer also runs the positive-control model (section 7: ReLU, any
alpha, the place-cell readout's softmax cross-entropy, x_0 = Wenc c, R_rec),
whose output Hessian autodiff finds on its own. Unlike
gridcore's ``gn_product``, which is handed the forward state, a peer's GN
product runs its own forward pass. Everything is float64 on the CPU.

A peer is built from a :class:`harness.Problem` and has ``forward()`` (the
outputs y), ``gradient()`` and ``gn_product()`` (flat vectors in
``Params.flat`` order), each returning NumPy arrays, so the checks are the
ones the backends get. Neither library is a dependency of gridcore.
"""

import contextlib
import os
import sys

import numpy as np
from harness import MU

from gridcore.model.spec import ALPHA

PEER_NAMES = ("torch", "jax")


def _split(theta, n, n_in, n_out, n_code=0):
    """Flat vector -> (Wrec, Win, b, Wout, Wenc or None), Params.flat order."""
    sizes = np.cumsum([n * n, n * n_in, n, n_out * n])
    wrec, win, b = theta[:sizes[0]], theta[sizes[0]:sizes[1]], theta[sizes[1]:sizes[2]]
    wout = theta[sizes[2]:sizes[3]].reshape(n_out, n)
    wenc = theta[sizes[3]:].reshape(n, n_code) if n_code else None
    return wrec.reshape(n, n), win.reshape(n, n_in), b, wout, wenc


def _l2(win, wout):
    """R_L2 (math.md eq. L2)."""
    n, n_in = win.shape
    return (win ** 2).sum() / (n * n_in) + (wout ** 2).sum() / (n * wout.shape[0])


class TorchPeer:
    """The CTRNN in PyTorch (a Python loop over time, autograd, forward-mode AD), any model spec."""

    def __init__(self, problem, threads):
        import torch
        import torch.autograd.forward_ad as fwad
        self.torch, self.fwad, self.threads = torch, fwad, threads
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))     # noqa: E731
        p, b = problem.params, problem.batch
        self.shape, self.reg, self.spec = p.shape + (p.n_code,), problem.reg, problem.spec
        self.phi = {"tanh": torch.tanh, "relu": torch.relu}[self.spec.nonlinearity]
        self.theta, self.v = t(p.flat.copy()), t(problem.v)
        # Time-major (T, M, .): each step reads one contiguous block.
        self.inputs = t(b.inputs.transpose(1, 0, 2))
        self.noise = None if b.noise is None else t(b.noise.transpose(1, 0, 2))
        self.targets = t(b.targets.transpose(1, 0, 2))
        self.codes = None if b.start_codes is None else t(b.start_codes)

    def outputs(self, theta):
        """(y, u), time-major, along the batch (eq. F0-F3)."""
        wrec, win, b, wout, wenc = _split(theta, *self.shape)
        a = self.spec.alpha
        drive = self.inputs @ win.T + b
        if self.noise is not None:
            drive = drive + self.noise
        x = self.torch.zeros(drive.shape[1:], dtype=theta.dtype) if wenc is None else self.codes @ wenc.T
        us = []
        for d in drive.unbind(0):          # unbind: indexing drive[t] would cost O(T) per step backwards
            us.append(self.phi(x))
            x = (1 - a) * x + a * (us[-1] @ wrec.T + d)
        u = self.torch.stack(us)
        return u @ wout.T, u

    def data_loss(self, y, u, lam_fr):
        """E + lam_fr R_FR (eq. L1 or P1, L3)."""
        if self.spec.readout == "xy":
            error = ((y - self.targets) ** 2).mean()
        else:
            error = -(self.targets * self.torch.log_softmax(y, dim=-1)).sum(dim=-1).mean()
        return error + lam_fr * (u ** 2).mean()

    def penalty(self, theta):
        """lam_l2 R_L2 + lam_rec R_rec (eq. L2, P4)."""
        wrec, win, _, wout, _ = _split(theta, *self.shape)
        return self.reg.lam_l2 * _l2(win, wout) + self.reg.lam_rec * (wrec ** 2).sum()

    def loss(self, theta):
        return self.data_loss(*self.outputs(theta), self.reg.lam_fr) + self.penalty(theta)

    def forward(self):
        with self._threads(), self.torch.no_grad():
            return self.outputs(self.theta)[0].transpose(0, 1).numpy()

    def gradient(self):
        with self._threads():
            theta = self.theta.clone().requires_grad_()
            (g,) = self.torch.autograd.grad(self.loss(theta), theta)
            return g.numpy()

    def gn_product(self):
        torch = self.torch
        with self._threads():
            theta = self.theta.clone().requires_grad_()
            # One pass: forward-mode tangents (J v) ride along the recorded forward pass.
            fwad = self.fwad
            with fwad.dual_level():
                z = [fwad.unpack_dual(a) for a in self.outputs(fwad.make_dual(theta, self.v))]
            zp, jv = [a.primal for a in z], [a.tangent for a in z]
            hjv = self._hvp(lambda y, u: self.data_loss(y, u, self.reg.lam_fr + MU),
                            [a.detach() for a in zp], jv)
            (gv,) = torch.autograd.grad(zp, theta, grad_outputs=hjv)
            return (gv + self._hvp(self.penalty, [self.theta], [self.v])[0]).numpy()

    def _hvp(self, fn, at, vs):
        """Hessian of the scalar ``fn(*at)`` times ``vs``, by double backward."""
        at = [a.detach().requires_grad_() for a in at]
        grads = self.torch.autograd.grad(fn(*at), at, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(grads, vs))
        return self.torch.autograd.grad(dot, at)

    @contextlib.contextmanager
    def _threads(self):
        """Run with ``threads`` intra-op threads, restoring the previous count after."""
        previous = self.torch.get_num_threads()
        self.torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            self.torch.set_num_threads(previous)


def jax_flags(threads):
    """XLA flags that pin JAX's CPU threads; they act only before JAX is first imported."""
    multi = "true" if threads > 1 else "false"
    return f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={threads}"


class JaxPeer:
    """The CTRNN in JAX (``lax.scan`` over time, ``jit``, ``linearize`` and ``linear_transpose``).

    JAX fixes its thread pool when it starts: ``threads`` sets ``XLA_FLAGS``
    if JAX is not imported yet (and ``XLA_FLAGS`` is unset), else it is only
    recorded; ``flags`` holds what was in force.
    """

    def __init__(self, problem, threads):
        if problem.size.model != "paper":
            raise ValueError("the JAX peer implements the paper's model only")
        if "jax" not in sys.modules and "XLA_FLAGS" not in os.environ:
            os.environ["XLA_FLAGS"] = jax_flags(threads)
        self.flags = os.environ.get("XLA_FLAGS")
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp
        p, b = problem.params, problem.batch
        self.shape, self.reg = p.shape, problem.reg
        put = lambda a: jax.device_put(np.ascontiguousarray(a))     # noqa: E731
        self.theta, self.v = put(p.flat), put(problem.v)
        self.data = tuple(put(a.transpose(1, 0, 2)) for a in (b.inputs, b.noise, b.targets))
        self._forward = jax.jit(lambda th, d: self.outputs(th, d)[0])
        self._gradient = jax.jit(jax.grad(self.loss))
        self._gn = jax.jit(self.gn)

    def outputs(self, theta, data):
        """(y, u), time-major, along the batch (eq. F1-F3)."""
        jnp = self.jnp
        inputs, noise, _ = data
        wrec, win, b, wout, _ = _split(theta, *self.shape)

        def step(x, drive):
            u = jnp.tanh(x)
            return (1 - ALPHA) * x + ALPHA * (u @ wrec.T + drive), u

        _, u = self.jax.lax.scan(step, jnp.zeros(inputs.shape[1:2] + (self.shape[0],)),
                                 inputs @ win.T + b + noise)
        return u @ wout.T, u

    def data_loss(self, z, data, lam_fr):
        """E + lam_fr R_FR (eq. L1, L3) of the outputs z = (y, u)."""
        y, u = z
        return ((y - data[2]) ** 2).mean() + lam_fr * (u ** 2).mean()

    def l2(self, theta):
        return self.reg.lam_l2 * _l2(*_split(theta, *self.shape)[1:4:2])

    def loss(self, theta, data):
        return self.data_loss(self.outputs(theta, data), data, self.reg.lam_fr) + self.l2(theta)

    def gn(self, theta, v, data):
        jax = self.jax
        z, jvp = jax.linearize(lambda th: self.outputs(th, data), theta)
        jv = jvp(v)
        hjv = jax.jvp(jax.grad(lambda z: self.data_loss(z, data, self.reg.lam_fr + MU)), (z,), (jv,))[1]
        (gv,) = jax.linear_transpose(jvp, theta)(hjv)
        return gv + jax.jvp(jax.grad(self.l2), (theta,), (v,))[1]

    def forward(self):
        return np.asarray(self._forward(self.theta, self.data)).transpose(1, 0, 2)

    def gradient(self):
        return np.asarray(self._gradient(self.theta, self.data))

    def gn_product(self):
        return np.asarray(self._gn(self.theta, self.v, self.data))


def make_peer(name, problem, threads):
    return {"torch": TorchPeer, "jax": JaxPeer}[name](problem, threads)
