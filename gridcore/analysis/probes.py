"""Probes: what a trained network does with controlled inputs (our analysis, not the paper's).

:func:`step_response` asks whether the network integrates: it starts at the
centre at rest with a heading held fixed, takes one moving step, and rests
again. A path integrator moves its output by the step, ``speed * (cos h,
sin h)``, and otherwise keeps it still. The probe reports how far the
output moves because of the step (gain and direction) and where the output
goes with no step at all (a network that guesses position from the heading
alone drifts along the heading).

"Output" is the position the network reports, for either readout (the
place-cell readout decoded, :func:`gridcore.analysis.recording.output_positions`);
under the encoded initial state the probe trials start from the code of the
centre. Decoded place-cell outputs move in jumps between cell centres, so
their gains are coarse for steps shorter than the cells' spacing.
"""

import numpy as np

from gridcore.analysis.recording import output_positions, trial_start_codes
from gridcore.model.spec import PAPER
from gridcore.sim.trajectories import MOTION_DEFAULTS, SMOOTH_MOTION_DEFAULTS, encode
from gridcore.util.checks import check_nonneg_float, check_positive_int


def step_response(params, backend, encoding, speeds=(0.03, 0.07, 0.13), n_headings=72, settle=60,
                  after=60, spec=PAPER, place_cells=None):
    """The output's response to one moving step, for each heading and speed.

    Noise is off. Every probe trial starts at rest at the centre (x_0 = 0,
    or ``Wenc c`` with ``c`` the place-cell code of the centre under the
    encoded initial state), holds heading h for ``settle + 1 + after`` steps
    and moves on step ``settle`` only. The *response* is the output (the
    reported position) at the end minus the output of the same trial without
    the move; the *rest output* is the output at the end of the trial
    without the move (0 for an integrator).

    Parameters
    ----------
    params : Params
    backend : a backend from :func:`gridcore.backends.get_backend`
    encoding : str
        The network's input encoding (``settings.task.encoding``).
    speeds : sequence of float
        Step lengths (arena units); the defaults are about the 10th, 50th and
        90th percentiles of the moving steps of the default motion model.
    n_headings : int
        Headings, evenly spaced over the circle (bin centres in [-pi, pi)).
    settle, after : int
        Steps at rest before and after the move.
    spec : ModelSpec
        The network's model (dt / tau, readout, initial state).
    place_cells : PlaceCells or None
        The run's place cells (``run.place_cells``); required by the
        place-cell readout and the encoded initial state.

    Returns
    -------
    dict
        ``headings`` (K,) rad; ``speeds`` (S,); ``response`` (S, K, 2);
        ``gain`` (S, K) = |response| / speed; ``angle_error`` (S, K) deg,
        the response's direction minus the heading, in (-180, 180];
        ``rest_output`` (K, 2); ``summary``: per speed the median gain and
        median |angle error|, and the median |rest output| and median
        |angle between rest output and heading|.
    """
    speeds = np.array([check_nonneg_float("speeds", s) for s in speeds], dtype=np.float64)
    if speeds.size == 0 or not np.all(speeds > 0):
        raise ValueError(f"speeds must be a non-empty list of positive step lengths, got {list(speeds)}")
    n_headings = check_positive_int("n_headings", n_headings)
    settle = check_positive_int("settle", settle)
    after = check_positive_int("after", after)
    k, t_len = n_headings, settle + 1 + after
    headings = -np.pi + (np.arange(k) + 0.5) * 2 * np.pi / k
    # Trials: [rest; one per speed] x headings, sharing the heading input.
    speed = np.zeros((1 + speeds.size, k, t_len))
    speed[1:, :, settle] = speeds[:, None]
    heading = np.broadcast_to(headings[None, :, None], speed.shape)
    inputs = np.ascontiguousarray(encode(speed, heading, encoding).reshape(-1, t_len, params.n_in))
    noise = np.zeros((inputs.shape[0], t_len, params.n_units))
    codes = trial_start_codes(spec, place_cells, np.zeros((inputs.shape[0], 2)))
    y = backend.forward(params, inputs, noise, spec=spec, start_codes=codes).y[:, -1]
    y_end = output_positions(y, spec, place_cells).reshape(1 + speeds.size, k, 2)
    rest = y_end[0]
    response = y_end[1:] - rest[None]
    gain = np.hypot(response[..., 0], response[..., 1]) / speeds[:, None]
    angle_error = _wrap_deg(np.arctan2(response[..., 1], response[..., 0]) - headings[None])
    rest_angle = _wrap_deg(np.arctan2(rest[:, 1], rest[:, 0]) - headings)
    summary = {
        "speeds": speeds.tolist(),
        "median_gain": np.median(gain, axis=1).tolist(),
        "median_abs_angle_error_deg": np.median(np.abs(angle_error), axis=1).tolist(),
        "median_rest_output": float(np.median(np.hypot(rest[:, 0], rest[:, 1]))),
        "median_abs_rest_angle_to_heading_deg": float(np.median(np.abs(rest_angle))),
    }
    return {"headings": headings, "speeds": speeds, "response": response, "gain": gain,
            "angle_error": angle_error, "rest_output": rest, "settle": settle, "after": after,
            "summary": summary}


