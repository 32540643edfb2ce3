"""Sweep specifications: a TOML file read into checked :class:`Spec` and expanded into :class:`Point`\\ s.

A spec names a base preset, settings shared by every run, settings to vary
(lists, combined as a product or zipped), the seeds and the output folder::

    preset = "quick"                  # base preset (default: quick, as python -m gridcore.train)
    out = "runs/noise"                # output folder (default: runs/<spec file name>)
    seeds = [0, 1, 2]                 # or {start = 0, count = 3} (default: [0])
    combine = "product"               # or "zip": how the lists of [vary] combine (default: product)

    [base]                            # every run; flat setting names of python -m gridcore.train
    iterations = 200

    [vary]                            # one list per setting; one run per combination and seed
    noise_std = [0.0, 0.1]
    n_units = [32, 64]
    motion.p_zero_speed = [0.5, 0.9]  # one field of a dict-valued setting

Each point is one ordinary run directory, ``OUT/<name>``, named from its
varied settings and seed in the order of the spec:
``noise_std=0.1,n_units=64,motion.p_zero_speed=0.5,seed=2``.

Instead of ``[vary]``, named configurations (an ingredient ladder: each
point changes its own settings of the base) go in ``[points.<name>]``
tables, each run with every seed, in ``OUT/<name>,seed=N``::

    [points.relu]                     # no settings: the base itself
    [points.tanh]
    model.nonlinearity = "tanh"

Errors in the file itself (unknown keys, wrong types, unequal zipped lists)
raise :class:`SpecError` naming the key and what is allowed; a value that a
run's configuration refuses only fails that point (:attr:`Point.error`),
unless every point fails, which is again a :class:`SpecError`.
"""

import itertools
import numbers
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from gridcore.train.config import DEFAULTS, PRESETS, RunConfig, make_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib

__all__ = ["Spec", "Point", "SpecError", "COMBINE", "TOP_KEYS", "load_spec", "parse_spec", "run_name"]

COMBINE = ("product", "zip")
TOP_KEYS = ("preset", "out", "seeds", "combine", "base", "vary", "points")
# Settings a sweep sets itself: the seed from `seeds`, the threads per run from the cluster's shape.
_NOT_IN_BASE = {"seed": "give the seeds as the top-level `seeds`"}
_NOT_IN_VARY = {**_NOT_IN_BASE,
                "threads": "the threads per run are one value per sweep (base.threads or --threads)"}
# Characters kept in a run's directory name; any other becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
_POINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class SpecError(ValueError):
    """A sweep specification that cannot be run: the message names the key and what is allowed."""


@dataclass(frozen=True)
class Point:
    """One run of a sweep.

    Attributes
    ----------
    name : str
        Its directory under the sweep's output folder (:func:`run_name`).
    settings : dict
        The varied settings of this point by dotted name (``"noise_std"``,
        ``"motion.p_zero_speed"``), in the spec's order: the summary's columns.
    seed : int
    config : RunConfig or None
        The run's full configuration; None when its settings are invalid.
    error : str or None
        Why the configuration was refused (None when valid).
    """

    name: str
    settings: dict
    seed: int
    config: RunConfig = None
    error: str = None


