"""``python -m gridcore.analyze RUN_DIR``: every analysis of the paper on a trained run.

Writes ``RUN_DIR/analysis/``: ``metrics.json`` (every number, the score
conventions, the unit-type thresholds and the settings used), one PNG per
figure and ``report.html`` (opens offline). See ``docs/analysis.md``.

Examples::

    python -m gridcore.analyze runs/square-quick
    python -m gridcore.analyze runs/square-quick --quick
    python -m gridcore.analyze runs/square --compare runs/square-nometabolic runs/square-nonoise
    python -m gridcore.analyze runs/square-quick --quick --trajectory sargolini

With ``--trajectory sargolini|ratinabox|FILE`` the network also runs along a
real rat's path (or RatInABox's simulated one, or any path file) and, side by
side, along one of our simulated paths of the same length: tracking error over
time, rate maps and unit types of both (``docs/real_paths.md``).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from gridcore.analysis import paper as an
from gridcore.analysis import probes
from gridcore.analysis.celltypes import classify
from gridcore.analysis.recording import record_trajectories, run_chunks
from gridcore.backends import BACKEND_NAMES, get_backend
from gridcore.cli.common import int_list, nonneg_float, positive_int, run_main
from gridcore.report import figures
from gridcore.report import html as report
from gridcore.sim import pathfiles as trajectory_io
from gridcore.sim.trajectories import simulate
from gridcore.util.checks import check_choice, check_nonneg_float, check_positive_int
from gridcore.util.fileio import atomic_write_json
from gridcore.version import __version__

# Defaults of the full analysis (the paper's sizes) and of --quick.
DEFAULTS = {"n_trials": 500, "shuffles": 100, "long_steps": 1_000_000, "long_paths": 2}
QUICK = {"n_trials": 100, "shuffles": 20, "long_steps": 100_000, "long_paths": 1}
# Independent random streams, one per purpose, from --seed.
_STREAMS = {"trajectories": 0, "noise": 1, "shuffles": 2, "development_noise": 3, "long_path": 4,
            "embedding": 5, "path_simulated": 6, "path_noise": 7, "path_shuffles": 8, "ratinabox": 9,
            "path_trials": 10}
# --trajectory: RatInABox's default length (that of the Sargolini recording),
# real time per block of the error curve and seconds of path in the tracking panels.
RATINABOX_DURATION = 600.0  # s
PATH_BLOCK_S = 10.0         # s
PATH_TRACE_S = 30.0         # s


def _subseed(seed, stream):
    """An int seed for one purpose, derived from the user's seed."""
    return int(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream],)).generate_state(1)[0])


class Progress:
    """A line per stage with its wall time (to ``stream``); keeps the timings."""

    def __init__(self, stream):
        self.stream = stream
        self.start = time.perf_counter()
        self.timings = {}

    def say(self, text):
        if self.stream is not None:
            print(f"[{time.perf_counter() - self.start:7.1f} s] {text}", file=self.stream, flush=True)

    def run(self, name, text, fn, *args, **kw):
        """Call ``fn(*args, **kw)``, announcing it and recording its wall time under ``name``."""
        self.say(text + " ...")
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        self.timings[name] = time.perf_counter() - t0
        self.say(f"{name}: done in {self.timings[name]:.1f} s")
        return out


def _test_recording(run, backend, seed, n_trials, n_steps, noise_std):
    """Fresh held-out trials for a run (trajectories and noise from ``seed``)."""
    cfg = run.config
    traj = simulate(run.arena, n_trials, n_steps, _subseed(seed, "trajectories"),
                    encoding=cfg["encoding"], **cfg["motion"])
    rec = record_trajectories(run.params, backend, traj, _subseed(seed, "noise"), noise_std, run.spec)
    return traj, rec


def record_and_classify(run, backend, seed, n_trials, n_steps, noise_std, bins, shuffles):
    """Recording, tracking (C1) and unit types (C2) of one run, as :func:`analyze` does them.

    Parameters
    ----------
    run : :class:`gridcore.analysis.paper.Run`
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
    track : dict from :func:`gridcore.analysis.paper.tracking`
    types : CellTypes
    """
    traj, rec = _test_recording(run, backend, seed, n_trials, n_steps, noise_std)
    shape = (rec.n_trials, rec.n_steps, 2)
    track = an.tracking(rec.outputs.reshape(shape), rec.positions.reshape(shape))
    track["heading_baseline_normalised_error"] = an.heading_baseline(
        rec.speed.reshape(shape[:2]), rec.heading.reshape(shape[:2]), rec.positions.reshape(shape), run.arena)
    types = classify(rec.activity, rec.positions, rec.speed, rec.heading, run.arena, bins,
                     n_shuffles=shuffles, seed=_subseed(seed, "shuffles"))
    return traj, rec, track, types


