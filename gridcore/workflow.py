"""The notebook workflow: load a trained run, record it, plot its rate maps, tabulate its units.

::

    import gridcore
    run = gridcore.load_run("docs/results/square")
    rec = run.record(100, seed=0)                 # rates (100, 500, 100), positions, outputs
    fig = run.plot_rate_maps(rec)                 # a matplotlib Figure
    table = run.units(rec)                        # pandas DataFrame, one row per unit

:class:`Run` is :class:`gridcore.train.rundir.Run` (parameters, spec,
settings, arena, snapshots) with these methods; it records with the run's
own motion model, encoding, initial state and readout
(:mod:`gridcore.analysis.recording`), classifies units as the analysis does
(:func:`gridcore.analysis.celltypes.classify`) and draws with
:mod:`gridcore.report.figures`.
"""

from dataclasses import fields

import numpy as np

from gridcore.analysis.celltypes import classify
from gridcore.analysis.physical import physical_scale
from gridcore.analysis.pipeline import load_real_path, run_name
from gridcore.analysis.recording import Recording, record_trajectories
from gridcore.analysis.unitsummary import tuning_curves
from gridcore.analysis.unittable import unit_table
from gridcore.backends import get_backend
from gridcore.report import figures
from gridcore.sim.trajectories import Trajectories, simulate
from gridcore.train import rundir
from gridcore.util.checks import check_nonneg_float, check_positive_int

__all__ = ["Run", "load_run"]


