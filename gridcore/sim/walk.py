"""The Numba kernel of the simulated walk and the arena test it calls.

:func:`walk` runs the motion model of :mod:`gridcore.sim.trajectories` on
pre-drawn random numbers; :func:`point_inside` is the one arena test of
every kernel, reading the ``(kind, params)`` description of
:meth:`gridcore.sim.arenas.Arena.kernel_geometry` (the kind codes live here
too). They share a module on purpose: Numba's on-disk cache
(``cache=True``) is invalidated by changes to the file that holds a
function, not to the files of the functions it calls, so a kernel and
everything it compiles in must live in one file.
"""

import math

import numpy as np
from numba import njit

__all__ = ["KIND_POLYGON", "KIND_CIRCLE", "point_inside", "walk"]

# Kind codes of Arena.kernel_geometry(); literal ints so njit code can branch on them.
KIND_POLYGON = 0
KIND_CIRCLE = 1

# splitmix64 constants (Steele, Lea & Flood 2014).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def point_inside(kind, params, x, y, margin):
    """Whether (x, y) is at least ``margin`` inside every wall (njit).

    Parameters
    ----------
    kind : int
        ``KIND_POLYGON`` or ``KIND_CIRCLE``, from :meth:`gridcore.sim.arenas.Arena.kernel_geometry`.
    params : ndarray, shape (K, 3)
        Geometry rows from :meth:`gridcore.sim.arenas.Arena.kernel_geometry`.
    x, y : float
        Position (arena units).
    margin : float
        Required clearance from the walls (arena units, >= 0).

    Returns
    -------
    bool
    """
    if kind == KIND_CIRCLE:
        return math.sqrt(x * x + y * y) <= params[0, 2] - margin
    for k in range(params.shape[0]):
        if params[k, 0] * x + params[k, 1] * y > params[k, 2] - margin:
            return False
    return True


@njit(cache=True)
def _mix64(z):
    """splitmix64 finaliser: a bijective scramble of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _hash_uniform(key, trial, step, retry):
    """Uniform in [0, 1) determined by (key, trial, step, retry) alone."""
    z = _mix64(key + _GOLDEN * np.uint64(trial + 1))
    z = _mix64(z + _GOLDEN * np.uint64(step + 1))
    z = _mix64(z + _GOLDEN * np.uint64(retry + 1))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _wrap(angle):
    """Angle wrapped into [-pi, pi) (rad)."""
    a = angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))
    if a >= math.pi:  # round-off at the upper edge
        a -= 2.0 * math.pi
    return a


@njit(cache=True)
def walk(kind, geometry, margin, start, heading0, speed, turn, key,
          max_retries, positions, heading, boundary, final):
    """Run all trials of the motion model (njit); the caller pre-draws every random number.

    Fills ``positions``, ``heading``, ``boundary`` and ``final`` and
    overwrites ``speed`` where the wall fallback clipped it.

    Parameters
    ----------
    kind : int
        ``KIND_POLYGON`` or ``KIND_CIRCLE`` (:meth:`gridcore.sim.arenas.Arena.kernel_geometry`).
    geometry : ndarray of float64, shape (K, 3)
        The arena's geometry rows (see :func:`point_inside`).
    margin : float
        Accepted positions stay this far inside the walls (arena units).
    start : ndarray of float64, shape (M, 2)
        p_0 (arena units).
    heading0 : ndarray of float64, shape (M,)
        Heading before step 0 (rad).
    speed : ndarray of float64, shape (M, T)
        Proposed speeds (arena units per step); clipped in place by the fallback.
    turn : ndarray of float64, shape (M, T)
        Heading change at each step before wall handling (rad).
    key : numpy.uint64
        Key of the wall re-sample hash.
    max_retries : int
        Wall re-samples before turning to the centre.
    positions : ndarray of float64, shape (M, T, 2)
        Output: p_0..p_{T-1} (arena units).
    heading : ndarray of float64, shape (M, T)
        Output: heading of each move (rad, in [-pi, pi)).
    boundary : ndarray of bool, shape (M, T)
        Output (zero-filled by the caller): True where the heading was re-sampled at a wall.
    final : ndarray of float64, shape (M, 2)
        Output: p_T (arena units).
    """
    n_trials, n_steps = speed.shape
    for m in range(n_trials):
        x = start[m, 0]
        y = start[m, 1]
        h = heading0[m]
        for t in range(n_steps):
            positions[m, t, 0] = x
            positions[m, t, 1] = y
            if turn[m, t] != 0.0:          # most steps keep the heading: skip the wrap
                h = _wrap(h + turn[m, t])
            s = speed[m, t]
            if s == 0.0:                   # and most stand still: skip the trigonometry
                heading[m, t] = h
                continue
            nx = x + s * math.cos(h)
            ny = y + s * math.sin(h)
            if not point_inside(kind, geometry, nx, ny, margin):
                boundary[m, t] = True
                ok = False
                for r in range(max_retries):
                    h = _wrap(2.0 * math.pi * _hash_uniform(key, m, t, r) - math.pi)
                    nx = x + s * math.cos(h)
                    ny = y + s * math.sin(h)
                    if point_inside(kind, geometry, nx, ny, margin):
                        ok = True
                        break
                if not ok:
                    # Towards the centre, not past it: stays inside by convexity.
                    h = _wrap(math.atan2(-y, -x))
                    s = min(s, math.sqrt(x * x + y * y))
                    nx = x + s * math.cos(h)
                    ny = y + s * math.sin(h)
                    if not point_inside(kind, geometry, nx, ny, 0.0):
                        s = 0.0  # round-off guard: stay put rather than leave
                        nx = x
                        ny = y
                    speed[m, t] = s
            heading[m, t] = h
            x = nx
            y = ny
        final[m, 0] = x
        final[m, 1] = y
