"""``python -m gridcore.reproduce``: the paper's runs, trained and analysed.

Nine runs, one configuration each: the ``paper`` preset in the square,
triangular and hexagonal arenas; in the square arena the two ablations of
the paper's Fig. 5 (no metabolic cost; no noise); and four variants that
are not in the paper: heading as (cos, sin), velocity inputs, 10x smaller
length units, and no L2 penalty (see ``RUNS``). Committed results live
in ``docs/results/<run>/`` (``config.json``, ``log.jsonl``, ``final.npz``,
the snapshots and ``analysis/``); ``docs/results/README.md`` gives the
verdict on each claim.

Examples::

    python -m gridcore.reproduce --status                   # where each run's training stands
    python -m gridcore.reproduce --analyze-only            # re-analyse the committed runs
    python -m gridcore.reproduce --train                    # train (or resume) all nine in docs/results
    python -m gridcore.reproduce --train --runs square,hexagon --threads 1
    python -m gridcore.reproduce --train --scheduler tcp://10.0.0.5:8786 --threads 4   # on a Dask cluster
    python -m gridcore.reproduce --train --out runs         # retrain from scratch elsewhere...
    python -m gridcore.reproduce --collect --out runs       # ...and copy the finished runs to docs/results
    python -m gridcore.reproduce --pilot                    # the square-arena factors, quick preset
"""

import argparse
import json
import os
import shutil
import sys

from gridcore.analysis.probes import run_probe
from gridcore.backends import get_backend
from gridcore.cli.analyze import analyze
from gridcore.cli.common import positive_int, run_main
from gridcore.report import figures
from gridcore.report.outputs import save_figure
from gridcore.sweep import Point, run_sweep
from gridcore.train.config import make_config
from gridcore.train.rundir import RunDir, load_run
from gridcore.util.fileio import atomic_write, atomic_write_json

# Run name -> overrides of the paper preset. Snapshots every 250 iterations on
# top of the preset's early ones feed the development analysis (C5).
RUNS = {
    "square": {"arena": "square"},
    "triangle": {"arena": "triangle"},
    "hexagon": {"arena": "hexagon"},
    "square-no-metabolic": {"arena": "square", "metabolic": False},
    "square-no-noise": {"arena": "square", "noise_std": 0.0},
    # Variants, not in the paper (docs/results/README.md says why): the
    # heading as (cos, sin) instead of an angle; velocity inputs (no heading
    # at rest to guess from); and the same task in 10x smaller length units,
    # so the speed input is 10x larger.
    "square-speed-cos-sin": {"arena": "square", "encoding": "speed-cos-sin"},
    "square-velocity": {"arena": "square", "encoding": "velocity"},
    "square-units-x10": {"arena": "square", "arena_size": 20.0,
                         "motion": {"speed_scale": 0.6, "max_speed": 2.5}},
    # And without the L2 penalty, whose schedule (lam_L2 R_L2 = E at the
    # start) shrinks the input weights; the quick-preset pilot points at it.
    "square-no-l2": {"arena": "square", "l2": False},
}
SNAPSHOT_EVERY = 250
# C6: the ablations are shown beside the full model.
COMPARE = {"square": ["square-no-metabolic", "square-no-noise", "square-speed-cos-sin", "square-velocity",
                      "square-units-x10", "square-no-l2"]}


def _results_folder():
    """``docs/results`` of the source tree this package runs from (an editable install), else of the current folder."""
    tree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    results = os.path.join(tree, "docs", "results")
    return results if os.path.isdir(results) else os.path.join("docs", "results")


RESULTS = _results_folder()
# What a committed run keeps (the checkpoint holds optimiser state only).
KEEP = ("config.json", "log.jsonl", "final.npz", "final_metrics.json", "snapshots")


def _say(stream, text):
    if stream is not None:
        print(text, file=stream, flush=True)


