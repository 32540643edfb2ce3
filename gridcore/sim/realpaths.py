"""Recorded paths as network trials: resampling, fitting into an arena, lead-ins, boundary marks.

A recorded path (:class:`PathRecording`, from :func:`make_path`,
:func:`gridcore.sim.pathfiles.read_path` or :mod:`gridcore.sim.ratinabox`)
becomes network trials with :func:`prepare`:

1. :func:`resample` puts the path on the network's time grid ``t0 + k dt``
   by linear interpolation, bridging gaps without valid samples (missing
   rows, NaN) up to ``max_gap`` seconds and refusing longer ones, naming
   where they are;
2. :func:`fit_to_arena` scales the enclosure (``box``) uniformly, centred on
   the origin, to the largest copy that fits inside the arena;
3. a straight *lead-in* from the arena centre to the first position is
   prepended (trained networks start at the centre, ``y_0 = 0``), at the
   training motion's mean speed per step; ``motion["lead_in_steps"]`` says
   how many steps to leave out of any measurement;
4. :func:`to_trajectories` derives speed and heading from the moves (or
   takes the file's), marks boundary interactions (:func:`mark_boundary`)
   and encodes the network inputs with :func:`gridcore.sim.trajectories.encode`.

The network time step ``dt`` has no physical value in the model (speeds are
arena units per step); by default :func:`prepare` picks the ``dt`` at which
the path's mean speed per step equals that of the training motion
(:func:`motion_mean_speed`), so both cover the same distance per step.
:func:`split_trials` cuts a prepared path into trials of the training
length, each reached from the centre.

Reading and writing path files: :mod:`gridcore.sim.pathfiles`; statistics
of paths: :mod:`gridcore.analysis.pathstats`.
"""

import math
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from gridcore.sim.arenas import KIND_CIRCLE, Arena
from gridcore.sim.trajectories import Trajectories, encode, motion_params
from gridcore.util.checks import check_choice, check_positive_int

__all__ = [
    "DEFAULT_MAX_GAP", "MAX_STEPS_PER_SAMPLE", "BOUNDARY_REACH_REL", "PathRecording", "make_path", "resample",
    "fit_to_arena", "motion_mean_speed", "matched_dt", "lead_in", "mark_boundary",
    "to_trajectories", "prepare", "split_trials",
]

DEFAULT_MAX_GAP = 0.5   # s: longest stretch without valid samples that is interpolated
# Network steps per recorded interval, at most: finer steps would be positions invented between
# samples (a 2-sample path of 0.02 s became 294 steps of one straight line).
MAX_STEPS_PER_SAMPLE = 10
# Probe length of a boundary interaction, relative to the inradius: 0.075 is
# the mean moving step of the default motion (Rayleigh mean 0.06 sqrt(pi/2),
# arena units) in the default square (inradius 1).
BOUNDARY_REACH_REL = 0.075
# Scale of the fitted box: a hair under the largest fit, so that round-off
# never puts its corners outside the arena.
_FIT_SHRINK = 1.0 - 1e-9


@dataclass(frozen=True, eq=False)
class PathRecording:
    """One recorded path as read from a file, before it becomes network trials.

    Attributes
    ----------
    time : ndarray of float64, shape (n,)
        Sample times (s), strictly increasing.
    positions : ndarray of float64, shape (n, 2)
        Positions (``units``); rows with NaN are missing samples.
    speed, heading : ndarray of float64, shape (n,), or None
        The file's speed (``units`` per second) and heading (rad) of the move
        from each row to the next, if it had them.
    boundary : ndarray of bool, shape (n,), or None
        The file's boundary flags, if it had them.
    source : str
        Where the path came from (a file name, a data set).
    units : str or None
        Length unit of the positions (``"m"``, ``"arena"``), if known.
    box : tuple of 4 float, or None
        ``(xmin, ymin, xmax, ymax)`` of the enclosure (``units``), if known;
        :func:`fit_to_arena` maps it into the arena.
    meta : dict
        Anything else known (a gridcore file's metadata, a data set's citation).
    """

    time: np.ndarray
    positions: np.ndarray
    speed: np.ndarray = None
    heading: np.ndarray = None
    boundary: np.ndarray = None
    source: str = "arrays"
    units: str = None
    box: tuple = None
    meta: dict = field(default_factory=dict)


