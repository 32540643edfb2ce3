"""Path files: reading recorded paths, writing our trajectories and reading them back.

A *path file* (``.csv`` or ``.npz``) holds one row per sample with the
columns (``.npz``: 1-D arrays under these keys)

=============  ========  ===================================================
column         needed    meaning
=============  ========  ===================================================
``t``/``time``  yes      time (s), strictly increasing
``x``, ``y``   yes       position (any length unit; ``.npz`` may instead
                         hold ``pos`` or ``positions`` of shape (n, 2));
                         NaN (or an empty CSV field) marks a missing sample
``speed``      no        speed of the move from this row to the next
                         (position units per second)
``heading``    no        heading of that move (rad)
``boundary``   no        boundary interaction at this row (0/1)
``trial``      no        trial number, when a file holds several paths
=============  ========  ===================================================

CSV files start with a header row naming the columns (any order, case
ignored); lines before it starting with ``#`` are comments. Bad input raises
a ValueError naming the file, the column and, where it helps, the row.

:func:`read_path` gives a :class:`gridcore.sim.realpaths.PathRecording`;
:func:`gridcore.sim.realpaths.prepare` turns it into network trials.

Our own trajectories go out with :func:`write_trajectories` (one row per
position p_0..p_T of each trial, the moves' speed and heading, the boundary
flags and the arena in a metadata line) and come back exactly with
:func:`load_trajectories`; :func:`read_path` reads them like any other path.
"""

import csv
import json
import math
import os
import zipfile
from numbers import Real

import numpy as np

from gridcore.sim.arenas import arena_from_dict
from gridcore.sim.realpaths import make_path, to_trajectories
from gridcore.sim.trajectories import Trajectories
from gridcore.util.checks import check_choice

__all__ = ["read_path", "write_trajectories", "load_trajectories"]

_FORMAT = "gridcore-trajectories"   # marks files written by write_trajectories
_COLUMNS = ("trial", "step", "t", "x", "y", "speed", "heading", "boundary")


# ---------------------------------------------------------------- reading


def _pick(names, available, file, what):
    """The first of ``names`` present in ``available`` (case-insensitive), or raise naming them."""
    lower = {a.lower(): a for a in available}
    for n in names:
        if n in lower:
            return lower[n]
    raise ValueError(f"{file}: no {what} column; expected {' or '.join(repr(n) for n in names)}, "
                     f"found {sorted(available)}")


def _read_csv(file):
    """Columns of a CSV path file as float arrays, and the gridcore metadata line (or {})."""
    meta = {}
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{file}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); a "
                         "CSV path file is UTF-8 text: convert it (e.g. iconv -f latin1 -t utf-8) or write an "
                         ".npz") from None
    k = 0
    while k < len(lines) and (lines[k].startswith("#") or not lines[k].strip()):
        if lines[k].startswith("# " + _FORMAT):
            meta = json.loads(lines[k][len("# " + _FORMAT):])
        k += 1
    if k == len(lines):
        raise ValueError(f"{file}: no header row; a CSV path file needs a header naming its columns (t, x, y) "
                         "and at least 2 rows of samples")
    try:
        rows = list(csv.reader(lines[k:]))
    except csv.Error as err:
        raise ValueError(f"{file}: not a CSV text file ({err})") from None
    header = [h.strip().lower() for h in rows[0]]
    if len(set(header)) != len(header):
        raise ValueError(f"{file}: repeated column names in the header {header}")
    data = np.full((len(rows) - 1, len(header)), np.nan)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ValueError(f"{file}: line {k + i + 2} has {len(row)} fields, the header has "
                             f"{len(header)}")
        for j, v in enumerate(row):
            v = v.strip()
            if v:
                try:
                    data[i, j] = float(v)
                except ValueError:
                    raise ValueError(f"{file}: line {k + i + 2}, column {header[j]!r}: {v!r} is not "
                                     "a number") from None
    return {h: data[:, j] for j, h in enumerate(header)}, meta


