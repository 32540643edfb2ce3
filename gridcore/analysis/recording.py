"""Run a trained network on fresh trajectories and record what the analyses need.

Two modes:

- :func:`record` runs a minibatch of test trials and keeps unit activity with
  position, heading, speed and boundary flags for every step, with trial
  and time axes (a :class:`Recording`; memory
  ``M T N`` doubles: 200 MB for the paper's 500 x 500 trials of 100 units);
  :func:`record_trajectories` does the same on given trajectories, so that
  several networks can be compared on the very same trials;
- :func:`path_errors` runs arbitrarily long paths in chunks of time, keeping
  only the squared error per step (10^6-step paths in bounded memory), with
  optional per-chunk callbacks for anything else to accumulate.

Noise is drawn chunk by chunk from the given seed, so both are reproducible.

Either readout and either initial state (:class:`gridcore.model.spec.ModelSpec`):
outputs are kept as the positions they report (:func:`output_positions`:
x, y as they are, place-cell logits decoded), and under the ``"encoded"``
initial state each trial starts from ``x_0 = Wenc c``, ``c`` the place-cell
code of its start position (:func:`trial_start_codes`); a run's place cells
are ``run.place_cells``.
"""

from dataclasses import dataclass, replace

import numpy as np

from gridcore.analysis.ratemaps import rate_maps
from gridcore.model.spec import PAPER
from gridcore.sim.arenas import Arena
from gridcore.sim.placecells import PlaceCells, outputs_to_positions
from gridcore.sim.trajectories import simulate
from gridcore.util.checks import check_nonneg_float, check_positive_int


@dataclass(frozen=True, eq=False)
class Recording:
    """Network activity along M test trials of T steps, with the path variables of every step.

    Attributes
    ----------
    rates : ndarray, shape (M, T, N)
        Unit rates u_t (tanh units: in [-1, 1]).
    outputs : ndarray, shape (M, T, 2)
        The network's estimate of the position (arena units): y_t for the
        x, y readout, the decoded logits for the place-cell readout
        (:func:`output_positions`).
    positions : ndarray, shape (M, T, 2)
        True positions p_t (arena units).
    speed : ndarray, shape (M, T)
        Speed of the move after t (arena units per step).
    heading : ndarray, shape (M, T)
        Heading of that move (rad, [-pi, pi)).
    boundary : ndarray of bool, shape (M, T)
        Boundary interaction (wall re-sample) at that step.
    arena : Arena
        The arena of the trials.
    """

    rates: np.ndarray
    outputs: np.ndarray
    positions: np.ndarray
    speed: np.ndarray
    heading: np.ndarray
    boundary: np.ndarray
    arena: Arena

    @property
    def n_trials(self):
        """M, the number of trials."""
        return self.rates.shape[0]

    @property
    def n_steps(self):
        """T, the steps per trial."""
        return self.rates.shape[1]

    @property
    def activity(self):
        """The rates with trials concatenated into one path: a view of shape (M T, N)."""
        return self.rates.reshape(-1, self.rates.shape[2])

    def from_step(self, start):
        """The recording from step ``start`` of every trial on (e.g. after a real path's lead-in).

        Parameters
        ----------
        start : int
            In [0, T).

        Returns
        -------
        Recording
            Views of steps ``start..T-1``.
        """
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < self.n_steps:
            raise ValueError(f"start must be an int in [0, {self.n_steps}) (the steps of a trial), got {start!r}")
        return replace(self, **{k: getattr(self, k)[:, start:] for k in _STEP_FIELDS})

    def rate_maps(self, bins=20, smooth=None):
        """Mean rate of every unit per spatial bin, over all trials and steps.

        Parameters
        ----------
        bins : int
            Bins along the longer side of the arena's bounding box
            (:func:`gridcore.analysis.ratemaps.spatial_bins`).
        smooth : float or None
            Gaussian smoothing sigma (bins); the analysis classifies maps
            smoothed with 1.0.

        Returns
        -------
        ndarray, shape (N, H, W)
            ``maps[u, i, j]``: unit u, row i (y, from the bottom), column j
            (x); NaN where unvisited or outside the arena.
        """
        return rate_maps(self.rates, self.positions, self.arena, bins, smooth)


_STEP_FIELDS = ("rates", "outputs", "positions", "speed", "heading", "boundary")