def _heading(dx, dy):
    """Heading (rad, in [-pi, pi), the convention of simulate) of moves (dx, dy)."""
    h = np.arctan2(dy, dx)
    return np.where(h >= np.pi, h - 2.0 * np.pi, h)


def _check_box(box, where="box"):
    try:
        b = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be (xmin, ymin, xmax, ymax), got {box!r}") from None
    if len(b) != 4 or not all(math.isfinite(v) for v in b) or not (b[0] < b[2] and b[1] < b[3]):
        raise ValueError(f"{where} must be 4 finite numbers (xmin, ymin, xmax, ymax) with "
                         f"xmin < xmax and ymin < ymax, got {box!r}")
    return b


def make_path(time, positions, *, speed=None, heading=None, boundary=None, source="arrays",
              units=None, box=None, meta=None):
    """Validate arrays of a recorded path and wrap them in a :class:`PathRecording`.

    Parameters
    ----------
    time : array_like, shape (n,)
        Sample times (s), finite and strictly increasing, n >= 2.
    positions : array_like, shape (n, 2)
        Positions (any length unit); NaN marks a missing sample (a NaN in x
        or y makes the whole sample missing), infinities are refused.
    speed, heading : array_like, shape (n,), optional
        Speed (position units per second) and heading (rad) of the move
        from each sample to the next.
    boundary : array_like of bool, shape (n,), optional
    source, units, box, meta
        See :class:`PathRecording`; ``source`` prefixes every error message.

    Returns
    -------
    PathRecording
    """
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2:
        raise ValueError(f"{source}: time must be 1-D with at least 2 samples, got shape {t.shape}")
    bad = ~np.isfinite(t)
    if bad.any():
        raise ValueError(f"{source}: time must be finite; sample {int(np.argmax(bad))} (counting from 0) "
                         f"is {float(t[bad][0])}")
    back = np.diff(t) <= 0
    if back.any():
        i = int(np.argmax(back)) + 1
        raise ValueError(f"{source}: time must be strictly increasing; sample {i} (counting from 0) "
                         f"has t = {float(t[i])!r} s after t = {float(t[i - 1])!r} s")
    p = np.array(positions, dtype=np.float64)
    if p.shape != (len(t), 2):
        raise ValueError(f"{source}: positions must have shape ({len(t)}, 2) like time, got {p.shape}")
    if np.isinf(p).any():
        raise ValueError(f"{source}: positions must not be infinite (sample "
                         f"{int(np.argmax(np.isinf(p).any(axis=1)))}); mark missing samples with NaN")
    p[np.isnan(p).any(axis=1)] = np.nan
    cols = {}
    for name, a in (("speed", speed), ("heading", heading)):
        if a is not None:
            a = np.asarray(a, dtype=np.float64)
            if a.shape != t.shape:
                raise ValueError(f"{source}: {name} must have shape {t.shape} like time, got {a.shape}")
        cols[name] = a
    if boundary is not None:
        boundary = np.asarray(boundary)
        if boundary.shape != t.shape:
            raise ValueError(f"{source}: boundary must have shape {t.shape} like time, "
                             f"got {boundary.shape}")
        boundary = boundary.astype(bool)
    if box is not None:
        box = _check_box(box, f"{source}: box")
    return PathRecording(time=t, positions=p, speed=cols["speed"], heading=cols["heading"],
                         boundary=boundary, source=str(source), units=units, box=box,
                         meta=dict(meta or {}))


# ---------------------------------------------------------------- resampling and fitting


def _valid(path):
    return np.isfinite(path.positions).all(axis=1)


def _window(path, duration):
    """Indices of the valid samples within ``duration`` s of the first valid one."""
    idx = np.flatnonzero(_valid(path))
    if len(idx) < 2:
        raise ValueError(f"{path.source}: fewer than 2 samples with valid (finite) positions")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, Real) or not duration > 0:
            raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
        idx = idx[path.time[idx] <= path.time[idx[0]] + duration]
        if len(idx) < 2:
            raise ValueError(f"{path.source}: fewer than 2 valid samples in the first {duration} s")
    return idx


