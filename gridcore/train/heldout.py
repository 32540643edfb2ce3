"""The held-out position error, and whether a network integrates speed.

:func:`normalised_error` is the one definition of a run's error (the
held-out error of ``log.jsonl``, ``final_metrics.json`` and the analysis's
C1, all on the run's held-out trials, :func:`gridcore.train.loop.held_out_trials`).

On the paper's motion model (90% of steps still, long straight runs) a
network can reach a normalised error of about 0.2 without using the speed
input at all: it integrates the heading at the mean speed. The reference is
that integrator, :func:`heading_baseline`, on the same trials. A network
*integrates speed* (:func:`speed_use`) when its held-out error is at most
:data:`MAX_ERROR_RATIO` of the baseline's and, where a step response was
measured (:func:`gridcore.analysis.probes.step_response`), its median step
gain is above :data:`MIN_STEP_GAIN` (a path integrator's is 1).

A readout can make the test impossible to pass: the place-cell readout
reports positions only as finely as its cells' decoding resolves them, and
on short trials from a known start with smooth motion the heading-only
integrator errs less than that. :func:`readout_floor` is the error of a
perfect integrator read through the readout; when it is above
:data:`MAX_ERROR_RATIO` of the baseline's, no network with that readout
could show it uses speed on those trials, and :func:`speed_use` says it
cannot tell.
"""

import numpy as np

from gridcore.sim.arenas import position_ops

__all__ = ["MAX_ERROR_RATIO", "MIN_STEP_GAIN", "normalised_error", "heading_baseline", "trials_baseline",
           "readout_floor", "speed_use"]

MAX_ERROR_RATIO = 0.5   # held-out error / heading-only integrator's error, at most
MIN_STEP_GAIN = 0.8     # output moved by one step / the step's length, above


def normalised_error(y, targets, arena=None):
    """Mean squared error divided by that of the best constant output.

    The best constant is the mean target (per output) over all trials and
    steps; 1 means no better than always guessing it, 0 is perfect.

    In a periodic arena (:class:`gridcore.sim.arenas.Torus`) errors are
    minimum-image distances and the constant is the circular mean of the
    targets (:meth:`gridcore.sim.arenas.Arena.mean`). Positions that cover
    the torus evenly are about equally far from every constant (mean squared
    distance side^2 / 6), so the normalisation is the error of a guess that
    knows nothing of the position, as in a walled arena.

    Parameters
    ----------
    y, targets : (M, T, Nout)
        Positions (Nout = 2, arena units) when ``arena`` is given.
    arena : Arena or None
        The arena of the positions; None: plain differences.
    """
    diff, mean = position_ops(arena)
    const = np.mean(diff(targets, mean(targets, axis=(0, 1))) ** 2)
    return float(np.mean(diff(y, targets) ** 2) / const)


def heading_baseline(speed, heading, positions, arena, start=None):
    """Normalised error of a path integrator that ignores speed.

    It starts at the centre (or at ``start``: where a network with the
    encoded initial state is told it starts) and on every step moves by the
    mean speed of all steps along the heading, projected back into the arena
    when it would leave it (wrapped, in a periodic arena). On the default motion model it reaches about 0.2
    in the square: a network near that error may be integrating the heading
    alone (check :func:`gridcore.analysis.probes.step_response`).

    Parameters
    ----------
    speed, heading : array_like, shape (M, T)
        Step length (arena units) and heading (rad) of each step.
    positions : array_like, shape (M, T, 2)
        True positions; ``positions[:, t + 1] = positions[:, t] + speed[:, t]
        * (cos, sin)(heading[:, t])`` (:func:`gridcore.sim.trajectories.simulate`).
    arena : Arena
    start : array_like, shape (M, 2), optional
        The estimate's start per trial (default: the centre, the origin).

    Returns
    -------
    float
        :func:`normalised_error` of the estimate.
    """
    s, h = np.asarray(speed, float), np.asarray(heading, float)
    p = np.asarray(positions, float)
    if s.ndim != 2 or s.shape != h.shape or p.shape != (*s.shape, 2):
        raise ValueError(f"speed and heading must have shape (M, T) and positions (M, T, 2), got "
                         f"{s.shape}, {h.shape}, {p.shape}")
    step = s.mean() * np.stack([np.cos(h), np.sin(h)], axis=-1)
    est = np.zeros_like(p)
    if start is not None:
        start = np.asarray(start, float)
        if start.shape != (s.shape[0], 2):
            raise ValueError(f"start must have shape ({s.shape[0]}, 2), got {start.shape}")
        est[:, 0] = start
    for t in range(1, p.shape[1]):
        est[:, t] = _into_arena(est[:, t - 1] + step[:, t - 1], arena)
    return normalised_error(est, p, arena)


