"""Run configuration: :class:`RunConfig`, its typed parts, defaults, presets and ``config.json``.

A run's settings form one frozen, validated :class:`RunConfig`::

    RunConfig
        model      ModelSpec          alpha, nonlinearity, readout, initial_state, n_place_cells
        network    NetworkSettings    n_units, rec_init, frozen
        task       TaskSettings       arena, arena_size, encoding, motion, n_steps, noise_std, motion_model,
                                      place_cells
        optimizer  OptimizerSettings  name, iterations, n_trials, curvature_trials, hf, adam
        schedule   ScheduleSettings   l2, l2_decay, l2_min, metabolic, fr_init_ratio, fr_max_ratio,
                                      lam_rec, lam_rec_from, schedule_error
        output     OutputSettings     eval_trials, eval_every, checkpoint_every, snapshot_every, snapshot_at
        compute    ComputeSettings    backend, threads
        seed       int

Each stage of training receives only its part: the batches the task (plus
the sizes), the regularisation schedule the schedule, the optimiser its
settings, the model problem the spec.

Every setting also has a *flat name*, unique across the parts (the
:func:`make_config` keyword, the ``--option`` of ``python -m gridcore.train``
and the key in ``config.json``): the flat names are those of
:data:`DEFAULTS`; ``optimizer`` is the optimiser's name and ``hf``, ``adam``,
``motion``, ``place_cells`` and ``model`` are dicts. ``config.json`` is written
flat (:meth:`RunConfig.to_dict`); :meth:`RunConfig.from_dict` also reads the
files written before the model spec existed (a top-level ``alpha``: the
paper's model with that ``alpha``), before the motion model could be chosen
(no ``motion_model``: the paper's) and before place cells and the weight decay
on ``Wrec`` (no ``place_cells``, ``lam_rec``, ``lam_rec_from``: their defaults)
and before the schedule's error could be chosen (no ``schedule_error``:
``"total"``, which those runs used).
"""

import json
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace

from gridcore.backends import BACKEND_NAMES
from gridcore.model.layout import ParamLayout
from gridcore.model.params import REC_INITS
from gridcore.model.spec import PAPER, ModelSpec
from gridcore.sim.arenas import ARENA_NAMES, make_arena
from gridcore.sim.placecells import PLACE_CELL_DEFAULTS, PlaceCells
from gridcore.sim.trajectories import ENCODINGS, MOTION_MODELS, motion_params
from gridcore.train.hf import AdamSettings, HFSettings
from gridcore.util.checks import DTYPES, check_choice, check_nonneg_float, check_positive_int, check_threads
from gridcore.util.fileio import atomic_write_json

__all__ = ["RunConfig", "NetworkSettings", "TaskSettings", "OptimizerSettings", "ScheduleSettings",
           "OutputSettings", "ComputeSettings", "DEFAULTS", "PRESETS", "OPTIMIZERS", "BACKENDS", "NOISE_SOURCES",
           "PAPER_REC_INIT", "PLACE_CELL_SETTINGS", "BLOCK_NAMES", "RESUME_MAY_CHANGE", "SCHEDULE_ERRORS",
           "make_config"]

OPTIMIZERS = ("hf", "adam")
NOISE_SOURCES = ("counter", "array")
SCHEDULE_ERRORS = ("excess", "total")
BACKENDS = ("auto",) + BACKEND_NAMES
# The paper's initialisation per arena (Sec. 2.3); the circle is ours.
PAPER_REC_INIT = {"square": "orthogonal", "triangle": "orthogonal", "hexagon": "gaussian",
                  "circle": "orthogonal", "torus": "orthogonal"}
# Every parameter block, in flat order (gridcore.model.layout); Wenc exists under the encoded initial state only.
BLOCK_NAMES = ("Wrec", "Win", "b", "Wout", "Wenc")
# Settings a resumed run may change without changing the numbers it computes.
RESUME_MAY_CHANGE = ("iterations", "checkpoint_every", "threads", "backend")
# The task's place-cell settings: PlaceCells' keywords but n_cells (the model's n_place_cells).
PLACE_CELL_SETTINGS = {k: v for k, v in PLACE_CELL_DEFAULTS.items() if k != "n_cells"}


