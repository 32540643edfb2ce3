/* grc_noise.h - counter-based Gaussian noise (docs/math.md section 8, eq.
 * N1-N2): xi_t[i] of trial m as a pure function of (seed, trial0 + m,
 * step0 + t, i), the same bits as gridcore/model/noise.py and the Numba core.
 * Internal: included by gridcore.c and the kernels. */
#ifndef GRC_NOISE_H
#define GRC_NOISE_H

#include <stdint.h>

#include "grc_normal_table.h"

#define GRC__GOLDEN 0x9e3779b97f4a7c15ULL

static inline uint64_t grc__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* h_mt of eq. N1 for global trial mg and global step tg. */
static inline uint64_t grc__noise_key(uint64_t seed, int64_t mg, int64_t tg)
{
    const uint64_t h = grc__mix64(seed + GRC__GOLDEN * ((uint64_t)mg + 1));
    return grc__mix64(h + GRC__GOLDEN * ((uint64_t)tg + 1));
}

/* z(key, i) of unit i (eq. N2). D f is exact, so a fused multiply-add gives
 * the same z as separate operations. */
static inline double grc__noise_z(uint64_t key, int64_t i)
{
    const uint64_t r = grc__mix64(key + GRC__GOLDEN * ((uint64_t)i + 1));
    const uint64_t j = r >> (64 - GRC_NOISE_TABLE_BITS);
    const double f = (double)((r >> 32) & ((1ULL << GRC_NOISE_FRAC_BITS) - 1)) * 0x1p-20;
    return grc__normal_q[j] + grc__normal_d[j] * f;
}

#endif /* GRC_NOISE_H */