# Outputs held at once, in doubles: recordings of many trials under the
# place-cell readout (Nout = Np outputs per step) run in chunks of time short
# enough that one chunk's outputs stay within this (256 MB), and decoding
# works on blocks of rows within _DECODE_BUDGET (its index temporaries).
_OUTPUT_BUDGET = 2**25
_DECODE_BUDGET = 2**22


def trial_start_codes(spec, place_cells, start):
    """The start codes a forward pass of trials starting at ``start`` needs.

    Parameters
    ----------
    spec : ModelSpec
    place_cells : PlaceCells or None
        The run's place cells (``run.place_cells``); required under the
        ``"encoded"`` initial state.
    start : array_like, shape (M, 2)
        Start positions p_0 (arena units), e.g. ``Trajectories.start``.

    Returns
    -------
    ndarray, shape (M, Nc), or None
        ``place_cells.encode(start)`` under the ``"encoded"`` initial state
        (``x_0 = Wenc c``); None under ``"zero"`` (``x_0 = 0``).
    """
    if spec.initial_state != "encoded":
        return None
    if not isinstance(place_cells, PlaceCells) or place_cells.n_cells != spec.n_place_cells:
        raise ValueError(f"the 'encoded' initial state needs the run's PlaceCells ({spec.n_place_cells} cells) "
                         f"to encode the start positions, got {place_cells!r}")
    return place_cells.encode(np.asarray(start, dtype=np.float64))