def resample(path, dt, max_gap=DEFAULT_MAX_GAP, duration=None):
    """A path on the uniform time grid ``t0 + k dt`` (t0: the first valid sample).

    Positions (and the file's speed; heading through its cosine and sine)
    are interpolated linearly between valid samples. Gaps without valid
    samples up to ``max_gap`` seconds are bridged that way; a longer gap is
    an error saying where it is. Leading and trailing missing samples are
    dropped. The file's boundary flags are not carried over (they belong to
    the old sampling).

    Parameters
    ----------
    path : PathRecording
    dt : float
        Grid step (s), > 0.
    max_gap : float
        Longest interval (s) between consecutive valid samples that is
        interpolated.
    duration : float, optional
        Only the first ``duration`` seconds are used (default: all).

    Returns
    -------
    PathRecording
        On the grid; ``meta`` gains ``resample``: ``dt``, ``max_gap``,
        ``gaps_bridged`` (intervals longer than 1.5 x the median sample
        interval) and ``longest_gap_s``.
    """
    if isinstance(dt, bool) or not isinstance(dt, Real) or not 0 < dt < math.inf:
        raise ValueError(f"dt must be a positive finite number of seconds, got {dt!r}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, Real) or not max_gap > 0:
        raise ValueError(f"max_gap must be a positive number of seconds, got {max_gap!r}")
    idx = _window(path, duration)
    t = path.time[idx]
    gaps = np.diff(t)
    long = np.flatnonzero(gaps > max_gap)
    if len(long):
        g = long[0]
        raise ValueError(
            f"{path.source}: no valid position for {gaps[g]:.3g} s, from t = {t[g]:.6g} s (sample "
            f"{idx[g]}) to t = {t[g + 1]:.6g} s (sample {idx[g + 1]}), longer than max_gap = {max_gap} s "
            f"({len(long)} such gap(s) in all); use the path before it (duration), or raise max_gap")
    n = int(np.floor((t[-1] - t[0]) / dt * (1 + 1e-12))) + 1
    if n < 2:
        raise ValueError(f"{path.source}: the path spans {t[-1] - t[0]:.3g} s, less than one step "
                         f"of dt = {dt} s")
    grid = t[0] + dt * np.arange(n)
    pos = np.column_stack([np.interp(grid, t, path.positions[idx, j]) for j in range(2)])
    speed = heading = None
    if path.speed is not None:
        ok = np.isfinite(path.speed[idx])
        speed = np.interp(grid, t[ok], path.speed[idx][ok]) if ok.sum() >= 2 else None
    if path.heading is not None:
        ok = np.isfinite(path.heading[idx])
        if ok.sum() >= 2:
            h = path.heading[idx][ok]
            heading = _heading(np.interp(grid, t[ok], np.cos(h)), np.interp(grid, t[ok], np.sin(h)))
    typical = float(np.median(gaps))
    info = {"dt": float(dt), "max_gap": float(max_gap), "gaps_bridged": int(np.sum(gaps > 1.5 * typical)),
            "longest_gap_s": float(gaps.max()), "first_row": int(idx[0]), "last_row": int(idx[-1])}
    return make_path(grid, pos, speed=speed, heading=heading, source=path.source, units=path.units,
                     box=path.box, meta={**path.meta, "resample": info})


def fit_to_arena(positions, arena, box=None):
    """Scale and centre positions so that the enclosure ``box`` fits inside ``arena``.

    The box is scaled uniformly (no distortion) to the largest copy, centred
    on the origin, that lies inside the arena: a square box fills the
    default square arena exactly; in a hexagon it is the inscribed square.

    Parameters
    ----------
    positions : array_like, shape (..., 2)
        Positions in their own unit (NaN allowed: missing samples).
    arena : Arena
    box : tuple (xmin, ymin, xmax, ymax), optional
        The enclosure in the positions' unit; default their extent.

    Returns
    -------
    positions : ndarray, shape (..., 2)
        Arena units.
    scale : float
        Arena units per position unit.
    centre : tuple of float
        The box centre (position units), mapped to the origin.

    Raises
    ------
    ValueError
        A valid position falls outside the arena (it lay outside the box);
        the message names the first one.
    """
    if not isinstance(arena, Arena):
        raise ValueError(f"arena must be an Arena, got {arena!r}")
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] != 2:
        raise ValueError(f"positions must have shape (..., 2), got {p.shape}")
    flat = p.reshape(-1, 2)
    ok = np.isfinite(flat).all(axis=1)
    if box is None:
        if not ok.any():
            raise ValueError("positions: no finite sample to take the box from")
        box = (*flat[ok].min(axis=0), *flat[ok].max(axis=0))
        if not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError(f"positions span no area (extent {box}); pass the enclosure as box=")
    box = _check_box(box)
    half = 0.5 * np.array([box[2] - box[0], box[3] - box[1]])
    centre = 0.5 * np.array([box[0] + box[2], box[1] + box[3]])
    kind, geom = arena.kernel_geometry()
    if kind == KIND_CIRCLE:
        scale = geom[0, 2] / math.hypot(*half)
    else:
        # Corner farthest along each wall normal: |nx| w/2 + |ny| h/2.
        scale = float(np.min(geom[:, 2] / (np.abs(geom[:, :2]) @ half)))
    scale *= _FIT_SHRINK
    out = (p - centre) * scale
    outside = ok & ~arena.contains(np.where(ok[:, None], out.reshape(-1, 2), 0.0))
    if outside.any():
        k = int(np.argmax(outside))
        raise ValueError(f"positions: {int(outside.sum())} sample(s) lie outside box {box}; the "
                         f"first is sample {k} at {flat[k].tolist()}; pass a box that holds the "
                         "whole path")
    return out, float(scale), tuple(float(c) for c in centre)


