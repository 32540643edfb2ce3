"""The machine's limits, measured in the same run as the kernels.

- NumPy's own (M x N) @ (N x N) product, the per-step shape of every kernel,
  for each N of the sweep (M = 500), on 1 and 2 BLAS threads: the yardstick
  for flops. The report divides each kernel's GFLOP/s by it at the same N
  and thread count.
- A copy of a 256 MB array (one thread): the yardstick for memory
  bandwidth, counted as STREAM does (bytes read + bytes written).
"""

import math

import numpy as np
import pytest
from harness import PAPER, Size, blas_limit, quick, record, time_call

from gridcore.backends import get_backend

SIZES = [Size(n, PAPER.m, 1) for n in (50, 100, 200, 400)]
GFLOP_PER_ROUND = 5.0      # about 50-100 ms per round: repeat the product this many flops' worth
COPY_BYTES = 256 * 2 ** 20


@pytest.mark.parametrize("threads", [1, 2])
def test_matmul(benchmark, request, size, threads):
    m, n = size.m, size.n
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, n)), rng.standard_normal((n, n))
    out = np.empty((m, n))
    reps = 10 if quick(request.config) else math.ceil(GFLOP_PER_ROUND * 1e9 / (2.0 * m * n * n))

    def run():
        for _ in range(reps):
            np.matmul(a, b, out=out)
        return out

    limit, blas = blas_limit(get_backend("numpy", threads))
    record(benchmark, f"matmul ({m}x{n})@({n}x{n})", kernel="matmul", backend="numpy",
           threads=threads, blas_threads=blas, n=n, m=m, t=None,
           gflop=2.0 * m * n * n * reps / 1e9)
    with limit:
        result = time_call(benchmark, run, rounds=15, warmup=2)
    np.testing.assert_allclose(result, a @ b, rtol=1e-12, atol=1e-12)


def test_copy_bandwidth(benchmark, request):
    n_bytes = 2 ** 20 if quick(request.config) else COPY_BYTES
    src = np.random.default_rng(0).standard_normal(n_bytes // 8)
    dst = np.zeros_like(src)                  # touched: no page faults in the timed copy
    record(benchmark, f"copy {n_bytes // 2 ** 20} MB", kernel="copy", backend="numpy", threads=1,
           n=None, m=None, t=None, gbyte=2.0 * n_bytes / 1e9)
    time_call(benchmark, lambda: np.copyto(dst, src), rounds=10, warmup=1)
    np.testing.assert_array_equal(dst, src)
