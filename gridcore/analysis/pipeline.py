"""Every analysis of the paper on a trained run, as a pipeline of named steps.

:func:`analyze_run` loads a run (and the runs compared with it) and calls
the steps in order; each takes what it needs and returns its part of
``metrics.json``:

- :func:`gridcore.analysis.probes.run_probe`: the response to one moving
  step (``probe``);
- :func:`gridcore.analysis.tracking.held_out_tracking`: C1 on the run's
  own held-out trials (``tracking``);
- :func:`record_and_classify`: fresh test trials and the unit types (C2)
  (``celltypes``);
- :func:`tuning_step`: tuning curves, examples and summaries (C3)
  (``tuning``; C4 ``selectivity`` follows from the unit types);
- :func:`error_correction_step`: error around boundary interactions (C7)
  (``error_correction``);
- :func:`development_step`: the units over training stages (C5) (``development``);
- :func:`stability_step`: long paths (C8) (``stability``);
- :func:`compare_step`: other runs on the same trials (C6) (``comparison``);
- :func:`real_path_step`: a real path against a simulated one (``trajectory``);
- :func:`assemble_metrics`: the run, the settings, the conventions and all
  of the above, in the order of ``metrics.json``.

The result, an :class:`Analysis`, holds the metrics and the arrays the
figures need; :mod:`gridcore.report.outputs` draws the figures and writes
``metrics.json`` and ``report.html`` (the analysis layer writes no files).
A :class:`Steps` object times every step and reports progress.

Every random draw derives from the one ``seed`` of :class:`AnalysisSettings`,
through an independent stream per purpose (:func:`subseed`).

Every step runs the network as it was trained (``run.spec``,
``run.settings.task``): trials are simulated with the run's motion model,
the encoded initial state starts each trial from the place-cell code of its
start position, and the place-cell readout is decoded into positions
(:mod:`gridcore.analysis.recording`), so that every error is in arena units
whatever the readout.
"""

import json
import math
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from gridcore.analysis import probes
from gridcore.analysis.celltypes import classify
from gridcore.analysis.compare import compare_runs, run_summary
from gridcore.analysis.development import EMBEDDINGS, development, select_stages
from gridcore.analysis.jsonready import finite_median, floats
from gridcore.analysis.pathstats import path_statistics
from gridcore.analysis.physical import physical_scale
from gridcore.analysis.ratemaps import map_correlation
from gridcore.analysis.recording import output_positions, record_trajectories, run_chunks, trial_start_codes
from gridcore.analysis.scores import CONVENTIONS as SCORE_CONVENTIONS
from gridcore.analysis.tracking import (
    error_correction,
    held_out_tracking,
    long_path,
    stability,
    tracking,
)
from gridcore.analysis.unitsummary import (
    RAMP_R2,
    curves_to_json,
    grid_symmetry_counts,
    heading_wrap,
    pick_examples,
    ramps,
    selectivity,
    tuning_curves,
    tuning_summary,
)
from gridcore.backends import get_backend
from gridcore.sim import pathfiles, realpaths
from gridcore.sim.trajectories import SMOOTH_MOTION_DEFAULTS, Trajectories, simulate
from gridcore.train.heldout import speed_use
from gridcore.train.rundir import load_run
from gridcore.util.checks import check_choice, check_nonneg_float, check_positive_int
from gridcore.version import __version__

__all__ = [
    "DEFAULTS", "QUICK", "STREAMS", "CONVENTIONS", "AnalysisSettings", "Analysis", "Steps", "subseed", "trials_for",
    "analyze_run", "held_out_recording", "record_and_classify", "celltypes_section", "tuning_step",
    "error_correction_step", "development_step", "stability_step", "compare_step", "load_real_path",
    "coverage_warnings", "run_name", "realpath_motion", "cut_trials", "real_path_step", "assemble_metrics",
]

# Defaults of the full analysis and of quick. ``samples``: recorded steps, as ceil(samples / n_steps) test
# trials; the paper's 500-step trials give 500 (quick 100), and runs trained on short trials, such as the
# place-cell models' 20 steps, as many steps (12,500 trials; quick 2,500) to fill their rate maps.
DEFAULTS = {"samples": 250_000, "shuffles": 100, "long_steps": 1_000_000, "long_paths": 2}
QUICK = {"samples": 50_000, "shuffles": 20, "long_steps": 100_000, "long_paths": 1}
# Independent random streams, one per purpose, from the seed.
STREAMS = {"trajectories": 0, "noise": 1, "shuffles": 2, "development_noise": 3, "long_path": 4,
           "embedding": 5, "path_simulated": 6, "path_noise": 7, "path_shuffles": 8, "ratinabox": 9,
           "path_trials": 10}
