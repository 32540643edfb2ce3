"""Argument types shared by the command-line tools (argparse ``type=`` callables)."""

import argparse
import math
import sys


def positive_int(text):
    """An integer >= 1; accepts ``1e6``-style input for long lengths."""
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_list(text):
    """Comma-separated integers: ``"0,10,50"`` -> ``[0, 10, 50]``."""
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def nonneg_float(text):
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def run_main(prog, work, errors=(ValueError, FileNotFoundError, ImportError)):
    """Exit status of a command: call ``work()``, which returns the path of what it wrote.

    Ctrl-C gives 130; an expected error (``errors``) one line ``PROG: error: ...``
    on stderr and 2, instead of a traceback; success ``done: PATH`` and 0.
    """
    try:
        done = work()
    except KeyboardInterrupt:
        return 130
    except errors as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"done: {done}", file=sys.stderr)
    return 0
