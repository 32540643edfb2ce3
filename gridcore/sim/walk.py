"""The Numba kernels of the simulated walks and the arena test they call.

:func:`walk` runs the paper's motion model of :mod:`gridcore.sim.trajectories`
and :func:`smooth_walk` its smooth-foraging model, both on pre-drawn random
numbers; :func:`point_inside` is the one arena test of
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

__all__ = ["KIND_POLYGON", "KIND_CIRCLE", "point_inside", "walk", "smooth_walk"]

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


@njit(cache=True)
def _nearest_wall(kind, params, x, y):
    """Distance to the nearest wall (arena units) and its outward unit normal, for (x, y) inside.

    For a convex polygon the distance to the boundary of an inside point is
    the smallest distance to a wall's line; for the circle the normal is the
    radial direction (any at the centre).
    """
    if kind == KIND_CIRCLE:
        r = math.sqrt(x * x + y * y)
        if r > 0.0:
            return params[0, 2] - r, x / r, y / r
        return params[0, 2], 1.0, 0.0
    best = math.inf
    kbest = 0
    for k in range(params.shape[0]):
        d = params[k, 2] - (params[k, 0] * x + params[k, 1] * y)
        if d < best:
            best = d
            kbest = k
    return best, params[kbest, 0], params[kbest, 1]


@njit(cache=True)
def _first_wall(kind, params, x, y, ux, uy, margin):
    """Where the ray (x, y) + t (ux, uy), t >= 0, from an inside point first comes within ``margin`` of a wall.

    Returns
    -------
    t : float
        Distance along the unit direction (arena units, >= 0; inf if the
        ray never gets there).
    nx, ny : float
        Outward unit normal of the wall at that point.
    """
    if kind == KIND_CIRCLE:
        rad = params[0, 2] - margin
        b = x * ux + y * uy
        disc = b * b - (x * x + y * y - rad * rad)
        t = max(0.0, -b + math.sqrt(max(disc, 0.0)))
        cx = x + t * ux
        cy = y + t * uy
        r = math.sqrt(cx * cx + cy * cy)
        if r > 0.0:
            return t, cx / r, cy / r
        return t, ux, uy
    best = math.inf
    kbest = 0
    for k in range(params.shape[0]):
        nu = params[k, 0] * ux + params[k, 1] * uy
        if nu > 0.0:
            t = (params[k, 2] - margin - (params[k, 0] * x + params[k, 1] * y)) / nu
            if t < best:
                best = t
                kbest = k
    return max(best, 0.0), params[kbest, 0], params[kbest, 1]


@njit(cache=True)
def smooth_walk(kind, geometry, margin, start, heading0, speed, rotation, border,
                slowdown, positions, heading, boundary, final):
    """Run all trials of the smooth-foraging model (njit); the caller pre-draws every random number.

    Per step: if the nearest wall is closer than ``border`` and the heading
    points towards it (angle to its outward normal below pi/2), the heading
    turns to run parallel to that wall and the speed is multiplied by
    ``slowdown``; the pre-drawn rotation is added; the move is taken. A
    move that would still leave the arena is reflected off the first wall
    it crosses, and if the reflected move leaves too (a corner), it is cut
    short where it would come within ``margin`` of a wall.

    Fills ``positions``, ``heading``, ``boundary`` and ``final`` and
    overwrites ``speed`` with the speeds used.

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
        Proposed speeds (arena units per step, Rayleigh speed times dt);
        replaced in place by the speeds used.
    rotation : ndarray of float64, shape (M, T)
        Random heading change of each step (rad; rotational velocity times dt).
    border : float
        Width of the wall region where the walker turns away (arena units).
    slowdown : float
        Speed factor on steps that turn away from a wall.
    positions : ndarray of float64, shape (M, T, 2)
        Output: p_0..p_{T-1} (arena units).
    heading : ndarray of float64, shape (M, T)
        Output: heading of each move (rad, in [-pi, pi)).
    boundary : ndarray of bool, shape (M, T)
        Output (zero-filled by the caller): True where a wall turned, slowed
        or stopped the move.
    final : ndarray of float64, shape (M, 2)
        Output: p_T (arena units).
    """
    n_trials, n_steps = speed.shape
    half_pi = 0.5 * math.pi
    for m in range(n_trials):
        x = start[m, 0]
        y = start[m, 1]
        h = heading0[m]
        for t in range(n_steps):
            positions[m, t, 0] = x
            positions[m, t, 1] = y
            s = speed[m, t]
            turn = rotation[m, t]
            d, wx, wy = _nearest_wall(kind, geometry, x, y)
            if d < border:
                a = _wrap(h - math.atan2(wy, wx))
                if abs(a) < half_pi:       # heading towards the wall: turn parallel to it, slow down
                    boundary[m, t] = True
                    if a > 0.0:
                        turn += half_pi - a
                    elif a < 0.0:
                        turn -= half_pi + a
                    s *= slowdown
            h = _wrap(h + turn)
            ux = math.cos(h)
            uy = math.sin(h)
            nx = x + s * ux
            ny = y + s * uy
            if not point_inside(kind, geometry, nx, ny, margin):
                boundary[m, t] = True
                # Bounce: reflect the direction off the first wall the move crosses.
                _, wx, wy = _first_wall(kind, geometry, x, y, ux, uy, 0.0)
                dot = ux * wx + uy * wy
                ux -= 2.0 * dot * wx
                uy -= 2.0 * dot * wy
                h = _wrap(math.atan2(uy, ux))
                ux = math.cos(h)
                uy = math.sin(h)
                nx = x + s * ux
                ny = y + s * uy
                if not point_inside(kind, geometry, nx, ny, margin):
                    # Still out (a corner): stop where the move reaches the margin.
                    reach, _, _ = _first_wall(kind, geometry, x, y, ux, uy, margin)
                    s = min(s, reach)
                    nx = x + s * ux
                    ny = y + s * uy
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