def motion_mean_speed(motion=None, moving=False):
    """Expected speed per step of :func:`gridcore.sim.trajectories.simulate`'s motion model.

    Speed is 0 with probability ``p_zero_speed``, else Rayleigh(sigma =
    ``speed_scale``) clipped at ``max_speed`` = m, whose mean is
    ``sigma sqrt(pi/2) erf(m / (sigma sqrt 2))``. Wall handling (which
    rarely shortens a step) is neglected.

    Parameters
    ----------
    motion : dict, optional
        Overrides of ``MOTION_DEFAULTS`` (a run's ``settings.task.motion``).
    moving : bool
        The mean over moving steps only (else over all steps).

    Returns
    -------
    float
        Arena units per step.
    """
    p = motion_params(dict(motion or {}))
    sigma, m = p["speed_scale"], p["max_speed"]
    clip = 1.0 if math.isinf(m) else math.erf(m / (sigma * math.sqrt(2.0)))
    mean = sigma * math.sqrt(math.pi / 2.0) * clip
    return mean if moving else (1.0 - p["p_zero_speed"]) * mean


def matched_dt(path, scale, motion=None, duration=None):
    """The time step (s) at which the path's mean speed per step equals the training motion's.

    The path's mean speed is its length over consecutive valid samples
    divided by the time they span, times ``scale``.

    Parameters
    ----------
    path : PathRecording
    scale : float
        Arena units per position unit (from :func:`fit_to_arena`).
    motion : dict, optional
        The training motion (overrides of ``MOTION_DEFAULTS``).
    duration : float, optional
        Only the first ``duration`` seconds count.

    Returns
    -------
    float
        Seconds per network step.
    """
    idx = _window(path, duration)
    consecutive = np.diff(idx) == 1
    d = np.diff(path.positions[idx], axis=0)[consecutive]
    span = np.diff(path.time[idx])[consecutive]
    length = float(np.hypot(d[:, 0], d[:, 1]).sum()) * scale
    if not length > 0:
        raise ValueError(f"{path.source}: the path never moves; no time step matches its speed")
    return motion_mean_speed(motion) / (length / float(span.sum()))


def lead_in(start, step):
    """Positions of a straight walk from the arena centre towards ``start`` (not including it).

    Parameters
    ----------
    start : array_like, shape (2,)
        Where the path proper begins (arena units).
    step : float
        Longest move (arena units per step), > 0.

    Returns
    -------
    ndarray, shape (n, 2)
        ``n = ceil(|start| / step)`` positions from the origin, equally spaced
        (empty if ``start`` is the origin).
    """
    start = np.asarray(start, dtype=np.float64)
    if not step > 0:
        raise ValueError(f"step must be positive, got {step!r}")
    n = int(math.ceil(math.hypot(*start) / step))
    return start * (np.arange(n) / max(n, 1))[:, None]