@dataclass(frozen=True)
class Spec:
    """A checked sweep specification (see the module docstring).

    Attributes
    ----------
    path : str or None
        The file it was read from.
    preset : str
    out : str
        The output folder (as written; relative paths are from the current directory).
    seeds : tuple of int
    combine : {"product", "zip"}
    base : dict
        Flat settings of every run.
    vary : dict
        Dotted setting name -> tuple of values.
    named : dict
        Point name -> its settings (flat names; a dict-valued setting as a
        table of its changed fields); empty when the spec uses ``vary``.
    """

    path: str
    preset: str
    out: str
    seeds: tuple
    combine: str
    base: dict
    vary: dict
    named: dict = None

    def points(self):
        """Every run of the sweep: the combinations of :attr:`vary` (or the :attr:`named` points), each
        with every seed.

        Returns
        -------
        list of Point
            Combinations (named points) in the spec's order, the seeds innermost.

        Raises
        ------
        SpecError
            Every point's configuration is refused (the first reason is given).
        """
        if self.named:
            points = [self._point(f"{name},seed={seed}", {"point": name}, changes, seed)
                      for name, changes in self.named.items() for seed in self.seeds]
        else:
            keys = list(self.vary)
            lists = [self.vary[k] for k in keys]
            combos = zip(*lists) if self.combine == "zip" else itertools.product(*lists)
            points = [self._point(run_name(settings, seed), settings, settings, seed)
                      for settings in (dict(zip(keys, values)) for values in combos) for seed in self.seeds]
        if all(p.error for p in points):
            raise SpecError(f"{self._where()}no run of the sweep has valid settings; the first, {points[0].name}: "
                            f"{points[0].error}")
        return points

    def _point(self, name, settings, changes, seed):
        """The point ``name`` (summary columns ``settings``): ``changes`` merged into the base."""
        overrides = dict(self.base)
        for dotted, value in changes.items():
            key, _, field = dotted.partition(".")
            if field:  # one field of a dict-valued setting, merged into base's dict
                overrides[key] = {**overrides.get(key, {}), field: value}
            elif isinstance(value, Mapping) and isinstance(DEFAULTS[key], dict):
                overrides[key] = {**overrides.get(key, {}), **value}
            else:
                overrides[key] = value
        try:
            return Point(name, settings, seed, make_config(self.preset, seed=seed, **overrides))
        except (TypeError, ValueError) as err:
            return Point(name, settings, seed, error=str(err))

    def _where(self):
        return f"{self.path}: " if self.path else ""


def run_name(settings, seed):
    """A point's directory name: ``key=value`` of each varied setting, then ``seed=N``, joined by commas.

    Floats are written shortest-exact (``0.1``, ``1e-05``), booleans
    ``true``/``false``, a dict value as ``key.field=value`` items;
    characters other than letters, digits and ``._=,+-`` become ``_``.
    """
    items = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            items += [f"{key}.{k}={_text(v)}" for k, v in value.items()]
        else:
            items.append(f"{key}={_text(value)}")
    return _UNSAFE.sub("_", ",".join(items + [f"seed={seed}"]))


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_text(v) for v in value)
    return str(value)


def load_spec(path):
    """Read and check a sweep specification file (TOML).

    The default output folder is ``runs/<file name without .toml>``.

    Raises
    ------
    FileNotFoundError
        No such file.
    SpecError
        Not TOML, or not a valid specification (the message names the file and key).
    """
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise SpecError(f"{path}: not a TOML file ({err})") from None
    default_out = os.path.join("runs", os.path.splitext(os.path.basename(path))[0])
    return parse_spec(data, path=os.fspath(path), default_out=default_out)


