"""``python -m gridcore.analyze RUN_DIR``: every analysis of the paper on a trained run.

Writes ``RUN_DIR/analysis/``: ``metrics.json`` (every number, the score
conventions, the unit-type thresholds and the settings used), one PNG per
figure and ``report.html`` (opens offline). See ``docs/analysis.md``.

Examples::

    python -m gridcore.analyze runs/square-quick
    python -m gridcore.analyze runs/square-quick --quick
    python -m gridcore.analyze runs/square --compare runs/square-nometabolic runs/square-nonoise
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__
from . import analysis as an
from . import figures, report
from ._cli import int_list, nonneg_float, positive_int, run_main
from ._validate import check_choice, check_nonneg_float, check_positive_int
from .backends import BACKEND_NAMES, get_backend
from .celltypes import classify
from .model import atomic_write_json
from .recording import record_trajectories
from .trajectories import simulate

# Defaults of the full analysis (the paper's sizes) and of --quick.
DEFAULTS = {"n_trials": 500, "shuffles": 100, "long_steps": 1_000_000, "long_paths": 2}
QUICK = {"n_trials": 100, "shuffles": 20, "long_steps": 100_000, "long_paths": 1}
# Independent random streams, one per purpose, from --seed.
_STREAMS = {"trajectories": 0, "noise": 1, "shuffles": 2, "development_noise": 3, "long_path": 4,
            "embedding": 5}


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
    rec = record_trajectories(run.params, backend, traj, _subseed(seed, "noise"), noise_std, cfg["alpha"])
    return traj, rec


def _core(run, backend, seed, n_trials, n_steps, noise_std, bins, shuffles):
    """Recording, tracking (C1) and unit types (C2) of one run."""
    traj, rec = _test_recording(run, backend, seed, n_trials, n_steps, noise_std)
    shape = (rec.n_trials, rec.n_steps, 2)
    track = an.tracking(rec.outputs.reshape(shape), rec.positions.reshape(shape))
    types = classify(rec.activity, rec.positions, rec.speed, rec.heading, run.arena, bins,
                     n_shuffles=shuffles, seed=_subseed(seed, "shuffles"))
    return traj, rec, track, types


def analyze(run_dir, compare=(), backend="auto", threads=None, seed=0, n_trials=None, n_steps=None,
            long_steps=None, long_paths=None, block_steps=10_000, shuffles=None, bins=20,
            quick=False, noise_std=None, stages=None, embedding="tsne", stream=sys.stderr):
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
        :func:`gridcore.analysis.select_stages`).
    embedding : {"tsne", "mds"}
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

    prog = Progress(stream)
    run = an.load_run(run_dir)
    others = [an.load_run(p) for p in compare]       # fail early, before the long work
    cfg = run.config
    n_steps = check_positive_int("n_steps", cfg["n_steps"] if n_steps is None else n_steps)
    test_noise = cfg["noise_std"] if noise_std is None else check_nonneg_float("noise_std", noise_std)
    chosen_stages = an.select_stages(run.snapshots, run.final_iteration, stages)
    be = get_backend(backend, threads)
    out_dir = os.path.join(run.path, "analysis")
    os.makedirs(out_dir, exist_ok=True)
    prog.say(f"analysing {run.path}: {cfg['arena']} arena, N={cfg['n_units']}, {cfg['encoding']} inputs; "
             f"backend {be.name}, threads {be.threads}")

    # One recording serves C1-C4 and C7.
    traj, rec, track, types = prog.run(
        "recording_and_celltypes",
        f"recording {sizes['n_trials']} trials x {n_steps} steps and classifying units "
        f"({sizes['shuffles']} shuffles)", _core, run, be, seed, sizes["n_trials"], n_steps, test_noise,
        bins, sizes["shuffles"])
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
                    noise_std=test_noise, alpha=cfg["alpha"], block=block_steps, bins=bins,
                    progress=long_progress)

    comparison, cmp_types = None, []
    if others:
        summaries = [an.run_summary(os.path.basename(os.path.normpath(run.path)), cfg, track, types)]
        for other in others:
            o_noise = other.config["noise_std"] if noise_std is None else test_noise
            _, _, o_track, o_types = prog.run(
                f"compare:{other.path}", f"comparison run {other.path}", _core, other, be, seed,
                sizes["n_trials"], n_steps, o_noise, bins, sizes["shuffles"])
            summaries.append(an.run_summary(os.path.basename(os.path.normpath(other.path)),
                                            other.config, o_track, o_types))
            cmp_types.append(o_types)
        comparison = an.compare_runs(summaries)

    def draw():
        fig = {}
        f = lambda name: os.path.join(out_dir, name)   # noqa: E731
        fig["tracking"] = figures.tracking_figure(outputs, positions, run.arena, track["example_trials"],
                                                  f("tracking.png"), track["normalised_error"])
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
        return {k: os.path.basename(v) for k, v in fig.items()}

    files = prog.run("figures", "figures", draw)

    final_metrics = None
    if os.path.exists(os.path.join(run.path, "final_metrics.json")):
        with open(os.path.join(run.path, "final_metrics.json")) as fh:
            final_metrics = json.load(fh)
    celltypes = types.to_dict()
    celltypes["grid_symmetry"] = an.grid_symmetry_counts(types)
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
            "compare": [o.path for o in others],
        },
        "conventions": {**an.CONVENTIONS, "scores": types.settings["conventions"]},
        "tracking": track,
        "celltypes": celltypes,
        "tuning": {"examples": examples, "summary": an.tuning_summary(types, curves["speed_r2"]),
                   **an.curves_to_json(curves)},
        "selectivity": an.selectivity(types),
        "development": ({k: v for k, v in dev.items() if k != "maps"} if dev is not None
                        else {"skipped": "the run has no snapshots before the final iteration"}),
        "error_correction": ec,
        "stability": stab,
        "comparison": comparison,
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
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def work():
        analyze(args.run_dir, args.compare, backend=args.backend, threads=args.threads, seed=args.seed,
                n_trials=args.n_trials, n_steps=args.n_steps, long_steps=args.long_steps,
                long_paths=args.long_paths, block_steps=args.block_steps, shuffles=args.shuffles,
                bins=args.bins, quick=args.quick, noise_std=args.noise_std, stages=args.stages,
                embedding=args.embedding, stream=None if args.quiet else sys.stderr)
        return os.path.join(args.run_dir, "analysis", "report.html")

    return run_main("gridcore.analyze", work)


if __name__ == "__main__":
    sys.exit(main())