# ---------------------------------------------------------------- value checks

def _check_int(name, value, minimum):
    """``value`` as int, or ValueError naming ``name`` unless an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive_float(name, value):
    """``value`` as float, or an error naming ``name`` unless finite and > 0."""
    v = check_nonneg_float(name, value)
    if v == 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _check_real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _settings(cls, value, name):
    """``value`` (an instance of ``cls`` or a dict of its fields) as a ``cls``; errors name ``name``."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of {cls.__name__} fields, got {value!r}")
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {name} settings {unknown}; allowed: {', '.join(allowed)}")
    try:
        return cls(**value)
    except TypeError as err:  # a comparison with a non-number inside the checks
        raise TypeError(f"{name}: {err}") from None


class _FrozenDict(Mapping):
    """A read-only, hashable dict (the motion overrides inside a frozen config)."""

    def __init__(self, items=()):
        self._items = dict(items)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __hash__(self):
        return hash(tuple(sorted(self._items.items())))

    def __repr__(self):
        return repr(self._items)


# ---------------------------------------------------------------- the parts

@dataclass(frozen=True)
class NetworkSettings:
    """Size and initialisation of the trained network.

    Parameters
    ----------
    n_units : int >= 1
        N, the recurrent units.
    rec_init : {"orthogonal", "gaussian", "uniform"} or None
        Initialisation of ``Wrec`` (:func:`gridcore.model.params.init_params`);
        None: the paper's choice for the arena (:data:`PAPER_REC_INIT`),
        filled in by :class:`RunConfig`.
    frozen : sequence of block names
        Parameter blocks (:data:`BLOCK_NAMES`) kept at their initial values:
        their gradient and Gauss-Newton rows are zeroed. ``("b",)`` trains a
        network without biases (``b = 0``), as in Sorscher et al.'s code.
        Stored as a tuple in flat order.
    """

    n_units: int = 100
    rec_init: str = None
    frozen: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "n_units", check_positive_int("n_units", self.n_units))
        if self.rec_init is not None:
            check_choice("rec_init", self.rec_init, REC_INITS)
        if isinstance(self.frozen, str) or not isinstance(self.frozen, (list, tuple)):
            raise ValueError(f"frozen must be a list of parameter block names (of {', '.join(BLOCK_NAMES)}), "
                             f"got {self.frozen!r}")
        for name in self.frozen:
            check_choice("frozen", name, BLOCK_NAMES)
        if len(set(self.frozen)) != len(self.frozen):
            raise ValueError(f"frozen names a block twice: {list(self.frozen)}")
        object.__setattr__(self, "frozen", tuple(n for n in BLOCK_NAMES if n in self.frozen))


