"""``gridcore export RUN_DIR OUT``: a trained run's network in the file format C programs load.

The format is :mod:`gridcore.sim.netfile` (``grc_net_load``; docs/c_api.md):
parameters, spec, input encoding, arena and place cells.
"""

import argparse
import sys

from gridcore.sim.netfile import DECODER_K, write_network
from gridcore.train.rundir import load_run


def export(run_dir, out, decoder_k=DECODER_K):
    """Write the trained network of ``run_dir`` to ``out``; returns the loaded run."""
    run = load_run(run_dir)
    task = run.settings.task
    write_network(out, run.params, run.spec, task.encoding, task.arena, task.arena_size,
                  place_cells=run.place_cells, decoder_k=decoder_k)
    return run


def build_parser():
    """The command's argument parser."""
    p = argparse.ArgumentParser(prog="gridcore export", description=__doc__.split("\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (with final.npz)")
    p.add_argument("out", metavar="OUT", help="the network file to write (e.g. net.grc)")
    p.add_argument("--decoder-k", type=int, default=DECODER_K,
                   help="place-cell readouts: cells averaged to decode a position (default %(default)s)")
    return p


def main(argv=None):
    """Run the command on ``argv`` (default: ``sys.argv[1:]``); 0 written, 1 no such run or a bad one."""
    args = build_parser().parse_args(argv)
    try:
        run = export(args.run_dir, args.out, args.decoder_k)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {run.params!r}, {run.spec.to_json()}, encoding {run.settings.task.encoding}")
    return 0