def run_config(name, backend="c", threads=None):
    """The full configuration of run ``name`` (a key of :data:`RUNS`)."""
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; allowed: {', '.join(RUNS)}")
    return make_config("paper", snapshot_every=SNAPSHOT_EVERY, backend=backend, threads=threads,
                       **RUNS[name])


def train_runs(configs, out, stream=sys.stderr, **sweep):
    """Train (or resume) each run into ``out/<name>`` as one sweep; finished runs are left alone.

    ``configs`` maps run names to configurations (see :func:`run_config`);
    ``sweep`` are keywords of :func:`gridcore.sweep.run_sweep` (``scheduler``,
    ``workers``, ``serial``): by default a LocalCluster of this machine's
    cores, each run with the configuration's threads if set.

    Raises
    ------
    ValueError
        Some runs failed (each is named with its reason); the others were trained.
    """
    points = [Point(name, {}, cfg.seed, cfg) for name, cfg in configs.items()]
    outcome = run_sweep(points, out, summary=None, stream=stream, **sweep)
    failed = [f"{row['run']}: {row['error']}" for row in outcome.rows if row["status"] == "failed"]
    if failed:
        raise ValueError(f"{len(failed)} of {len(points)} runs failed: " + "; ".join(failed))


def _finished(path):
    """Whether the run directory ``path`` holds a finished run (its ``final.npz``)."""
    return os.path.exists(RunDir(path).final)


def collect(names, out, results=RESULTS):
    """Copy the finished runs ``out/<name>`` into ``results/<name>`` (the committed files only)."""
    if os.path.abspath(out) == os.path.abspath(results):
        return  # trained in place: nothing to copy
    for name in names:
        src, dst = os.path.join(out, name), os.path.join(results, name)
        if not _finished(src):
            raise FileNotFoundError(f"{src}: not finished (no final.npz); train it first")
        os.makedirs(dst, exist_ok=True)
        for item in KEEP:
            s, d = os.path.join(src, item), os.path.join(dst, item)
            if os.path.isdir(s):
                shutil.copytree(s, d, dirs_exist_ok=True)
            elif os.path.exists(s):
                shutil.copy2(s, d)


def analyze_runs(names, results=RESULTS, stream=sys.stderr, **settings):
    """``python -m gridcore.analyze`` on each run in ``results`` (the square one with its ablations).

    The ``square`` run is compared with every finished run in ``COMPARE``,
    whether or not it is among ``names``.

    ``settings`` go to :func:`gridcore.cli.analyze.analyze` (backend, threads, quick, ...).
    Then writes the summary table (:func:`write_summary`) of every analysed
    run in ``results``, not only these. Returns the names of the runs analysed.
    """
    present = [n for n in names if _finished(os.path.join(results, n))]
    missing = sorted(set(names) - set(present))
    if not present:
        raise FileNotFoundError(f"no finished run in {results} (looked for {', '.join(names)}); "
                                "train them with --train and copy them with --collect")
    if missing:
        _say(stream, f"not trained yet (skipped): {', '.join(missing)}")
    for name in present:
        # Compare with every finished run, not only those analysed now.
        compare = [os.path.join(results, c) for c in COMPARE.get(name, [])
                   if _finished(os.path.join(results, c))]
        analyze(os.path.join(results, name), compare, stream=stream, **settings)
    write_summary(list(dict.fromkeys([*RUNS, *present])), results)
    return present