# trajectory: RatInABox's default length (that of the Sargolini recording),
# real time per block of the error curve and seconds of path in the tracking panels.
RATINABOX_DURATION = 600.0  # s
PATH_BLOCK_S = 10.0         # s
PATH_TRACE_S = 30.0         # s

CONVENTIONS = {
    "squared_error": "|y_t - p_t|^2 summed over x and y (arena units^2), the network's position "
                     "estimate y_t vs true position p_t; y_t is the output for the x, y readout and "
                     "the decoded logits (mean centre of the 3 most active place cells, "
                     "gridcore.sim.placecells.outputs_to_positions) for the place-cell readout",
    "best_constant_error": "mean |p_t - c|^2 with c the mean position over all trials and steps "
                           "(the best constant output)",
    "normalised_error": "mean squared error / that of the best constant output "
                        "(gridcore.train.heldout.normalised_error); tracking: on the run's held-out "
                        "trials (config eval_trials, final_metrics.json's nerr_heldout)",
    "error_correction": "trials aligned at their first boundary interaction t0 (full window "
                        "t0 - W .. t0 + W inside the trial), grouped by the number of boundary "
                        "interactions in steps t0 + 1 .. t0 + W; drop = mean error over offsets "
                        "-(pre - 1)..0 minus mean over offsets W - post + 1..W",
    "error_growth": "mean error per step of the trials without any boundary interaction, "
                    "least-squares line against the step",
    "stability": "error averaged per block of steps of long paths (mean and sd over the "
                 "block's steps and paths) vs the best-constant error of the same block",
    "development_distance": "1 - Pearson correlation of two units' activity over the same "
                            "test trials (same trajectories and noise at every stage)",
    "distance_travelled": "sum over consecutive stages of a unit's displacement, in the 2-D "
                          "embedding and in correlation distance",
    "map_correlation": "Pearson correlation of two rate maps over the bins valid in both",
    "spatial_selectivity": "lifetime sparseness of the rate map (Willmore & Tolhurst 2001; "
                           "paper App. D)",
    "speed_linearity": "R^2 of the least-squares line through the speed tuning curve",
    "ramp": f"a unit whose rate map's plane score is >= {RAMP_R2:g}; plane score: "
            + SCORE_CONVENTIONS["plane"],
}


def subseed(seed, stream):
    """An int seed for one purpose, derived from the analysis seed.

    Parameters
    ----------
    seed : int
        The analysis seed.
    stream : str
        A key of :data:`STREAMS`.

    Returns
    -------
    int
        In [0, 2^32).
    """
    return int(np.random.SeedSequence(seed, spawn_key=(STREAMS[stream],)).generate_state(1)[0])