@dataclass(frozen=True)
class TaskSettings:
    """What the network path-integrates: the arena, the motion, the inputs and the noise.

    Parameters
    ----------
    arena : {"square", "triangle", "hexagon", "circle"}
    arena_size : float > 0
        Side of the square of equal area (arena units).
    encoding : {"speed-angle", "speed-cos-sin", "velocity"}
        The network's inputs (:func:`gridcore.sim.trajectories.encode`).
    motion : dict
        Overrides of the motion model's settings
        (:data:`gridcore.sim.trajectories.MOTION_MODELS`); held read-only.
        Unknown keys and values out of range are refused
        (:func:`gridcore.sim.trajectories.motion_params`), and so is a motion
        that never leaves the centre (``p_zero_speed = 1`` with the paper's
        model starting there): every target would be the same position.
    n_steps : int >= 1
        T, Euler steps per trial.
    noise_std : float >= 0
        Standard deviation of ``xi_t``, per unit and step (0: no noise).
    noise_source : {"counter", "array"}
        How a minibatch's noise is drawn: ``"counter"`` (default) a
        :class:`gridcore.CounterNoise` that the kernels evaluate in place
        (no (M, T, N) array; docs/math.md section 8), its seed drawn from
        the batch's generator; ``"array"`` an (M, T, N) NumPy array from
        that generator (runs configured before the counter existed).
    motion_model : {"paper", "smooth"}
        How the simulated animal moves (:func:`gridcore.sim.trajectories.simulate`):
        the paper's model (default) or smooth foraging (metres and seconds).
    place_cells : dict
        Settings of the place-cell code (:class:`gridcore.sim.placecells.PlaceCells`)
        but its size, which is the model's ``n_place_cells``: ``sigma``,
        ``surround``, ``surround_scale``, ``layout``, ``seed``. Missing keys
        take :data:`PLACE_CELL_SETTINGS`' defaults (held filled in,
        read-only); unused unless the model's readout or initial state uses
        place cells.
    """

    arena: str = "square"
    arena_size: float = 2.0
    encoding: str = "speed-angle"
    motion: Mapping = field(default_factory=_FrozenDict)
    n_steps: int = 500
    noise_std: float = 0.1
    noise_source: str = "counter"
    motion_model: str = "paper"
    place_cells: Mapping = field(default_factory=_FrozenDict)

    def __post_init__(self):
        check_choice("arena", self.arena, ARENA_NAMES)
        object.__setattr__(self, "arena_size", _check_positive_float("arena_size", self.arena_size))
        check_choice("encoding", self.encoding, tuple(ENCODINGS))
        check_choice("motion_model", self.motion_model, tuple(MOTION_MODELS))
        if not isinstance(self.motion, Mapping):
            raise TypeError(f"motion must be a dict of trajectory settings, got {self.motion!r}")
        allowed = MOTION_MODELS[self.motion_model]
        unknown = sorted(set(self.motion) - set(allowed))
        if unknown:
            raise ValueError(f"unknown motion settings {unknown}; allowed: {', '.join(allowed)} "
                             f"(the settings of motion_model {self.motion_model!r})")
        try:  # values checked here, so that a bad one is refused before a run directory is made
            full = motion_params(self.motion, self.motion_model)
        except (TypeError, ValueError) as err:
            raise ValueError(f"motion: {err}") from None
        if self.motion_model == "paper" and full["p_zero_speed"] == 1 and full["start"] == "centre":
            raise ValueError("motion: p_zero_speed = 1 with start 'centre' keeps the animal at the centre, so "
                             "every position is the same and there is nothing to path-integrate (the held-out "
                             "error, relative to the best constant guess, is 0/0); use p_zero_speed < 1")
        object.__setattr__(self, "motion", _FrozenDict(self.motion))
        object.__setattr__(self, "n_steps", check_positive_int("n_steps", self.n_steps))
        object.__setattr__(self, "noise_std", check_nonneg_float("noise_std", self.noise_std))
        check_choice("noise_source", self.noise_source, NOISE_SOURCES)
        object.__setattr__(self, "place_cells", _FrozenDict(self._check_place_cells()))

    def _check_place_cells(self):
        """``place_cells`` with the defaults filled in, its keys and values checked."""
        pc = self.place_cells
        if not isinstance(pc, Mapping):
            raise TypeError(f"place_cells must be a dict of place-cell settings, got {pc!r}")
        unknown = sorted(set(pc) - set(PLACE_CELL_SETTINGS))
        if unknown:
            hint = " (the number of cells is the model's n_place_cells)" if "n_cells" in unknown else ""
            raise ValueError(f"unknown place_cells settings {unknown}; allowed: "
                             f"{', '.join(PLACE_CELL_SETTINGS)}{hint}")
        pc = {**PLACE_CELL_SETTINGS, **pc}
        try:  # the values are checked by building two cells in the arena
            PlaceCells(make_arena(self.arena, self.arena_size), n_cells=2, **pc)
        except (TypeError, ValueError) as err:
            raise ValueError(f"place_cells: {err}") from None
        return pc

    @property
    def n_inputs(self):
        """Inputs per step of the encoding."""
        return ENCODINGS[self.encoding]

    @property
    def start(self):
        """Where trials start: the motion's ``start`` setting ("centre" or "uniform")."""
        return self.motion.get("start", MOTION_MODELS[self.motion_model]["start"])


