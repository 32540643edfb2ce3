/*
 * grc_kernels.c - one copy of the compute kernels (grc_kernels.inc) per
 * instruction set and element type, and the run-time choice between them.
 *
 * Why run-time dispatch: a build with -march=native would only run on CPUs
 * like the builder's, so a wheel copied to an older machine would crash.
 * Instead the baseline copy is compiled for the build target and, with GCC
 * on x86-64, two more under `#pragma GCC target` (x86-64-v3: AVX2 + FMA;
 * x86-64-v4: AVX-512); a workspace picks the widest one the CPU reports.
 * Other compilers and architectures get the baseline copy only.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gridcore.h"
#include "grc_internal.h"
#include "grc_noise.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GRC_MULTI_ISA 1
#endif

/* The table of one instruction set (GRC_SUFFIX, GRC_ISA_NAME): its double
 * and float kernels, each included with GRC_F32 and GRC_VW set. The tile
 * shape (GRC_MR x GRC_NV vectors) is set by the register file, so it is the
 * same for both types: a float tile covers twice the columns. What depends on
 * the type beyond the vector width (the cache blocking of the weight-gradient
 * sums, the polynomial degree of exp) is chosen in grc_kernels.inc. */
#define GRC_KERNELS_BOTH_TYPES                                                    \
    static const grc__kernels GRC_CAT(grc__kernels_, GRC_SUFFIX) = {             \
        GRC_CAT(GRC_ISA_, GRC_ISA_NAME), &GRC_CAT(GRC_CAT(grc__kernels_, GRC_SUFFIX), _f64), \
        &GRC_CAT(GRC_CAT(grc__kernels_, GRC_SUFFIX), _f32)};

/* Baseline: 16-byte vectors cover SSE2 and NEON; 6x2 tiles use 12 of 16 registers. */
#define GRC_SUFFIX generic
#define GRC_ISA_NAME GENERIC
#define GRC_MR 6
#define GRC_NV 2
#define GRC_F32 0
#define GRC_VW 2
#include "grc_kernels.inc"
#undef GRC_F32
#undef GRC_VW
#define GRC_F32 1
#define GRC_VW 4
#include "grc_kernels.inc"
#undef GRC_F32
#undef GRC_VW
GRC_KERNELS_BOTH_TYPES
#undef GRC_SUFFIX
#undef GRC_ISA_NAME
#undef GRC_MR
#undef GRC_NV

#ifdef GRC_MULTI_ISA
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
/* 16 ymm registers: 6x2 tiles of 4 doubles or 8 floats (12 accumulators). */
#define GRC_SUFFIX avx2
#define GRC_ISA_NAME AVX2
#define GRC_MR 6
#define GRC_NV 2
#define GRC_F32 0
#define GRC_VW 4
#include "grc_kernels.inc"
#undef GRC_F32
#undef GRC_VW
#define GRC_F32 1
#define GRC_VW 8
#include "grc_kernels.inc"
#undef GRC_F32
#undef GRC_VW
GRC_KERNELS_BOTH_TYPES
#undef GRC_SUFFIX
#undef GRC_ISA_NAME
#undef GRC_MR
#undef GRC_NV
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,prefer-vector-width=512")
/* 32 zmm registers: 8x3 tiles of 8 doubles or 16 floats (24 accumulators). */
#define GRC_SUFFIX avx512
#define GRC_ISA_NAME AVX512
#define GRC_MR 8
#define GRC_NV 3
#define GRC_F32 0
#define GRC_VW 8
#include "grc_kernels.inc"
#undef GRC_F32
#undef GRC_VW
#define GRC_F32 1
#define GRC_VW 16
#include "grc_kernels.inc"
#undef GRC_F32
#undef GRC_VW
GRC_KERNELS_BOTH_TYPES
#undef GRC_SUFFIX
#undef GRC_ISA_NAME
#undef GRC_MR
#undef GRC_NV
#pragma GCC pop_options
#endif

const grc__kernels *grc__kernels_for(int isa)
{
    switch (isa) {
    case GRC_ISA_GENERIC: return &grc__kernels_generic;
#ifdef GRC_MULTI_ISA
    case GRC_ISA_AVX2: return &grc__kernels_avx2;
    case GRC_ISA_AVX512: return &grc__kernels_avx512;
#endif
    default: return NULL;
    }
}

int grc__cpu_supports(int isa)
{
    switch (isa) {
    case GRC_ISA_GENERIC: return 1;
#ifdef GRC_MULTI_ISA
    /* libgcc's checks include the OS saving the wide registers (XGETBV). */
    case GRC_ISA_AVX2: __builtin_cpu_init(); return __builtin_cpu_supports("x86-64-v3") != 0;
    case GRC_ISA_AVX512: __builtin_cpu_init(); return __builtin_cpu_supports("x86-64-v4") != 0;
#endif
    default: return 0;
    }
}
