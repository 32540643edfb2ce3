"""The ``gridcore`` command: ``gridcore COMMAND [ARGS]``, one subcommand per tool.

The console script ``gridcore`` and ``python -m gridcore`` run it;
``gridcore train ARGS`` is ``python -m gridcore.train ARGS``, and so on for
every command in :data:`COMMANDS`.
"""

import argparse
import importlib
import sys

# Command -> (module whose main(argv) runs it, one-line help). Imported only when run:
# the commands pull in the analysis, matplotlib and Dask, which `gridcore info` does not need.
COMMANDS = {
    "train": ("gridcore.cli.train", "train a network (presets quick, paper, grid-cells; --resume)"),
    "analyze": ("gridcore.cli.analyze", "every analysis of a trained run: metrics.json, figures, report.html"),
    "reproduce": ("gridcore.cli.reproduce", "the paper's runs and their analyses in docs/results/"),
    "sweep": ("gridcore.cli.sweep", "runs over settings and seeds from a TOML spec, on Dask"),
    "info": ("gridcore.cli.info", "versions, backends, threads, BLAS and CPU, for bug reports"),
    "export": ("gridcore.cli.export", "write a trained run's network for C programs (docs/c_api.md)"),
}


def build_parser():
    """The parser of the command name (each command parses its own arguments)."""
    listing = "\n".join(f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items())
    p = argparse.ArgumentParser(
        prog="gridcore", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="gridcore: CTRNN path integration with Hessian-free training",
        epilog=f"commands:\n{listing}\n\n`gridcore COMMAND --help` shows a command's options; "
               "`python -m gridcore.COMMAND` is the same command.")
    p.add_argument("command", choices=tuple(COMMANDS), metavar="COMMAND",
                   help=f"one of {', '.join(COMMANDS)}")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="...", help="the command's arguments")
    return p


def main(argv=None):
    """Run ``gridcore COMMAND ARGS`` from ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the command name is parsed here, so that `gridcore train --help` reaches train's parser.
    command = build_parser().parse_args(argv[:1]).command
    return importlib.import_module(COMMANDS[command][0]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
