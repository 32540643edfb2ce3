"""Simulated foraging trajectories and their network inputs (paper Sec. 2.2).

Two motion models, chosen by name (``simulate(..., motion_model=...)``,
:data:`MOTION_MODELS`); both give the same :class:`Trajectories`.

**"paper"** (the default; Cueva & Wei 2018), per trial and step t = 0..T-1
(units: arena units per step for speeds, radians for angles):

- heading: ``heading_t = wrap(heading_{t-1} + turn_t)`` ("modified Brownian
  motion" favouring straight runs): ``turn_t = 0`` with probability
  ``p_keep``, else ``turn_t ~ N(0, sigma_turn)``. The heading before step 0
  is uniform on the circle. The heading evolves on every step, moving or not.
- speed: exactly 0 with probability ``p_zero_speed``, else Rayleigh with
  scale ``speed_scale``, clipped at ``max_speed``.
- move: ``p_{t+1} = p_t + speed_t * (cos heading_t, sin heading_t)``.
- walls: if that move would leave the arena, the heading is re-sampled
  uniformly on the circle until it does not (at most ``max_retries`` times,
  then it points at the centre and the speed is clipped to ``|p_t|``, safe
  because arenas are convex and contain the origin). The new heading persists.
  Such a step is a *boundary interaction*; zero-speed steps never are.

**"smooth"** (smooth random foraging after Sorscher et al. 2019/2023 and
RatInABox; parameters in metres and seconds, :data:`SMOOTH_MOTION_DEFAULTS`;
one arena unit is one metre, so the default square is 2 m x 2 m and
``arena_size=2.2`` gives Sorscher et al.'s box), per step of ``dt`` seconds:

- speed: ``v_t ~ Rayleigh(rayleigh_scale)`` (m/s), independent per step;
  the move is ``speed_t = v_t * dt`` arena units per step.
- heading: ``heading_t = wrap(heading_{t-1} + w_t + dt * omega_t)`` with the
  rotational velocity ``omega_t ~ N(0, rotation_sd)`` (rad/s) and the wall
  turn ``w_t``: if the nearest wall is closer than ``border_region`` (m) and
  the heading points towards it (``|a| < pi/2``, ``a`` the angle from the
  wall's outward normal to ``heading_{t-1}``), ``w_t = sign(a) (pi/2 -
  |a|)`` turns the walker parallel to the wall and the speed is multiplied
  by ``wall_slowdown``; otherwise ``w_t = 0``.
- walls: a move that would still leave the arena is reflected off the wall
  it crosses; if the reflected move leaves too (a corner) it is cut short
  at the wall. Steps with a wall turn, a reflection or a cut are the
  boundary interactions.
- start: uniform over the arena (``start="uniform"``, the default), heading
  uniform on the circle.

**The torus** (:class:`gridcore.sim.arenas.Torus`) has no walls: both
models run as above without any wall handling (no re-samples, turns,
reflections or boundary interactions), and positions wrap modulo the side
into the square. Speeds and headings, hence the inputs, are the true
motion, so integrating them gives the unwrapped path.

Conventions relied on by the network code: ``positions[:, 0]`` is the start
(also :attr:`Trajectories.start`); ``inputs[:, t]`` encodes (speed_t,
heading_t), the move from ``positions[:, t]`` to ``positions[:, t+1]``;
``T`` moves are simulated and ``positions`` holds p_0..p_{T-1} (p_T is
``final_position``).

Determinism: every random number comes from one ``numpy.random.Generator``
(pre-drawn, vectorised, in a fixed order, see :func:`_predraw` and
:func:`_predraw_smooth`), except the paper model's wall re-samples, which
the Numba kernel (:func:`gridcore.sim.walk.walk`) takes from a
counter-based hash keyed by (a key drawn from that Generator, trial, step,
retry). Same seed, same bits.

This module holds the Python side: the motion settings
(:data:`MOTION_DEFAULTS`, :data:`SMOOTH_MOTION_DEFAULTS`,
:func:`motion_params`), :class:`Trajectories`, :func:`simulate` and the input
encodings (:func:`encode`).
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from gridcore.sim.arenas import Arena, make_arena
from gridcore.sim.walk import smooth_walk, walk
from gridcore.util.checks import check_choice, check_positive_int

__all__ = [
    "MOTION_DEFAULTS",
    "SMOOTH_MOTION_DEFAULTS",
    "MOTION_MODELS",
    "ENCODINGS",
    "motion_params",
    "Trajectories",
    "simulate",
    "encode",
    "n_inputs",
]

MOTION_DEFAULTS = {
    "p_zero_speed": 0.9,   # probability per step of speed exactly 0 (paper Sec. 3.2)
    "speed_scale": 0.06,   # arena units / step: Rayleigh scale of moving speeds
    "max_speed": 0.25,     # arena units / step: moving speeds are clipped here
    "p_keep": 0.9,         # probability per step of no turn (straight runs)
    "sigma_turn": 0.5,     # rad: sd of the Gaussian turn on the other steps
    "start": "centre",     # "centre" (the origin) or "uniform" over the arena
    "max_retries": 100,    # wall re-samples before turning to the centre
}

SMOOTH_MOTION_DEFAULTS = {
    "dt": 0.02,                         # s: time step (Sorscher et al.)
    "rotation_sd": 11.52,               # rad/s: sd of the Gaussian rotational velocity (5.76 * 2)
    "rayleigh_scale": 0.13 * 2 * math.pi,  # m/s: Rayleigh scale of the forward speed (mean 1.02 m/s)
    "border_region": 0.03,              # m: walls closer than this turn the walker away
    "wall_slowdown": 0.25,              # speed factor while turning away from a wall
    "start": "uniform",                 # "uniform" over the arena or "centre" (the origin)
}
"""Settings of the ``"smooth"`` motion model (one arena unit = 1 m)."""

# Motion model name -> its settings' defaults; "paper" is the default model.
MOTION_MODELS = {"paper": MOTION_DEFAULTS, "smooth": SMOOTH_MOTION_DEFAULTS}

# Inputs per encoding; the columns are documented in :func:`encode`.
ENCODINGS = {"speed-angle": 2, "speed-cos-sin": 3, "velocity": 2}

_STARTS = ("centre", "uniform")

# Accepted positions keep this clearance from the walls (relative to the
# inradius) so that round-off in other code never puts them outside.
_WALL_MARGIN_REL = 1e-9


@dataclass(frozen=True, eq=False)
class Trajectories:
    """A simulated minibatch of M trials of T steps.

    Attributes
    ----------
    inputs : ndarray of float64, shape (M, T, Nin)
        Network inputs; ``inputs[:, t]`` encodes the move from
        ``positions[:, t]`` to ``positions[:, t+1]``.
    positions : ndarray of float64, shape (M, T, 2)
        p_0..p_{T-1} (arena units); the network's targets.
    speed : ndarray of float64, shape (M, T)
        Speed of each move (arena units per step), after wall handling.
    heading : ndarray of float64, shape (M, T)
        Heading of each move (rad, in [-pi, pi)), after wall handling.
    boundary : ndarray of bool, shape (M, T)
        True where the heading was re-sampled at a wall.
    final_position : ndarray of float64, shape (M, 2)
        p_T, where the last move ends (arena units).
    encoding : str
        Key of :data:`ENCODINGS` used for ``inputs``.
    arena : Arena
        Where the trials ran.
    motion : dict
        Every motion parameter used (defaults filled in).
    motion_model : str or None
        Key of :data:`MOTION_MODELS` that made the trials (None: not
        simulated here, e.g. a recorded path).
    """

    inputs: np.ndarray
    positions: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    boundary: np.ndarray
    final_position: np.ndarray
    encoding: str
    arena: Arena
    motion: dict
    motion_model: str = None

    @property
    def start(self):
        """Start positions p_0, ``positions[:, 0]``: ndarray of float64, shape (M, 2) (arena units)."""
        return self.positions[:, 0]


def n_inputs(encoding):
    """Number of network inputs Nin of an encoding.

    Parameters
    ----------
    encoding : str
        A key of :data:`ENCODINGS`.

    Returns
    -------
    int
    """
    _check_encoding(encoding)
    return ENCODINGS[encoding]


def encode(speed, heading, encoding="speed-angle"):
    """Network inputs from speeds and headings.

    Parameters
    ----------
    speed : array_like, shape (...)
        Speed of each move (arena units per step).
    heading : array_like, shape (...)
        Heading of each move (rad).
    encoding : {"speed-angle", "speed-cos-sin", "velocity"}
        Columns: (speed, heading), (speed, cos heading, sin heading) or
        (vx, vy) = speed * (cos heading, sin heading).

    Returns
    -------
    ndarray of float64, shape (..., Nin), C-contiguous
    """
    _check_encoding(encoding)
    speed = np.asarray(speed, dtype=np.float64)
    heading = np.asarray(heading, dtype=np.float64)
    if speed.shape != heading.shape:
        raise ValueError(
            f"speed and heading must have the same shape, got {speed.shape} "
            f"and {heading.shape}")
    if encoding == "speed-angle":
        cols = (speed, heading)
    elif encoding == "speed-cos-sin":
        cols = (speed, np.cos(heading), np.sin(heading))
    else:
        cols = (speed * np.cos(heading), speed * np.sin(heading))
    return np.stack(cols, axis=-1)


def simulate(arena, n_trials, n_steps, seed, encoding="speed-angle", motion_model="paper", **motion):
    """Simulate a minibatch of trajectories.

    Parameters
    ----------
    arena : Arena or str
        An arena, or a name for :func:`gridcore.sim.arenas.make_arena`.
    n_trials : int
        Number of trials M, > 0.
    n_steps : int
        Number of steps T per trial, > 0.
    seed : int or numpy.random.Generator
        Random source; an int seeds a fresh Generator. A Generator is
        advanced, so successive calls give fresh trials.
    encoding : str
        Input encoding, a key of :data:`ENCODINGS`.
    motion_model : {"paper", "smooth"}
        The motion model (:data:`MOTION_MODELS`): the paper's (default) or
        smooth foraging.
    **motion
        Overrides of the model's settings (:data:`MOTION_DEFAULTS` or
        :data:`SMOOTH_MOTION_DEFAULTS`).

    Returns
    -------
    Trajectories
        Speeds in arena units per step for both models.
    """
    if isinstance(arena, str):
        arena = make_arena(arena)
    elif not isinstance(arena, Arena):
        raise ValueError(f"arena must be an Arena or a name, got {arena!r}")
    check_positive_int("n_trials", n_trials)
    check_positive_int("n_steps", n_steps)
    _check_encoding(encoding)
    params = motion_params(motion, motion_model)
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        rng = np.random.default_rng(seed)
    else:
        raise ValueError(
            f"seed must be a non-negative int or a numpy Generator, got {seed!r}")

    kind, geometry = arena.kernel_geometry()
    margin = _WALL_MARGIN_REL * arena.inradius
    positions = np.empty((n_trials, n_steps, 2))
    heading = np.empty((n_trials, n_steps))
    boundary = np.zeros((n_trials, n_steps), dtype=np.bool_)
    final = np.empty((n_trials, 2))
    if motion_model == "paper":
        start, heading0, speed, turn, key = _predraw(
            rng, arena, n_trials, n_steps, params)
        if arena.periodic:
            _free_walk(arena, start, heading0, speed, turn, positions, heading, final)
        else:
            walk(kind, geometry, margin, start, heading0, speed, turn, key,
                 params["max_retries"], positions, heading, boundary, final)
    else:
        start, heading0, speed, rotation = _predraw_smooth(
            rng, arena, n_trials, n_steps, params)
        if arena.periodic:
            _free_walk(arena, start, heading0, speed, rotation, positions, heading, final)
        else:
            # One arena unit is one metre: metres become arena units unchanged.
            smooth_walk(kind, geometry, margin, start, heading0, speed, rotation,
                        float(params["border_region"]), float(params["wall_slowdown"]),
                        positions, heading, boundary, final)
    return Trajectories(
        inputs=encode(speed, heading, encoding), positions=positions,
        speed=speed, heading=heading, boundary=boundary, final_position=final,
        encoding=encoding, arena=arena, motion=params, motion_model=motion_model)


def _free_walk(arena, start, heading0, speed, turn, positions, heading, final):
    """Both motion models without walls, in a periodic arena; fills ``positions``, ``heading`` and ``final``.

    Parameters
    ----------
    arena : Arena
        Periodic: its :meth:`~gridcore.sim.arenas.Arena.wrap` puts the
        unwrapped path back into the bounds.
    start : ndarray, shape (M, 2)
        p_0 (arena units).
    heading0 : ndarray, shape (M,)
        Heading before step 0 (rad).
    speed, turn : ndarray, shape (M, T)
        Speed of each move (arena units per step) and heading change before it (rad).
    positions : ndarray, shape (M, T, 2)
        Output: p_0..p_{T-1}, wrapped (arena units).
    heading : ndarray, shape (M, T)
        Output: heading of each move (rad, in [-pi, pi)).
    final : ndarray, shape (M, 2)
        Output: p_T, wrapped (arena units).
    """
    h = np.mod(heading0[:, None] + np.cumsum(turn, axis=1) + np.pi, 2 * np.pi) - np.pi
    heading[:] = np.where(h >= np.pi, h - 2 * np.pi, h)   # round-off at the upper edge
    moves = speed[..., None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    path = start[:, None] + np.cumsum(moves, axis=1)     # p_1..p_T, unwrapped
    positions[:, 0] = arena.wrap(start)
    positions[:, 1:] = arena.wrap(path[:, :-1])
    final[:] = arena.wrap(path[:, -1])


def _predraw(rng, arena, n_trials, n_steps, params):
    """Every Generator draw of :func:`simulate`, in its fixed order.

    Returns
    -------
    start : ndarray, shape (M, 2)
        p_0 (arena units).
    heading0 : ndarray, shape (M,)
        Heading before step 0 (rad).
    speed : ndarray, shape (M, T)
        Proposed speeds (arena units per step), before wall handling.
    turn : ndarray, shape (M, T)
        Heading change applied at each step before wall handling (rad).
    key : numpy.uint64
        Key of the kernel's wall re-sample hash.
    """
    shape = (n_trials, n_steps)
    if params["start"] == "centre":
        start = np.zeros((n_trials, 2))
    else:
        start = arena.sample_uniform(n_trials, rng)
    heading0 = rng.uniform(-np.pi, np.pi, n_trials)
    moving = rng.random(shape) >= params["p_zero_speed"]
    speed = np.zeros(shape)
    speed[moving] = np.minimum(
        rng.rayleigh(params["speed_scale"], np.count_nonzero(moving)),
        params["max_speed"])
    turning = rng.random(shape) >= params["p_keep"]
    turn = np.zeros(shape)
    turn[turning] = rng.normal(0.0, params["sigma_turn"], np.count_nonzero(turning))
    key = rng.integers(0, 2**64, dtype=np.uint64)
    return start, heading0, speed, turn, key


def _predraw_smooth(rng, arena, n_trials, n_steps, params):
    """Every Generator draw of the smooth model, in its fixed order.

    Returns
    -------
    start : ndarray, shape (M, 2)
        p_0 (arena units).
    heading0 : ndarray, shape (M,)
        Heading before step 0 (rad), uniform on the circle.
    speed : ndarray, shape (M, T)
        Rayleigh speeds times dt (arena units per step), before wall handling.
    rotation : ndarray, shape (M, T)
        Rotational velocity times dt (rad per step).
    """
    shape = (n_trials, n_steps)
    if params["start"] == "centre":
        start = np.zeros((n_trials, 2))
    else:
        start = arena.sample_uniform(n_trials, rng)
    heading0 = rng.uniform(-np.pi, np.pi, n_trials)
    dt = params["dt"]
    speed = rng.rayleigh(params["rayleigh_scale"] * dt, shape)
    rotation = rng.normal(0.0, params["rotation_sd"] * dt, shape)
    return start, heading0, speed, rotation


def motion_params(motion, motion_model="paper"):
    """The full motion settings of a model: its defaults updated by ``motion``, validated.

    Parameters
    ----------
    motion : dict
        Overrides of the model's defaults (a run's ``settings.task.motion``).
        "paper" (:data:`MOTION_DEFAULTS`): speeds in arena units per step,
        angles in rad; "smooth" (:data:`SMOOTH_MOTION_DEFAULTS`): metres,
        seconds and radians.
    motion_model : {"paper", "smooth"}
        A key of :data:`MOTION_MODELS`.

    Returns
    -------
    dict
        Every key of the model's defaults.

    Raises
    ------
    ValueError
        An unknown model, an unknown key or a value out of range, named.
    """
    check_choice("motion_model", motion_model, tuple(MOTION_MODELS))
    defaults = MOTION_MODELS[motion_model]
    unknown = sorted(set(motion) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown {motion_model!r} motion parameter(s) {unknown}; allowed: "
            f"{', '.join(defaults)}")
    if motion_model == "smooth":
        return _smooth_params({**defaults, **motion})
    p = {**defaults, **motion}
    for name in ("p_zero_speed", "p_keep"):
        if not _is_real(p[name]) or not 0.0 <= p[name] <= 1.0:
            raise ValueError(
                f"{name} must be a probability in [0, 1], got {p[name]!r}")
    if not _is_real(p["speed_scale"]) or not 0.0 < p["speed_scale"] < math.inf:
        raise ValueError(
            f"speed_scale must be positive and finite, got {p['speed_scale']!r}")
    if not _is_real(p["max_speed"]) or not p["max_speed"] > 0.0:
        raise ValueError(
            f"max_speed must be positive (inf allowed), got {p['max_speed']!r}")
    if not _is_real(p["sigma_turn"]) or not 0.0 <= p["sigma_turn"] < math.inf:
        raise ValueError(
            f"sigma_turn must be non-negative and finite, got {p['sigma_turn']!r}")
    if p["start"] not in _STARTS:
        raise ValueError(
            f"start must be one of {', '.join(_STARTS)}, got {p['start']!r}")
    r = p["max_retries"]
    if isinstance(r, bool) or not isinstance(r, Integral) or r < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {r!r}")
    return p


def _smooth_params(p):
    """Check the full settings ``p`` of the smooth model; return them."""
    for name, unit in (("dt", "s"), ("rayleigh_scale", "m/s")):
        if not _is_real(p[name]) or not 0.0 < p[name] < math.inf:
            raise ValueError(f"{name} must be positive and finite ({unit}), got {p[name]!r}")
    for name, unit in (("rotation_sd", "rad/s"), ("border_region", "m")):
        if not _is_real(p[name]) or not 0.0 <= p[name] < math.inf:
            raise ValueError(f"{name} must be non-negative and finite ({unit}), got {p[name]!r}")
    if not _is_real(p["wall_slowdown"]) or not 0.0 <= p["wall_slowdown"] <= 1.0:
        raise ValueError(f"wall_slowdown must be a factor in [0, 1], got {p['wall_slowdown']!r}")
    if p["start"] not in _STARTS:
        raise ValueError(
            f"start must be one of {', '.join(_STARTS)}, got {p['start']!r}")
    return p


def _is_real(x):
    # NaN fails every comparison made by the callers, so it is rejected there.
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_encoding(encoding):
    check_choice("encoding", encoding, tuple(ENCODINGS))
