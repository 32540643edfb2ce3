"""Paths from RatInABox (optional: ``pip install 'gridcore[ratinabox]'``).

- Real rat paths shipped inside the ``ratinabox`` package (no download):
  ``sargolini`` (Sargolini et al. 2006, Science, doi:10.1126/science.1125572:
  a rat foraging in a 1 m x 1 m box, 50 Hz, about 600 s) and ``tanni``
  (Tanni et al. 2022, Curr. Biol., doi:10.1016/j.cub.2022.06.046: 3.5 m x
  2.5 m, 30 Hz, about 7300 s). Positions are in metres. The files are read
  straight from the installed package's ``data/`` folder, without importing
  it (importing RatInABox takes seconds and loads pyplot).
- RatInABox's own random-motion model (smoothed Ornstein-Uhlenbeck speed and
  rotation, wall repulsion, thigmotaxis; its defaults were fit to the
  Sargolini data): :func:`random_motion`.

Both give a :class:`gridcore.sim.realpaths.PathRecording`, which
:func:`gridcore.sim.realpaths.prepare` turns into network trials.

- A trained network running online inside RatInABox: :func:`network_neurons`
  makes a RatInABox ``Neurons`` object whose N neurons are the network's
  units, stepped once per ``Neurons.update()`` from the ``Agent``'s last
  move, so RatInABox's own plots (``plot_rate_map(method="history")``,
  ``plot_rate_timeseries``) show gridcore units; :func:`run_neurons` builds
  it from a trained run.
"""

import contextlib
import functools
import importlib.util
import math
import os
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral, Real

import numpy as np

from gridcore.sim.realpaths import make_path
from gridcore.sim.stepper import Stepper
from gridcore.sim.trajectories import encode, n_inputs
from gridcore.util.checks import check_choice

__all__ = ["DATASETS", "dataset_file", "load_dataset", "sargolini", "random_motion", "network_neurons",
           "run_neurons", "neurons_class"]

# The recordings shipped in RatInABox's data/ folder; boxes in metres.
DATASETS = {
    "sargolini": {"file": "sargolini.npz", "box": (0.0, 0.0, 1.0, 1.0),
                  "citation": "Sargolini et al. (2006) Science 312:758, doi:10.1126/science.1125572"},
    # The box is the tracked extent: a few positions lie a little below 0.
    "tanni": {"file": "tanni.npz", "box": None,
              "citation": "Tanni et al. (2022) Curr. Biol. 32:3505, doi:10.1016/j.cub.2022.06.046"},
}
_MISSING = "RatInABox is not installed; install it with: pip install 'gridcore[ratinabox]'"


def _package_dir():
    """The installed ratinabox package folder, found without importing it."""
    spec = importlib.util.find_spec("ratinabox")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(_MISSING)
    return list(spec.submodule_search_locations)[0]


def _version():
    try:
        return version("ratinabox")
    except PackageNotFoundError:
        return None


def dataset_file(name):
    """Path of a recording inside the installed ratinabox package.

    Parameters
    ----------
    name : {"sargolini", "tanni"}

    Returns
    -------
    str

    Raises
    ------
    ImportError
        RatInABox is not installed.
    FileNotFoundError
        This RatInABox version does not ship the file.
    """
    check_choice("dataset", name, tuple(DATASETS))
    file = os.path.join(_package_dir(), "data", DATASETS[name]["file"])
    if not os.path.exists(file):
        raise FileNotFoundError(f"{file}: RatInABox {_version()} does not ship the {name} data")
    return file


def load_dataset(name="sargolini"):
    """A recorded rat path shipped with RatInABox.

    Parameters
    ----------
    name : {"sargolini", "tanni"}

    Returns
    -------
    PathRecording
        Time (s, from the recording's clock) and positions (m); ``box`` is
        the enclosure (Sargolini: (0, 0, 1, 1); Tanni: the tracked extent);
        ``meta`` has the citation and the RatInABox version.
    """
    file = dataset_file(name)
    with np.load(file, allow_pickle=False) as z:
        t, pos = z["t"], z["pos"]
    return make_path(t, pos, source=f"ratinabox:{name}", units="m", box=DATASETS[name]["box"],
                     meta={"dataset": name, "file": file, "citation": DATASETS[name]["citation"],
                           "ratinabox_version": _version()})