def parse_spec(data, path=None, default_out=None):
    """Check a specification given as a dict (the parsed TOML) and return a :class:`Spec`.

    Parameters
    ----------
    data : dict
        Keys of :data:`TOP_KEYS`.
    path : str or None
        The file it came from (named in errors).
    default_out : str or None
        The output folder when ``data`` has no ``out``; None makes ``out`` required.

    Raises
    ------
    SpecError
    """
    where = f"{path}: " if path else ""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}a sweep specification is a table of {', '.join(TOP_KEYS)}")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise SpecError(f"{where}unknown key {unknown[0]!r}; allowed: {', '.join(TOP_KEYS)}")
    preset = data.get("preset", "quick")
    if preset not in PRESETS:
        raise SpecError(f"{where}preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    out = data.get("out", default_out)
    if not isinstance(out, str) or not out:
        raise SpecError(f"{where}out must be the output folder (a non-empty string), got {out!r}")
    combine = data.get("combine", "product")
    if combine not in COMBINE:
        raise SpecError(f"{where}combine must be one of {', '.join(COMBINE)}, got {combine!r}")
    base = _settings_table(data.get("base", {}), "base", _NOT_IN_BASE, where)
    if "points" in data and "vary" in data:
        raise SpecError(f"{where}give either vary (combinations) or points (named configurations), not both")
    named = _named_points(data.get("points", {}), where)
    vary = {}
    for key, values in _settings_table(data.get("vary", {}), "vary", _NOT_IN_VARY, where).items():
        vary.update(_vary_lists(key, values, where))
    if combine == "zip" and len({len(v) for v in vary.values()}) > 1:
        lengths = ", ".join(f"{k}: {len(v)}" for k, v in vary.items())
        raise SpecError(f"{where}combine = \"zip\" needs lists of equal length in vary, got {lengths}")
    return Spec(path, preset, out, _seeds(data.get("seeds", [0]), where), combine, base, vary, named)


def _named_points(table, where):
    """``{name: settings}`` of the ``points`` table, each name a safe directory name."""
    if not isinstance(table, Mapping):
        raise SpecError(f"{where}points must be a table of named configurations, got {table!r}")
    out = {}
    for name, settings in table.items():
        if not _POINT_NAME.fullmatch(name) or "=" in name:
            raise SpecError(f"{where}points.{name}: a point's name is its directory: letters, digits and "
                            "._+- (not starting with one of ._+-)")
        out[name] = _settings_table(settings, f"points.{name}", _NOT_IN_VARY, where)
    return out


def _settings_table(table, name, refused, where):
    """``table`` (the ``base`` or ``vary`` table) checked to hold flat setting names only."""
    if not isinstance(table, Mapping):
        raise SpecError(f"{where}{name} must be a table of settings, got {table!r}")
    for key in table:
        if key in refused:
            raise SpecError(f"{where}{name}.{key} cannot be set here: {refused[key]}")
        if key not in DEFAULTS:
            allowed = ", ".join(k for k in DEFAULTS if k not in refused)
            raise SpecError(f"{where}{name}.{key}: unknown setting; allowed: {allowed}")
    return dict(table)


def _vary_lists(key, values, where):
    """``{dotted name: tuple of values}`` of one ``vary`` entry.

    A dict-valued setting may be varied whole (a list of tables) or field
    by field (a table of lists: ``motion.p_zero_speed = [...]``).
    """
    if isinstance(DEFAULTS[key], dict) and isinstance(values, Mapping):
        out = {}
        for field, v in values.items():
            out.update(_vary_lists_of(f"{key}.{field}", v, where))
        return out
    return _vary_lists_of(key, values, where)


def _vary_lists_of(name, values, where):
    if not isinstance(values, list) or not values:
        raise SpecError(f"{where}vary.{name} must be a non-empty list of values, got {values!r}")
    seen = []
    for v in values:
        if v in seen:
            raise SpecError(f"{where}vary.{name} lists {v!r} twice (two runs would share a directory)")
        seen.append(v)
    return {name: tuple(values)}


def _seeds(seeds, where):
    """The seeds as a tuple of distinct ints >= 0, from a list or a ``{start, count}`` table."""
    if isinstance(seeds, Mapping):
        unknown = [k for k in seeds if k not in ("start", "count")]
        if unknown or "count" not in seeds:
            raise SpecError(f"{where}seeds as a table needs count (and optionally start), got {dict(seeds)!r}")
        start, count = seeds.get("start", 0), seeds["count"]
        for name, v, low in (("seeds.start", start, 0), ("seeds.count", count, 1)):
            if not _is_int(v) or v < low:
                raise SpecError(f"{where}{name} must be an integer >= {low}, got {v!r}")
        return tuple(range(start, start + count))
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        raise SpecError(f"{where}seeds must be a non-empty list of integers >= 0 or a table "
                        f"{{start = 0, count = N}}, got {seeds!r}")
    if len(set(seeds)) < len(seeds):
        raise SpecError(f"{where}seeds lists a seed twice: {seeds!r}")
    return tuple(seeds)


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)
