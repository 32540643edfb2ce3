"""Argument types shared by the command-line tools (argparse ``type=`` callables)."""

import argparse
import errno
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


def lr_steps(text):
    """``"4000:3e-4,8000:1e-4"`` -> ``[[4000, 0.0003], [8000, 0.0001]]`` (checked by the Adam settings)."""
    try:
        return [[int(i), float(lr)] for i, lr in (item.split(":") for item in text.split(",") if item)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ITERATION:LR pairs, got {text!r}") from None


def nonneg_float(text):
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


# What to do about the commonest failures to read or write a file, by errno.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EACCES: "no permission: choose a folder you can write to (or read, for an input)",
    errno.EPERM: "not permitted (an immutable or protected file?): choose another folder",
    errno.EROFS: "a read-only file system: choose a folder on a writable one",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "a folder where a file was expected",
}


def os_error_message(err):
    """One line for an OSError: the file, what the system said and, for common causes, what to do.

    Parameters
    ----------
    err : OSError

    Returns
    -------
    str, e.g. ``"runs/x/checkpoint.npz: No space left on device (the disk is full: free some space)"``.
    """
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    what = err.strerror or str(err)
    hint = _OS_HINTS.get(err.errno)
    return (f"{where}: " if where else "") + what + (f" ({hint})" if hint else "")


def run_main(prog, work, errors=(ValueError, FileNotFoundError, ImportError), os_hint=None):
    """Exit status of a command: call ``work()``, which returns the path of what it wrote.

    Ctrl-C gives 130; an expected error (``errors``) one line ``PROG: error: ...``
    on stderr and 2, instead of a traceback; so does any OSError (a file that
    cannot be read or written: :func:`os_error_message`), followed by
    ``os_hint()`` when given (e.g. what is still intact); success ``done: PATH`` and 0.
    """
    try:
        done = work()
    except KeyboardInterrupt:
        return 130
    except (*errors, OSError) as err:
        message = str(err)
        if isinstance(err, OSError) and err.errno is not None:  # raised by the system, not by gridcore
            extra = os_hint() if os_hint is not None else None
            message = os_error_message(err) + (f"; {extra}" if extra else "")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    print(f"done: {done}", file=sys.stderr)
    return 0


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends each option with ``(default: X)``, unless its text states the default or it has none.

    (argparse's own formatter adds ``(default: None)`` to options whose
    default depends on something else, and repeats the ones the text gives.)
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)) \
                or action.default == []:
            return text
        if isinstance(action.default, (list, tuple)):
            return f"{text} (default: {' '.join(map(str, action.default))})"
        return super()._get_help_string(action)
