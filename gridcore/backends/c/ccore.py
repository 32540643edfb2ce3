"""The one module that owns the compiled C core's ``ffi`` and ``lib``.

Every other module imports them from here. Importing fails with ImportError
when the extension was not built (no C compiler at install time) or was built
from another version of ``csrc/gridcore.h`` than this Python code expects (a
stale build: the source tree was updated but not rebuilt); the backend
registry then reports the "c" backend as unavailable, with the message.
"""

from gridcore.backends.c._gridcore_c import ffi, lib

# GRC_ABI_VERSION of csrc/gridcore.h that this package's Python side is
# written for: the signatures, structs and codes it passes to C. Raise it
# together with the header's (tests/test_c_core.py checks they agree).
ABI_VERSION = 5

REBUILD_HINT = ("rebuild the C core: run `pip install -e .` in the source tree "
                "(`pip install -e . --no-build-isolation` offline)")

__all__ = ["ABI_VERSION", "check_abi_version", "ffi", "lib"]


def check_abi_version(library=lib, expected=None):
    """Raise ImportError unless ``library`` speaks the C ABI this package expects.

    Parameters
    ----------
    library : cffi lib object
        The compiled extension's ``lib`` (default: the one of this module).
    expected : int or None
        The ABI version to require; None means :data:`ABI_VERSION`.

    Both the header constant the extension was compiled with
    (``library.GRC_ABI_VERSION``) and the version the library reports
    (``library.grc_abi_version()``) must equal ``expected``. A library older
    than versioning has neither and is refused too.
    """
    expected = ABI_VERSION if expected is None else expected
    try:
        found = (int(library.GRC_ABI_VERSION), int(library.grc_abi_version()))
    except AttributeError:
        found = None
    if found != (expected, expected):
        what = "no ABI version (built before versioning)" if found is None else \
            f"ABI version {found[1]} (header {found[0]})"
        raise ImportError(f"the compiled gridcore C core has {what}, but this gridcore "
                          f"expects ABI version {expected}: the extension is stale; "
                          f"{REBUILD_HINT}")


check_abi_version()