def training_status(names, out=RESULTS):
    """Where each run's training stands, from its ``log.jsonl``: one dict per run name.

    Keys: ``iteration`` (last logged, 0 if not started), ``of`` (iterations
    in the run's ``config.json``, else :func:`run_config`'s), ``finished``,
    ``nerr`` and ``nerr_iteration`` (the last held-out evaluation), ``hours``
    (summed iteration times).

    Raises
    ------
    FileNotFoundError
        ``out`` is missing or holds none of the runs.
    """
    if not os.path.isdir(out):
        raise FileNotFoundError(f"{out}: no such folder; give --out the folder the runs were trained into "
                                f"(default: {RESULTS})")
    if not any(os.path.isdir(os.path.join(out, name)) for name in names):
        raise FileNotFoundError(f"{out} holds none of the runs {', '.join(names)}; give --out the folder they "
                                f"were trained into (default: {RESULTS})")
    rows = {}
    for name in names:
        path = os.path.join(out, name)
        run = RunDir(path)
        log = run.read_log() if os.path.exists(run.log) else []
        evals = [r for r in log if "nerr" in r]
        cfg = run.read_config() if os.path.exists(run.config) else run_config(name)
        rows[name] = {"iteration": log[-1]["iteration"] if log else 0,
                      "of": cfg.optimizer.iterations, "finished": _finished(path),
                      "nerr": evals[-1]["nerr"] if evals else None,
                      "nerr_iteration": evals[-1]["iteration"] if evals else None,
                      "hours": sum(r["seconds"] for r in log) / 3600.0}
    return rows


def status_table(rows):
    """:func:`training_status` as a Markdown table."""
    lines = ["| run | iterations | finished | held-out error (at iteration) | training hours |",
             "|---|---|---|---|---|"]
    for name, r in rows.items():
        nerr = "-" if r["nerr"] is None else f"{r['nerr']:.3f} ({r['nerr_iteration']})"
        lines.append(f"| {name} | {r['iteration']} / {r['of']} | {'yes' if r['finished'] else 'no'} | "
                     f"{nerr} | {r['hours']:.2f} |")
    return "\n".join(lines) + "\n"


def run_summary(path):
    """Headline numbers of one analysed run: training cost and one line per claim.

    Reads ``config.json``, ``log.jsonl`` and ``analysis/metrics.json``.
    """
    run = RunDir(path)
    cfg = run.read_config()
    log = run.read_log()
    with open(os.path.join(path, "analysis", "metrics.json")) as fh:
        m = json.load(fh)
    counts = m["celltypes"]["counts"]
    sym = m["celltypes"]["grid_symmetry"]
    ec, st = m["error_correction"], m["stability"]
    return {
        "arena": cfg.task.arena, "encoding": cfg.task.encoding, "noise_std": cfg.task.noise_std,
        "metabolic": cfg.schedule.metabolic, "iterations": len(log),
        "train_hours": sum(r["seconds"] for r in log) / 3600.0,
        "train_threads": cfg.compute.threads,
        "nerr": m["tracking"]["normalised_error"],                              # C1
        **{t: counts[t] for t in ("grid", "border", "band", "irregular", "none")},  # C2, C6
        "grid60": sym["n_grid60"], "grid90": sym["n_grid90"],
        # Units beating each null whatever their type, and with periodic maps.
        **{f"beat_{k}": m["celltypes"]["passed"][k] for k in ("grid60", "grid90", "border", "band")},
        "periodic": sum(m["celltypes"]["units"]["periodic"]),
        "ramps": m["celltypes"]["ramps"]["n_ramps"], "median_plane": m["celltypes"]["ramps"]["median_plane"],
        "speed_tuned": counts["speed"], "direction_tuned": counts["direction"],  # C3, C4
        "steps_at_wrap": m["tuning"]["heading_wrap"]["n_above"],
        "drop_by_interactions": [g["drop"] for g in ec["groups"]],              # C7
        "drops_increase": ec["drops_increase"],
        "no_interaction_slope": ec["no_interaction"]["slope"],
        "long_path_ratio": st["ratio"], "long_path_max_block_ratio": st["max_block_ratio"],  # C8
        "long_path_slope_per_million": st["slope_per_million_steps"],
    }