def sargolini():
    """The Sargolini et al. (2006) path (1 m box, 50 Hz, about 600 s); see :func:`load_dataset`."""
    return load_dataset("sargolini")


@contextlib.contextmanager
def _global_seed(seed):
    """Seed NumPy's global generator (RatInABox draws from it) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def random_motion(duration=600.0, seed=0, dt=0.02, size=1.0, **agent_params):
    """A path of RatInABox's random-motion Agent in a square box.

    Parameters
    ----------
    duration : float
        Seconds simulated (> 0); about 0.5 ms of wall time per step.
    seed : int
        Seeds NumPy's global generator for the simulation (RatInABox has
        no generator argument); the caller's global state is restored.
    dt : float
        RatInABox's time step (s); 0.02 samples like the Sargolini data.
    size : float
        Side of the square box (m).
    **agent_params
        RatInABox ``Agent`` parameters (``speed_mean``, ``thigmotaxis``, ...);
        unknown names raise RatInABox's error.

    Returns
    -------
    PathRecording
        Time (s) and positions (m), ``box = (0, 0, size, size)``; ``meta``
        holds every parameter.
    """
    for name, v in (("duration", duration), ("dt", dt), ("size", size)):
        if isinstance(v, bool) or not isinstance(v, Real) or not 0 < v < np.inf:
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    n = int(round(duration / dt))
    if n < 2:
        raise ValueError(f"duration ({duration} s) must cover at least 2 steps of dt = {dt} s")
    _package_dir()
    import ratinabox
    from ratinabox.Agent import Agent
    from ratinabox.Environment import Environment

    ratinabox.verbose = False
    params = {"dt": float(dt), "save_history": False, **agent_params}
    with _global_seed(int(seed)):
        env = Environment(params={"scale": float(size), "aspect": 1.0})
        agent = Agent(env, params=params)
        pos = np.empty((n, 2))
        for k in range(n):
            agent.update()
            pos[k] = agent.pos
    t = dt * np.arange(1, n + 1)
    return make_path(t, pos, source="ratinabox:random_motion", units="m",
                     box=(0.0, 0.0, float(size), float(size)),
                     meta={"model": "ratinabox.Agent random motion", "seed": int(seed),
                           "duration_s": float(duration), "size_m": float(size),
                           "agent_params": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                            for k, v in agent.params.items()},
                           "ratinabox_version": _version()})


# ---- a trained network as RatInABox neurons


@functools.cache
def neurons_class():
    """The RatInABox ``Neurons`` subclass of :func:`network_neurons` (made on first use:
    importing RatInABox takes seconds and loads pyplot)."""
    _package_dir()
    import ratinabox
    from ratinabox.Neurons import Neurons

    ratinabox.verbose = False

    class GridcoreNeurons(Neurons):
        """The units of a gridcore network, stepped online by a RatInABox ``Agent``.

        Each ``update()`` (call it after ``Agent.update()``) takes the agent's
        last move, ``Agent.measured_velocity * Agent.dt`` (m), converts it to
        the network's units (``units_per_metre``) and input encoding
        (speed per step, heading), takes one step of the network and sets
        ``firingrate`` to the N rates of the new state. ``estimate`` is the
        position the network reports, in the Environment's coordinates (m).
        Rates depend on the path, not on the position alone: there is no
        ground-truth rate map, so plot with ``plot_rate_map(method="history")``.
        """

        default_params = {"name": "gridcore"}

        def __init__(self, Agent, stepper, encoding, units_per_metre, params=None):
            self.stepper = stepper
            self.encoding = encoding
            self.units_per_metre = float(units_per_metre)
            extent = np.asarray(Agent.Environment.extent, dtype=np.float64)
            self.origin = 0.5 * (extent[0::2] + extent[1::2])    # the arena's centre, in m
            super().__init__(Agent, {"n": stepper.params.n_units, **(params or {})})
            self.reset()

        def to_arena(self, pos):
            """Environment positions (m), (..., 2) -> arena units, centred on the arena."""
            return (np.asarray(pos, dtype=np.float64) - self.origin) * self.units_per_metre

        def reset(self):
            """Start the network from the agent's position (encoded initial state) or the
            arena centre (x_0 = 0: move the agent there for its estimates to hold)."""
            start = self.to_arena(self.Agent.pos) if self.stepper.spec.initial_state == "encoded" else None
            self.stepper.reset(start=start)
            self.firingrate = self.stepper.u.copy()
            self.estimate = self.stepper.position / self.units_per_metre + self.origin

        def get_state(self, evaluate_at="agent", **kwargs):
            """One network step from the agent's last move; the rates (N, 1) of the new state."""
            if evaluate_at != "agent":
                raise ValueError(
                    f"evaluate_at={evaluate_at!r}: a gridcore network's rates depend on the path, not on the "
                    "position alone; only evaluate_at='agent' exists (rate maps: method='history')")
            move = np.asarray(self.Agent.measured_velocity, dtype=np.float64) * self.Agent.dt
            move = move * self.units_per_metre
            inputs = encode(math.hypot(move[0], move[1]), math.atan2(move[1], move[0]), self.encoding)
            self.stepper.step(inputs)
            self.estimate = self.stepper.position / self.units_per_metre + self.origin
            return self.stepper.u.reshape(-1, 1).copy()

    return GridcoreNeurons


