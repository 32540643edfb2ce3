"""Simulated foraging trajectories and their network inputs (paper Sec. 2.2).

Motion model, per trial and step t = 0..T-1 (units: arena units per step for
speeds, radians for angles):

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

Conventions relied on by the network code: ``positions[:, 0]`` is the start;
``inputs[:, t]`` encodes (speed_t, heading_t), the move from ``positions[:, t]``
to ``positions[:, t+1]``; ``T`` moves are simulated and ``positions`` holds
p_0..p_{T-1} (p_T is ``final_position``).

Determinism: every random number comes from one ``numpy.random.Generator``
(pre-drawn, vectorised, in a fixed order, see :func:`_predraw`), except the
wall re-samples, which the Numba kernel (:func:`gridcore.sim.walk.walk`)
takes from a counter-based hash keyed by (a key drawn from that Generator,
trial, step, retry). Same seed, same bits.

This module holds the Python side: the motion settings
(:data:`MOTION_DEFAULTS`, :func:`motion_params`), :class:`Trajectories`,
:func:`simulate` and the input encodings (:func:`encode`).
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from gridcore.sim.arenas import Arena, make_arena
from gridcore.sim.walk import walk
from gridcore.util.checks import check_choice, check_positive_int

__all__ = [
    "MOTION_DEFAULTS",
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


def simulate(arena, n_trials, n_steps, seed, encoding="speed-angle", **motion):
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
    **motion
        Overrides of :data:`MOTION_DEFAULTS`.

    Returns
    -------
    Trajectories
    """
    if isinstance(arena, str):
        arena = make_arena(arena)
    elif not isinstance(arena, Arena):
        raise ValueError(f"arena must be an Arena or a name, got {arena!r}")
    check_positive_int("n_trials", n_trials)
    check_positive_int("n_steps", n_steps)
    _check_encoding(encoding)
    params = motion_params(motion)
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        rng = np.random.default_rng(seed)
    else:
        raise ValueError(
            f"seed must be a non-negative int or a numpy Generator, got {seed!r}")

    start, heading0, speed, turn, key = _predraw(
        rng, arena, n_trials, n_steps, params)
    kind, geometry = arena.kernel_geometry()
    positions = np.empty((n_trials, n_steps, 2))
    heading = np.empty((n_trials, n_steps))
    boundary = np.zeros((n_trials, n_steps), dtype=np.bool_)
    final = np.empty((n_trials, 2))
    walk(kind, geometry, _WALL_MARGIN_REL * arena.inradius, start, heading0,
          speed, turn, key, params["max_retries"], positions, heading,
          boundary, final)
    return Trajectories(
        inputs=encode(speed, heading, encoding), positions=positions,
        speed=speed, heading=heading, boundary=boundary, final_position=final,
        encoding=encoding, arena=arena, motion=params)


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


def motion_params(motion):
    """The full motion settings: :data:`MOTION_DEFAULTS` updated by ``motion``, validated.

    Parameters
    ----------
    motion : dict
        Overrides of :data:`MOTION_DEFAULTS` (a run's ``settings.task.motion``);
        speeds in arena units per step, angles in rad.

    Returns
    -------
    dict
        Every key of :data:`MOTION_DEFAULTS`.

    Raises
    ------
    ValueError
        An unknown key or a value out of range, named.
    """
    unknown = sorted(set(motion) - set(MOTION_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown motion parameter(s) {unknown}; allowed: "
            f"{', '.join(MOTION_DEFAULTS)}")
    p = {**MOTION_DEFAULTS, **motion}
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


def _is_real(x):
    # NaN fails every comparison made by the callers, so it is rejected there.
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_encoding(encoding):
    check_choice("encoding", encoding, tuple(ENCODINGS))