def trials_baseline(traj, arena, spec):
    """:func:`heading_baseline` on simulated trials, started where the network is told it starts.

    Parameters
    ----------
    traj : Trajectories
        From :func:`gridcore.sim.trajectories.simulate`.
    arena : Arena
    spec : ModelSpec
        Under the encoded initial state the network is given its start
        position, and so is the baseline; else both start at the centre.
    """
    start = traj.start if spec.initial_state == "encoded" else None
    return heading_baseline(traj.speed, traj.heading, traj.positions, arena, start)


def readout_floor(positions, spec, place_cells=None, chunk=4096):
    """Normalised error of a perfect path integrator read through the network's readout.

    0 for the ``"xy"`` readout, which reports positions as they are. For
    ``"place-cells"``, the true positions' own place-cell codes decoded
    (:meth:`gridcore.sim.placecells.PlaceCells.decode`): the decoding's
    resolution, below which no network of that readout can go.

    Parameters
    ----------
    positions : array_like, shape (M, T, 2)
        True positions (arena units).
    spec : ModelSpec
    place_cells : PlaceCells or None
        The run's place cells; required by the ``"place-cells"`` readout.
    chunk : int
        Positions encoded at a time (bounds the (chunk, N_p) code array).
    """
    p = np.asarray(positions, dtype=np.float64)
    if spec.readout == "xy":
        return 0.0
    if place_cells is None:
        raise ValueError("the 'place-cells' readout needs the run's place_cells to decode positions")
    flat = p.reshape(-1, 2)
    decoded = np.concatenate([place_cells.decode(place_cells.encode(flat[lo:lo + chunk]))
                              for lo in range(0, len(flat), chunk)])
    return normalised_error(decoded.reshape(p.shape), p, place_cells.arena)


def speed_use(error, baseline, step_gain=None, floor=0.0):
    """Whether a network integrates speed, by its held-out error against the baseline's.

    Parameters
    ----------
    error : float
        The network's held-out normalised error.
    baseline : float
        :func:`heading_baseline` on the same trials.
    step_gain : float or None
        The median gain of the step response at the median speed, if measured.
    floor : float
        :func:`readout_floor` on the same trials (0: the x, y readout).

    Returns
    -------
    dict (JSON-ready)
        ``integrates_speed`` (bool: every test given passed; None: the test
        cannot tell, ``floor`` above :data:`MAX_ERROR_RATIO` of
        ``baseline``), ``error_ratio`` (error / baseline), ``readout_floor``
        (if above 0), ``step_gain`` (if given and the test can tell) and
        ``verdict``, one sentence that says which and why.
    """
    ratio = error / baseline if baseline > 0 else float("inf")
    extra = {"readout_floor": float(floor)} if floor > 0 else {}
    if floor > MAX_ERROR_RATIO * baseline:
        return {"integrates_speed": None, "error_ratio": float(ratio), **extra,
                "verdict": f"cannot tell whether it integrates speed: on these trials an integrator that ignores "
                           f"speed errs {baseline:.4f}, and a perfect integrator read through the readout "
                           f"{floor:.4f}, above {MAX_ERROR_RATIO:g} of it (held-out error {error:.3f})"}
    passed = [ratio <= MAX_ERROR_RATIO]
    verdict = (f"held-out error {error:.3f} is {ratio:.2f} of the {baseline:.3f} of an integrator that ignores "
               f"speed (at most {MAX_ERROR_RATIO:g} shows it uses speed)")
    if step_gain is not None:
        passed.append(step_gain > MIN_STEP_GAIN)
        verdict += f"; one step moves its output by {step_gain:.2f} of the step (integrator 1, above " \
                   f"{MIN_STEP_GAIN:g} shows it integrates)"
    integrates = all(passed)
    head = "integrates speed" if integrates else "does not integrate speed"
    gain = {} if step_gain is None else {"step_gain": float(step_gain)}
    return {"integrates_speed": bool(integrates), "error_ratio": float(ratio), **extra, **gain,
            "verdict": f"{head}: {verdict}"}


def _into_arena(q, arena):
    """Points (n, 2) moved into a convex arena (half-plane projections, twice for corners); wrapped if periodic."""
    if arena.periodic:
        return arena.wrap(q)
    if hasattr(arena, "radius"):
        r = np.hypot(q[:, 0], q[:, 1])
        return q * np.minimum(1.0, arena.radius / np.maximum(r, 1e-300))[:, None]
    for _ in range(2):
        for n, off in zip(arena.normals, arena.offsets):
            q = q - np.maximum(q @ n - off, 0.0)[:, None] * n
    return q
