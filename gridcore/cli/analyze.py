"""``python -m gridcore.analyze RUN_DIR``: every analysis of the paper on a trained run.

Writes ``RUN_DIR/analysis/``: ``metrics.json`` (every number, the score
conventions, the unit-type thresholds and the settings used), one PNG per
figure and ``report.html`` (opens offline). See ``docs/analysis.md``.

Examples::

    python -m gridcore.analyze runs/square-quick
    python -m gridcore.analyze runs/square-quick --quick
    python -m gridcore.analyze runs/square --compare runs/square-nometabolic runs/square-nonoise
    python -m gridcore.analyze runs/square-quick --quick --trajectory sargolini

With ``--emergence`` it instead follows the unit types over training: every
training snapshot and the final network (of a run still training, its
latest checkpoint; nothing is written into that run: ``--out DIR`` is
required) on the same held-out trials, written as ``emergence.json`` and
``emergence.png`` (:mod:`gridcore.analysis.emergence`)::

    python -m gridcore.analyze runs/grid-512 --emergence --out runs/grid-512-emergence

With ``--trajectory sargolini|ratinabox|FILE`` the network also runs along a
real rat's path (or RatInABox's simulated one, or any path file) and, side by
side, along one of our simulated paths of the same length: tracking error over
time, rate maps and unit types of both (``docs/real_paths.md``).

This module parses the arguments, prints the progress lines and calls the
pipeline (:func:`gridcore.analysis.pipeline.analyze_run`, the analyses as
named steps) and the report (:func:`gridcore.report.outputs.write_outputs`).
"""

import argparse
import os
import sys
import time

from gridcore.analysis.development import EMBEDDINGS
from gridcore.analysis.emergence import SAMPLES, emergence, emergence_table
from gridcore.analysis.pipeline import (
    DEFAULTS,
    QUICK,
    RATINABOX_DURATION,
    AnalysisSettings,
    Steps,
    analyze_run,
)
from gridcore.backends import BACKEND_NAMES, get_backend
from gridcore.cli.common import DefaultsHelpFormatter, int_list, nonneg_float, positive_int, run_main
from gridcore.report.figures import emergence_figure
from gridcore.report.outputs import DPI, FIGURE_FORMATS, save_figure, write_outputs
from gridcore.train.rundir import load_run
from gridcore.util.fileio import atomic_write_json


class Progress:
    """Progress lines to ``stream``, each prefixed with the seconds since this object was made."""

    def __init__(self, stream):
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, text):
        """Print one progress line."""
        print(f"[{time.perf_counter() - self.start:7.1f} s] {text}", file=self.stream, flush=True)


