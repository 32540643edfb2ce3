/*
 * gemm_harness.c - times the C core's own matrix kernel against a BLAS dgemm
 * handed in as a function pointer, on the per-step shape of the kernels:
 * C (m x 104) = A (m x 100) @ B (100 x 104), single thread.
 * Built and driven by benchmarks/blas_vs_core.py; not part of the library.
 */
#define _POSIX_C_SOURCE 200112L
#include <time.h>

#include "../csrc/grc_kernels.c" /* the static kernels, in this translation unit */

typedef void (*grc_dgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                             const double *, const double *, const int *, const double *,
                             const int *, const double *, double *, const int *);

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* isa: GRC_ISA_* code. Returns seconds for `reps` products (row-major). */
double harness_core(int isa, int m, int k, int n, const double *A, const double *B, double *C,
                    int reps)
{
    const grc__kernels *kern = grc__kernels_for(isa);
    void (*gemm)(int64_t, int64_t, int64_t, const double *, ptrdiff_t, ptrdiff_t,
                 const double *, ptrdiff_t, double *, ptrdiff_t) =
        isa == GRC_ISA_GENERIC ? grc__gemm_generic :
#ifdef GRC_MULTI_ISA
        isa == GRC_ISA_AVX2 ? grc__gemm_avx2 : grc__gemm_avx512;
#else
        grc__gemm_generic;
#endif
    const double t0 = seconds();
    for (int r = 0; r < reps; r++)
        gemm(m, n / kern->vw, k, A, k, 1, B, n, C, n);
    return seconds() - t0;
}

/* The same product through a Fortran dgemm: column-major C' = B' A'. */
double harness_blas(void *fn, int m, int k, int n, const double *A, const double *B, double *C,
                    int reps)
{
    const grc_dgemm_fn dgemm = (grc_dgemm_fn)fn;
    const double one = 1.0, zero = 0.0;
    const double t0 = seconds();
    for (int r = 0; r < reps; r++)
        dgemm("N", "N", &n, &m, &k, &one, B, &n, A, &k, &zero, C, &n);
    return seconds() - t0;
}