def output_positions(y, spec, place_cells=None):
    """The positions outputs ``y`` report (arena units), for either readout.

    :func:`gridcore.sim.placecells.outputs_to_positions` over blocks of rows,
    so that decoding many place-cell outputs keeps its temporaries bounded.

    Parameters
    ----------
    y : ndarray, shape (..., Nout)
    spec : ModelSpec
    place_cells : PlaceCells or None
        Required by the ``"place-cells"`` readout.

    Returns
    -------
    ndarray of float64, shape (..., 2)
    """
    y = np.asarray(y, dtype=np.float64)
    if spec.readout == "xy":
        return outputs_to_positions(y, spec, place_cells)
    flat = y.reshape(-1, y.shape[-1])
    out = np.empty((len(flat), 2))
    rows = max(1, _DECODE_BUDGET // max(1, flat.shape[1]))
    for lo in range(0, len(flat), rows):
        out[lo:lo + rows] = outputs_to_positions(flat[lo:lo + rows], spec, place_cells)
    return out.reshape(*y.shape[:-1], 2)


def _chunk_for_outputs(chunk_steps, n_trials, n_out):
    """``chunk_steps``, shortened so that one chunk's outputs fit :data:`_OUTPUT_BUDGET` doubles."""
    return max(1, min(chunk_steps, _OUTPUT_BUDGET // max(1, n_trials * n_out)))


def _noise_chunks(rng, m, t_steps, n, noise_std, chunk_steps):
    """Yield ``(lo, hi, noise[:, lo:hi])`` with noise drawn one chunk at a time (None if noise_std = 0)."""
    for lo in range(0, t_steps, chunk_steps):
        hi = min(lo + chunk_steps, t_steps)
        yield lo, hi, (rng.standard_normal((m, hi - lo, n)) * noise_std if noise_std > 0 else None)


def run_chunks(params, backend, inputs, noise_std, seed, spec=PAPER, chunk_steps=10_000, keep_u=True,
               start_codes=None):
    """Run the network along ``inputs`` in chunks of time; yield ``(lo, hi, StreamResult)``.

    The first chunk starts from the spec's initial state (``x_0 = 0``, or
    ``Wenc c`` from ``start_codes`` under ``"encoded"``); every later chunk
    continues from where the previous one ended (``x0 = x_end``), so the
    chunks together are one forward pass.

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
    start_codes : (M, Nc) array or None; the place-cell codes of the start
        positions, required by the ``"encoded"`` initial state
        (:func:`trial_start_codes`)
    """
    noise_std = check_nonneg_float("noise_std", noise_std)
    chunk_steps = check_positive_int("chunk_steps", chunk_steps)
    rng = np.random.default_rng(seed)
    m, t_steps, _ = inputs.shape
    x0 = None
    for lo, hi, noise in _noise_chunks(rng, m, t_steps, params.n_units, noise_std, chunk_steps):
        if x0 is None:
            res = backend.forward_stream(params, inputs[:, lo:hi], noise, spec=spec, keep_u=keep_u,
                                         start_codes=start_codes)
        else:
            res = backend.forward_stream(params, inputs[:, lo:hi], noise, x0=x0, spec=spec, keep_u=keep_u)
        x0 = res.x_end
        yield lo, hi, res


def record(params, backend, arena, n_trials, n_steps, seed, encoding="speed-angle", noise_std=0.0,
           spec=PAPER, motion=None, motion_model="paper", place_cells=None):
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
    spec : ModelSpec; the network's model
    motion : dict of trajectory settings (overrides of the motion model's defaults)
    motion_model : {"paper", "smooth"}; the motion model the network was trained on
    place_cells : PlaceCells or None; the run's place cells (the place-cell
        readout and the encoded initial state need them)

    Returns
    -------
    Recording
    """
    rng = np.random.default_rng(seed)
    traj = simulate(arena, n_trials, n_steps, rng, encoding=encoding, motion_model=motion_model,
                    **(motion or {}))
    return record_trajectories(params, backend, traj, rng, noise_std, spec, place_cells)


def record_trajectories(params, backend, traj, seed, noise_std=0.0, spec=PAPER, place_cells=None,
                        chunk_steps=10_000):
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
    place_cells : PlaceCells or None; the run's place cells (the place-cell
        readout decodes with them, the encoded initial state encodes
        ``traj.start`` with them)
    chunk_steps : int; steps per chunk of the stream (shortened for many
        place-cell outputs, see :data:`_OUTPUT_BUDGET`)

    Returns
    -------
    Recording
    """
    n_trials, n_steps, _ = traj.inputs.shape
    n = params.n_units
    codes = trial_start_codes(spec, place_cells, traj.start)
    chunk_steps = _chunk_for_outputs(check_positive_int("chunk_steps", chunk_steps), n_trials, params.n_out)
    activity = np.empty((n_trials, n_steps, n))
    outputs = np.empty((n_trials, n_steps, 2))
    for lo, hi, res in run_chunks(params, backend, traj.inputs, noise_std, seed, spec, chunk_steps,
                                  start_codes=codes):
        activity[:, lo:hi] = res.u
        outputs[:, lo:hi] = output_positions(res.y, spec, place_cells)
    return Recording(rates=activity, outputs=outputs, positions=traj.positions, speed=traj.speed,
                     heading=traj.heading, boundary=traj.boundary, arena=traj.arena)


def path_errors(params, backend, traj, noise_std, seed, spec=PAPER, chunk_steps=10_000, on_chunk=None,
                place_cells=None):
    """Squared position error per step along (possibly very long) trajectories.

    Parameters
    ----------
    params, backend, noise_std, seed, spec : as for :func:`run_chunks`
    traj : Trajectories (M trials of T steps; T may be 10^6)
    chunk_steps : int; steps per chunk (shortened for many place-cell outputs)
    on_chunk : callable(lo, hi, StreamResult) or None; called for every chunk
        (the rates ``u`` are included when given), e.g. to accumulate rate maps
    place_cells : PlaceCells or None; the run's place cells (see :func:`record_trajectories`)

    Returns
    -------
    (M, T) squared error ``|e_t - p_t|^2`` (arena units squared) of the
    position estimate ``e_t`` (:func:`output_positions`). A network whose
    activity overflows (a ReLU network can grow without bound on paths far
    longer than its trials) has an infinite error from the first step at
    which any path's outputs are not finite; the paths are not run further,
    and ``on_chunk`` does not see that chunk.
    """
    m, t_steps, _ = traj.inputs.shape
    codes = trial_start_codes(spec, place_cells, traj.start)
    chunk_steps = _chunk_for_outputs(check_positive_int("chunk_steps", chunk_steps), m, params.n_out)
    err = np.full((m, t_steps), np.inf)
    for lo, hi, res in run_chunks(params, backend, traj.inputs, noise_std, seed, spec, chunk_steps,
                                  keep_u=on_chunk is not None, start_codes=codes):
        bad = np.flatnonzero(~np.isfinite(res.y).all(axis=(0, 2)))
        end = hi if len(bad) == 0 else lo + int(bad[0])
        est = output_positions(res.y[:, :end - lo], spec, place_cells)
        err[:, lo:end] = traj.arena.squared_distance(est, traj.positions[:, lo:end])
        if end < hi:
            break
        if on_chunk is not None:
            on_chunk(lo, hi, res)
    return err
