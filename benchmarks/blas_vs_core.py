"""Which matrix product should the C core use per time step: its own kernel or BLAS?

Times C (m x 104) = A (m x 100) @ B (100 x 104), the per-step shape at N=100
(m = trials per block: the core uses 32), on one thread, for the core's
kernel in each instruction set this CPU supports and for SciPy's BLAS dgemm
called through the pointer ``scipy.linalg.cython_blas`` exports (what the core
would be handed from Python). Run::

    OPENBLAS_CORETYPE=Haswell python benchmarks/blas_vs_core.py

Needs cc, scipy and threadpoolctl (to pin BLAS to one thread).
"""

import ctypes
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
from scipy.linalg import cython_blas
from threadpoolctl import threadpool_limits

from gridcore.backends.c.ccore import lib as core

HERE = Path(__file__).resolve().parent
ISAS = {"generic": 1, "avx2": 2, "avx512": 3}


def build(tmp):
    lib = Path(tmp, "harness.so")
    subprocess.run(["cc", "-O3", "-std=c99", "-ffp-contract=fast", "-fPIC", "-shared",
                    f"-I{HERE.parent / 'csrc'}", str(HERE / "gemm_harness.c"), "-o", str(lib)],
                   check=True)
    return ctypes.CDLL(str(lib))


def dgemm_pointer():
    capsule = cython_blas.__pyx_capi__["dgemm"]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return ctypes.c_void_p(get(capsule, name(capsule)))


def best_gflops(run, m, k, n, reps, repeats=5):
    return max(2.0 * m * k * n * reps / run() / 1e9 for _ in range(repeats))


def main():
    k, n = 100, 104
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}  python {sys.version.split()[0]}"
          f"  {sysconfig.get_platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(tmp)
        lib.harness_core.restype = lib.harness_blas.restype = ctypes.c_double
        ptr = ctypes.POINTER(ctypes.c_double)
        blas = dgemm_pointer()
        with threadpool_limits(limits=1, user_api="blas"):
            for m in (32, 250, 500):
                rng = np.random.default_rng(m)
                a, b, c = rng.standard_normal((m, k)), rng.standard_normal((k, n)), np.empty((m, n))
                args = (m, k, n, a.ctypes.data_as(ptr), b.ctypes.data_as(ptr), c.ctypes.data_as(ptr))
                reps = max(1, int(2e9 / (2 * m * k * n)))
                row = []
                for isa, code in ISAS.items():
                    if not core.grc_isa_available(code):
                        continue
                    gflops = best_gflops(lambda: lib.harness_core(code, *args, reps), m, k, n, reps)
                    row.append(f"core/{isa} {gflops:6.1f}")
                    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)
                gflops = best_gflops(lambda: lib.harness_blas(blas, *args, reps), m, k, n, reps)
                row.append(f"scipy dgemm {gflops:6.1f}")
                np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)
                print(f"({m:3d}x{k})@({k}x{n}) GFLOP/s, 1 thread: " + "  ".join(row))


if __name__ == "__main__":
    main()
