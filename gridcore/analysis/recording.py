"""Run a trained network on fresh trajectories and record what the analyses need.

Two modes:

- :func:`record` runs a minibatch of test trials and keeps unit activity with
  position, heading, speed and boundary flags for every step (memory
  ``M T N`` doubles: 200 MB for the paper's 500 x 500 trials of 100 units);
  :func:`record_trajectories` does the same on given trajectories, so that
  several networks can be compared on the very same trials;
- :func:`path_errors` runs arbitrarily long paths in chunks of time, keeping
  only the squared error per step (10^6-step paths in bounded memory), with
  optional per-chunk callbacks for anything else to accumulate.

Noise is drawn chunk by chunk from the given seed, so both are reproducible.
"""

from dataclasses import dataclass

import numpy as np

from gridcore.model.spec import PAPER
from gridcore.sim.trajectories import simulate
from gridcore.util.checks import check_nonneg_float, check_positive_int


@dataclass
class Recording:
    """Network activity along test trials, flattened over trials and steps (S = M T samples).

    Attributes
    ----------
    activity : (S, N) rates u_t
    outputs : (S, 2) network estimate y_t of the position (arena units)
    positions : (S, 2) true positions p_t (arena units)
    speed : (S,) speed of the move after t (arena units per step)
    heading : (S,) heading of that move (rad, [-pi, pi))
    boundary : (S,) bool, wall re-sample at that step
    n_trials, n_steps : int, M and T (reshape to (M, T, ...) to recover trials)
    """

    activity: np.ndarray
    outputs: np.ndarray
    positions: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    boundary: np.ndarray
    n_trials: int
    n_steps: int


def _noise_chunks(rng, m, t_steps, n, noise_std, chunk_steps):
    """Yield ``(lo, hi, noise[:, lo:hi])`` with noise drawn one chunk at a time (None if noise_std = 0)."""
    for lo in range(0, t_steps, chunk_steps):
        hi = min(lo + chunk_steps, t_steps)
        yield lo, hi, (rng.standard_normal((m, hi - lo, n)) * noise_std if noise_std > 0 else None)


def run_chunks(params, backend, inputs, noise_std, seed, spec=PAPER, chunk_steps=10_000, keep_u=True):
    """Run the network along ``inputs`` in chunks of time; yield ``(lo, hi, StreamResult)``.

    Parameters
    ----------
    params : Params
    backend : a backend from ``gridcore.get_backend``
    inputs : (M, T, Nin) network inputs
    noise_std : float >= 0; sd of the unit noise xi_t (as in training)
    seed : int or numpy Generator; source of the noise
    spec : ModelSpec; the network's model
    chunk_steps : int; steps per chunk, bounds the memory (M chunk_steps N doubles)
    keep_u : bool; also return the rates of each chunk
    """
    noise_std = check_nonneg_float("noise_std", noise_std)
    chunk_steps = check_positive_int("chunk_steps", chunk_steps)
    rng = np.random.default_rng(seed)
    m, t_steps, _ = inputs.shape
    x0 = None
    for lo, hi, noise in _noise_chunks(rng, m, t_steps, params.n_units, noise_std, chunk_steps):
        res = backend.forward_stream(params, inputs[:, lo:hi], noise, x0=x0, spec=spec, keep_u=keep_u)
        x0 = res.x_end
        yield lo, hi, res


def record(params, backend, arena, n_trials, n_steps, seed, encoding="speed-angle", noise_std=0.0,
           spec=PAPER, motion=None):
    """Run ``n_trials`` fresh test trials and keep activity with the path variables.

    Parameters
    ----------
    params : Params
    backend : backend object
    arena : Arena or name
    n_trials, n_steps : int
    seed : int; trajectories and noise come from it
    encoding : input encoding the network was trained with
    noise_std : float; unit noise during the test (the training level reproduces the paper)
    motion : dict of trajectory settings (overrides of MOTION_DEFAULTS)

    Returns
    -------
    Recording
    """
    rng = np.random.default_rng(seed)
    traj = simulate(arena, n_trials, n_steps, rng, encoding=encoding, **(motion or {}))
    return record_trajectories(params, backend, traj, rng, noise_std, spec)


def record_trajectories(params, backend, traj, seed, noise_std=0.0, spec=PAPER):
    """Run the network along given trajectories and keep activity with the path variables.

    Use it to run several networks (training snapshots, ablations) on the
    very same test trials: same trajectories, and the same noise for the
    same ``seed``.

    Parameters
    ----------
    params : Params
    backend : backend object
    traj : Trajectories (M trials of T steps, inputs in the network's encoding)
    seed : int or numpy Generator; source of the unit noise
    noise_std : float >= 0; sd of the unit noise xi_t
    spec : ModelSpec; the network's model

    Returns
    -------
    Recording
    """
    n_trials, n_steps, _ = traj.inputs.shape
    n = params.n_units
    activity = np.empty((n_trials, n_steps, n))
    outputs = np.empty((n_trials, n_steps, params.n_out))
    for lo, hi, res in run_chunks(params, backend, traj.inputs, noise_std, seed, spec):
        activity[:, lo:hi] = res.u
        outputs[:, lo:hi] = res.y
    s = n_trials * n_steps
    return Recording(activity=activity.reshape(s, n), outputs=outputs.reshape(s, -1),
                     positions=traj.positions.reshape(s, 2), speed=traj.speed.reshape(s),
                     heading=traj.heading.reshape(s), boundary=traj.boundary.reshape(s),
                     n_trials=n_trials, n_steps=n_steps)


def path_errors(params, backend, traj, noise_std, seed, spec=PAPER, chunk_steps=10_000, on_chunk=None):
    """Squared position error per step along (possibly very long) trajectories.

    Parameters
    ----------
    traj : Trajectories (M trials of T steps; T may be 10^6)
    on_chunk : callable(lo, hi, StreamResult) or None; called for every chunk
        (the rates ``u`` are included when given), e.g. to accumulate rate maps

    Returns
    -------
    (M, T) squared error ``|y_t - p_t|^2`` (arena units squared)
    """
    m, t_steps, _ = traj.inputs.shape
    err = np.empty((m, t_steps))
    for lo, hi, res in run_chunks(params, backend, traj.inputs, noise_std, seed, spec, chunk_steps,
                                  keep_u=on_chunk is not None):
        err[:, lo:hi] = np.sum((res.y - traj.positions[:, lo:hi]) ** 2, axis=2)
        if on_chunk is not None:
            on_chunk(lo, hi, res)
    return err