@dataclass(frozen=True)
class OptimizerSettings:
    """How the parameters are optimised.

    Parameters
    ----------
    name : {"hf", "adam"}
        Hessian-free (:func:`gridcore.train.hf.hf_step`) or Adam.
    iterations : int >= 1
        Total iterations of the run.
    n_trials : int >= 1
        M, trials per minibatch (a fresh minibatch every iteration).
    curvature_trials : int, 1 <= curvature_trials <= n_trials
        The first trials of each minibatch, used for the Gauss-Newton products (HF).
    hf : HFSettings or dict of its fields
    adam : AdamSettings or dict of its fields
    """

    name: str = "hf"
    iterations: int = 1000
    n_trials: int = 500
    curvature_trials: int = 100
    hf: HFSettings = HFSettings()
    adam: AdamSettings = AdamSettings()

    def __post_init__(self):
        check_choice("optimizer", self.name, OPTIMIZERS)
        for key in ("iterations", "n_trials", "curvature_trials"):
            object.__setattr__(self, key, check_positive_int(key, getattr(self, key)))
        if self.curvature_trials > self.n_trials:
            raise ValueError(f"curvature_trials must be <= n_trials = {self.n_trials}, "
                             f"got {self.curvature_trials}")
        object.__setattr__(self, "hf", _settings(HFSettings, self.hf, "hf"))
        object.__setattr__(self, "adam", _settings(AdamSettings, self.adam, "adam"))


@dataclass(frozen=True)
class ScheduleSettings:
    """The regularisation weights' schedule (paper App. E; ``docs/guide.md``).

    Parameters
    ----------
    l2 : bool
        R_L2 on; ``lam_L2 R_L2 = E`` for the initial network.
    l2_decay : float in (0, 1]
        ``lam_L2 *= l2_decay`` after every iteration (our choice; App. E is vague).
    l2_min : float >= 0
        Floor of ``lam_L2``.
    metabolic : bool
        R_FR on.
    fr_init_ratio : float >= 0
        ``lam_FR R_FR`` starts at this fraction of E (App. E: 1/10) ...
    fr_max_ratio : float >= 0
        ... and is kept at most this fraction of E (App. E: 1/3).
    lam_rec : float >= 0
        Weight of ``R_rec = sum Wrec**2``, the weight decay on the recurrent
        weights of Sorscher et al. (their 1e-4); 0: off (the paper's model).
    lam_rec_from : int >= 0
        The first iteration that uses ``lam_rec`` (before it the weight is 0).
    schedule_error : {"excess", "total"}
        The E that the ratios above refer to. ``"excess"``: E less ``E_min``,
        the least E any outputs reach on the batch (the targets' mean entropy
        under the place-cell readout, 98% of the cross-entropy of an untrained
        network at 512 cells; 0 under the x, y readout, where both are the
        paper's E). ``"total"``: E itself, which under the place-cell readout
        weights the regularisers by what no training can remove.
    """

    l2: bool = True
    l2_decay: float = 0.99
    l2_min: float = 1e-6
    metabolic: bool = True
    fr_init_ratio: float = 0.1
    fr_max_ratio: float = 1.0 / 3.0
    lam_rec: float = 0.0
    lam_rec_from: int = 0
    schedule_error: str = "excess"

    def __post_init__(self):
        _check_bool("l2", self.l2)
        check_choice("schedule_error", self.schedule_error, SCHEDULE_ERRORS)
        _check_bool("metabolic", self.metabolic)
        decay = _check_real("l2_decay", self.l2_decay)
        if not 0.0 < decay <= 1.0:  # also rejects NaN
            raise ValueError(f"l2_decay must be in (0, 1], got {self.l2_decay!r}")
        object.__setattr__(self, "l2_decay", decay)
        for key in ("l2_min", "fr_init_ratio", "fr_max_ratio", "lam_rec"):
            object.__setattr__(self, key, check_nonneg_float(key, getattr(self, key)))
        object.__setattr__(self, "lam_rec_from", _check_int("lam_rec_from", self.lam_rec_from, 0))

    def rec_weight(self, iteration):
        """``lam_rec`` of ``iteration`` (numbered from 1): ``lam_rec`` from ``lam_rec_from`` on, else 0."""
        return self.lam_rec if iteration >= self.lam_rec_from else 0.0


