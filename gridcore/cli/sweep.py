"""``python -m gridcore.sweep SPEC``: train every point of a sweep (settings x seeds) on Dask.

SPEC is a TOML file: a base preset, settings to vary (lists combined as a
product or zipped), seeds and an output folder (:mod:`gridcore.sweep.spec`;
``docs/sweeps.md``). Every point is one ordinary run directory
``OUT/<setting=value,...,seed=N>``; running the same command again skips the
finished runs and resumes the others.

Examples::

    python -m gridcore.sweep sweeps/noise.toml                       # a LocalCluster on this machine
    python -m gridcore.sweep sweeps/noise.toml --dry-run             # the runs and where each stands
    python -m gridcore.sweep sweeps/noise.toml --workers 1 --threads 2
    python -m gridcore.sweep sweeps/noise.toml --analyze             # also the quick analysis of each run
    python -m gridcore.sweep sweeps/noise.toml --analyze full        # also the full analysis of each run
    python -m gridcore.sweep sweeps/noise.toml --scheduler tcp://10.0.0.5:8786 --threads 4
    python -m gridcore.sweep docs/results/ladder-down.toml --ladder  # per-configuration summary of named points
    python -m gridcore.sweep docs/results/ladder-down.toml --out runs/ladder-down --ladder \
        --earlier docs/results/ladder-down/ladder.json               # with the seeds an earlier ladder kept

``--ladder`` trains nothing: from the analysed runs of a sweep of named
points it writes ``OUT/ladder.json``, ``ladder.csv``, ``ladder-maps.npz``
and ``ladder.png`` (:mod:`gridcore.sweep.ladder`: hexagonal grid units per
configuration over its seeds, held-out error, training time, and each
configuration's best grid maps); runs not finished or not analysed are
listed as missing. ``--earlier LADDER_JSON`` adds the seed records of an
earlier ladder of the same spec for the runs OUT has never seen (not
trained there), as is; OUT's own runs take precedence.

Exit status: 0 every run finished, 1 some failed (see ``OUT/summary.csv``),
2 a refused spec or option, 130 stopped by Ctrl-C (every run resumable).
"""

import argparse
import os
import sys

from gridcore.cli.common import nonneg_float, positive_int, run_main
from gridcore.sweep.ladder import write_ladder
from gridcore.sweep.runner import run_sweep
from gridcore.sweep.spec import load_spec
from gridcore.sweep.worker import run_state

ANALYSES = ("quick", "full")  # what --analyze runs on each finished run


def build_parser():
    """The argument parser of ``python -m gridcore.sweep``."""
    p = argparse.ArgumentParser(prog="python -m gridcore.sweep", description=__doc__.split("\n")[0])
    p.add_argument("spec", help="the sweep's TOML file (docs/sweeps.md)")
    p.add_argument("--out", default=None, help="output folder (default: the spec's out, else runs/SPEC_NAME)")
    where = p.add_argument_group("where the runs go (default: a LocalCluster of this machine's cores)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="an existing Dask scheduler (tcp://host:8786); its workers must see --out at the "
                            "same path")
    where.add_argument("--workers", type=positive_int, default=None,
                       help="LocalCluster worker processes (default: cores / threads, at most the runs)")
    where.add_argument("--threads", type=positive_int, default=None,
                       help="kernel threads per run (default: the spec's base.threads, else cores / workers; "
                            "with --scheduler: each host's cores / its Dask threads)")
    where.add_argument("--serial", action="store_true", help="one run after another in this process, without Dask")
    where.add_argument("--dashboard", nargs="?", const=":8787", default=None, metavar="ADDRESS",
                       help="serve the LocalCluster's Dask dashboard (default address :8787; needs bokeh)")
    p.add_argument("--analyze", nargs="?", const="quick", choices=ANALYSES, default=None,
                   help="also analyse each finished run, on the workers: quick (the default: python -m "
                        "gridcore.analyze --quick) or full (python -m gridcore.analyze)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and where each stands; train nothing")
    p.add_argument("--ladder", action="store_true",
                   help="train nothing: summarise the analysed runs of a sweep of named points per configuration "
                        "into OUT/ladder.json, ladder.csv, ladder-maps.npz and ladder.png (--threads: of the "
                        "rate-map recordings)")
    p.add_argument("--earlier", default=None, metavar="LADDER_JSON",
                   help="with --ladder: the ladder.json of an earlier --ladder of the same spec; each run not trained "
                        "in OUT takes its seed record (and example maps, from ladder-maps.npz beside it) from there")
    p.add_argument("--progress-every", type=nonneg_float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines (0: a line per finished run only)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def list_points(points, out, stream=None):
    """Print each point's name and state (``new``, ``partial``, ``finished`` or ``invalid: why``) to ``stream``
    (default: stdout)."""
    for point in points:
        state = f"invalid: {point.error}" if point.error else None
        if state is None:
            try:
                state = run_state(os.path.join(out, point.name), point.config)
            except ValueError as err:
                state = f"invalid: {err}"
        print(f"{point.name}  {state}", file=stream or sys.stdout)


def main(argv=None):
    """Run the command on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serial and (args.scheduler or args.workers or args.dashboard):
        parser.error("--serial runs in this process: it takes no --scheduler, --workers or --dashboard")
    if args.scheduler and (args.workers or args.dashboard):
        parser.error("--workers and --dashboard shape a LocalCluster; an existing scheduler has its own")
    if args.ladder and (args.analyze is not None or args.dry_run or args.serial or args.scheduler or args.workers
                        or args.dashboard):
        parser.error("--ladder trains nothing: it takes no --analyze, --dry-run, --serial, --scheduler, --workers "
                     "or --dashboard (only --out, --threads, --earlier and --quiet)")
    if args.earlier is not None and not args.ladder:
        parser.error("--earlier adds an earlier ladder's seeds to a ladder: it needs --ladder")
    failed = []

    def work():
        spec = load_spec(args.spec)
        out = args.out or spec.out
        points = spec.points()
        if args.dry_run:
            list_points(points, out)
            return out
        if args.ladder:
            say = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
            return ", ".join(write_ladder(spec, out, threads=args.threads, say=say, earlier=args.earlier)[1])
        outcome = run_sweep(points, out, scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                            serial=args.serial, analyze=args.analyze is not None,
                            analysis={"quick": args.analyze == "quick"}, stream=None if args.quiet else sys.stderr,
                            progress_every=args.progress_every, dashboard=args.dashboard)
        failed.append(outcome.failed + outcome.analysis_failed)
        return os.path.join(out, "summary.csv")

    status = run_main("gridcore.sweep", work)
    return 1 if status == 0 and failed and failed[0] else status


if __name__ == "__main__":
    sys.exit(main())
