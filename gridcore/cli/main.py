"""Command line of the package: ``python -m gridcore info [--json]``."""

import argparse
import json
import sys

from gridcore.cli import info


def main(argv=None):
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m gridcore", description="gridcore: CTRNN path integration with Hessian-free training")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info_cmd = commands.add_parser("info", help="versions, backends, threads, BLAS and CPU, for bug reports")
    info_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    report = info.collect()
    print(json.dumps(report, indent=2) if args.json else info.render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
