"""Hessian-free optimisation (Martens 2010; Martens & Sutskever 2011), and Adam.

The optimisers work on flat parameter vectors through a small problem
interface, so they serve any model, not only the CTRNN:

- ``problem.loss(theta) -> float``
- ``problem.gradient(theta) -> (loss, grad, sq_grad)``; ``sq_grad`` is the mean
  of squared per-example gradients (the diagonal preconditioner's input), or
  None when the problem cannot supply it
- ``problem.curvature(theta) -> gv`` where ``gv(v, mu)`` is the Gauss-Newton
  product ``G v`` at ``theta`` with structural damping weight ``mu``
- optionally ``problem.curvature_loss(theta) -> float``, the loss on the
  curvature minibatch: with ``HFSettings.evaluate_on = "curvature"`` (the
  default) steps are compared with it, else (or without it) with ``loss``

One HF iteration (:func:`hf_step`):

1. gradient g and preconditioner ``P = (sq_grad + lambda)**0.75``;
2. preconditioned CG on ``(G + lambda I + lambda mu_sd S) d = -g``, warm-started
   from ``0.95`` times the previous solution, stopped by Martens' relative
   progress rule ``(phi_i - phi_{i-k}) / phi_i < k eps`` with ``k = max(10, i/10)``
   or an iteration cap;
3. CG backtracking: among the iterates saved at ``i = ceil(1.3**j)``, walk back
   from the last while the loss keeps falling;
4. reduction ratio ``rho`` of the actual to the predicted (undamped quadratic)
   change, and the Levenberg-Marquardt update of lambda;
5. a backtracking (Armijo) line search on the step length.

Steps 3-5 evaluate the loss on the curvature minibatch by default, as
Martens & Sutskever do (a fifth of the cost at the paper's 100 of 500
trials); ``evaluate_on = "gradient"`` evaluates it on the whole minibatch,
as before that setting existed. Either way the loss at ``theta`` and at the
candidate steps are taken on the same trials, so ``rho`` and the Armijo test
compare like with like.

Failures users of other HF codes report are caught: non-finite loss or
gradient at the current point stops the run (:class:`HFError`); non-finite
curvature or a CG result that is not a descent direction rejects the step and
raises lambda; lambda above its ceiling stops the run with a message, below
its floor is clamped. Parameters are only ever replaced by finite values that
lower the loss.
"""

import logging
import math
import numbers
from dataclasses import dataclass, fields

import numpy as np

log = logging.getLogger(__name__)


EVALUATE_ON = ("curvature", "gradient")
"""Where HF evaluates the loss for CG backtracking, rho and the line search: the
curvature minibatch (``problem.curvature_loss``) or the gradient's (``problem.loss``)."""


class HFError(RuntimeError):
    """Training cannot continue: the message says why and what to try."""