# ---------------------------------------------------------------- trajectories


def _derive_moves(positions):
    """Speed (M, T) and heading (M, T) of the moves between consecutive positions (M, T+1, 2).

    A zero-length move keeps the heading of the last move before it (the
    first moves, before any movement, take the first moving heading), so
    that standing still never changes the heading input.
    """
    d = np.diff(positions, axis=1)
    speed = np.hypot(d[..., 0], d[..., 1])
    raw = _heading(d[..., 0], d[..., 1])
    moving = speed > 0
    steps = np.arange(speed.shape[1])
    last = np.maximum.accumulate(np.where(moving, steps, -1), axis=1)
    first = np.argmax(moving, axis=1)[:, None]
    src = np.where(last >= 0, last, first)
    return speed, np.take_along_axis(raw, src, axis=1)


def mark_boundary(positions, speed, heading, arena, reach=None):
    """Boundary interactions of recorded paths: where the wall turned the animal.

    Step t (moving, t >= 1) is an interaction when going on along the
    previous heading for ``reach`` would leave the arena but going along the
    new heading for ``reach`` would not: the path turned away at the wall.
    (In simulated paths the same event is a heading re-sampled because the
    move would leave the arena.)

    Parameters
    ----------
    positions : array_like, shape (M, T, 2)
        p_t (arena units).
    speed, heading : array_like, shape (M, T)
        Speed (arena units per step) and heading (rad) of each move.
    arena : Arena
    reach : float, optional
        Probe length (arena units); default ``BOUNDARY_REACH_REL`` x the
        arena's inradius.

    Returns
    -------
    ndarray of bool, shape (M, T)
    """
    p = np.asarray(positions, dtype=np.float64)
    h = np.asarray(heading, dtype=np.float64)
    s = np.asarray(speed, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 2 or h.shape != p.shape[:2] or s.shape != h.shape:
        raise ValueError(f"positions must have shape (M, T, 2) and speed, heading (M, T); got "
                         f"{p.shape}, {s.shape}, {h.shape}")
    reach = BOUNDARY_REACH_REL * arena.inradius if reach is None else float(reach)
    if not reach > 0:
        raise ValueError(f"reach must be positive (arena units), got {reach!r}")

    def probe_inside(angle):
        return arena.contains(p[:, 1:] + reach * np.stack([np.cos(angle), np.sin(angle)], axis=-1))

    out = np.zeros(h.shape, dtype=bool)
    out[:, 1:] = (s[:, 1:] > 0) & ~probe_inside(h[:, :-1]) & probe_inside(h[:, 1:])
    return out


def to_trajectories(positions, arena, encoding="speed-angle", *, speed=None, heading=None,
                    boundary=None, reach=None, motion=None):
    """Network trials from complete paths p_0..p_T (the moves are the steps).

    Parameters
    ----------
    positions : array_like, shape (M, T + 1, 2) or (T + 1, 2)
        Positions (arena units), finite and inside ``arena``; the last one
        becomes ``final_position``.
    arena : Arena
    encoding : str
        Input encoding (:data:`gridcore.sim.trajectories.ENCODINGS`).
    speed, heading : array_like, shape (M, T), optional
        Speed (arena units per step) and heading (rad) of each move; both or
        neither. Default: derived from the positions (a zero-length move
        keeps the last heading).
    boundary : array_like of bool, shape (M, T), optional
        Default: :func:`mark_boundary` with ``reach``.
    reach : float, optional
        See :func:`mark_boundary`.
    motion : dict, optional
        Stored as ``Trajectories.motion`` (how the path was made).

    Returns
    -------
    Trajectories
    """
    if not isinstance(arena, Arena):
        raise ValueError(f"arena must be an Arena, got {arena!r}")
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[2] != 2 or p.shape[1] < 2:
        raise ValueError(f"positions must have shape (M, T + 1, 2) with T >= 1, got {np.shape(positions)}")
    if not np.isfinite(p).all():
        raise ValueError("positions must be finite (fill gaps with resample first)")
    outside = ~arena.contains(p, tol=1e-9 * arena.inradius)
    if outside.any():
        m, t = np.argwhere(outside)[0]
        raise ValueError(f"positions must lie inside the {arena.name} arena; trial {m}, sample {t} is "
                         f"at {p[m, t].tolist()} ({int(outside.sum())} outside in all)")
    shape = (p.shape[0], p.shape[1] - 1)
    if (speed is None) != (heading is None):
        raise ValueError("speed and heading must be given together (or neither, to derive them)")
    if speed is None:
        speed, heading = _derive_moves(p)
    else:
        speed = np.array(speed, dtype=np.float64)
        heading = np.array(heading, dtype=np.float64)
        if speed.shape != shape or heading.shape != shape:
            raise ValueError(f"speed and heading must have shape {shape} (one per move), got "
                             f"{speed.shape} and {heading.shape}")
        if not (np.isfinite(speed).all() and np.isfinite(heading).all()) or (speed < 0).any():
            raise ValueError("speed must be finite and >= 0 and heading finite")
    if boundary is None:
        boundary = mark_boundary(p[:, :-1], speed, heading, arena, reach)
    else:
        boundary = np.array(boundary, dtype=bool)
        if boundary.shape != shape:
            raise ValueError(f"boundary must have shape {shape} (one per move), got {boundary.shape}")
    return Trajectories(
        inputs=encode(speed, heading, encoding), positions=np.ascontiguousarray(p[:, :-1]),
        speed=np.ascontiguousarray(speed), heading=np.ascontiguousarray(heading), boundary=boundary,
        final_position=np.ascontiguousarray(p[:, -1]), encoding=encoding, arena=arena,
        motion=dict(motion or {}))


def prepare(path, arena, encoding="speed-angle", *, dt=None, motion=None, duration=None,
            max_gap=DEFAULT_MAX_GAP, box=None, with_lead_in=True, inputs="positions", reach=None):
    """A recorded path as one network trial in ``arena`` (see the module docstring).

    Parameters
    ----------
    path : PathRecording
    arena : Arena
        The trained network's arena.
    encoding : str
        The network's input encoding.
    dt : float, optional
        Seconds per network step; default :func:`matched_dt` (same mean
        distance per step as the training motion).
    motion : dict, optional
        The training motion (a run's ``settings.task.motion``): sets the matched
        ``dt`` and the lead-in speed.
    duration : float, optional
        Use only the first ``duration`` seconds.
    max_gap : float
        Longest gap (s) without valid samples that is interpolated.
    box : tuple, optional
        Enclosure (path units) fitted into the arena; default ``path.box``,
        else no rescaling for paths in arena units, else the path's extent.
    with_lead_in : bool
        Prepend a straight walk from the centre to the first position, at
        the training motion's mean speed per step (a walk at its moving
        speed, 10 times faster, is a long run of large steps that networks
        trained on the default motion integrate badly).
    inputs : {"positions", "file"}
        Network inputs from the moves between positions, or from the file's
        speed and heading columns (resampled, converted to arena units per step).
    reach : float, optional
        Boundary probe length (:func:`mark_boundary`).

    Returns
    -------
    Trajectories
        One trial. ``motion`` records how it was made: ``source``, ``dt_s``,
        ``dt_rule`` ("matched mean speed" or "given"), ``scale`` (arena units
        per path unit), ``box``, ``lead_in_steps`` (leave them out of
        measurements), ``samples``, ``duration_s``, ``resample`` and ``inputs``.
    """
    if not isinstance(path, PathRecording):
        raise ValueError(f"path must be a PathRecording (see read_path), got {type(path).__name__}")
    check_choice("inputs", inputs, ("positions", "file"))
    if inputs == "file" and (path.speed is None or path.heading is None):
        raise ValueError(f"{path.source}: inputs='file' needs speed and heading columns")
    box = path.box if box is None else box
    if box is None and path.units == "arena":
        scale, centre = 1.0, (0.0, 0.0)
    else:
        _, scale, centre = fit_to_arena(path.positions, arena, box)
    rule = "given" if dt is not None else "matched mean speed"
    if dt is None:
        dt = matched_dt(path, scale, motion, duration)
    grid = resample(path, dt, max_gap, duration)
    used = len(_window(path, duration))
    if len(grid.time) - 1 > MAX_STEPS_PER_SAMPLE * (used - 1):
        span = grid.time[-1] - grid.time[0]
        raise ValueError(
            f"{path.source}: {used} valid samples over {span:.3g} s would make {len(grid.time) - 1} network "
            f"steps of dt = {dt:.3g} s, more than {MAX_STEPS_PER_SAMPLE} per recorded interval (the positions "
            f"in between would be invented); this dt needs a path of at least "
            f"{math.ceil((len(grid.time) - 1) / MAX_STEPS_PER_SAMPLE) + 1} samples, or give a dt of at least "
            f"{span / (MAX_STEPS_PER_SAMPLE * (used - 1)):.3g} s (--trajectory-dt)")
    pos = (grid.positions - centre) * scale
    outside = ~arena.contains(pos)
    if outside.any():
        k = int(np.argmax(outside))
        raise ValueError(f"{path.source}: position at t = {grid.time[k]:.6g} s maps to "
                         f"{pos[k].tolist()}, outside the {arena.name} arena; pass a box that holds "
                         "the whole path")
    pre = lead_in(pos[0], motion_mean_speed(motion)) if with_lead_in else np.empty((0, 2))
    full = np.vstack([pre, pos])
    speed = heading = None
    if inputs == "file":
        if grid.speed is None or grid.heading is None:
            raise ValueError(f"{path.source}: fewer than 2 finite speed/heading values to resample")
        speed, heading = _derive_moves(full[None])
        speed[0, len(pre):] = grid.speed[:-1] * scale * dt
        heading[0, len(pre):] = grid.heading[:-1]
    info = {"source": path.source, "units": path.units, "dt_s": float(dt), "dt_rule": rule,
            "scale": scale, "box": None if box is None else list(_check_box(box)),
            "centre": list(centre), "lead_in_steps": int(len(pre)), "samples": int(len(pos)),
            "duration_s": float(grid.time[-1] - grid.time[0]), "resample": grid.meta["resample"],
            "inputs": inputs, "boundary_reach": BOUNDARY_REACH_REL * arena.inradius if reach is None
            else float(reach)}
    return to_trajectories(full, arena, encoding, speed=speed, heading=heading, reach=reach, motion=info)


def split_trials(traj, n_steps, motion=None):
    """Cut a one-trial path into trials of ``n_steps`` moves that each start at the centre.

    The path after its lead-in is cut into consecutive pieces of
    ``n_steps`` moves; each gets its own straight lead-in from the centre
    (:func:`lead_in`, at the training motion's mean speed per step), padded
    at the front with steps standing at the centre so that all trials have
    the same length. Use it to test a network on a real path within the
    trial length it was trained on.

    Parameters
    ----------
    traj : Trajectories
        One trial, e.g. from :func:`prepare` (its ``motion["lead_in_steps"]``
        first steps are left out).
    n_steps : int
        Moves per piece (the training trial length T).
    motion : dict, optional
        The training motion (sets the lead-in speed).

    Returns
    -------
    Trajectories
        K = (moves after the lead-in) // n_steps trials of ``L + n_steps``
        steps; speed and heading derived from the positions; ``motion`` is
        the path's with ``lead_in_steps = L`` and ``split``.
    """
    if not isinstance(traj, Trajectories) or traj.speed.shape[0] != 1:
        raise ValueError("traj must be Trajectories holding one trial (a prepared path)")
    n_steps = check_positive_int("n_steps", n_steps)
    start = int(traj.motion.get("lead_in_steps", 0))
    pos = np.concatenate([traj.positions[0, start:], traj.final_position])
    k = (len(pos) - 1) // n_steps
    if k < 1:
        raise ValueError(f"the path has {len(pos) - 1} moves after its lead-in, fewer than one trial "
                         f"of n_steps = {n_steps}")
    step = motion_mean_speed(motion)
    pieces = [pos[i * n_steps:(i + 1) * n_steps + 1] for i in range(k)]
    pres = [lead_in(p[0], step) for p in pieces]
    n_lead = max(len(a) for a in pres)
    trials = np.stack([np.vstack([np.zeros((n_lead - len(a), 2)), a, p]) for a, p in zip(pres, pieces)])
    info = {**traj.motion, "lead_in_steps": n_lead,
            "split": {"n_trials": k, "n_steps": n_steps, "moves_left_out": len(pos) - 1 - k * n_steps}}
    return to_trajectories(trials, traj.arena, traj.encoding, reach=traj.motion.get("boundary_reach"),
                           motion=info)
