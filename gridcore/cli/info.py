"""``gridcore info``: what a bug report needs to know about this installation.

Versions, the CPU, the environment variables that change threading or BLAS,
the BLAS NumPy uses (as built and as loaded), and every compute backend: built
or not, and how it runs (threads, OpenMP, Numba's threading layer and cache).
"""

import argparse
import ctypes
import importlib.metadata
import json
import os
import platform

import numpy as np

from gridcore.backends import BACKEND_NAMES, available_backends, get_backend
from gridcore.version import __version__

ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")
PACKAGES = ("numpy", "scipy", "numba", "llvmlite", "cffi")


def collect():
    """Everything ``gridcore info`` prints, as a JSON-ready dict."""
    available = available_backends()
    return {
        "gridcore": __version__,
        "python": platform.python_version(),
        "packages": {name: _package_version(name) for name in PACKAGES},
        "cpu": _cpu(),
        "environment": {name: os.environ.get(name) for name in ENV_VARS},
        "numpy_blas": _numpy_blas(),
        "backends": {"available": available, "auto": available[0],
                     **{name: _backend(name) for name in BACKEND_NAMES}},
    }


def render(report, indent=0):
    """``report`` as indented ``key: value`` lines (nested dicts become sections)."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(render(value, indent + 2))
        else:
            if isinstance(value, list):
                value = ", ".join(map(str, value)) or "none"
            lines.append(" " * indent + f"{key}: {'unset' if value is None else value}")
    return "\n".join(lines)


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu():
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "machine": platform.machine(), "system": platform.platform(),
            "logical_cpus": os.cpu_count(), "usable_cpus": usable}


def _numpy_blas():
    """NumPy's BLAS as built (``numpy.show_config``) and the OpenBLAS libraries loaded at run time."""
    try:
        build = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except TypeError:  # NumPy < 1.25 prints its configuration but cannot return it
        build = {}
    return {"name": build.get("name"), "version": build.get("version"),
            "build_config": build.get("openblas configuration", "n/a"),
            "loaded_openblas": _loaded_openblas()}


def _loaded_openblas():
    """Core type and thread count of each OpenBLAS mapped into this process (Linux; else [])."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({fields[5].strip() for fields in (line.split(maxsplit=5) for line in maps)
                            if len(fields) == 6 and "openblas" in fields[5].lower()})
    except OSError:
        return []
    found = []
    for path in paths:
        lib = ctypes.CDLL(path)
        # Wheels rename the symbols: scipy_openblas_*64_ (NumPy's ILP64 build), scipy_openblas_*, openblas_*.
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            corename = getattr(lib, f"{prefix}_get_corename{suffix}", None)
            threads = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if corename is not None and threads is not None:
                corename.restype = ctypes.c_char_p
                found.append(f"{os.path.basename(path)}: core {corename().decode()}, {threads()} threads")
                break
    return found


def _backend(name):
    """A backend's own ``info()``, or why it is missing (with how to get it)."""
    try:
        backend = get_backend(name)
    except ImportError as err:
        return {"status": f"not built: {err}"}
    # The NumPy reference has no info(): its BLAS is reported under numpy_blas.
    return {"status": "ok", **(backend.info() if hasattr(backend, "info") else {})}


def main(argv=None):
    """Print the report for ``argv`` (default: ``sys.argv[1:]``: ``[--json]``); returns 0."""
    p = argparse.ArgumentParser(prog="gridcore info", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    as_json = p.parse_args(argv).json
    report = collect()
    print(json.dumps(report, indent=2) if as_json else render(report))
    return 0