def _wrap_deg(rad):
    """Angle in degrees, wrapped to (-180, 180]."""
    return np.rad2deg(np.angle(np.exp(1j * np.asarray(rad))))


# Rayleigh quantiles (10th, 50th, 90th percentile) in units of its scale:
# sqrt(-2 ln(1 - q)).
_RAYLEIGH_Q = np.sqrt(-2.0 * np.log1p(-np.array([0.1, 0.5, 0.9])))


def probe_speeds(task):
    """Step lengths of the probe: the 10th, 50th and 90th percentile of a task's moving speeds.

    Parameters
    ----------
    task : TaskSettings
        ``motion_model`` and ``motion``.

    Returns
    -------
    ndarray, shape (3,)
        Arena units per step. The paper's model: Rayleigh(``speed_scale``)
        quantiles capped at ``max_speed``; the smooth model: quantiles of
        its speed per step, Rayleigh(``rayleigh_scale``) m/s times ``dt`` s
        (one arena unit is one metre; the slowdown at walls is left out).
    """
    if task.motion_model == "smooth":
        motion = {**SMOOTH_MOTION_DEFAULTS, **task.motion}
        return motion["rayleigh_scale"] * motion["dt"] * _RAYLEIGH_Q
    motion = {**MOTION_DEFAULTS, **task.motion}
    return np.minimum(motion["speed_scale"] * _RAYLEIGH_Q, motion["max_speed"])


def run_probe(run, backend):
    """:func:`step_response` of a trained run, at the end and at every snapshot.

    Parameters
    ----------
    run : :class:`gridcore.train.rundir.Run`
    backend : a backend from :func:`gridcore.backends.get_backend`

    Returns
    -------
    dict (JSON-serialisable)
        ``final``: the step response of the final network (arrays as lists;
        speeds at the 10th, 50th and 90th percentile of the run's moving
        speeds, :func:`probe_speeds`); ``over_training``: one ``summary`` per
        snapshot and the final iteration, with ``iteration``.
    """
    task = run.settings.task
    speeds = probe_speeds(task)

    def probe(params):
        return step_response(params, backend, task.encoding, speeds=speeds, spec=run.spec,
                             place_cells=run.place_cells)

    final = probe(run.params)
    over = [{"iteration": it, **probe(run.stage_params(it))["summary"]} for it in sorted(run.snapshots)]
    over.append({"iteration": run.final_iteration, **final["summary"]})
    return {"final": {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in final.items()},
            "over_training": over}


def step_gain(summary):
    """The median gain at the middle probe speed (the run's median moving step; integrator: 1).

    Parameters
    ----------
    summary : dict
        ``step_response(...)["summary"]`` (or ``run_probe(...)["final"]["summary"]``).
    """
    return summary["median_gain"][len(summary["speeds"]) // 2]
