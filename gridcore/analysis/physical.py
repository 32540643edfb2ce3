"""Metres and seconds for figures: the physical size of an arena unit and of a network step.

The network works in arena units and steps. Cueva & Wei (2018) give no
physical scale, so for their motion model (``motion_model="paper"``)
gridcore states one, chosen to match the recording the paper's analyses
mirror (Sargolini et al. 2006, a rat in a 1 m box):

- the square of equal area (``task.arena_size`` arena units on a side,
  2 by default) is :data:`PAPER_ARENA_SIDE_M` = 1 m on a side, so one
  arena unit of the default square is 0.5 m;
- one step is :data:`PAPER_STEP_S` = 0.031 s, the step at which the
  paper's motion (0.0075 arena units per step on average) has the rat's
  mean speed (12 cm/s; the matched time step of ``docs/real_paths.md``).

The smooth foraging model (``motion_model="smooth"``) is already in metres
and seconds: one arena unit is one metre and a step is its ``dt``.
"""

from dataclasses import dataclass

from gridcore.sim.trajectories import MOTION_MODELS

__all__ = ["PAPER_ARENA_SIDE_M", "PAPER_STEP_S", "PhysicalScale", "physical_scale"]

PAPER_ARENA_SIDE_M = 1.0  # m: side of the square of equal area, paper motion model
PAPER_STEP_S = 0.031      # s: one network step, paper motion model


@dataclass(frozen=True)
class PhysicalScale:
    """How long an arena unit and a step are.

    Attributes
    ----------
    metres_per_unit : float
        Metres per arena unit.
    seconds_per_step : float
        Seconds per network step.
    source : str
        Where the numbers come from (for captions and ``metrics.json``).
    """

    metres_per_unit: float
    seconds_per_step: float
    source: str

    @property
    def speed_per_unit_step(self):
        """m/s per (arena unit per step): multiply a speed in arena units per step by it."""
        return self.metres_per_unit / self.seconds_per_step

    def to_dict(self):
        """JSON-ready fields."""
        return {"metres_per_unit": self.metres_per_unit, "seconds_per_step": self.seconds_per_step,
                "source": self.source}


def physical_scale(task):
    """The physical scale of a run's task (see the module docstring).

    Parameters
    ----------
    task : TaskSettings
        ``run.settings.task``: its ``motion_model``, ``arena_size`` and, for
        the smooth model, ``motion["dt"]``.

    Returns
    -------
    PhysicalScale
    """
    if task.motion_model == "smooth":
        dt = float({**MOTION_MODELS["smooth"], **task.motion}["dt"])
        return PhysicalScale(1.0, dt, "smooth motion model: 1 arena unit = 1 m, a step = its dt")
    return PhysicalScale(PAPER_ARENA_SIDE_M / task.arena_size, PAPER_STEP_S,
                         f"paper motion model: the equal-area square is {PAPER_ARENA_SIDE_M:g} m on a side, "
                         f"a step is {PAPER_STEP_S:g} s (gridcore's choice; the paper gives no scale)")
