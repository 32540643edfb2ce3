"""The one module that owns the compiled C core's ``ffi`` and ``lib``.

Every other module imports them from here. Importing fails with ImportError
when the extension was not built (no C compiler at install time); the
backend registry then reports the "c" backend as unavailable.
"""

from gridcore.backends.c._gridcore_c import ffi, lib

__all__ = ["ffi", "lib"]