_COLUMNS = [("run", "{}"), ("iterations", "{}"), ("train_hours", "{:.1f}"), ("nerr", "{:.3f}"),
            ("grid", "{}"), ("grid60", "{}"), ("grid90", "{}"), ("border", "{}"), ("band", "{}"),
            ("irregular", "{}"), ("none", "{}"), ("beat_grid60", "{}"), ("beat_grid90", "{}"),
            ("beat_border", "{}"), ("beat_band", "{}"), ("periodic", "{}"), ("ramps", "{}"),
            ("median_plane", "{:.2f}"),
            ("speed_tuned", "{}"), ("direction_tuned", "{}"), ("steps_at_wrap", "{}"),
            ("drops_increase", "{}"), ("long_path_ratio", "{:.3f}")]


def write_summary(names, results=RESULTS):
    """``results/summary.json`` and ``summary.md``: :func:`run_summary` of each analysed run."""
    rows = {n: run_summary(os.path.join(results, n)) for n in names
            if os.path.exists(os.path.join(results, n, "analysis", "metrics.json"))}
    atomic_write_json(os.path.join(results, "summary.json"), rows)
    lines = ["| " + " | ".join(c for c, _ in _COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for name, row in rows.items():
        row = {"run": name, **row}
        lines.append("| " + " | ".join(f.format(row[c]) for c, f in _COLUMNS) + " |")
    atomic_write(os.path.join(results, "summary.md"), lambda fh: fh.write("\n".join(lines) + "\n"))
    return rows


# The pilot: every square-arena run at the quick preset, and more factors
# that are cheap to test there (the fraction of steps at rest, the L2 decay).
PILOT_RUNS = {**{n: RUNS[n] for n in ("square", "square-speed-cos-sin", "square-velocity",
                                      "square-units-x10", "square-no-metabolic", "square-no-noise")},
              "square-no-l2": RUNS["square-no-l2"],
              "square-half-at-rest": {"arena": "square", "motion": {"p_zero_speed": 0.5}},
              # The L2 penalty's schedule, not L2 itself? lam_L2 decays 10x faster.
              "square-l2-fast-decay": {"arena": "square", "l2_decay": 0.9}}


# The pilot's base: the quick preset's sizes with the paper's unit noise and L2 penalty, which the
# quick preset itself leaves out (the pilot asks what sets the paper's speed-ignoring shortcut).
PILOT_BASE = {"noise_std": 0.1, "l2": True}


def pilot(out, results=RESULTS, backend="c", threads=None, stream=sys.stderr, sweep=None, **overrides):
    """The square-arena factors at the ``quick`` preset's sizes (N = 64, 150 iterations; minutes each).

    Trains the runs of :data:`PILOT_RUNS` with the ``quick`` preset and :data:`PILOT_BASE`
    into ``out/pilot/<name>`` (kept if finished), probes each final network
    (:func:`gridcore.analysis.probes.run_probe`) and writes ``results/pilot.json``,
    ``results/pilot.md`` and ``results/pilot.png``. ``sweep`` are keywords of :func:`train_runs`
    (where the runs train); ``overrides`` change the preset (tests use tiny runs). Returns the rows.
    """
    configs = {n: make_config("quick", backend=backend, threads=threads, **{**PILOT_BASE, **overrides, **change})
               for n, change in PILOT_RUNS.items()}
    base = os.path.join(out, "pilot")
    train_runs(configs, base, stream=stream, **(sweep or {}))
    be = get_backend(backend, threads)
    rows = {}
    for name, cfg in configs.items():
        run = load_run(os.path.join(base, name))
        s = run_probe(run, be)["final"]["summary"]
        with open(RunDir(run.path).metrics) as fh:
            nerr = json.load(fh)["nerr_heldout"]
        mid = len(s["speeds"]) // 2
        rows[name] = {"changes": _describe(PILOT_RUNS[name]), "nerr": nerr,
                      "gain": s["median_gain"][mid], "step": s["speeds"][mid],
                      # In half-sides of the arena, so the 10x-unit run compares.
                      "rest_output": s["median_rest_output"] / (cfg.task.arena_size / 2)}
    atomic_write_json(os.path.join(results, "pilot.json"), rows)
    save_figure(figures.pilot_figure(rows), os.path.join(results, "pilot"))
    lines = ["| run (quick preset) | what changes | held-out error | step gain | output at rest / half side |",
             "|---|---|---|---|---|"]
    lines += [f"| {n} | {_describe(PILOT_RUNS[n])} | {r['nerr']:.3f} | {r['gain']:.3g} | "
              f"{r['rest_output']:.2f} |" for n, r in rows.items()]
    atomic_write(os.path.join(results, "pilot.md"), lambda fh: fh.write("\n".join(lines) + "\n"))
    return rows


def _describe(change):
    """The settings a run changes, as text: ``"encoding=velocity"``."""
    items = [f"{k}={v}" for k, v in change.items() if k != "arena" and k != "motion"]
    items += [f"{k}={v}" for k, v in change.get("motion", {}).items()]
    return ", ".join(items) or "none (the paper's settings)"


def _run_list(text):
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in RUNS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown run(s) {unknown}; allowed: {', '.join(RUNS)}")
    return names


def build_parser():
    """The argument parser of ``python -m gridcore.reproduce``."""
    p = argparse.ArgumentParser(prog="python -m gridcore.reproduce", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--train", action="store_true", help="train (or resume) the runs into --out")
    what.add_argument("--collect", action="store_true", help="copy finished runs from --out to --results")
    what.add_argument("--analyze-only", action="store_true", help="analyse the runs in --results")
    what.add_argument("--status", action="store_true",
                      help="print where each run's training stands (a Markdown table)")
    what.add_argument("--pilot", action="store_true",
                      help="the square-arena factors at the quick preset (into --out/pilot, table in --results)")
    p.add_argument("--runs", type=_run_list, default=list(RUNS), metavar="A,B",
                   help=f"which runs (default: all: {','.join(RUNS)})")
    # Training in place by default: a run's checkpoint is committed with it, so
    # a run that outlives a session (or a machine) resumes from the repository.
    p.add_argument("--out", default=None,
                   help="training directory (default: --results for --train, runs for --pilot/--collect)")
    p.add_argument("--results", default=RESULTS, help=f"committed results (default: {RESULTS})")
    p.add_argument("--backend", choices=("auto", "numpy", "numba", "c"), default=None,
                   help="compute backend (default: c for training, auto for analysis)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads per run (default: training: cores / workers; analysis: all cores)")
    p.add_argument("--quick", action="store_true", help="analysis with the small --quick sizes")
    # --train and --pilot train their runs as one sweep (python -m gridcore.sweep's machinery).
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="train on an existing Dask scheduler (default: a LocalCluster of this machine's cores)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="LocalCluster worker processes (default: cores / threads, at most the runs)")
    p.add_argument("--serial", action="store_true", help="train one run after another in this process, without Dask")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None):
    """Run the command on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    stream = None if args.quiet else sys.stderr
    sweep = {"scheduler": args.scheduler, "workers": args.workers, "serial": args.serial}

    def work():
        out = args.out or (args.results if args.train or args.status else "runs")
        if args.train:
            configs = {n: run_config(n, args.backend or "c", args.threads) for n in args.runs}
            train_runs(configs, out, stream=stream, **sweep)
            return out
        if args.status:
            print(status_table(training_status(args.runs, out)), end="")
            return out
        if args.collect:
            collect(args.runs, out, args.results)
            return args.results
        if args.pilot:
            pilot(out, args.results, args.backend or "c", args.threads, stream=stream, sweep=sweep)
            return os.path.join(args.results, "pilot.md")
        analyze_runs(args.runs, args.results, stream=stream, backend=args.backend or "auto",
                     threads=args.threads, quick=args.quick)
        return args.results

    return run_main("gridcore.reproduce", work)


if __name__ == "__main__":
    sys.exit(main())