class Run(rundir.Run):
    """A trained run with the methods of the notebook workflow (see the module docstring).

    Attributes are those of :class:`gridcore.train.rundir.Run`: ``path``,
    ``settings`` (also ``config``), ``params``, ``spec``, ``arena``,
    ``place_cells``, ``final_iteration``, ``snapshots``.
    """

    @property
    def config(self):
        """The run's settings (:class:`gridcore.train.config.RunConfig`, its ``config.json``)."""
        return self.settings

    @property
    def name(self):
        """The run's name: its directory's name."""
        return run_name(self.path)

    @property
    def physical(self):
        """Metres per arena unit and seconds per step (:func:`gridcore.analysis.physical.physical_scale`)."""
        return physical_scale(self.settings.task)

    def record(self, n_trials=None, n_steps=None, seed=0, trajectory=None, noise_std=None, backend="auto",
               threads=None):
        """Run the network on fresh trials, or along a given path, and record it.

        Parameters
        ----------
        n_trials : int, optional
            Simulated trials (default 100); not with ``trajectory``.
        n_steps : int, optional
            Steps per simulated trial (default: the run's training length); not with ``trajectory``.
        seed : int
            Trajectories and unit noise.
        trajectory : str or Trajectories, optional
            Run along this path instead: ``"sargolini"`` (the rat path shipped
            with RatInABox, ``pip install 'gridcore[ratinabox]'``),
            ``"ratinabox"`` (RatInABox's random motion), a ``.csv``/``.npz``
            path file (``docs/real_paths.md``), or simulated
            :class:`gridcore.sim.trajectories.Trajectories` in the run's
            encoding. A real path is one trial; its lead-in from the centre
            (``motion["lead_in_steps"]``) is run but left out of the recording.
        noise_std : float, optional
            Unit noise (default: the run's training level).
        backend : {"auto", "numpy", "numba", "c"}
        threads : int, optional

        Returns
        -------
        Recording
            ``rates`` (M, T, N), ``outputs`` and ``positions`` (M, T, 2, arena
            units), ``speed``, ``heading``, ``boundary`` (M, T), ``arena``.
        """
        task = self.settings.task
        noise = task.noise_std if noise_std is None else check_nonneg_float("noise_std", noise_std)
        be = get_backend(backend, threads)
        rng = np.random.default_rng(seed)
        if trajectory is None:
            n_trials = check_positive_int("n_trials", 100 if n_trials is None else n_trials)
            n_steps = check_positive_int("n_steps", task.n_steps if n_steps is None else n_steps)
            traj = simulate(self.arena, n_trials, n_steps, rng, encoding=task.encoding,
                            motion_model=task.motion_model, **task.motion)
        else:
            if n_trials is not None or n_steps is not None:
                raise ValueError("n_trials and n_steps are for simulated trials; leave them out with trajectory= "
                                 "(the path is one trial)")
            traj = trajectory if isinstance(trajectory, Trajectories) else load_real_path(trajectory, self, seed)
        rec = record_trajectories(self.params, be, traj, rng, noise, self.spec, self.place_cells)
        return rec.from_step(int(traj.motion.get("lead_in_steps", 0)))

    def unit_types(self, recording, bins=20, n_shuffles=100, seed=0):
        """Scores, shuffle nulls and unit types of a recording, as the analysis makes them.

        Parameters
        ----------
        recording : Recording
            From :meth:`record`.
        bins : int
            Spatial bins along the arena's longer side.
        n_shuffles : int
            Circular shifts per unit for the nulls.
        seed : int
            The shifts.

        Returns
        -------
        CellTypes
            :func:`gridcore.analysis.celltypes.classify` (maps smoothed by 1 bin).
        """
        _check_recording(recording)
        return classify(recording.rates, recording.positions, recording.speed, recording.heading, recording.arena,
                        bins, n_shuffles=n_shuffles, seed=seed)

    def units(self, recording, bins=20, n_shuffles=100, seed=0):
        """One row per unit: type, every score with its null threshold, speed and direction selectivity.

        The same table as the analysis's ``units.csv``
        (:mod:`gridcore.analysis.unittable`); needs pandas (``pip install
        'gridcore[pandas]'``).

        Parameters
        ----------
        recording : Recording
            From :meth:`record`.
        bins, n_shuffles, seed
            As for :meth:`unit_types`.

        Returns
        -------
        pandas.DataFrame
            Indexed by unit.
        """
        types = self.unit_types(recording, bins, n_shuffles, seed)
        curves = tuning_curves(recording.activity, recording.speed.ravel(), recording.heading.ravel())
        return unit_table(types, curves["speed_r2"])

    def plot_rate_maps(self, recording, units=None, bins=20, smooth=1.0, colour_scale="unit", types=None,
                       fig=None):
        """Rate maps of the recording's units, with a colour bar (:func:`gridcore.report.figures.ratemap_panel`).

        Parameters
        ----------
        recording : Recording
            From :meth:`record`.
        units : sequence of int, optional
            Units shown (default all).
        bins : int
            Spatial bins along the arena's longer side.
        smooth : float or None
            Gaussian smoothing sigma (bins); 1.0 as the analysis classifies.
        colour_scale : {"unit", "shared"}
            Each map scaled to its own range, or one range for all shown.
        types : CellTypes, optional
            From :meth:`unit_types`: titles with each unit's type.
        fig : Figure, optional
            Drawn into (e.g. ``plt.figure()``); default a new Figure.

        Returns
        -------
        Figure
        """
        _check_recording(recording)
        return figures.ratemap_panel(recording.rate_maps(bins, smooth), types, recording.arena, bins, units=units,
                                     colour_scale=colour_scale, physical=self.physical, title=self.name, fig=fig)


def _check_recording(recording):
    if not isinstance(recording, Recording):
        raise TypeError(f"recording must be a Recording (from run.record(...)), got {type(recording).__name__}")


def load_run(path):
    """Load a trained run (``python -m gridcore.train`` output) for the notebook workflow.

    Parameters
    ----------
    path : str or path-like
        The run directory.

    Returns
    -------
    Run

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`gridcore.train.rundir.load_run`: no such run, an
        unfinished one, or parameters that do not fit its configuration.
    """
    base = rundir.load_run(path)
    return Run(**{f.name: getattr(base, f.name) for f in fields(base)})
