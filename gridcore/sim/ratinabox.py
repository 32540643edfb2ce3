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
"""

import contextlib
import importlib.util
import os
from importlib.metadata import PackageNotFoundError, version
from numbers import Integral, Real

import numpy as np

from gridcore.sim.realpaths import make_path
from gridcore.util.checks import check_choice

__all__ = ["DATASETS", "dataset_file", "load_dataset", "sargolini", "random_motion"]

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