def analyze(run_dir, compare=(), backend="auto", threads=None, stream=sys.stderr, formats=("png",), **settings):
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
    stream : file or None
        Where the progress lines go.
    formats : sequence of {"png", "pdf", "svg"}
        Files of each figure (PNG at 200 dpi; PDF and SVG vector).
    **settings
        Keyword arguments of :meth:`gridcore.analysis.pipeline.AnalysisSettings.make`:
        ``seed``, ``quick``, ``samples``, ``n_trials``, ``n_steps``, ``long_steps``,
        ``long_paths``, ``block_steps``, ``shuffles``, ``bins``,
        ``noise_std``, ``stages``, ``embedding``, ``trajectory``,
        ``trajectory_dt``, ``trajectory_duration``.

    Returns
    -------
    dict
        The contents of ``metrics.json``.
    """
    steps = Steps(None if stream is None else Progress(stream))
    analysis = analyze_run(run_dir, compare, backend, threads, AnalysisSettings.make(**settings), steps)
    out_dir, metrics = write_outputs(analysis, steps, formats)
    steps.say(f"wrote {out_dir}/metrics.json, report.html and {len(metrics['figures'])} figures "
              f"(total {metrics['timings_s']['total']:.1f} s)")
    return metrics


def analyze_emergence(run_dir, out=None, backend="auto", threads=None, stream=sys.stderr, formats=("png",),
                      **settings):
    """Unit types over training (:func:`gridcore.analysis.emergence.emergence`); writes ``emergence.json`` and figure.

    Only reads the run, without its lock, so a run still training can be
    followed; its latest checkpoint is the last stage then.

    Parameters
    ----------
    run_dir : str
        A run directory, finished or still training.
    out : str, optional
        The folder written; default ``run_dir/analysis/`` for a finished
        run, required for one still training.
    backend : {"auto", "numpy", "numba", "c"}
    threads : int or None
    stream : file or None
        Where the progress lines go; the table goes to standard output
        (neither with None).
    formats : sequence of {"png", "pdf", "svg"}
    **settings
        Keyword arguments of :func:`gridcore.analysis.emergence.emergence`:
        ``stages``, ``seed``, ``n_trials``, ``n_steps``, ``noise_std``,
        ``bins``, ``shuffles``.

    Returns
    -------
    str
        The path of ``emergence.json``.
    """
    run = load_run(run_dir, unfinished=True)
    if out is None:
        if not run.finished:
            raise ValueError(f"{run_dir} has no final.npz (still training, at iteration {run.final_iteration}): "
                             "give --out DIR for emergence.json and its figure; nothing is written into a run "
                             "that is not finished")
        out = os.path.join(run_dir, "analysis")
    be = get_backend(backend, threads)
    say = None if stream is None else Progress(stream)
    if say is not None:
        say(f"emergence of {run_dir} ({'finished' if run.finished else 'still training'}, iteration "
            f"{run.final_iteration} of {run.settings.optimizer.iterations}); backend {be.name}, "
            f"threads {be.threads}")
    result = emergence(run, be, say=say, **settings)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "emergence.json")
    atomic_write_json(path, result)
    figs = save_figure(emergence_figure(result, title=os.path.basename(os.path.normpath(run_dir))),
                       os.path.join(out, "emergence"), formats)
    if stream is not None:
        print(emergence_table(result), flush=True)
        say(f"wrote {path} and {', '.join(figs)} (total {result['seconds']:.1f} s)")
    return path


def build_parser():
    """The argument parser of ``python -m gridcore.analyze``."""
    p = argparse.ArgumentParser(prog="python -m gridcore.analyze", description=__doc__.split("\n")[0],
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("run_dir", help="a finished training run (config.json, final.npz); with --emergence also "
                                   "one still training")
    p.add_argument("--compare", nargs="+", default=[], metavar="OTHER_RUN",
                   help="other runs shown side by side (ablations)")
    p.add_argument("--backend", choices=("auto",) + BACKEND_NAMES, default="auto", help="compute backend")
    p.add_argument("--threads", type=positive_int, default=None, help="threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw of the analysis")
    p.add_argument("--quick", action="store_true",
                   help=f"a fast look: {QUICK['samples']:,} recorded steps, {QUICK['shuffles']} shuffles, "
                        f"{QUICK['long_paths']} long path of {QUICK['long_steps']:,} steps")
    p.add_argument("--n-trials", type=positive_int, default=None,
                   help=f"test trials of the recording (unit types, tuning, C7, comparisons; default "
                        f"enough for {DEFAULTS['samples']:,} steps: 500 of the paper's 500 steps, 12,500 of "
                        f"20); C1 is on the run's own held-out trials; with --emergence enough for "
                        f"{SAMPLES:,} steps")
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
                        "after 0, one in between, final); with --emergence the stages recorded (every "
                        "snapshot and the final network or latest checkpoint)")
    p.add_argument("--embedding", choices=EMBEDDINGS, default="tsne",
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
    p.add_argument("--figure-format", nargs="+", choices=FIGURE_FORMATS, default=["png"], metavar="FORMAT",
                   help=f"files of each figure, any of {', '.join(FIGURE_FORMATS)} (PNG at {DPI} dpi; PDF and "
                        "SVG are vector)")
    p.add_argument("--emergence", action="store_true",
                   help="instead: unit types, grid scores and tracking at every training snapshot, also of a "
                        "run still training (emergence.json, emergence.png; docs/guide.md#analyse)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="with --emergence: the folder written (RUN_DIR/analysis/ if the run is finished; "
                        "required while it trains)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None):
    """Run the command on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.emergence:
        return _emergence_main(args)
    if args.out is not None:
        return run_main("gridcore.analyze", _refuse("--out is for --emergence; the full analysis writes "
                                                    "RUN_DIR/analysis/"))

    def work():
        analyze(args.run_dir, args.compare, backend=args.backend, threads=args.threads, seed=args.seed,
                n_trials=args.n_trials, n_steps=args.n_steps, long_steps=args.long_steps,
                long_paths=args.long_paths, block_steps=args.block_steps, shuffles=args.shuffles,
                bins=args.bins, quick=args.quick, noise_std=args.noise_std, stages=args.stages,
                embedding=args.embedding, trajectory=args.trajectory, trajectory_dt=args.trajectory_dt,
                trajectory_duration=args.trajectory_duration, stream=None if args.quiet else sys.stderr,
                formats=args.figure_format)
        return os.path.join(args.run_dir, "analysis", "report.html")

    return run_main("gridcore.analyze", work)


def _refuse(message):
    def work():
        raise ValueError(message)
    return work


def _emergence_main(args):
    """``--emergence``: refuses the options of the full analysis, then :func:`analyze_emergence`."""
    full_only = {"--compare": bool(args.compare), "--quick": args.quick, "--trajectory": args.trajectory is not None,
                 "--long-steps": args.long_steps is not None, "--long-paths": args.long_paths is not None}
    given = [k for k, v in full_only.items() if v]
    if given:
        return run_main("gridcore.analyze", _refuse(f"{', '.join(given)}: not with --emergence (options of the "
                                                    "full analysis)"))

    def work():
        return analyze_emergence(args.run_dir, args.out, backend=args.backend, threads=args.threads,
                                 stream=None if args.quiet else sys.stderr, formats=args.figure_format,
                                 stages=args.stages, seed=args.seed, n_trials=args.n_trials, n_steps=args.n_steps,
                                 noise_std=args.noise_std, bins=args.bins,
                                 shuffles=DEFAULTS["shuffles"] if args.shuffles is None else args.shuffles)

    return run_main("gridcore.analyze", work)


if __name__ == "__main__":
    sys.exit(main())
