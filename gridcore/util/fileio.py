"""Atomic file writes and checked ``.npz`` reads: a reader never sees a half-written file."""

import json
import os
import secrets
import zipfile

import numpy as np


def _create_temporary(folder):
    """A new file ``folder/.tmp-XXXXXXXX`` opened for writing: ``(fd, path)``.

    Created with mode 0666 less the umask, as ``open`` would (``mkstemp``
    gives 0600 whatever the umask, and the rename keeps it).
    """
    while True:
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(4)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path, write, mode="w"):
    """Call ``write(fh)`` on a temporary file in the same folder, then rename it over ``path``.

    A reader never sees a half-written file, and an interrupted write leaves
    the previous file intact. The file gets the permissions ``open`` would
    give it (0666 less the umask). An OSError (a full disk, a read-only
    folder) names ``path``, not the temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = _create_temporary(folder)
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, FileNotFoundError) and not os.path.isdir(folder):
            raise FileNotFoundError(err.errno, f"the folder {folder} does not exist", path) from None
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, err.strerror, path) from None  # the subclass of errno, e.g. PermissionError
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
