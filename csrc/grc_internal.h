/*
 * grc_internal.h - what gridcore.c (driver) and grc_kernels.c (compute
 * kernels, one copy per instruction set and element type) share. Not part
 * of the public API.
 *
 * Element types. Everything below exists for double (suffix f64, the
 * grc_* entry points) and for float (f32, the grc_*_f32 entry points): the
 * structs in grc_types.inc, the kernels in grc_kernels.inc, the packing and
 * the loop over partitions in grc_driver.inc, each written once and included
 * per type (the TYPE/CAT pattern of PyWavelets).
 *
 * Padded layouts. The kernels work on rows of Np elements, Np = N + Nout
 * rounded up to the vector width, so every vector load of a padded row stays
 * inside it. Columns [0, N) hold unit values; columns [N, N+Nout) carry the
 * outputs through the same matrix products (y_t comes out of the forward
 * product, dWout out of the weight-gradient product); the rest are zero.
 *
 * The "S layout" of a gradient is an (R, Np) array, R = N + Nin + 1 + Nc:
 *   S[j, i]       = sum_t u_t[j]  gx_{t+1}[i]   (j, i < N)  -> dWrec[i, j] / alpha
 *   S[N + k, i]   = sum_t I_t[k]  gx_{t+1}[i]   (k < Nin)   -> dWin[i, k] / alpha
 *   S[N + Nin, i] = sum_t gx_{t+1}[i]                       -> db[i] / alpha
 *   S[j, N + o]   = sum_t u_t[j]  ey_t[o]       (j < N)     -> dWout[o, j]
 *   S[R0 + c, i]  = c_m[c] gx_0[i]              (c < Nc)    -> dWenc[i, c]
 * (math.md eq. B6 and P5), R0 = N + Nin + 1; the last rows, for the encoded
 * initial state x_0 = Wenc c_m of eq. F0, exist only when Nc > 0. Other
 * entries are by-products and are never read. Rows [0, R0) are summed over
 * groups of a block's trials (FN(add_trials); trial by trial with sq); the
 * Wenc rows, rank one per trial, by two products over a partition's trials
 * at its end (FN(wenc_sums)), for the gradient and for the per-trial squares
 * (eq. B7) alike.
 *
 * Where the model lives: the parameter layout is coded once, in gridcore.c
 * (layout_of, exported as grc_param_layout), and reaches the kernels only
 * through the packed weights; the nonlinearity phi and its derivative are
 * coded once per instruction set, in grc_kernels.inc (FN(phi), FN(dphi):
 * grc__phi_<isa>_<type>, ...), switching on GRC_PROB.phi outside their
 * loops; the readout's error and curvature in FN(readout_error) and
 * FN(readout_curvature), switching on GRC_PROB.readout once per (trial,
 * step); x_0 (GRC_X0_ZERO, GRC_X0_ENCODED) is set in FN(forward_block) and
 * its tangent dx_0 in FN(gn_product).
 */
#ifndef GRC_INTERNAL_H
#define GRC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gridcore.h"

/* Trials a partition processes at a time: enough rows for the register
 * tiles to reuse each panel of the weights from L1, few enough that the
 * stored states of a block stay small next to the whole batch. */
#define GRC_BLOCK_TRIALS 32
/* Cap on one partition's per-block state storage, so long trials shrink the
 * block instead of the memory growing with T (never below one trial). */
#define GRC_BLOCK_BYTES ((size_t)64 << 20)
/* L2 bytes the weight-gradient sums (FN(add_trials), gradient without sq
 * and GN product) plan for: they sum groups of trials in the register tiles,
 * so that a partition's S is passed once per group instead of once per
 * trial, in row groups whose left operand stays in this much cache. */
#ifndef GRC_SUM_L2
#define GRC_SUM_L2 ((int64_t)512 << 10)
#endif

#define GRC_CAT_(a, b) a##b
#define GRC_CAT(a, b) GRC_CAT_(a, b)

/* The structs of one element type (grc_types.inc), named by its suffix GRC_RS. */
#define GRC_PROB GRC_CAT(grc__prob_, GRC_RS)
#define GRC_PART GRC_CAT(grc__part_, GRC_RS)
#define GRC_KERN GRC_CAT(grc__kern_, GRC_RS)

#define GRC_REAL double
#define GRC_RS f64
#include "grc_types.inc"
#undef GRC_REAL
#undef GRC_RS
#define GRC_REAL float
#define GRC_RS f32
#include "grc_types.inc"
#undef GRC_REAL
#undef GRC_RS

/* The kernels of one instruction set, for each element type. */
typedef struct grc__kernels {
    int isa;                    /* GRC_ISA_* */
    const grc__kern_f64 *f64;
    const grc__kern_f32 *f32;
} grc__kernels;

/* Kernel tables defined in grc_kernels.c; NULL entries were not compiled. */
const grc__kernels *grc__kernels_for(int isa);
int grc__cpu_supports(int isa);

/* ---- checks and packing shared by the entry points (gridcore.c, grc_step.c, grc_net.c) ----
 * grc__check_finite, grc__check_noise, grc__set_noise, grc__pack_forward and
 * grc__pack_wenc are the double copies of grc_driver.inc's helpers. */

/* 1 if the first 8 bytes of obj (a workspace or stepper) equal `magic`. The
 * read may touch a destroyed object's freed block on purpose (see
 * GRC_EWORKSPACE), so AddressSanitizer is told not to report it. */
int grc__is_live(const void *obj, uint64_t magic);

/* GRC_ENONFINITE unless a[0..n) is finite (a NULL: not given, GRC_OK). */
int grc__check_finite(const double *a, int64_t n);

/* GRC_ENOISE unless the noise is valid (gridcore.h, grc_noise) for M trials
 * (agents) of T steps: its global trial and step indices fit in int64. */
int grc__check_noise(const grc_noise *z, int64_t M, int64_t T);

/* Copy a checked noise into the problem. */
void grc__set_noise(grc__prob_f64 *p, const grc_noise *z);

/* A caller's array: its address and length in bytes (p NULL or 0 bytes: not
 * given); GRC__SPAN(ptr, n) is the span of n elements of ptr's type. */
typedef struct grc__span {
    const void *p;
    int64_t bytes;
} grc__span;
#define GRC__SPAN(ptr, n) ((grc__span){(ptr), (int64_t)(n) * (int64_t)sizeof(*(ptr))})

/* GRC_EOVERLAP if an output shares a byte with another output or with an
 * input; O(outputs x arrays) comparisons of addresses, never of contents. */
int grc__check_disjoint(const grc__span *out, int n_out, const grc__span *in, int n_in);

/* Pack the forward weights of theta into the padded layout of p (p->N,
 * p->Nin, p->Nout, p->Np, p->lay): BF (N, Np) = [Wrec' | Wout'] (Wout'
 * only if with_wout), WinT (Nin, Np) and bias (Np), pads zeroed. */
void grc__pack_forward(const grc__prob_f64 *p, const double *theta, double *BF, double *WinT, double *bias,
                       int with_wout);

/* WencT (Nc, Np): WencT[c, i] = Wenc[i, c] of the flat vector w (theta, or
 * v in the GN product), so that c_m @ WencT = Wenc c_m (x_0, or dx_0). */
void grc__pack_wenc(const grc__prob_f64 *p, const double *w, double *WencT);

#endif /* GRC_INTERNAL_H */