@dataclass(frozen=True)
class OutputSettings:
    """What the run records besides the log: held-out errors, checkpoints, snapshots.

    Parameters
    ----------
    eval_trials : int >= 1
        Held-out trials of the normalised error.
    eval_every : int >= 0
        Iterations between held-out evaluations (0: only at the end).
    checkpoint_every : int >= 0
        Iterations between checkpoints (0: only at the end and on interruption).
    snapshot_every : int >= 0
        Also keep the parameters every K iterations (0: off).
    snapshot_at : sequence of int >= 0
        And at these iterations (held as a tuple).
    """

    eval_trials: int = 200
    eval_every: int = 10
    checkpoint_every: int = 10
    snapshot_every: int = 0
    snapshot_at: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "eval_trials", check_positive_int("eval_trials", self.eval_trials))
        for key in ("eval_every", "checkpoint_every", "snapshot_every"):
            object.__setattr__(self, key, _check_int(key, getattr(self, key), 0))
        at = self.snapshot_at
        if isinstance(at, (str, bytes, Mapping)) or not hasattr(at, "__iter__"):
            raise ValueError(f"snapshot_at must be a list of iterations (integers >= 0), got {at!r}")
        object.__setattr__(self, "snapshot_at", tuple(_check_int("snapshot_at entry", i, 0) for i in at))

    def snapshot_due(self, iteration):
        """Whether the parameters of ``iteration`` are kept as a snapshot."""
        return iteration in self.snapshot_at or bool(self.snapshot_every and iteration % self.snapshot_every == 0)


@dataclass(frozen=True)
class ComputeSettings:
    """Where the numbers are computed; neither changes them (but for round-off across thread counts).

    Parameters
    ----------
    backend : {"auto", "numpy", "numba", "c"}
        :func:`gridcore.backends.get_backend`'s name.
    threads : int in 1..MAX_THREADS (256) or None
        Threads of the backend (None: all cores).
    dtype : {"float64", "float32"}
        Element type the kernels compute in (float32: the C and Numba cores
        only; parameters and the optimiser's vectors stay float64). Unlike the
        other two, it changes the numbers, at float32's rounding.
    """

    backend: str = "auto"
    threads: int = None
    dtype: str = "float64"

    def __post_init__(self):
        check_choice("backend", self.backend, BACKENDS)
        check_choice("dtype", self.dtype, DTYPES)
        if self.dtype == "float32" and self.backend == "numpy":
            raise ValueError("dtype 'float32' needs backend 'c', 'numba' or 'auto' (the NumPy reference "
                             "computes in float64 only), got backend 'numpy'")
        if self.threads is not None:
            object.__setattr__(self, "threads", check_threads(self.threads))


# ---------------------------------------------------------------- the configuration

# flat name -> (part, field); part None: a field of RunConfig itself. The order is config.json's.
_FLAT = {
    "arena": ("task", "arena"), "arena_size": ("task", "arena_size"), "encoding": ("task", "encoding"),
    "motion_model": ("task", "motion_model"), "motion": ("task", "motion"),
    "place_cells": ("task", "place_cells"), "n_units": ("network", "n_units"),
    "n_trials": ("optimizer", "n_trials"), "n_steps": ("task", "n_steps"),
    "curvature_trials": ("optimizer", "curvature_trials"), "model": (None, "model"),
    "noise_std": ("task", "noise_std"), "noise_source": ("task", "noise_source"), "rec_init": ("network", "rec_init"),
    "frozen": ("network", "frozen"),
    "optimizer": ("optimizer", "name"), "iterations": ("optimizer", "iterations"), "seed": (None, "seed"),
    "backend": ("compute", "backend"), "threads": ("compute", "threads"), "dtype": ("compute", "dtype"),
    "l2": ("schedule", "l2"), "l2_decay": ("schedule", "l2_decay"), "l2_min": ("schedule", "l2_min"),
    "metabolic": ("schedule", "metabolic"), "fr_init_ratio": ("schedule", "fr_init_ratio"),
    "fr_max_ratio": ("schedule", "fr_max_ratio"), "lam_rec": ("schedule", "lam_rec"),
    "lam_rec_from": ("schedule", "lam_rec_from"), "schedule_error": ("schedule", "schedule_error"),
    "hf": ("optimizer", "hf"), "adam": ("optimizer", "adam"),
    "eval_trials": ("output", "eval_trials"), "eval_every": ("output", "eval_every"),
    "checkpoint_every": ("output", "checkpoint_every"), "snapshot_every": ("output", "snapshot_every"),
    "snapshot_at": ("output", "snapshot_at"),
}
_DICT_SETTINGS = ("motion", "place_cells", "model", "hf", "adam")  # overrides merge into the current dict
# Settings added since the first config.json files, with the value that reproduces those runs.
_ADDED = {"frozen": [], "motion_model": "paper", "place_cells": {}, "lam_rec": 0.0, "lam_rec_from": 0,
          "noise_source": "array", "dtype": "float64"}