def _real_path(spec, run, seed, dt, duration):
    """The trial of ``--trajectory``: a file or built-in source prepared for the run's network."""
    if spec == "sargolini":
        from gridcore.sim.ratinabox import sargolini
        path = sargolini()
    elif spec == "ratinabox":
        from gridcore.sim.ratinabox import random_motion
        path = random_motion(RATINABOX_DURATION if duration is None else duration,
                             seed=_subseed(seed, "ratinabox"))
    else:
        path = trajectory_io.read_path(spec)
    cfg = run.config
    return trajectory_io.prepare(path, run.arena, cfg["encoding"], dt=dt, motion=cfg["motion"],
                                 duration=duration)


def _run_path(run, backend, traj, start, noise_std, seed):
    """Stream the network along a one-trial path; rates (T - start, N) and outputs (T - start, 2) from ``start``."""
    n = traj.inputs.shape[1] - start
    activity = np.empty((n, run.params.n_units))
    outputs = np.empty((n, run.params.n_out))
    for lo, hi, res in run_chunks(run.params, backend, traj.inputs, noise_std, seed, run.spec):
        a = max(lo, start)
        if hi > a:
            activity[a - start:hi - start] = res.u[0, a - lo:]
            outputs[a - start:hi - start] = res.y[0, a - lo:]
    return activity, outputs


def _trial_tracking(run, backend, traj, noise_std, seed):
    """C1 tracking on trials after their lead-in (``traj.motion["lead_in_steps"]``, 0 if absent)."""
    y = np.concatenate([res.y for _, _, res in run_chunks(run.params, backend, traj.inputs, noise_std, seed,
                                                           run.spec, keep_u=False)], axis=1)
    lead = int(traj.motion.get("lead_in_steps", 0))
    track = an.tracking(y[:, lead:], traj.positions[:, lead:])
    del track["example_trials"]
    return track


def _path_section(run, backend, real, seed, noise_std, bins, shuffles, progress):
    """The network on a real path and on a simulated path of the same length, side by side.

    Two views: the whole path as one long trial (error over time, rate maps,
    unit types), and the path cut into trials of the training length, each
    reached from the centre (error by step, as C1), against as many
    simulated trials.

    Returns the JSON-ready section, the unit types of both paths and, for
    the figure, per path the first ``PATH_TRACE_S`` seconds of outputs and
    positions and all speeds.
    """
    cfg = run.config
    lead, dt = real.motion["lead_in_steps"], real.motion["dt_s"]
    n = real.inputs.shape[1] - lead
    sim = simulate(run.arena, 1, n, _subseed(seed, "path_simulated"), encoding=cfg["encoding"],
                   **cfg["motion"])
    block = max(1, min(n, int(round(PATH_BLOCK_S / dt))))
    trace = max(2, min(n, int(round(PATH_TRACE_S / dt))))
    out, types, traces = {}, {}, {}
    for name, traj, start in (("real", real, lead), ("simulated", sim, 0)):
        act, y = progress.run(f"path:{name}", f"network along the {name} path ({n:,} steps)", _run_path,
                              run, backend, traj, start, noise_std, _subseed(seed, "path_noise"))
        pos = traj.positions[0, start:]
        track = an.tracking(y[None], pos[None])
        del track["squared_error_by_step"], track["example_trials"]   # one long trial: see over_time
        over_time = an.stability(np.sum((y - pos) ** 2, axis=1)[None], pos[None], block)
        over_time["block_end_s"] = [e * dt for e in over_time["block_end"]]
        types[name] = progress.run(f"path_celltypes:{name}", f"unit types on the {name} path", classify,
                                   act, pos, traj.speed[0, start:], traj.heading[0, start:], run.arena,
                                   bins, n_shuffles=shuffles, seed=_subseed(seed, "path_shuffles"))
        ct = types[name].to_dict()
        ct["grid_symmetry"] = an.grid_symmetry_counts(types[name])
        out[name] = {"tracking": track, "over_time": over_time, "celltypes": ct,
                     "statistics": trajectory_io.path_statistics(traj, start, dt, bins=bins)}
        traces[name] = (y[:trace], pos[:trace], traj.speed[0, start:])
    pieces = trajectory_io.split_trials(real, cfg["n_steps"], cfg["motion"])
    sim_trials = simulate(run.arena, pieces.inputs.shape[0], cfg["n_steps"], _subseed(seed, "path_trials"),
                          encoding=cfg["encoding"], **cfg["motion"])
    for name, traj in (("real", pieces), ("simulated", sim_trials)):
        out[name]["trials"] = progress.run(
            f"path_trials:{name}", f"{traj.inputs.shape[0]} {name} trials of {cfg['n_steps']} steps",
            _trial_tracking, run, backend, traj, noise_std, _subseed(seed, "path_noise"))
    out["real"]["trials"]["lead_in_steps"] = pieces.motion["lead_in_steps"]
    r = an.map_correlation(types["real"].maps, types["simulated"].maps)
    summaries = [an.run_summary(f"{name} path", {**cfg, "trajectory": label}, out[name]["tracking"],
                                types[name])
                 for name, label in (("simulated", "simulated"), ("real", real.motion["source"]))]
    section = {
        "source": real.motion["source"], "path": real.motion, "n_steps": int(n), "dt_s": dt,
        "block_steps": block, "block_s": block * dt, **out,
        "map_correlation": {"per_unit": an._floats(r), "median": an._median(r),
                            "what": "rate map on the real path vs on the simulated path, per unit"},
        "same_spatial_type": float(np.mean(types["real"].spatial_type == types["simulated"].spatial_type)),
        "comparison": an.compare_runs(summaries),
    }
    return section, types, traces