@dataclass(frozen=True)
class HFSettings:
    """Settings of :func:`hf_step`; the defaults follow Martens (2010) unless noted."""

    damping: float = 0.1               # initial lambda (the LM rule adapts it within a few iterations)
    damping_min: float = 1e-8          # floor: lambda is clamped here
    damping_max: float = 1e8           # ceiling: the run stops (the model is not improving)
    boost: float = 1.5                 # lambda *= boost when rho < rho_low
    drop: float = 2.0 / 3.0            # lambda *= drop when rho > rho_high
    rho_low: float = 0.25
    rho_high: float = 0.75
    structural_damping: float = 1.0 / 30.0  # mu_sd (Martens & Sutskever 2011)
    cg_max_iters: int = 250
    cg_tol: float = 5e-4               # eps of the relative-progress rule
    cg_decay: float = 0.95             # warm start: x0 = cg_decay * previous solution
    cg_backtrack_gamma: float = 1.3    # iterates kept at i = ceil(gamma**j)
    precond_exponent: float = 0.75
    line_search_c: float = 1e-2        # Armijo constant
    line_search_shrink: float = 0.8
    line_search_max: int = 20
    evaluate_on: str = "curvature"     # trials of steps 3-5's loss evaluations (EVALUATE_ON)

    def __post_init__(self):
        if self.evaluate_on not in EVALUATE_ON:
            raise ValueError(f"HFSettings.evaluate_on must be one of {', '.join(EVALUATE_ON)}, "
                             f"got {self.evaluate_on!r}")
        for f in fields(self):
            if f.name == "evaluate_on":
                continue
            v = getattr(self, f.name)
            integer = f.name in ("cg_max_iters", "line_search_max")
            kind = numbers.Integral if integer else numbers.Real
            if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
                raise ValueError(f"HFSettings.{f.name} must be a finite {'integer' if integer else 'number'}, "
                                 f"got {v!r}")
        positive = ("damping", "damping_min", "damping_max", "boost", "cg_tol", "cg_backtrack_gamma",
                    "line_search_c")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"HFSettings.{name} must be a finite number > 0, got {v!r}")
        checks = [("damping_min <= damping <= damping_max",
                   self.damping_min <= self.damping <= self.damping_max),
                  ("boost > 1", self.boost > 1), ("0 < drop < 1", 0 < self.drop < 1),
                  ("rho_low < rho_high", self.rho_low < self.rho_high),
                  ("structural_damping >= 0", self.structural_damping >= 0),
                  ("cg_max_iters >= 1", self.cg_max_iters >= 1),
                  ("0 <= cg_decay <= 1", 0 <= self.cg_decay <= 1),
                  ("cg_backtrack_gamma > 1", self.cg_backtrack_gamma > 1),
                  ("0 <= precond_exponent <= 1", 0 <= self.precond_exponent <= 1),
                  ("0 < line_search_shrink < 1", 0 < self.line_search_shrink < 1),
                  ("line_search_max >= 0", self.line_search_max >= 0)]
        for text, ok in checks:
            if not ok:
                raise ValueError(f"HFSettings: need {text}; got {self}")


@dataclass
class HFState:
    """What HF carries from one iteration to the next (saved in checkpoints)."""

    damping: float
    previous: np.ndarray = None        # last CG solution, for the warm start

    KEYS = ("hf_damping", "hf_previous")  # checkpoint arrays

    def to_arrays(self):
        """The checkpoint arrays (:attr:`KEYS`); no warm start is an empty vector."""
        return {"hf_damping": np.float64(self.damping),
                "hf_previous": np.zeros(0) if self.previous is None else self.previous}

    @classmethod
    def from_arrays(cls, arrays, size):
        """Inverse of :meth:`to_arrays` for ``size`` parameters; a bad field raises ValueError naming it."""
        damping = np.asarray(arrays["hf_damping"])
        if damping.shape != () or not np.issubdtype(damping.dtype, np.floating) \
                or not (np.isfinite(damping) and damping > 0):
            raise ValueError(f"hf_damping must be a finite number > 0, got {damping.tolist()!r}")
        prev = np.asarray(arrays["hf_previous"])
        if prev.size == 0:
            return cls(float(damping), None)
        if prev.shape != (size,) or not np.issubdtype(prev.dtype, np.floating) or not np.all(np.isfinite(prev)):
            raise ValueError(f"hf_previous (the CG warm start) must be empty or {size} finite numbers, "
                             f"got shape {prev.shape}, dtype {prev.dtype}")
        return cls(float(damping), prev.astype(np.float64))


@dataclass
class CGResult:
    """What :func:`pcg` returns: the last iterate, the saved ones, the iteration count and why it stopped."""

    x: np.ndarray                      # last iterate
    saved: list                        # [(iteration, iterate)], increasing, the last one included
    iterations: int
    reason: str                        # "progress", "max_iters" or "negative_curvature"