_HF_ADDED = {"evaluate_on": "gradient"}  # the same for the fields of the hf block


def _old_schedule_error(d):
    """``schedule_error`` of a flat config written before it existed: ``"total"``, the only one then, where
    it matters (a place-cell readout with the L2 or metabolic schedule on); elsewhere ``E_min`` is 0 or
    unused and the two are the same, so the default, as new files of such runs have."""
    model = d.get("model") if isinstance(d.get("model"), Mapping) else {}
    matters = model.get("readout", PAPER.readout) != "xy" and (d.get("l2", True) or d.get("metabolic", True))
    return "total" if matters else ScheduleSettings.schedule_error


def _json_value(value):
    if isinstance(value, ModelSpec):
        return value.to_dict()
    if isinstance(value, (HFSettings, AdamSettings)):   # as JSON has them: lists, not tuples
        return {k: [list(p) for p in v] if isinstance(v, tuple) else v for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a training run: frozen and validated on construction.

    Build one with :func:`make_config` (defaults, a preset, flat overrides),
    :meth:`from_dict` or :meth:`load`; write it with :meth:`save`. Each part
    validates its own values; an error names the setting and what is allowed.

    Parameters
    ----------
    model : ModelSpec or dict of its fields
        Which network equations are trained.
    network : NetworkSettings
    task : TaskSettings
    optimizer : OptimizerSettings
    schedule : ScheduleSettings
    output : OutputSettings
    compute : ComputeSettings
    seed : int >= 0
        Every random draw of the run comes from
        ``SeedSequence(seed, spawn_key=...)``.

    Notes
    -----
    ``network.rec_init = None`` is replaced by the paper's choice for the
    arena.
    """

    model: ModelSpec = PAPER
    network: NetworkSettings = NetworkSettings()
    task: TaskSettings = TaskSettings()
    optimizer: OptimizerSettings = OptimizerSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    output: OutputSettings = OutputSettings()
    compute: ComputeSettings = ComputeSettings()
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.model, ModelSpec):
            object.__setattr__(self, "model", ModelSpec.from_dict(self.model, where="model"))
        for name, cls in (("network", NetworkSettings), ("task", TaskSettings),
                          ("optimizer", OptimizerSettings), ("schedule", ScheduleSettings),
                          ("output", OutputSettings), ("compute", ComputeSettings)):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"RunConfig.{name} must be a {cls.__name__}, got {getattr(self, name)!r}")
        object.__setattr__(self, "seed", _check_int("seed", self.seed, 0))
        if self.model.uses_place_cells and self.model.n_place_cells < 2:
            raise ValueError(f"n_place_cells must be >= 2 for a run (its place-cell code needs at least 2 cells), "
                             f"got {self.model.n_place_cells}")
        if self.task.arena == "torus" and self.model.readout != "place-cells":
            # An x, y readout would have to jump across the seams; the place-cell code is periodic.
            raise ValueError(f"arena 'torus' needs the 'place-cells' readout (its code is periodic), got readout "
                             f"{self.model.readout!r}; e.g. --preset grid-cells")
        if "Wenc" in self.network.frozen and not self.model.n_code:
            raise ValueError("frozen names Wenc, but the model has no Wenc block (its initial state is not "
                             "\"encoded\")")
        if self.network.rec_init is None:
            object.__setattr__(self, "network",
                               replace(self.network, rec_init=PAPER_REC_INIT[self.task.arena]))

    @property
    def shape(self):
        """``(n_units, n_in, n_out)`` of the run's parameters (``n_out``: the model's readout)."""
        return self.network.n_units, self.task.n_inputs, self.model.n_out

    @property
    def layout(self):
        """The :class:`ParamLayout` of the run's flat parameter vector (with ``Wenc`` when encoded)."""
        return ParamLayout.for_spec(self.model, self.network.n_units, self.task.n_inputs)

    def make_place_cells(self, arena=None):
        """The run's :class:`PlaceCells`, or None when the model uses none.

        Parameters
        ----------
        arena : Arena or None
            The task's arena (built from the task settings when None).
        """
        if not self.model.uses_place_cells:
            return None
        if arena is None:
            arena = make_arena(self.task.arena, self.task.arena_size)
        return PlaceCells(arena, n_cells=self.model.n_place_cells, **self.task.place_cells)

    # ---- flat form: config.json and make_config's keywords

    def to_dict(self):
        """The flat, JSON-ready dict written to ``config.json`` (keys: :data:`DEFAULTS`'s)."""
        return {key: _json_value(getattr(self if part is None else getattr(self, part), name))
                for key, (part, name) in _FLAT.items()}

    @classmethod
    def from_dict(cls, d):
        """Build from a flat dict as :meth:`to_dict` writes it (or an older ``config.json``).

        Every setting must be present; ``rec_init`` may be None. A dict with a
        top-level ``alpha`` and no ``model`` (written before the model spec
        existed) is read as the paper's model with that ``alpha``; one
        without ``motion_model`` as the paper's motion model; one without
        ``place_cells``, ``lam_rec``, ``lam_rec_from`` or ``frozen`` with their
        defaults (the default place cells, no weight decay on ``Wrec``, every
        block trained); an ``hf``
        block without ``evaluate_on`` with ``"gradient"`` (HF as it was).

        Raises
        ------
        ValueError
            Unknown or missing settings (listing the allowed ones) or a value
            out of range (naming the setting).
        TypeError
            A value of the wrong type.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"a run configuration must be a dict of settings, got {type(d).__name__}")
        d = dict(d)
        if "alpha" in d and "model" not in d:
            d["model"] = {**PAPER.to_dict(), "alpha": d.pop("alpha")}
        for key, value in _ADDED.items():  # written before the setting existed
            d.setdefault(key, value)
        d.setdefault("schedule_error", _old_schedule_error(d))
        if isinstance(d.get("hf"), Mapping):
            d["hf"] = {**_HF_ADDED, **d["hf"]}
        unknown = sorted(set(d) - set(_FLAT))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; allowed: {', '.join(_FLAT)}")
        missing = [key for key in _FLAT if key not in d]
        if missing:
            raise ValueError(f"missing settings {missing}")
        parts = {}
        for key, (part, name) in _FLAT.items():
            parts.setdefault(part, {})[name] = d[key]
        top = parts.pop(None)
        return cls(network=NetworkSettings(**parts["network"]), task=TaskSettings(**parts["task"]),
                   optimizer=OptimizerSettings(**parts["optimizer"]),
                   schedule=ScheduleSettings(**parts["schedule"]), output=OutputSettings(**parts["output"]),
                   compute=ComputeSettings(**parts["compute"]), **top)

    def with_overrides(self, **overrides):
        """A new configuration with some settings changed, given by flat name.

        ``motion``, ``place_cells``, ``model``, ``hf`` and ``adam`` take a
        dict (or, for the last three, an instance) whose fields replace those of the current
        value; the others replace it. Unknown names raise ValueError listing
        the allowed ones.
        """
        return RunConfig.from_dict(_merge(self.to_dict(), overrides))

    def differing(self, other, ignore=()):
        """Flat names of the settings that differ between this and ``other``, sorted."""
        a, b = self.to_dict(), other.to_dict()
        return sorted(k for k in _FLAT if k not in ignore and a[k] != b[k])

    # ---- config.json

    def save(self, path):
        """Write :meth:`to_dict` as JSON to ``path`` (atomically)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        """Read a ``config.json``; any error names the file.

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Not JSON, or not a valid configuration (the reason is given).
        """
        with open(path) as fh:
            try:
                d = json.load(fh)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{path}: unreadable run configuration ({err})") from None
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: invalid run configuration ({err})") from None