def analyze(run_dir, compare=(), backend="auto", threads=None, seed=0, n_trials=None, n_steps=None,
            long_steps=None, long_paths=None, block_steps=10_000, shuffles=None, bins=20,
            quick=False, noise_std=None, stages=None, embedding="tsne", trajectory=None,
            trajectory_dt=None, trajectory_duration=None, stream=sys.stderr):
    """Run every analysis on ``run_dir`` and write ``run_dir/analysis/``.

    Parameters
    ----------
    run_dir : str
        A finished run (``config.json`` and ``final.npz``).
    compare : sequence of str
        Other finished runs shown side by side (C6), analysed on the same
        test trials (same seed) with the same settings.
    backend : {"auto", "numpy", "numba", "c"}
    threads : int or None
    seed : int
        Every random draw of the analysis derives from it.
    n_trials, n_steps : int or None
        Held-out test trials (default 500, --quick 100) of ``n_steps``
        steps (default: the run's training length).
    long_steps, long_paths : int or None
        Length and number of the long paths of C8 (default 10^6 steps and
        2 paths; --quick 10^5 and 1).
    block_steps : int
        Steps per block of the stability curve (10^4 as in the paper).
    shuffles : int or None
        Shuffles per unit of the unit-type nulls (default 100, --quick 20).
    bins : int
        Spatial bins along the longer side of the arena.
    quick : bool
        Smaller defaults for a fast look (explicit values still win).
    noise_std : float or None
        Unit noise during the tests (default: each run's training level).
    stages : sequence of int or None
        Training iterations for the development analysis (default: see
        :func:`gridcore.analysis.paper.select_stages`).
    embedding : {"tsne", "mds"}
    trajectory : str or None
        ``"sargolini"`` (the rat path shipped with RatInABox),
        ``"ratinabox"`` (RatInABox's random motion, seeded from ``seed``) or
        a path file (:func:`gridcore.sim.pathfiles.read_path`): also run the
        network along it and along a simulated path of the same length.
    trajectory_dt : float or None
        Seconds per network step on that path (default: the step at which
        its mean speed matches the training motion's).
    trajectory_duration : float or None
        Seconds of the path used (default: all of a recording, 600 s of
        RatInABox motion).
    stream : file or None
        Where the progress lines go.

    Returns
    -------
    dict
        The contents of ``metrics.json``.
    """
    sizes = {**DEFAULTS, **(QUICK if quick else {})}
    given = {"n_trials": n_trials, "shuffles": shuffles, "long_steps": long_steps, "long_paths": long_paths}
    sizes.update({k: v for k, v in given.items() if v is not None})
    for k, v in sizes.items():
        check_positive_int(k, v)
    block_steps = check_positive_int("block_steps", block_steps)
    bins = check_positive_int("bins", bins)
    if sizes["long_steps"] < block_steps:
        raise ValueError(f"long_steps ({sizes['long_steps']}) must be at least one block "
                         f"(block_steps = {block_steps})")
    check_choice("embedding", embedding, an.EMBEDDINGS)
    for name, v in (("trajectory_dt", trajectory_dt), ("trajectory_duration", trajectory_duration)):
        if v is not None and not (check_nonneg_float(name, v) > 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")

    prog = Progress(stream)
    run = an.load_run(run_dir)
    others = [an.load_run(p) for p in compare]       # fail early, before the long work
    cfg = run.config
    n_steps = check_positive_int("n_steps", cfg["n_steps"] if n_steps is None else n_steps)
    test_noise = cfg["noise_std"] if noise_std is None else check_nonneg_float("noise_std", noise_std)
    chosen_stages = an.select_stages(run.snapshots, run.final_iteration, stages)
    be = get_backend(backend, threads)
    real = None
    if trajectory is not None:      # read and check the path before the long work
        real = prog.run("path_load", f"loading the path {trajectory}", _real_path, trajectory, run, seed,
                        trajectory_dt, trajectory_duration)
    out_dir = os.path.join(run.path, "analysis")
    os.makedirs(out_dir, exist_ok=True)
    prog.say(f"analysing {run.path}: {cfg['arena']} arena, N={cfg['n_units']}, {cfg['encoding']} inputs; "
             f"backend {be.name}, threads {be.threads}")

    # One recording serves C1-C4 and C7.
    probe = prog.run("probe", "step response (does the network integrate?)", probes.run_probe, run, be)
    traj, rec, track, types = prog.run(
        "recording_and_celltypes",
        f"recording {sizes['n_trials']} trials x {n_steps} steps and classifying units "
        f"({sizes['shuffles']} shuffles)", record_and_classify, run, be, seed, sizes["n_trials"], n_steps,
        test_noise, bins, sizes["shuffles"])
    shape = (rec.n_trials, rec.n_steps)
    outputs, positions = rec.outputs.reshape(*shape, 2), rec.positions.reshape(*shape, 2)
    curves = prog.run("tuning", "tuning curves and selectivities", an.tuning_curves,
                      rec.activity, rec.speed, rec.heading)
    examples = an.pick_examples(types)
    err = np.sum((outputs - positions) ** 2, axis=2)
    ec = prog.run("error_correction", "error around boundary interactions", an.error_correction,
                  err, rec.boundary.reshape(shape))
    del rec, err

    if len(chosen_stages) >= 2:
        dev = prog.run("development", f"development over iterations {chosen_stages}", an.development,
                       run, chosen_stages, be, traj, test_noise, _subseed(seed, "development_noise"),
                       bins, types.spatial_type, embedding)
    else:
        dev = None
        prog.say("development: skipped (the run has no snapshots before the final iteration)")

    total = sizes["long_steps"]
    tenth = max(1, total // 10)
    state = {"next": tenth, "t0": time.perf_counter()}

    def long_progress(done, _):
        # A line per tenth of the path: 10^6 steps take minutes on the NumPy backend.
        if state["next"] <= done < total:
            prog.say(f"  long path: {done:,} / {total:,} steps ({time.perf_counter() - state['t0']:.1f} s)")
            state["next"] = (done // tenth + 1) * tenth

    stab = prog.run("stability", f"{sizes['long_paths']} long path(s) of {total:,} steps",
                    an.long_path, run.params, be, run.arena, total, _subseed(seed, "long_path"),
                    n_paths=sizes["long_paths"], encoding=cfg["encoding"], motion=cfg["motion"],
                    noise_std=test_noise, spec=run.spec, block=block_steps, bins=bins,
                    progress=long_progress)

    comparison, cmp_types = None, []
    if others:
        summaries = [an.run_summary(os.path.basename(os.path.normpath(run.path)), cfg, track, types)]
        for other in others:
            o_noise = other.config["noise_std"] if noise_std is None else test_noise
            _, _, o_track, o_types = prog.run(
                f"compare:{other.path}", f"comparison run {other.path}", record_and_classify, other, be,
                seed, sizes["n_trials"], n_steps, o_noise, bins, sizes["shuffles"])
            summaries.append(an.run_summary(os.path.basename(os.path.normpath(other.path)),
                                            other.config, o_track, o_types))
            cmp_types.append(o_types)
        comparison = an.compare_runs(summaries)

    path_section = None
    if real is not None:
        path_section, path_types, path_traces = _path_section(run, be, real, seed, test_noise, bins,
                                                              sizes["shuffles"], prog)

    def draw():
        fig = {}
        f = lambda name: os.path.join(out_dir, name)   # noqa: E731
        fig["tracking"] = figures.tracking_figure(outputs, positions, run.arena, track["example_trials"],
                                                  f("tracking.png"), track["normalised_error"])
        fig["probe"] = figures.probe_figure(probe, f("probe.png"))
        fig["ratemaps"] = figures.ratemap_panel(types.maps, types, run.arena, bins, f("ratemaps.png"),
                                                title=f"{run.path}: rate maps of all units")
        fig["tuning"] = figures.tuning_examples(examples, types.maps, curves, types, run.arena, bins,
                                                f("tuning_examples.png"))
        fig["selectivity"] = figures.selectivity_figure(an.selectivity(types), types.spatial_type,
                                                        f("selectivity.png"))
        if dev is not None:
            fig["development"] = figures.development_figure(dev, types, run.arena, bins, f("development.png"))
        fig["error_correction"] = figures.error_correction_figure(ec, f("error_correction.png"))
        fig["stability"] = figures.stability_figure(stab, f("stability.png"))
        if comparison is not None:
            fig["comparison"] = figures.comparison_figure(
                comparison, [types.maps] + [t.maps for t in cmp_types], [types] + cmp_types,
                [run.arena] + [o.arena for o in others], bins, f("comparison.png"))
        if path_section is not None:
            fig["path_error"] = figures.path_figure(path_section, path_traces, run.arena, f("path_error.png"))
            fig["path_maps"] = figures.comparison_figure(
                path_section["comparison"], [path_types["simulated"].maps, path_types["real"].maps],
                [path_types["simulated"], path_types["real"]], [run.arena, run.arena], bins,
                f("path_maps.png"))
        return {k: os.path.basename(v) for k, v in fig.items()}

    files = prog.run("figures", "figures", draw)

    final_metrics = None
    if os.path.exists(os.path.join(run.path, "final_metrics.json")):
        with open(os.path.join(run.path, "final_metrics.json")) as fh:
            final_metrics = json.load(fh)
    celltypes = types.to_dict()
    celltypes["grid_symmetry"] = an.grid_symmetry_counts(types)
    celltypes["ramps"] = an.ramps(types)
    metrics = {
        "gridcore_version": __version__,
        "run": {"path": run.path, "final_iteration": run.final_iteration,
                "snapshots": sorted(run.snapshots), "final_metrics": final_metrics},
        "config": cfg,
        "settings": {
            "backend": be.name, "threads": be.threads, "seed": seed,
            "seeds": {k: _subseed(seed, k) for k in _STREAMS}, "quick": bool(quick),
            "n_trials": sizes["n_trials"], "n_steps": n_steps, "test_noise_std": test_noise,
            "bins": bins, "n_shuffles": sizes["shuffles"], "long_steps": total,
            "long_paths": sizes["long_paths"], "block_steps": block_steps,
            "stages": chosen_stages, "embedding": embedding,
            "compare": [o.path for o in others], "trajectory": trajectory,
            "trajectory_dt": trajectory_dt, "trajectory_duration": trajectory_duration,
        },
        "conventions": {**an.CONVENTIONS, "scores": types.settings["conventions"]},
        "tracking": track,
        "probe": probe,
        "celltypes": celltypes,
        "tuning": {"examples": examples, "summary": an.tuning_summary(types, curves["speed_r2"]),
                   "heading_wrap": an.heading_wrap(curves["direction_curves"]),
                   **an.curves_to_json(curves)},
        "selectivity": an.selectivity(types),
        "development": ({k: v for k, v in dev.items() if k != "maps"} if dev is not None
                        else {"skipped": "the run has no snapshots before the final iteration"}),
        "error_correction": ec,
        "stability": stab,
        "comparison": comparison,
        "trajectory": path_section,
    }
    metrics["figures"] = {k: {"file": v, "caption": report.caption(k, metrics)} for k, v in files.items()}
    metrics["timings_s"] = {**prog.timings, "total": time.perf_counter() - prog.start}
    atomic_write_json(os.path.join(out_dir, "metrics.json"), metrics)
    report.write_report(os.path.join(out_dir, "report.html"), metrics)
    prog.say(f"wrote {out_dir}/metrics.json, report.html and {len(files)} figures "
             f"(total {metrics['timings_s']['total']:.1f} s)")
    return metrics


def build_parser():
    p = argparse.ArgumentParser(prog="python -m gridcore.analyze", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="a finished training run (config.json, final.npz)")
    p.add_argument("--compare", nargs="+", default=[], metavar="OTHER_RUN",
                   help="other runs shown side by side (ablations)")
    p.add_argument("--backend", choices=("auto",) + BACKEND_NAMES, default="auto")
    p.add_argument("--threads", type=positive_int, default=None, help="threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw of the analysis")
    p.add_argument("--quick", action="store_true",
                   help=f"a fast look: {QUICK['n_trials']} trials, {QUICK['shuffles']} shuffles, "
                        f"{QUICK['long_paths']} long path of {QUICK['long_steps']:,} steps")
    p.add_argument("--n-trials", type=positive_int, default=None,
                   help=f"held-out test trials (default {DEFAULTS['n_trials']})")
    p.add_argument("--n-steps", type=positive_int, default=None,
                   help="steps per test trial (default: the run's n_steps)")
    p.add_argument("--long-steps", type=positive_int, default=None,
                   help=f"steps of each long path (default {DEFAULTS['long_steps']:,})")
    p.add_argument("--long-paths", type=positive_int, default=None,
                   help=f"long paths run side by side (default {DEFAULTS['long_paths']})")
    p.add_argument("--block-steps", type=positive_int, default=10_000,
                   help="steps per block of the stability curve")
    p.add_argument("--shuffles", type=positive_int, default=None,
                   help=f"shuffles per unit for the unit-type nulls (default {DEFAULTS['shuffles']})")
    p.add_argument("--bins", type=positive_int, default=20, help="spatial bins along the arena's longer side")
    p.add_argument("--noise-std", type=nonneg_float, default=None,
                   help="unit noise during the tests (default: the run's training noise)")
    p.add_argument("--stages", type=int_list, default=None, metavar="I,J,K",
                   help="training iterations for the development analysis (default: first snapshot "
                        "after 0, one in between, final)")
    p.add_argument("--embedding", choices=an.EMBEDDINGS, default="tsne",
                   help="embedding of the development analysis (tsne needs scikit-learn)")
    p.add_argument("--trajectory", default=None, metavar="sargolini|ratinabox|FILE",
                   help="also run the network along a real path: the Sargolini et al. 2006 rat path "
                        "shipped with RatInABox, RatInABox's random motion, or a .csv/.npz path file "
                        "(docs/real_paths.md); needs 'pip install gridcore[ratinabox]' for the first two")
    p.add_argument("--trajectory-dt", type=nonneg_float, default=None, metavar="SECONDS",
                   help="seconds per network step on that path (default: its mean speed per step "
                        "matches the training motion's)")
    p.add_argument("--trajectory-duration", type=nonneg_float, default=None, metavar="SECONDS",
                   help=f"seconds of that path used (default: all of a recording; "
                        f"{RATINABOX_DURATION:g} s of RatInABox motion)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def work():
        analyze(args.run_dir, args.compare, backend=args.backend, threads=args.threads, seed=args.seed,
                n_trials=args.n_trials, n_steps=args.n_steps, long_steps=args.long_steps,
                long_paths=args.long_paths, block_steps=args.block_steps, shuffles=args.shuffles,
                bins=args.bins, quick=args.quick, noise_std=args.noise_std, stages=args.stages,
                embedding=args.embedding, trajectory=args.trajectory, trajectory_dt=args.trajectory_dt,
                trajectory_duration=args.trajectory_duration, stream=None if args.quiet else sys.stderr)
        return os.path.join(args.run_dir, "analysis", "report.html")

    return run_main("gridcore.analyze", work)


if __name__ == "__main__":
    sys.exit(main())
