"""The exclusive lock of a run directory: one writer at a time, released when its process ends.

The lock is ``fcntl.flock`` on the file ``.lock`` in the directory, which
holds the holder's ``host:pid``. The kernel drops a flock when the process
holding it exits, however it exits, so a killed run never leaves the
directory locked (the file stays, harmless). flock locks belong to an open
file, so two threads of one process that each open the file exclude each
other too; a thread that already holds a directory's lock may take it again
(the sweep's task holds it around :func:`gridcore.train.loop.train`, which
takes it too).
"""

import fcntl
import os
import socket
import threading
from contextlib import contextmanager

__all__ = ["LOCK_NAME", "DirectoryLocked", "dir_lock"]

LOCK_NAME = ".lock"

_held = {}                  # real path of a locked directory -> [thread ident, depth]
_held_guard = threading.Lock()


class DirectoryLocked(RuntimeError):
    """Another process (or thread) holds the lock of the directory."""


def _holder(fd):
    """The holder the lock file names: ``"process PID on HOST"`` (or "another process" before it is written)."""
    host, _, pid = os.pread(fd, 256, 0).decode("ascii", "replace").strip().rpartition(":")
    return f"process {pid} on {host}" if host and pid else "another process"


@contextmanager
def dir_lock(path, wait=False):
    """Hold the exclusive lock of directory ``path`` (which must exist) for the ``with`` block.

    Parameters
    ----------
    path : str or path-like
    wait : bool
        Wait for another holder to release it; else raise at once.

    Raises
    ------
    DirectoryLocked
        ``wait`` is false and another process or thread holds the lock (the
        message names its host and PID).
    OSError
        The lock file cannot be created (e.g. a read-only directory).
    """
    key = os.path.realpath(path)
    me = threading.get_ident()
    with _held_guard:
        mine = _held.get(key)
        reentered = mine is not None and mine[0] == me
        if reentered:
            mine[1] += 1
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                mine[1] -= 1
        return
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise DirectoryLocked(f"{path} is in use by {_holder(fd)}, which holds its {LOCK_NAME}; wait for "
                                  "it to finish (or stop it), or choose another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode(), 0)
        with _held_guard:
            _held[key] = [me, 1]
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