def _read_npz(file):
    """Arrays of an .npz path file (positions split into x and y) and its gridcore metadata."""
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{file}: not an .npz file (not a zip archive of arrays; write it with numpy.savez)")
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k.lower(): z[k] for k in z.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ValueError(f"{file}: holds Python objects (an object array), which are not read; save "
                             "each column as an array of numbers") from None
        raise ValueError(f"{file}: unreadable .npz file ({err})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{file}: unreadable .npz file ({err})") from None
    meta = json.loads(str(arrays.pop(_FORMAT))) if _FORMAT in arrays else {}
    for key in ("pos", "positions"):
        if key in arrays and not {"x", "y"} & set(arrays):
            p = arrays.pop(key)
            if p.ndim != 2 or p.shape[1] != 2:
                raise ValueError(f"{file}: {key!r} must have shape (n, 2), got {p.shape}")
            arrays["x"], arrays["y"] = p[:, 0], p[:, 1]
    for k, a in arrays.items():
        if a.ndim != 1:
            raise ValueError(f"{file}: {k!r} must be 1-D (one value per sample), got shape {a.shape}")
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"{file}: {k!r} must hold numbers, got dtype {a.dtype}")
    lengths = {k: len(a) for k, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{file}: columns of different lengths ({', '.join(f'{k} {n}' for k, n in lengths.items())}"
                         "); every column needs one value per sample")
    return {k: a.astype(np.float64) for k, a in arrays.items()}, meta


def _check_positions(file, x, y):
    """Refuse a path with fewer than 2 samples of finite x and y, or one that never moves."""
    valid = np.isfinite(x) & np.isfinite(y)
    if valid.sum() < 2:
        raise ValueError(f"{file}: {int(valid.sum())} of {len(x)} samples have finite x and y; a path needs at "
                         "least 2 (NaN or empty fields mark missing samples)")
    xv, yv = x[valid], y[valid]
    if np.ptp(xv) == 0 and np.ptp(yv) == 0:
        raise ValueError(f"{file}: the position never changes (x = {xv[0]:g}, y = {yv[0]:g} in all "
                         f"{len(xv)} valid samples); a path must move")


def read_path(file, trial=None, units=None, box=None):
    """Read one path from a ``.csv`` or ``.npz`` path file (see the module docstring).

    Parameters
    ----------
    file : str or os.PathLike
    trial : int, optional
        Which trial to read when the file has a ``trial`` column with
        several values (required then).
    units, box : optional
        Length unit and enclosure ``(xmin, ymin, xmax, ymax)`` of the
        positions, when the caller knows them. Files written by
        :func:`write_trajectories` carry both (arena units, the arena's bounds).

    Returns
    -------
    PathRecording
    """
    file = os.fspath(file)
    ext = os.path.splitext(file)[1].lower()
    check_choice("path file extension", ext, (".csv", ".npz"))
    if not os.path.exists(file):
        raise FileNotFoundError(f"{file}: no such path file")
    cols, meta = _read_csv(file) if ext == ".csv" else _read_npz(file)
    if meta and meta.get("format") != _FORMAT:
        raise ValueError(f"{file}: unknown metadata format {meta.get('format')!r}")
    tcol = _pick(("t", "time"), cols, file, "time")
    xcol = _pick(("x",), cols, file, "x position")
    ycol = _pick(("y",), cols, file, "y position")
    n = len(cols[tcol])
    if "trial" in cols:
        found = np.unique(cols["trial"][np.isfinite(cols["trial"])])
        if trial is None and len(found) > 1:
            raise ValueError(f"{file}: holds {len(found)} trials (column 'trial': "
                             f"{found[:5].astype(int).tolist()}{' ...' if len(found) > 5 else ''}); "
                             "choose one with trial=")
        chosen = found[0] if trial is None else trial
        if chosen not in found:
            raise ValueError(f"{file}: no trial {trial!r}; the file holds trials "
                             f"{found[:20].astype(int).tolist()}")
        rows = cols["trial"] == chosen
    else:
        if trial is not None:
            raise ValueError(f"{file}: trial={trial!r} given but the file has no 'trial' column")
        rows = np.ones(n, bool)
    pick = {k: v[rows] for k, v in cols.items()}
    _check_positions(file, pick[xcol], pick[ycol])
    if meta and units is None:
        units = "arena"
    return make_path(pick[tcol], np.column_stack([pick[xcol], pick[ycol]]),
                     speed=pick.get("speed"), heading=pick.get("heading"),
                     boundary=None if "boundary" not in pick else np.nan_to_num(pick["boundary"]) > 0,
                     source=file, units=units, box=box, meta=meta)


# ---------------------------------------------------------------- export


def write_trajectories(file, traj, dt=1.0):
    """Write trajectories to a ``.csv`` or ``.npz`` path file, for other tools and for
    :func:`load_trajectories`.

    Each trial gives T + 1 rows, steps 0..T: time ``step dt`` (s), position
    p_step (arena units; step T is ``final_position``), the speed (arena
    units per second, i.e. per step / ``dt``), heading (rad) and boundary
    flag of the move from that position (empty/NaN and 0 on row T). The
    arena, encoding, motion and ``dt`` go into a metadata line (CSV:
    ``# gridcore-trajectories {json}``; npz: the key ``gridcore-trajectories``).

    Parameters
    ----------
    file : str or os.PathLike
        Ends in ``.csv`` or ``.npz``.
    traj : Trajectories
    dt : float
        Seconds per step written in the ``t`` column (default 1).

    Returns
    -------
    str
        The file written.
    """
    file = os.fspath(file)
    ext = os.path.splitext(file)[1].lower()
    check_choice("path file extension", ext, (".csv", ".npz"))
    if not isinstance(traj, Trajectories):
        raise ValueError(f"traj must be Trajectories, got {type(traj).__name__}")
    if isinstance(dt, bool) or not isinstance(dt, Real) or not 0 < dt < math.inf:
        raise ValueError(f"dt must be a positive finite number of seconds, got {dt!r}")
    m, t_steps = traj.speed.shape
    steps = np.arange(t_steps + 1)
    pos = np.concatenate([traj.positions, traj.final_position[:, None]], axis=1)
    pad = np.full((m, 1), np.nan)
    cols = {"trial": np.repeat(np.arange(m), t_steps + 1), "step": np.tile(steps, m),
            "t": np.tile(steps * float(dt), m), "x": pos[..., 0].ravel(), "y": pos[..., 1].ravel(),
            "speed": np.concatenate([traj.speed / dt, pad], axis=1).ravel(),
            "heading": np.concatenate([traj.heading, pad], axis=1).ravel(),
            "boundary": np.concatenate([traj.boundary, np.zeros((m, 1), bool)], axis=1).ravel()}
    meta = json.dumps({"format": _FORMAT, "version": 1, "arena": traj.arena.to_dict(),
                       "encoding": traj.encoding, "motion": traj.motion, "dt": float(dt),
                       "units": "arena"})
    tmp = file + ".tmp" + ext
    if ext == ".npz":
        np.savez(tmp, **cols, **{_FORMAT: np.array(meta)})
    else:
        data = np.column_stack([cols[c].astype(np.float64) for c in _COLUMNS])
        with open(tmp, "w") as fh:
            fh.write(f"# {_FORMAT} {meta}\n" + ",".join(_COLUMNS) + "\n")
            np.savetxt(fh, data, delimiter=",",
                       fmt=["%d", "%d", "%.17g", "%.17g", "%.17g", "%.17g", "%.17g", "%d"])
    os.replace(tmp, file)
    return file


def load_trajectories(file):
    """Read back a file written by :func:`write_trajectories`, as the Trajectories it came from.

    Parameters
    ----------
    file : str or os.PathLike

    Returns
    -------
    Trajectories
        Bit-for-bit the written one when ``dt`` was 1 (else speeds may
        differ in the last bit: they are stored per second).
    """
    file = os.fspath(file)
    ext = os.path.splitext(file)[1].lower()
    check_choice("path file extension", ext, (".csv", ".npz"))
    if not os.path.exists(file):
        raise FileNotFoundError(f"{file}: no such path file")
    cols, meta = _read_csv(file) if ext == ".csv" else _read_npz(file)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{file}: not written by write_trajectories (no {_FORMAT!r} metadata); "
                         "read foreign paths with read_path and prepare")
    missing = [c for c in _COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"{file}: missing column(s) {missing}; a gridcore trajectory file has {list(_COLUMNS)}")
    trials = np.unique(cols["trial"])
    m, rows = len(trials), len(cols["trial"])
    if rows % m or not np.array_equal(cols["trial"], np.repeat(trials, rows // m)):
        raise ValueError(f"{file}: trials must be stored one after another with equally many rows")
    n = rows // m
    if not np.array_equal(cols["step"], np.tile(np.arange(n), m)):
        raise ValueError(f"{file}: column 'step' must run 0..T within every trial")
    grid = {c: cols[c].reshape(m, n) for c in _COLUMNS}
    dt = float(meta["dt"])
    return to_trajectories(np.stack([grid["x"], grid["y"]], axis=-1), arena_from_dict(meta["arena"]),
                           meta["encoding"], speed=grid["speed"][:, :-1] * dt,
                           heading=grid["heading"][:, :-1], boundary=grid["boundary"][:, :-1] > 0,
                           motion=meta["motion"])
