"""cffi builder of gridcore's C core (out-of-line API mode), named by setup.py.

Builds the extension module ``gridcore.backends.c._gridcore_c`` from ``csrc/``. The
declarations come from ``csrc/gridcore.h`` (the text between GRC_CDEF_BEGIN
and GRC_CDEF_END), so the header is the one source of truth.

OpenMP is probed by compiling and running a tiny program with the same
compiler. Without it the core is built serial (same results for a given
thread count, just slower) and a loud warning is printed. Environment:

- ``GRIDCORE_NO_OPENMP=1``: build serial without probing.
- ``GRIDCORE_REQUIRE_OPENMP=1``: fail the build if OpenMP does not work.

No ``-march=native``: the kernels are compiled for several instruction sets
and chosen at run time (``csrc/grc_kernels.c``), so the wheel runs on any
x86-64 CPU. Every path is derived from this file's location, never from the working
directory, and nothing is written into the source tree.
"""

import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE.parent / "csrc"
HEADER = CSRC / "gridcore.h"
SOURCES = [CSRC / "gridcore.c", CSRC / "grc_kernels.c", CSRC / "grc_step.c", CSRC / "grc_net.c"]
DEPENDS = [HEADER, CSRC / "grc_internal.h", CSRC / "grc_types.inc", CSRC / "grc_kernels.inc",
           CSRC / "grc_driver.inc", CSRC / "grc_step.inc", CSRC / "grc_noise.h", CSRC / "grc_normal_table.h"]
# -ffp-contract=fast: ISO mode (-std=c99) would otherwise forbid fused multiply-adds.
BASE_FLAGS = ["-O3", "-std=c99", "-ffp-contract=fast"]
OPENMP_FLAG = "-fopenmp"

_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
#pragma omp parallel num_threads(2) reduction(+:n)
    n += 1;
    printf("%d %d\n", n, omp_get_max_threads() >= 1);
    return 0;
}
"""


def read_cdef(header=HEADER):
    """The declarations between the GRC_CDEF markers of the header, for ``ffi.cdef``."""
    text = Path(header).read_text()
    match = re.search(r"/\* GRC_CDEF_BEGIN \*/(.*?)/\* GRC_CDEF_END \*/", text, re.S)
    if match is None:
        raise RuntimeError(f"{header}: GRC_CDEF_BEGIN/GRC_CDEF_END markers not found")
    return match.group(1)


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _compiler():
    """The C compiler command setuptools will use (CC overrides, as for setuptools)."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def openmp_probe():
    """Compile and run a tiny OpenMP program; return None if it works, else the reason."""
    with tempfile.TemporaryDirectory(prefix="gridcore-omp-") as tmp:
        src, exe = Path(tmp, "probe.c"), Path(tmp, "probe")
        src.write_text(_PROBE)
        try:
            build = subprocess.run([*_compiler(), OPENMP_FLAG, str(src), "-o", str(exe)],
                                   capture_output=True, text=True, timeout=120)
            if build.returncode != 0:
                return f"compiling with {OPENMP_FLAG} failed: {build.stderr.strip()[:500]}"
            run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as err:
            return f"probe could not run: {err}"
        if run.returncode != 0 or run.stdout.split()[1:2] != ["1"]:
            return f"probe program failed: {run.stdout.strip()} {run.stderr.strip()}"
    return None


def openmp_flags():
    """Compiler/linker flags for OpenMP, or [] for a serial build (see module doc)."""
    if _env_flag("GRIDCORE_NO_OPENMP"):
        print("gridcore: GRIDCORE_NO_OPENMP is set: building the C core without OpenMP",
              file=sys.stderr)
        return []
    reason = openmp_probe()
    if reason is None:
        return [OPENMP_FLAG]
    if _env_flag("GRIDCORE_REQUIRE_OPENMP"):
        raise RuntimeError(f"gridcore: GRIDCORE_REQUIRE_OPENMP is set but OpenMP does not work: {reason}")
    banner = "!" * 78
    message = (f"gridcore: OpenMP does not work with this compiler ({reason}). Building the C "
               "core SERIAL: every kernel will run on one core. Install an OpenMP-capable "
               "compiler (e.g. gcc) and reinstall, or set GRIDCORE_NO_OPENMP=1 to silence this.")
    print(f"\n{banner}\n{message}\n{banner}\n", file=sys.stderr)
    warnings.warn(message, RuntimeWarning, stacklevel=1)
    return []


def _source_path(path):
    """setuptools refuses absolute source paths and resolves relative ones from
    the setup.py folder, where it runs; other callers get absolute paths."""
    root = HERE.parent
    return os.path.relpath(path, root) if Path.cwd().resolve() == root else str(path)


def make_builder():
    """The configured ``FFI`` builder for ``gridcore.backends.c._gridcore_c``."""
    omp = openmp_flags()
    flags = BASE_FLAGS + omp
    builder = FFI()
    builder.cdef(read_cdef())
    builder.set_source(
        "gridcore.backends.c._gridcore_c",
        '#include "gridcore.h"',
        sources=[_source_path(p) for p in SOURCES],
        include_dirs=[_source_path(CSRC)],
        depends=[_source_path(p) for p in DEPENDS],
        define_macros=[("GRC_BUILD_FLAGS", '"' + " ".join(flags) + '"')],
        extra_compile_args=flags,
        extra_link_args=omp,
        libraries=["m"],
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    # Stand-alone build into a temporary folder, e.g. to check the compiler setup.
    with tempfile.TemporaryDirectory(prefix="gridcore-build-") as tmp:
        print(ffibuilder.compile(tmpdir=tmp, verbose=True))
