"""Atomic file writes and checked ``.npz`` reads: a reader never sees a half-written file."""

import json
import os
import tempfile
import zipfile

import numpy as np


def atomic_write(path, write, mode="w"):
    """Call ``write(fh)`` on a temporary file in the same folder, then rename it over ``path``.

    A reader never sees a half-written file, and an interrupted write leaves
    the previous file intact.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path, **arrays):
    """``numpy.savez`` written atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays), "wb")


def atomic_write_json(path, obj):
    """Strict JSON (NaN refused) written atomically (see :func:`atomic_write`)."""
    def write(fh):
        json.dump(obj, fh, indent=1, allow_nan=False)
        fh.write("\n")
    atomic_write(path, write, "w")


def load_npz(path, required, optional=()):
    """Read an ``.npz`` into a dict, refusing unreadable files and wrong keys with ValueError."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: unreadable .npz file ({err})") from None
    missing = [k for k in required if k not in data]
    extra = sorted(set(data) - set(required) - set(optional))
    if missing or extra:
        raise ValueError(f"{path}: expected keys {list(required)}, missing {missing}, unexpected {extra}")
    return data