def pcg(apply_a, b, x0, precond, max_iters, tol, gamma):
    """Preconditioned CG for ``A x = b`` with Martens' stopping rule.

    Parameters
    ----------
    apply_a : callable, (P,) -> (P,); the SPD matrix A times a vector
    b : (P,) right-hand side
    x0 : (P,) start
    precond : (P,) positive diagonal of the preconditioner (A is approx. diag(precond))
    max_iters : int
    tol : float; stop when ``(phi_i - phi_{i-k}) / phi_i < k tol``, ``k = max(10, i/10)``,
        where ``phi(x) = x'Ax/2 - b'x``
    gamma : float > 1; iterates are saved at ``i = ceil(gamma**j)`` for CG backtracking

    Returns
    -------
    CGResult. Raises FloatingPointError if A returns non-finite values.
    """
    x = x0.copy()
    r = b - apply_a(x)
    if not np.all(np.isfinite(r)):
        raise FloatingPointError("non-finite curvature product at the CG start")
    z = r / precond
    p = z.copy()
    rz = r @ z
    phis = [-0.5 * x @ (b + r)]        # phi(x) = -x'(b + r)/2 because A x = b - r
    saved, next_save, j = [], 1, 0
    reason = "max_iters"
    i = 0
    for i in range(1, max_iters + 1):
        ap = apply_a(p)
        curv = p @ ap
        if not np.isfinite(curv):
            raise FloatingPointError(f"non-finite curvature product in CG iteration {i}")
        if curv <= 0:
            reason = "negative_curvature"
            i -= 1
            break
        step = rz / curv
        x += step * p
        r -= step * ap
        z = r / precond
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
        phis.append(-0.5 * x @ (b + r))
        if i == next_save:
            saved.append((i, x.copy()))
            while next_save <= i:
                j += 1
                next_save = math.ceil(gamma ** j)
        k = max(10, i // 10)
        if i > k and phis[i] < 0 and (phis[i] - phis[i - k]) / phis[i] < k * tol:
            reason = "progress"
            break
        if rz == 0:                    # exact solution
            reason = "progress"
            break
    if not saved or saved[-1][0] != i:
        saved.append((i, x.copy()))
    return CGResult(x=x, saved=saved, iterations=i, reason=reason)


def _finite(loss):
    """``loss`` with non-finite values replaced by inf (a step that blows up is never chosen)."""
    def f(theta):
        value = loss(theta)
        return value if np.isfinite(value) else np.inf
    return f


def _evaluation(problem, theta, f0, settings):
    """The loss steps 3-5 compare (on the trials ``settings.evaluate_on`` names) and its value at ``theta``.

    ``f0`` is the gradient's loss at ``theta``: the value when the whole
    minibatch is evaluated. Called after ``problem.curvature(theta)``, so a
    problem can reuse that forward pass for the value at ``theta``.
    """
    if settings.evaluate_on == "curvature" and hasattr(problem, "curvature_loss"):
        f_eval = problem.curvature_loss(theta)
        if not np.isfinite(f_eval):
            raise HFError("the loss on the curvature trials is not finite at the current parameters")
        return _finite(problem.curvature_loss), float(f_eval)
    return _finite(problem.loss), f0


def _solve(apply_a, g, precond, state, settings, events):
    """CG on ``A d = -g`` from the warm start, then from zero if that gives no descent direction.

    Returns the :class:`CGResult`, or None (non-finite curvature or no
    descent direction), with the reason appended to ``events``.
    """
    s = settings
    prev = state.previous if state.previous is not None and state.previous.shape == g.shape else None
    starts = [np.zeros_like(g)] if prev is None else [s.cg_decay * prev, np.zeros_like(g)]
    for x0 in starts:
        try:
            cg = pcg(apply_a, -g, x0, precond, s.cg_max_iters, s.cg_tol, s.cg_backtrack_gamma)
        except FloatingPointError as err:
            events.append(f"curvature: {err}")
            return None
        if g @ cg.x < 0:
            return cg
        events.append("CG did not give a descent direction" +
                      ("; retrying from zero" if x0 is not starts[-1] else ""))
    return None


def _backtrack(loss, theta, saved):
    """CG backtracking: from the last saved iterate back while ``loss(theta + d)`` keeps falling.

    Returns ``(i, d, loss(theta + d))`` of the chosen iterate.
    """
    best_i, best_d = saved[-1]
    best_f = loss(theta + best_d)
    for i, d in reversed(saved[:-1]):
        f = loss(theta + d)
        if f >= best_f:
            break
        best_i, best_d, best_f = i, d, f
    return best_i, best_d, best_f


def _line_search(loss, theta, d, f_d, f_eval, gd, settings):
    """Armijo backtracking on the step length: ``(step, loss(theta + step d))``.

    ``f_d`` is ``loss(theta + d)`` (step 1, already known), ``f_eval`` the
    loss at ``theta`` on the same trials, ``gd = g'd < 0``. The result passes
    the Armijo test unless ``settings.line_search_max`` shrinks did not suffice.
    """
    s = settings
    step, f_new = 1.0, f_d
    for _ in range(s.line_search_max):
        if f_new <= f_eval + s.line_search_c * step * gd:
            break
        step *= s.line_search_shrink
        f_new = loss(theta + step * d)
    return step, f_new


def hf_step(problem, theta, state, settings=HFSettings()):
    """One Hessian-free iteration.

    Parameters
    ----------
    problem : object with ``loss``, ``gradient`` and ``curvature`` (and
        optionally ``curvature_loss``; see module docstring)
    theta : (P,) float64 parameters
    state : HFState (updated in place: damping and warm start)
    settings : HFSettings

    Returns
    -------
    theta_new : (P,) the new parameters (``theta`` itself when the step is rejected)
    info : dict with loss (at ``theta``, from the gradient), eval_loss and
        new_loss (the loss before and after the step on the trials the
        steps are compared on: ``settings.evaluate_on``'s, the gradient's
        when no step was tried), grad_norm, damping (used), rho, cg_iters,
        cg_reason, cg_chosen, step, accepted and events (guard messages).
    """
    s = settings
    lam = state.damping
    f0, g, sq = problem.gradient(theta)
    if not (np.isfinite(f0) and np.all(np.isfinite(g))):
        raise HFError("loss or gradient is not finite at the current parameters; "
                      "check the inputs and regularisation weights")
    info = {"loss": float(f0), "eval_loss": float(f0), "new_loss": float(f0),
            "grad_norm": float(np.linalg.norm(g)), "damping": lam, "rho": float("nan"), "cg_iters": 0,
            "cg_reason": "", "cg_chosen": 0, "step": 0.0, "accepted": False, "events": []}
    gv = problem.curvature(theta)
    mu = s.structural_damping * lam

    def apply_a(v):
        return gv(v, mu) + lam * v

    sq = np.zeros_like(g) if sq is None else sq
    precond = (sq + lam) ** s.precond_exponent
    cg = _solve(apply_a, g, precond, state, s, info["events"])
    if cg is not None:
        info["cg_iters"], info["cg_reason"] = cg.iterations, cg.reason
        state.previous = cg.x
        loss, f_eval = _evaluation(problem, theta, float(f0), s)
        info["eval_loss"] = info["new_loss"] = f_eval
        info["cg_chosen"], best_d, best_f = _backtrack(loss, theta, cg.saved)
        gd = g @ best_d
        predicted = gd + 0.5 * best_d @ gv(best_d, 0.0)
        rho = (best_f - f_eval) / predicted if predicted < 0 else -np.inf
        info["rho"] = float(rho)
        step, f_new = _line_search(loss, theta, best_d, best_f, f_eval, gd, s)
        if f_new <= f_eval + s.line_search_c * step * gd and np.isfinite(f_new):
            theta = theta + step * best_d
            info.update(new_loss=float(f_new), step=step, accepted=True)
        else:
            info["events"].append("line search found no decrease; step rejected")
            rho = -np.inf
        if rho < s.rho_low:
            lam *= s.boost
        elif rho > s.rho_high:
            lam *= s.drop
    else:
        state.previous = None
        lam *= s.boost
        info["events"].append("step rejected, damping raised")
    if lam > s.damping_max:
        raise HFError(f"damping lambda = {lam:.3g} exceeded damping_max = {s.damping_max:g}: the "
                      "quadratic model keeps failing to predict the loss (loss not smooth at this "
                      "scale, or converged); lower the learning problem's noise or raise damping_max")
    state.damping = max(lam, s.damping_min)
    for event in info["events"]:
        log.warning("HF: %s", event)
    return theta, info


@dataclass(frozen=True)
class AdamSettings:
    """Adam (Kingma & Ba 2015) on the same gradient kernels, as a first-order baseline."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    # A step schedule: ((iteration, lr), ...), increasing iterations; from that many steps on, lr.
    lr_steps: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "lr_steps", _lr_steps(self.lr_steps))
        for f in fields(self):
            if f.name == "lr_steps":
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"AdamSettings.{f.name} must be a finite number, got {v!r}")
        if not (self.lr > 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ValueError(f"AdamSettings: need lr > 0, 0 <= beta1, beta2 < 1, eps > 0; got {self}")


    def lr_at(self, step):
        """The learning rate of Adam step ``step`` (0-based: the steps already taken)."""
        lr = self.lr
        for start, value in self.lr_steps:
            if step >= start:
                lr = value
        return lr


def _lr_steps(value):
    """``AdamSettings.lr_steps`` as a tuple of (int iteration, float lr) pairs, checked."""
    err = ("AdamSettings.lr_steps must be a list of [iteration, lr] pairs with increasing iterations >= 1 "
           f"and finite lr > 0, got {value!r}")
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(err)
    pairs = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(err)
        it, lr = pair
        if (isinstance(it, bool) or not isinstance(it, numbers.Integral) or it < 1
                or isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr > 0)
                or (pairs and it <= pairs[-1][0])):
            raise ValueError(err)
        pairs.append((int(it), float(lr)))
    return tuple(pairs)


@dataclass
class AdamState:
    """What Adam carries from one step to the next (saved in checkpoints): the moments and step count."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0

    KEYS = ("adam_m", "adam_v", "adam_t")  # checkpoint arrays

    @classmethod
    def zeros(cls, size):
        """The state before the first step, for ``size`` parameters."""
        return cls(np.zeros(size), np.zeros(size), 0)

    def to_arrays(self):
        """The checkpoint arrays (:attr:`KEYS`)."""
        return {"adam_m": self.m, "adam_v": self.v, "adam_t": np.int64(self.t)}

    @classmethod
    def from_arrays(cls, arrays, size):
        """Inverse of :meth:`to_arrays` for ``size`` parameters; a bad field raises ValueError naming it."""
        moments = []
        for key in ("adam_m", "adam_v"):
            a = np.asarray(arrays[key])
            if a.shape != (size,) or not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
                raise ValueError(f"{key} must be {size} finite numbers, got shape {a.shape}, dtype {a.dtype}")
            moments.append(a.astype(np.float64))
        t = np.asarray(arrays["adam_t"])
        if t.shape != () or not np.issubdtype(t.dtype, np.integer) or t < 0:
            raise ValueError(f"adam_t must be an integer >= 0, got {t.tolist()!r}")
        return cls(*moments, int(t))


# The state each optimiser (``RunConfig.optimizer.name``) carries between steps and saves in checkpoints.
OPTIMIZER_STATES = {"hf": HFState, "adam": AdamState}


def adam_step(problem, theta, state, settings=AdamSettings()):
    """One Adam step on ``problem.gradient``; returns ``(theta_new, info)``."""
    f0, g, _ = problem.gradient(theta)
    if not (np.isfinite(f0) and np.all(np.isfinite(g))):
        raise HFError("loss or gradient is not finite at the current parameters")
    s = settings
    state.t += 1
    state.m = s.beta1 * state.m + (1 - s.beta1) * g
    state.v = s.beta2 * state.v + (1 - s.beta2) * g * g
    mhat = state.m / (1 - s.beta1 ** state.t)
    vhat = state.v / (1 - s.beta2 ** state.t)
    lr = s.lr_at(state.t - 1)
    theta = theta - lr * mhat / (np.sqrt(vhat) + s.eps)
    return theta, {"loss": float(f0), "grad_norm": float(np.linalg.norm(g)), "step": lr,
                   "accepted": True, "events": []}