@dataclass(frozen=True)
class AnalysisSettings:
    """What an analysis does, validated: sizes, seed, options (build with :meth:`make`).

    Attributes
    ----------
    seed : int
        Every random draw of the analysis derives from it (:func:`subseed`).
    quick : bool
        Whether the sizes default to :data:`QUICK` (recorded in ``metrics.json``).
    samples : int
        Recorded steps of the test trials when ``n_trials`` is None.
    n_trials : int or None
        Test trials of the recording (unit types, tuning, C7, comparisons);
        None: ``ceil(samples / n_steps)``. C1 is on the run's own held-out
        trials (:func:`gridcore.analysis.tracking.held_out_tracking`).
    n_steps : int or None
        Steps per test trial (None: the run's training length).
    long_steps, long_paths : int
        Length (steps) and number of the long paths of C8.
    block_steps : int
        Steps per block of the stability curve (10^4 as in the paper).
    shuffles : int
        Shuffles per unit of the unit-type nulls.
    bins : int
        Spatial bins along the longer side of the arena.
    noise_std : float or None
        Unit noise during the tests (None: each run's training level).
    stages : tuple of int or None
        Training iterations of the development analysis (None: see
        :func:`gridcore.analysis.development.select_stages`).
    embedding : {"tsne", "mds"}
    trajectory : str or None
        ``"sargolini"``, ``"ratinabox"`` or a path file: also run the
        network along it (:func:`real_path_step`).
    trajectory_dt, trajectory_duration : float or None
        Seconds per network step on that path and seconds of it used.
    """

    seed: int = 0
    quick: bool = False
    samples: int = DEFAULTS["samples"]
    n_trials: int = None
    n_steps: int = None
    long_steps: int = DEFAULTS["long_steps"]
    long_paths: int = DEFAULTS["long_paths"]
    block_steps: int = 10_000
    shuffles: int = DEFAULTS["shuffles"]
    bins: int = 20
    noise_std: float = None
    stages: tuple = None
    embedding: str = "tsne"
    trajectory: str = None
    trajectory_dt: float = None
    trajectory_duration: float = None

    @classmethod
    def make(cls, quick=False, samples=None, shuffles=None, long_steps=None, long_paths=None,
             **rest):
        """Settings with the sizes of a full analysis (:data:`DEFAULTS`) or of ``quick``
        (:data:`QUICK`); sizes given explicitly win over both.

        Parameters
        ----------
        quick : bool
        samples, shuffles, long_steps, long_paths : int or None
            None: the default of the chosen size.
        **rest
            The other fields of :class:`AnalysisSettings`.

        Returns
        -------
        AnalysisSettings
        """
        sizes = {**DEFAULTS, **(QUICK if quick else {})}
        given = {"samples": samples, "shuffles": shuffles, "long_steps": long_steps,
                 "long_paths": long_paths}
        sizes.update({k: v for k, v in given.items() if v is not None})
        return cls(quick=bool(quick), **sizes, **rest)

    def __post_init__(self):
        for k in DEFAULTS:
            check_positive_int(k, getattr(self, k))
        check_positive_int("block_steps", self.block_steps)
        check_positive_int("bins", self.bins)
        if self.long_steps < 2 * self.block_steps:  # the stability curve's slope needs two blocks
            raise ValueError(f"long_steps ({self.long_steps}) must be at least two blocks of block_steps = "
                             f"{self.block_steps} (the stability curve's slope needs two); give --long-steps "
                             f">= {2 * self.block_steps} or a smaller --block-steps")
        check_choice("embedding", self.embedding, EMBEDDINGS)
        for name in ("trajectory_dt", "trajectory_duration"):
            v = getattr(self, name)
            if v is not None and not (check_nonneg_float(name, v) > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        for name in ("n_trials", "n_steps"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if self.noise_std is not None:
            object.__setattr__(self, "noise_std", check_nonneg_float("noise_std", self.noise_std))
        if self.stages is not None:
            object.__setattr__(self, "stages", tuple(self.stages))

    def for_run(self, n_steps):
        """These settings with ``n_steps`` (None here: the run's ``n_steps``) and ``n_trials`` resolved."""
        steps = n_steps if self.n_steps is None else self.n_steps
        trials = trials_for(self.samples, steps) if self.n_trials is None else self.n_trials
        return replace(self, n_steps=steps, n_trials=trials)


def trials_for(samples, n_steps):
    """Trials of ``n_steps`` steps that record at least ``samples`` steps: ``ceil(samples / n_steps)``."""
    return math.ceil(samples / n_steps)


class Steps:
    """Runs the pipeline's named steps, timing each, and reports progress.

    Parameters
    ----------
    say : callable(str) or None
        Receives a line per step start and end (None: silent).

    Attributes
    ----------
    timings : dict of str -> float
        Wall time of each step (s), in the order they ran.
    start : float
        ``time.perf_counter()`` at creation.
    """

    def __init__(self, say=None):
        self._say = say
        self.start = time.perf_counter()
        self.timings = {}

    def say(self, text):
        """Report one line of progress."""
        if self._say is not None:
            self._say(text)

    def run(self, name, text, fn, *args, **kw):
        """Call ``fn(*args, **kw)``, announcing it with ``text`` and timing it under ``name``."""
        self.say(text + " ...")
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        self.timings[name] = time.perf_counter() - t0
        self.say(f"{name}: done in {self.timings[name]:.1f} s")
        return out

    def elapsed(self):
        """Seconds since creation."""
        return time.perf_counter() - self.start


@dataclass
class Analysis:
    """What :func:`analyze_run` computed: ``metrics.json`` (so far) and the arrays of the figures.

    Attributes
    ----------
    run : Run
        The analysed run; ``others``, the runs compared with it.
    others : list of Run
    bins : int
        Spatial bins of every rate map.
    metrics : dict
        JSON-ready; the keys of ``metrics.json`` up to ``trajectory``
        (:mod:`gridcore.report.outputs` adds ``figures`` and ``timings_s``).
    outputs, positions : ndarray, shape (M, T, 2)
        Network estimates and true positions on the test trials (arena units).
    types : CellTypes
        Unit types of the run.
    curves : dict
        Tuning curves (:func:`gridcore.analysis.unitsummary.tuning_curves`).
    development : dict or None
        :func:`gridcore.analysis.development.development` with its ``maps``.
    compared_types : list of CellTypes
        Of ``others``, in order.
    path_types, path_traces : dict or None
        Per path (``"real"``, ``"simulated"``) of :func:`real_path_step`.
    """

    run: object
    others: list
    bins: int
    metrics: dict
    outputs: np.ndarray
    positions: np.ndarray
    types: object
    curves: dict
    development: dict = None
    compared_types: list = None
    path_types: dict = None
    path_traces: dict = None


def analyze_run(run_dir, compare=(), backend="auto", threads=None, settings=None, steps=None):
    """Every analysis of the paper on one run, step by step (see the module docstring).

    Parameters
    ----------
    run_dir : str
        A finished run (``config.json`` and ``final.npz``).
    compare : sequence of str
        Other finished runs shown side by side (C6), analysed on the same
        test trials (same seed) with the same settings.
    backend : {"auto", "numpy", "numba", "c"}
    threads : int or None
    settings : AnalysisSettings, optional
        Default: the full analysis with seed 0.
    steps : Steps, optional
        Times the steps and reports progress (default: silent).

    Returns
    -------
    Analysis
    """
    settings = AnalysisSettings() if settings is None else settings
    steps = Steps() if steps is None else steps
    run = load_run(run_dir)
    others = [load_run(p) for p in compare]       # fail early, before the long work
    task = run.settings.task
    s = settings.for_run(task.n_steps)
    test_noise = task.noise_std if s.noise_std is None else s.noise_std
    stages = select_stages(run.snapshots, run.final_iteration, s.stages)
    be = get_backend(backend, threads)
    real = None
    if s.trajectory is not None:      # read and check the path before the long work
        real = steps.run("path_load", f"loading the path {s.trajectory}", load_real_path, s.trajectory,
                         run, s.seed, s.trajectory_dt, s.trajectory_duration)
    spec = run.spec
    steps.say(f"analysing {run.path}: {task.arena} arena, N={run.settings.network.n_units}, {task.encoding} inputs, "
              f"{task.motion_model} motion, {spec.nonlinearity} units, {spec.readout} readout, "
              f"{spec.initial_state} initial state; backend {be.name}, threads {be.threads}")

    probe = steps.run("probe", "step response (does the network integrate?)", probes.run_probe, run, be)
    # C1 on the run's own held-out trials: the error of final_metrics.json, one per run.
    track, outputs, positions = steps.run("tracking", "held-out error and the heading-only integrator's",
                                          held_out_tracking, run, be)
    track["speed_use"] = speed_use(track["normalised_error"], track["heading_baseline_normalised_error"],
                                   probes.step_gain(probe["final"]["summary"]), track["readout_floor"])
    # One recording serves C2-C4, C7 and the comparison's unit types.
    traj, rec, types = steps.run(
        "recording_and_celltypes",
        f"recording {s.n_trials} trials x {s.n_steps} steps and classifying units "
        f"({s.shuffles} shuffles)", record_and_classify, run, be, s.seed, s.n_trials, s.n_steps,
        test_noise, s.bins, s.shuffles)
    tuning, curves = steps.run("tuning", "tuning curves and selectivities", tuning_step, rec, types)
    ec = steps.run("error_correction", "error around boundary interactions", error_correction_step, rec)
    del rec
    dev = development_step(run, stages, be, traj, test_noise, s, types, steps)
    stab = stability_step(run, be, s, test_noise, steps)
    comparison, cmp_types = compare_step(run, others, be, s, settings.noise_std, track, types, steps)
    path_section = path_types = path_traces = None
    if real is not None:
        path_section, path_types, path_traces = real_path_step(run, be, real, s, test_noise, steps)
    metrics = assemble_metrics(run, others, be, s, stages, test_noise, probe, track, types, tuning, dev,
                               ec, stab, comparison, path_section)
    scored = [("held-out trials", types), *((f"comparison run {o.path}", t) for o, t in zip(others, cmp_types)),
              *((f"{name} path", t) for name, t in (path_types or {}).items())]
    metrics["warnings"] = coverage_warnings(scored)
    for w in metrics["warnings"]:
        steps.say(f"warning: {w}")
    return Analysis(run=run, others=others, bins=s.bins, metrics=metrics, outputs=outputs,
                    positions=positions, types=types, curves=curves, development=dev,
                    compared_types=cmp_types, path_types=path_types, path_traces=path_traces)


def coverage_warnings(scored):
    """The coverage warnings of the paths units were classified on (``metrics["warnings"]``).

    Parameters
    ----------
    scored : sequence of (str, CellTypes)
        What was scored (e.g. ``"held-out trials"``) and its unit types.

    Returns
    -------
    list of str
        ``"what: warning"`` for each path that visits fewer than
        :data:`gridcore.analysis.ratemaps.MIN_COVERAGE` of the arena's bins.
    """
    return [f"{name}: {t.settings['coverage_warning']}" for name, t in scored
            if t.settings.get("coverage_warning")]


def held_out_recording(run, backend, seed, n_trials, n_steps, noise_std):
    """Fresh held-out trials for a run and the network's activity along them.

    Parameters
    ----------
    run : Run
    backend : a backend from :func:`gridcore.backends.get_backend`
    seed : int
        The analysis seed; trajectories and noise come from its streams.
    n_trials, n_steps : int
    noise_std : float

    Returns
    -------
    traj : Trajectories
    rec : Recording
    """
    task = run.settings.task
    traj = simulate(run.arena, n_trials, n_steps, subseed(seed, "trajectories"),
                    encoding=task.encoding, motion_model=task.motion_model, **task.motion)
    rec = record_trajectories(run.params, backend, traj, subseed(seed, "noise"), noise_std, run.spec,
                              run.place_cells)
    return traj, rec


def record_and_classify(run, backend, seed, n_trials, n_steps, noise_std, bins, shuffles):
    """Recording and unit types (C2) of one run, as :func:`analyze_run` does them.

    C1 is not here: it is on the run's own held-out trials
    (:func:`gridcore.analysis.tracking.held_out_tracking`).

    Parameters
    ----------
    run : :class:`gridcore.train.rundir.Run`
    backend : a backend from :func:`gridcore.backends.get_backend`
    seed : int
        The analysis seed (``metrics.json`` ``settings.seed``); the test
        trials, noise and shuffles derive from it.
    n_trials, n_steps : int
        Held-out test trials and their length.
    noise_std : float
        Unit noise during the test.
    bins, shuffles : int
        Spatial bins along the longer side; shuffles per unit.

    Returns
    -------
    traj : Trajectories
    rec : Recording
    types : CellTypes
    """
    traj, rec = held_out_recording(run, backend, seed, n_trials, n_steps, noise_std)
    types = classify(rec.rates, rec.positions, rec.speed, rec.heading, run.arena, bins,
                     n_shuffles=shuffles, seed=subseed(seed, "shuffles"))
    return traj, rec, types


def celltypes_section(types, with_ramps=True):
    """The unit types as reported (C2): :meth:`CellTypes.to_dict`, grid symmetry and ramps.

    Parameters
    ----------
    types : CellTypes
    with_ramps : bool
        Add ``ramps`` (:func:`gridcore.analysis.unitsummary.ramps`).

    Returns
    -------
    dict (JSON-ready)
    """
    ct = types.to_dict()
    ct["grid_symmetry"] = grid_symmetry_counts(types)
    if with_ramps:
        ct["ramps"] = ramps(types)
    return ct


def tuning_step(rec, types):
    """Tuning curves of all units on the test recording, and what they show (C3).

    Parameters
    ----------
    rec : Recording
    types : CellTypes

    Returns
    -------
    section : dict (JSON-ready)
        ``metrics["tuning"]``: ``examples``, ``summary``, ``heading_wrap``
        and the curves.
    curves : dict of arrays
        :func:`gridcore.analysis.unitsummary.tuning_curves` (for the figures).
    """
    curves = tuning_curves(rec.activity, rec.speed.ravel(), rec.heading.ravel())
    section = {"examples": pick_examples(types), "summary": tuning_summary(types, curves["speed_r2"]),
               "heading_wrap": heading_wrap(curves["direction_curves"]), **curves_to_json(curves)}
    return section, curves


def error_correction_step(rec):
    """Squared error around the first boundary interaction of each test trial (C7).

    Parameters
    ----------
    rec : Recording

    Returns
    -------
    dict from :func:`gridcore.analysis.tracking.error_correction`
    """
    return error_correction(rec.arena.squared_distance(rec.outputs, rec.positions), rec.boundary)


def development_step(run, stages, backend, traj, noise_std, settings, types, steps):
    """The units over training stages (C5), or None when the run has a single stage.

    Parameters
    ----------
    run : Run
    stages : list of int
        From :func:`gridcore.analysis.development.select_stages`.
    backend : backend object
    traj : Trajectories
        The test trials.
    noise_std : float
    settings : AnalysisSettings
        Seed, bins and embedding.
    types : CellTypes
        Of the final network (its groups are highlighted).
    steps : Steps

    Returns
    -------
    dict or None
        :func:`gridcore.analysis.development.development` (with ``maps``).
    """
    if len(stages) < 2:
        steps.say("development: skipped (the run has no snapshots before the final iteration)")
        return None
    return steps.run("development", f"development over iterations {stages}", development,
                     run, stages, backend, traj, noise_std, subseed(settings.seed, "development_noise"),
                     settings.bins, types.spatial_type, settings.embedding)


def stability_step(run, backend, settings, noise_std, steps):
    """Error along long paths, per block of steps (C8).

    Parameters
    ----------
    run : Run
    backend : backend object
    settings : AnalysisSettings
        ``long_steps``, ``long_paths``, ``block_steps``, ``bins``, ``seed``.
    noise_std : float
    steps : Steps
        Also reports each tenth of the paths.

    Returns
    -------
    dict from :func:`gridcore.analysis.tracking.long_path`
    """
    task = run.settings.task
    total = settings.long_steps
    tenth = max(1, total // 10)
    state = {"next": tenth, "t0": time.perf_counter()}

    def long_progress(done, _):
        # A line per tenth of the path: 10^6 steps take minutes on the NumPy backend.
        if state["next"] <= done < total:
            steps.say(f"  long path: {done:,} / {total:,} steps ({time.perf_counter() - state['t0']:.1f} s)")
            state["next"] = (done // tenth + 1) * tenth

    return steps.run("stability", f"{settings.long_paths} long path(s) of {total:,} steps",
                     long_path, run.params, backend, run.arena, total, subseed(settings.seed, "long_path"),
                     n_paths=settings.long_paths, encoding=task.encoding, motion=task.motion,
                     noise_std=noise_std, spec=run.spec, block=settings.block_steps, bins=settings.bins,
                     progress=long_progress, motion_model=task.motion_model, place_cells=run.place_cells)


def run_name(path):
    """A run's name in comparisons and titles: its directory's name (``runs/square-quick`` -> ``square-quick``)."""
    return os.path.basename(os.path.normpath(path))


def compare_step(run, others, backend, settings, noise_std, track, types, steps):
    """Other runs classified on the same test trials, side by side (C6), each with its own C1 error.

    Unit types come from the shared test trials; the tracking error is each
    run's held-out error (:func:`gridcore.analysis.tracking.held_out_tracking`),
    so a run shows the same error here as in its own analysis.

    Parameters
    ----------
    run : Run
        The reference.
    others : list of Run
    backend : backend object
    settings : AnalysisSettings
        With ``n_steps`` resolved.
    noise_std : float or None
        The test noise asked for (None: each run's training level).
    track, types : the reference's held-out tracking (C1) and unit types
    steps : Steps

    Returns
    -------
    comparison : dict or None
        :func:`gridcore.analysis.compare.compare_runs`; None without ``others``.
    types : list of CellTypes
        Of ``others``.
    """
    if not others:
        return None, []
    s = settings
    summaries = [run_summary(run_name(run.path), run.settings.to_dict(), track, types)]
    cmp_types = []
    for other in others:
        o_noise = other.settings.task.noise_std if noise_std is None else noise_std
        _, _, o_types = steps.run(
            f"compare:{other.path}", f"comparison run {other.path}", record_and_classify, other, backend,
            s.seed, s.n_trials, s.n_steps, o_noise, s.bins, s.shuffles)
        o_track = held_out_tracking(other, backend)[0]
        summaries.append(run_summary(run_name(other.path), other.settings.to_dict(), o_track, o_types))
        cmp_types.append(o_types)
    return compare_runs(summaries), cmp_types


def load_real_path(source, run, seed, dt=None, duration=None):
    """The real path of ``trajectory``, read and prepared as one trial for the run's network.

    Parameters
    ----------
    source : str
        ``"sargolini"`` (the rat path shipped with RatInABox),
        ``"ratinabox"`` (RatInABox's random motion, :data:`RATINABOX_DURATION`
        s by default) or a path file (:func:`gridcore.sim.pathfiles.read_path`).
    run : Run
    seed : int
        The analysis seed (RatInABox's motion derives from it).
    dt, duration : float or None
        Seconds per network step and seconds of path used
        (:func:`gridcore.sim.realpaths.prepare`).

    Returns
    -------
    Trajectories
        One trial with its lead-in (``motion["lead_in_steps"]``): a straight
        walk from the centre, where a network with ``x_0 = 0`` starts; none
        under the encoded initial state (the network is given the start).
        The time step matches the mean speed per step of the run's motion
        model (:func:`realpath_motion`) unless ``dt`` is given.
    """
    if source == "sargolini":
        from gridcore.sim.ratinabox import sargolini
        path = sargolini()
    elif source == "ratinabox":
        from gridcore.sim.ratinabox import random_motion
        path = random_motion(RATINABOX_DURATION if duration is None else duration,
                             seed=subseed(seed, "ratinabox"))
    else:
        path = pathfiles.read_path(source)
    task = run.settings.task
    return realpaths.prepare(path, run.arena, task.encoding, dt=dt, motion=realpath_motion(task),
                             duration=duration, with_lead_in=run.spec.initial_state != "encoded")


def realpath_motion(task):
    """The motion settings :mod:`gridcore.sim.realpaths` matches real paths to, for a run's task.

    :mod:`gridcore.sim.realpaths` reads the paper model's settings (the
    mean speed per step sets the matched time step and the lead-in speed).
    For the smooth model the equivalent paper settings have the same speed
    per step: Rayleigh(``rayleigh_scale * dt``), never zero, unclipped
    (the slowdown at walls is left out).

    Parameters
    ----------
    task : TaskSettings

    Returns
    -------
    dict
        Settings of the paper's motion model.
    """
    if task.motion_model != "smooth":
        return dict(task.motion)
    m = {**SMOOTH_MOTION_DEFAULTS, **task.motion}
    return {"p_zero_speed": 0.0, "speed_scale": m["rayleigh_scale"] * m["dt"], "max_speed": math.inf}


def cut_trials(traj, n_steps):
    """Cut a one-trial path after its lead-in into trials of ``n_steps`` steps, each starting where it is.

    For networks with the encoded initial state, which are given each
    trial's start (:func:`gridcore.sim.realpaths.split_trials` gives the
    others a lead-in from the centre). The trials are the path's own steps:
    inputs, positions, speeds, headings and boundary flags.

    Parameters
    ----------
    traj : Trajectories
        One trial (:func:`load_real_path`).
    n_steps : int
        Steps per trial (the training length).

    Returns
    -------
    Trajectories
        K = (steps after the lead-in) // n_steps trials; ``motion`` is the
        path's with ``lead_in_steps = 0`` and ``split``.
    """
    lead = int(traj.motion.get("lead_in_steps", 0))
    total = traj.inputs.shape[1] - lead
    k = total // n_steps
    if k < 1:
        raise ValueError(f"the path has {total} steps after its lead-in, fewer than one trial of "
                         f"n_steps = {n_steps}")

    def pieces(a):
        return np.ascontiguousarray(a[0, lead:lead + k * n_steps].reshape(k, n_steps, *a.shape[2:]))

    ends = np.concatenate([traj.positions[0], traj.final_position])[lead + n_steps::n_steps][:k]
    info = {**traj.motion, "lead_in_steps": 0,
            "split": {"n_trials": k, "n_steps": n_steps, "moves_left_out": total - k * n_steps}}
    return Trajectories(inputs=pieces(traj.inputs), positions=pieces(traj.positions), speed=pieces(traj.speed),
                        heading=pieces(traj.heading), boundary=pieces(traj.boundary),
                        final_position=np.ascontiguousarray(ends), encoding=traj.encoding, arena=traj.arena,
                        motion=info, motion_model=traj.motion_model)


def _trial_tracking(run, backend, traj, noise_std, seed):
    """C1 tracking on trials after their lead-in (``traj.motion["lead_in_steps"]``, 0 if absent)."""
    codes = trial_start_codes(run.spec, run.place_cells, traj.start)
    y = np.concatenate([output_positions(res.y, run.spec, run.place_cells)
                        for _, _, res in run_chunks(run.params, backend, traj.inputs, noise_std, seed,
                                                    run.spec, keep_u=False, start_codes=codes)], axis=1)
    lead = int(traj.motion.get("lead_in_steps", 0))
    track = tracking(y[:, lead:], traj.positions[:, lead:], run.arena)
    del track["example_trials"]
    return track


def real_path_step(run, backend, real, settings, noise_std, steps):
    """The network on a real path and on a simulated path of the same length, side by side.

    Two views: the whole path as one long trial (error over time, rate maps,
    unit types), and the path cut into trials of the training length, each
    reached from the centre (error by step, as C1; under the encoded initial
    state each starts where it is, :func:`cut_trials`), against as many
    simulated trials (the run's motion model).

    Parameters
    ----------
    run : Run
    backend : backend object
    real : Trajectories
        From :func:`load_real_path`.
    settings : AnalysisSettings
        Seed, bins, shuffles.
    noise_std : float
    steps : Steps

    Returns
    -------
    section : dict (JSON-ready)
        ``metrics["trajectory"]``.
    types : dict of CellTypes
        Per path, ``"real"`` and ``"simulated"``.
    traces : dict
        Per path, for the figure: the first :data:`PATH_TRACE_S` seconds of
        outputs and positions, and all speeds.
    """
    task = run.settings.task
    seed, bins = settings.seed, settings.bins
    lead, dt = real.motion["lead_in_steps"], real.motion["dt_s"]
    n = real.inputs.shape[1] - lead
    sim = simulate(run.arena, 1, n, subseed(seed, "path_simulated"), encoding=task.encoding,
                   motion_model=task.motion_model, **task.motion)
    block = max(1, min(n, int(round(PATH_BLOCK_S / dt))))
    trace = max(2, min(n, int(round(PATH_TRACE_S / dt))))
    out, types, traces = {}, {}, {}
    for name, traj, start in (("real", real, lead), ("simulated", sim, 0)):
        rec = steps.run(f"path:{name}", f"network along the {name} path ({n:,} steps)", record_trajectories,
                        run.params, backend, traj, subseed(seed, "path_noise"), noise_std, run.spec,
                        run.place_cells).from_step(start)
        act, y, pos = rec.rates[0], rec.outputs[0], rec.positions[0]
        track = tracking(y[None], pos[None], run.arena)
        del track["squared_error_by_step"], track["example_trials"]   # one long trial: see over_time
        over_time = stability(run.arena.squared_distance(y, pos)[None], pos[None], block, arena=run.arena)
        over_time["block_end_s"] = [e * dt for e in over_time["block_end"]]
        types[name] = steps.run(f"path_celltypes:{name}", f"unit types on the {name} path", classify,
                                act, pos, traj.speed[0, start:], traj.heading[0, start:], run.arena,
                                bins, n_shuffles=settings.shuffles, seed=subseed(seed, "path_shuffles"))
        out[name] = {"tracking": track, "over_time": over_time,
                     "celltypes": celltypes_section(types[name], with_ramps=False),
                     "statistics": path_statistics(traj, start, dt, bins=bins)}
        traces[name] = (y[:trace], pos[:trace], traj.speed[0, start:])
    if run.spec.initial_state == "encoded":
        pieces = cut_trials(real, task.n_steps)
    else:
        pieces = realpaths.split_trials(real, task.n_steps, realpath_motion(task))
    sim_trials = simulate(run.arena, pieces.inputs.shape[0], task.n_steps, subseed(seed, "path_trials"),
                          encoding=task.encoding, motion_model=task.motion_model, **task.motion)
    for name, traj in (("real", pieces), ("simulated", sim_trials)):
        out[name]["trials"] = steps.run(
            f"path_trials:{name}", f"{traj.inputs.shape[0]} {name} trials of {task.n_steps} steps",
            _trial_tracking, run, backend, traj, noise_std, subseed(seed, "path_noise"))
    out["real"]["trials"]["lead_in_steps"] = pieces.motion["lead_in_steps"]
    r = map_correlation(types["real"].maps, types["simulated"].maps)
    summaries = [run_summary(f"{name} path", {**run.settings.to_dict(), "trajectory": label}, out[name]["tracking"],
                             types[name])
                 for name, label in (("simulated", "simulated"), ("real", real.motion["source"]))]
    section = {
        "source": real.motion["source"], "path": real.motion, "n_steps": int(n), "dt_s": dt,
        "block_steps": block, "block_s": block * dt, **out,
        "map_correlation": {"per_unit": floats(r), "median": finite_median(r),
                            "what": "rate map on the real path vs on the simulated path, per unit"},
        "same_spatial_type": float(np.mean(types["real"].spatial_type == types["simulated"].spatial_type)),
        "comparison": compare_runs(summaries),
    }
    return section, types, traces


def assemble_metrics(run, others, backend, settings, stages, test_noise, probe, track, types, tuning,
                     dev, ec, stab, comparison, path_section):
    """``metrics.json`` from the steps' parts, with the run, the settings and the conventions.

    Parameters
    ----------
    run : Run
    others : list of Run
    backend : backend object
        Its ``name`` and ``threads`` are recorded.
    settings : AnalysisSettings
        With ``n_steps`` resolved.
    stages : list of int
        The development stages used.
    test_noise : float
    probe, track, tuning, ec, stab, comparison, path_section : dict or None
        The steps' results.
    types : CellTypes
    dev : dict or None
        :func:`development_step` (its ``maps`` are left out).

    Returns
    -------
    dict
        Every key of ``metrics.json`` but ``figures`` and ``timings_s``.
    """
    s = settings
    final_metrics = None
    if os.path.exists(os.path.join(run.path, "final_metrics.json")):
        with open(os.path.join(run.path, "final_metrics.json")) as fh:
            final_metrics = json.load(fh)
    return {
        "gridcore_version": __version__,
        "run": {"path": run.path, "final_iteration": run.final_iteration,
                "snapshots": sorted(run.snapshots), "final_metrics": final_metrics},
        "config": run.settings.to_dict(),
        "settings": {
            "backend": backend.name, "threads": backend.threads, "seed": s.seed,
            "seeds": {k: subseed(s.seed, k) for k in STREAMS}, "quick": bool(s.quick),
            "samples": s.samples, "n_trials": s.n_trials, "n_steps": s.n_steps, "test_noise_std": test_noise,
            "bins": s.bins, "n_shuffles": s.shuffles, "long_steps": s.long_steps,
            "long_paths": s.long_paths, "block_steps": s.block_steps,
            "stages": stages, "embedding": s.embedding,
            "compare": [o.path for o in others], "trajectory": s.trajectory,
            "trajectory_dt": s.trajectory_dt, "trajectory_duration": s.trajectory_duration,
            "physical_scale": physical_scale(run.settings.task).to_dict(),
        },
        "conventions": {**CONVENTIONS, "scores": types.settings["conventions"]},
        "tracking": track,
        "probe": probe,
        "celltypes": celltypes_section(types),
        "tuning": tuning,
        "selectivity": selectivity(types),
        "development": ({k: v for k, v in dev.items() if k != "maps"} if dev is not None
                        else {"skipped": "the run has no snapshots before the final iteration"}),
        "error_correction": ec,
        "stability": stab,
        "comparison": comparison,
        "trajectory": path_section,
    }
