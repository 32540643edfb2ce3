"""Command line of the package: ``python -m gridcore info [--json]`` and
``python -m gridcore export RUN_DIR OUT``."""

import argparse
import json
import sys

from gridcore.cli import info
from gridcore.sim.netfile import DECODER_K, write_network
from gridcore.train.rundir import load_run


def export(run_dir, out, decoder_k=DECODER_K):
    """Write the trained network of ``run_dir`` to ``out`` in the exported-network format
    (:mod:`gridcore.sim.netfile`): parameters, spec, input encoding, arena and place cells."""
    run = load_run(run_dir)
    task = run.settings.task
    write_network(out, run.params, run.spec, task.encoding, task.arena, task.arena_size,
                  place_cells=run.place_cells, decoder_k=decoder_k)
    return run


def main(argv=None):
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m gridcore", description="gridcore: CTRNN path integration with Hessian-free training")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info_cmd = commands.add_parser("info", help="versions, backends, threads, BLAS and CPU, for bug reports")
    info_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")
    export_cmd = commands.add_parser(
        "export", help="write a trained run's network for C programs (grc_net_load; docs/c_api.md)")
    export_cmd.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (with final.npz)")
    export_cmd.add_argument("out", metavar="OUT", help="the network file to write (e.g. net.grc)")
    export_cmd.add_argument("--decoder-k", type=int, default=DECODER_K,
                            help=f"place-cell readouts: cells averaged to decode a position (default {DECODER_K})")
    args = parser.parse_args(argv)
    if args.command == "export":
        try:
            run = export(args.run_dir, args.out, args.decoder_k)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"wrote {args.out}: {run.params!r}, {run.spec.to_json()}, encoding {run.settings.task.encoding}")
        return 0
    report = info.collect()
    print(json.dumps(report, indent=2) if args.json else info.render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
