"""Input checks shared by every backend: one place, clear messages.

Every public kernel entry point funnels its arrays through :func:`as_float_array`
so that no backend (and in particular no C code) ever sees an array of the
wrong dtype, shape or memory layout, or one holding NaN/inf.
"""

import numbers

import numpy as np


def all_finite(a):
    """True if every entry of the float array ``a`` is finite.

    One pass in the common case: NaN and +-inf survive a sum (inf - inf =
    nan); a sum that overflows from large finite entries (1e308 + 1e308)
    falls back to checking each entry.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if a.size == 0 or np.isfinite(np.sum(a)):
            return True
    return bool(np.isfinite(a).all())


def as_float_array(name, a, shape, finite=True, dtype=np.float64):
    """Return ``a`` as a C-contiguous float array (float64 unless ``dtype``) of the given shape.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    a : array_like
        Real numbers (integer or floating dtype). Other dtypes raise TypeError.
    shape : tuple of (int or None or str)
        Expected shape; ``None`` accepts any length on that axis. A string
        entry names the axis in the error message (any length is accepted).
    finite : bool
        If true, NaN or infinite entries raise ValueError.
    dtype : np.float64 or np.float32
        The dtype returned (a float32 backend's stored states).

    Returns
    -------
    ndarray of ``dtype``, C-contiguous (a copy only when needed).
    """
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers (float or int dtype), got dtype {arr.dtype}")
    if arr.ndim != len(shape) or any(
            isinstance(want, numbers.Integral) and got != want
            for got, want in zip(arr.shape, shape)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and not all_finite(arr):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_positive_int(name, value):
    """Return ``value`` as int, or raise naming ``name`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# Threads of any backend, at most: the C core's GRC_MAX_THREADS (tests/test_properties.py checks
# they are equal). A fixed number, not a multiple of the cores: results depend on the thread count,
# so a run made with k threads must be repeatable on a smaller machine.
MAX_THREADS = 256


def check_threads(value, limit=MAX_THREADS, why="MAX_THREADS, the C core's GRC_MAX_THREADS"):
    """Return the thread count ``value`` as int, or raise ValueError naming ``threads``, the
    allowed range 1..``limit`` (at most MAX_THREADS) and ``why`` that is the limit."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= limit:
        raise ValueError(f"threads must be an integer in 1..{limit} ({why}), got {value!r}")
    return int(value)


def check_nonneg_int(name, value):
    """Return ``value`` as int, or raise naming ``name`` unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def check_nonneg_float(name, value):
    """Return ``value`` as float, or raise naming ``name`` unless finite and >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def check_choice(name, value, allowed):
    """Raise ValueError naming ``name`` and the allowed values unless ``value`` is one of them."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(repr, allowed))}")
    return value


# Element types a compute backend may run in: float64 (the default, and the
# NumPy reference's only one) and float32 (the C and Numba cores).
DTYPES = ("float64", "float32")


def check_dtype(dtype):
    """Return ``dtype`` as a NumPy dtype, or raise ValueError naming ``dtype`` and :data:`DTYPES`.

    Parameters
    ----------
    dtype : str or NumPy dtype
        ``"float64"`` or ``"float32"`` (or ``np.float64``, ``np.float32``).
    """
    try:
        name = None if dtype is None or isinstance(dtype, bool) else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, DTYPES))}, got {dtype!r}")
    return np.dtype(name)
