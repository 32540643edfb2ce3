"""Statistics of paths: speeds, stillness, walls, turning, coverage (simulated and real alike).

:func:`path_statistics` describes a :class:`gridcore.sim.trajectories.Trajectories`
(simulated, or a real path from :func:`gridcore.sim.realpaths.prepare`) so
that a real path and a simulated one can be compared side by side
(``python -m gridcore.analyze --trajectory``, ``docs/real_paths.md``).
"""

import numpy as np

from gridcore.analysis.ratemaps import spatial_bins
from gridcore.sim.trajectories import Trajectories
from gridcore.util.checks import check_positive_int

__all__ = ["path_statistics"]


def path_statistics(traj, start=0, dt=None, near=0.1, bins=20):
    """How a set of paths moves: speeds, stillness, walls, turning, coverage.

    Pooled over trials, from step ``start`` on (leave out a lead-in).

    Parameters
    ----------
    traj : Trajectories
    start : int
        First step counted.
    dt : float, optional
        Seconds per step, to also give speeds per second.
    near : float
        "Near a wall" means closer than ``near`` x the inradius.
    bins : int
        Spatial bins (along the longer side) for the coverage.

    Returns
    -------
    dict (JSON-ready)
        ``n_steps``; ``speed`` per step (arena units): mean, sd, median,
        p10, p90, max, mean of moving steps (and ``mean_per_s`` with
        ``dt``); ``fraction_zero_speed``; ``fraction_slow`` (below 10% of the
        mean speed, zeros included); ``fraction_near_wall`` and
        ``mean_wall_distance_rel`` (over the inradius); ``turn_per_moving_step``
        (mean |heading change| between consecutive moving steps, rad) and
        ``turn_per_unit_length`` (rad per arena unit travelled);
        ``boundary_per_1000_steps`` and ``boundary_per_unit_length``;
        ``path_length``; ``coverage`` (fraction of the arena's bins visited).
    """
    if not isinstance(traj, Trajectories):
        raise ValueError(f"traj must be Trajectories, got {type(traj).__name__}")
    start = int(start)
    if not 0 <= start < traj.speed.shape[1]:
        raise ValueError(f"start must be in [0, {traj.speed.shape[1]}), got {start}")
    s = traj.speed[:, start:]
    h = traj.heading[:, start:]
    p = traj.positions[:, start:]
    arena = traj.arena
    moving = s > 0
    turns, length = 0.0, float(s.sum())
    n_turns = 0
    for hm in (h[m][moving[m]] for m in range(len(h))):
        d = np.abs(np.angle(np.exp(1j * np.diff(hm))))
        turns += float(d.sum())
        n_turns += len(d)
    wall = arena.wall_distance(p.reshape(-1, 2)) / arena.inradius
    binning = spatial_bins(arena, check_positive_int("bins", bins))
    counts = np.bincount(binning.flat_index(p.reshape(-1, 2)), minlength=binning.n_bins)
    mean = float(s.mean())
    b = traj.boundary[:, start:]
    out = {
        "n_steps": int(s.size),
        "speed": {"mean": mean, "sd": float(s.std()), "median": float(np.median(s)),
                  "p10": float(np.percentile(s, 10)), "p90": float(np.percentile(s, 90)),
                  "max": float(s.max()),
                  "mean_moving": float(s[moving].mean()) if moving.any() else None},
        "fraction_zero_speed": float(1.0 - moving.mean()),
        "fraction_slow": float(np.mean(s < 0.1 * mean)),
        "near_wall_rel": float(near),
        "fraction_near_wall": float(np.mean(wall < near)),
        "mean_wall_distance_rel": float(wall.mean()),
        "turn_per_moving_step": turns / n_turns if n_turns else None,
        "turn_per_unit_length": turns / length if length > 0 else None,
        "boundary_per_1000_steps": float(1000.0 * b.mean()),
        "boundary_per_unit_length": float(b.sum() / length) if length > 0 else None,
        "path_length": length,
        "coverage": binning.coverage(counts),
        "coverage_bins": int(bins),
    }
    if dt is not None:
        out["speed"]["mean_per_s"] = mean / float(dt)
    return out