def network_neurons(agent, stepper, encoding="speed-angle", arena_size=2.0, units_per_metre=None, **params):
    """A RatInABox ``Neurons`` of a network's units, driven by ``agent`` (see :func:`neurons_class`).

    Parameters
    ----------
    agent : ratinabox.Agent.Agent
        Moves in a 2-D Environment; call ``agent.update()`` then ``neurons.update()`` each step.
    stepper : Stepper
        The network (``Stepper.from_run(run)`` for a trained run).
    encoding : str
        The network's input encoding (the run's ``settings.task.encoding``).
    arena_size : float
        Side of the network's (equal-area) square arena, arena units.
    units_per_metre : float or None
        Arena units per metre; None maps the Environment's width onto ``arena_size``.
    **params
        RatInABox ``Neurons`` parameters (``name``, ``save_history``, ...).

    Returns
    -------
    GridcoreNeurons (a ``ratinabox.Neurons.Neurons``) with ``n = N``; started
    from the agent's position (encoded initial state) or the arena centre.
    """
    if not isinstance(stepper, Stepper):
        raise TypeError(f"stepper must be a gridcore.Stepper, got {type(stepper).__name__}")
    if n_inputs(encoding) != stepper.params.n_in:
        raise ValueError(f"encoding {encoding!r} has {n_inputs(encoding)} inputs but the network has "
                         f"n_in = {stepper.params.n_in}")
    if agent.Environment.dimensionality != "2D":
        raise ValueError("the agent must move in a 2D Environment")
    if units_per_metre is None:
        extent = agent.Environment.extent
        units_per_metre = arena_size / (extent[1] - extent[0])
    if isinstance(units_per_metre, bool) or not isinstance(units_per_metre, Real) \
            or not 0 < units_per_metre < np.inf:
        raise ValueError(f"units_per_metre must be a positive finite number, got {units_per_metre!r}")
    return neurons_class()(agent, stepper, encoding, units_per_metre, params)


def run_neurons(agent, run, **kwargs):
    """:func:`network_neurons` of a trained run (``gridcore.train.rundir.load_run``): its network,
    place cells, input encoding and arena size; ``kwargs`` as for :func:`network_neurons`."""
    task = run.settings.task
    kwargs.setdefault("encoding", task.encoding)
    kwargs.setdefault("arena_size", task.arena_size)
    return network_neurons(agent, Stepper.from_run(run), **kwargs)