def _merge(flat, overrides):
    """``flat`` with ``overrides`` applied (dict-valued settings merged field by field)."""
    flat = dict(flat)
    for key, value in overrides.items():
        if key not in _FLAT:
            raise ValueError(f"unknown setting {key!r}; allowed: {', '.join(_FLAT)}")
        if key in _DICT_SETTINGS and value is not None:
            if not isinstance(value, Mapping):
                value = _json_value(value)
            if not isinstance(value, Mapping):
                raise TypeError(f"{key} must be a dict of settings, got {value!r}")
            flat[key] = {**(flat[key] or {}), **value}
        else:
            flat[key] = value
    return flat


DEFAULTS = {**RunConfig().to_dict(), "rec_init": None}
"""The default of every setting by flat name (``rec_init`` None: the paper's choice for the arena)."""

PRESETS = {
    # The README's first command: about a minute on 2 cores to a network that integrates speed.
    # Without the unit noise and the L2 penalty: under the paper's recipe the network integrates
    # the heading alone for its first hundreds of iterations (docs/results/README.md).
    "quick": {"n_units": 64, "n_trials": 100, "n_steps": 200, "curvature_trials": 50, "noise_std": 0.0,
              "l2": False, "iterations": 150, "eval_every": 10, "snapshot_at": [0, 10, 50]},
    # The paper: N=100, M=500, T=500, noise and metabolic cost on, 90% zero speed.
    "paper": {"n_units": 100, "n_trials": 500, "n_steps": 500, "iterations": 1000,
              "snapshot_at": [0, 10, 20, 50, 100, 200, 500]},
    # The positive control (docs/results/grid-cells): Sorscher et al.'s network (ReLU, alpha = 1, no
    # biases, Wrec uniform on +-1/sqrt(N), place-cell readout and encoded start, weight decay on Wrec
    # from the start, smooth foraging from anywhere in a 2.2 m square, velocity inputs, no noise) at
    # N = Np = 512, trained with Adam in float32: a population of hexagonal grid units in about
    # 26 minutes on one core.
    "grid-cells": {"model": {"alpha": 1.0, "nonlinearity": "relu", "readout": "place-cells",
                             "initial_state": "encoded", "n_place_cells": 512},
                   "n_units": 512, "rec_init": "uniform", "frozen": ["b"], "arena_size": 2.2,
                   "motion_model": "smooth", "motion": {"start": "uniform"}, "encoding": "velocity",
                   "n_steps": 20, "n_trials": 200, "curvature_trials": 100, "noise_std": 0.0, "l2": False,
                   "metabolic": False, "lam_rec": 1e-4, "lam_rec_from": 0, "optimizer": "adam",
                   "adam": {"lr": 1e-3, "lr_steps": [[4000, 3e-4]]}, "dtype": "float32", "iterations": 5000,
                   "eval_every": 500, "checkpoint_every": 200, "snapshot_every": 1000, "snapshot_at": [0, 100, 500]},
}


def make_config(preset=None, **overrides):
    """A full, validated run configuration: defaults, then a preset, then overrides.

    Parameters
    ----------
    preset : {"quick", "paper", "grid-cells"} or None
        Settings applied over :data:`DEFAULTS` (:data:`PRESETS`).
    **overrides
        Settings by flat name (``n_units=64``, ``arena="hexagon"``,
        ``hf={"damping": 1.0}``, ``motion={"speed_scale": 0.6}``,
        ``model={"readout": "place-cells", "n_place_cells": 64}``,
        ``place_cells={"sigma": 0.2}``); the dict-valued ones are merged
        into the preset's.

    Returns
    -------
    RunConfig

    Raises
    ------
    ValueError
        An unknown preset or setting (listing the allowed ones) or a value out
        of range (naming the setting).
    """
    flat = dict(DEFAULTS)
    if preset is not None:
        check_choice("preset", preset, tuple(PRESETS))
        flat = _merge(flat, PRESETS[preset])
    return RunConfig.from_dict(_merge(flat, overrides))
