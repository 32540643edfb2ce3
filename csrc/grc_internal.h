/*
 * grc_internal.h - what gridcore.c (driver) and grc_kernels.c (compute
 * kernels, one copy per instruction set) share. Not part of the public API.
 *
 * Padded layouts. The kernels work on rows of Np doubles, Np = N + Nout
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
 * grc__phi_<isa>, grc__dphi_<isa>), switching on grc__prob.phi outside their
 * loops; the readout's error and curvature in FN(readout_error) and
 * FN(readout_curvature), switching on grc__prob.readout once per (trial,
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

/* One call's problem: dimensions, read-only inputs, packed weights, outputs.
 * Built by the driver, read (never written) by the kernels. */
typedef struct grc__prob {
    int64_t N, Nin, Nout, M, T;
    int64_t Nc;           /* entries of a start code: 0 unless GRC_X0_ENCODED */
    int64_t Np;           /* padded row length (see above) */
    int64_t R;            /* rows of the S layout: N + Nin + 1 + Nc */
    int64_t R0;           /* rows summed trial by trial: N + Nin + 1 (the Wenc rows follow) */
    int64_t Ka;           /* columns of the GN product's left operand: 2N + Nin + 1 */
    int64_t block;        /* trials per block */
    grc_layout lay;       /* offsets of theta's blocks (driver only) */
    double alpha;         /* model.alpha */
    int phi;              /* model.nonlinearity, a GRC_PHI_* code */
    int readout;          /* model.readout, a GRC_READOUT_* code */
    double c_y;           /* ey = c_y (y - target) or c_y dy (xy); c_y (p - target) or
                             c_y (p dy - p (p.dy)) (place cells) (eq. B1, G4) */
    double c_u;           /* eu = c_u u (eq. B1) or c_u du (eq. G4) */
    double m_total;       /* M: per-trial gradients are M times the trial's share (eq. B7) */
    const double *inputs; /* (M, T, Nin) */
    const double *noise;  /* (M, T, N) or NULL */
    double noise_std;     /* counter-based noise (math.md section 8) if > 0 */
    uint64_t noise_seed;
    int64_t noise_trial0, noise_step0;
    const double *targets;/* (M, T, Nout) or NULL (forward only) */
    const double *x0;     /* (M, N) or NULL */
    const double *codes;  /* (M, Nc) or NULL: start codes c_m (GRC_X0_ENCODED) */
    const double *codes_sq; /* (M, Nc) or NULL: c_m squared (gradient with sq, GRC_X0_ENCODED) */
    const double *u_in;   /* (M, T, N): stored rates for the GN product */
    const double *y_in;   /* (M, T, Nout) or NULL: stored outputs (GN product, place cells) */
    const double *BF;     /* (N, Np): BF[j, i] = Wrec[i, j], BF[j, N+o] = Wout[o, j] */
    const double *BB;     /* (N+Nout, Np): alpha Wrec (rows < N), then Wout; cols >= N zero */
    const double *BG;     /* (Ka, Np): the GN operand, rows [du | u | I | 1] (see gridcore.c) */
    const double *WinT;   /* (Nin, Np): WinT[k, i] = Win[i, k] */
    const double *bias;   /* (Np,): b, zero-padded */
    const double *WencT;  /* (Nc, Np) or NULL: WencT[c, i] = Wenc[i, c]; x_0 = c_m @ WencT
                             (forward passes), dx_0 = c_m @ WencT with v's Wenc (GN product);
                             NULL: x_0 = 0 (or p->x0), dx_0 = 0 */
    const double *scale;  /* (R, Np): alpha or 1 per S entry, 0 where unused */
    const double *l2grad; /* (R, Np): gradient of lam_l2 R_L2 + lam_rec R_rec in the S layout */
    double *u_out;        /* (M, T, N) or NULL */
    double *y_out;        /* (M, T, Nout) or NULL */
    double *x_end;        /* (M, N) or NULL */
    int want_loss;        /* accumulate E and R_FR */
    int want_sq;          /* accumulate squared per-trial gradients */
} grc__prob;

/* One partition's scratch (carved from the workspace) and partial sums. */
typedef struct grc__part {
    double *x;            /* (block, Np): x_t, or dx_t in the GN product */
    double *z;            /* (block, Np): result of the per-step product */
    double *ut;           /* (block, Np): u_t of the block */
    double *acc;          /* (2 block): per-trial squared errors, then squared rates */
    double *a;            /* (block, Ka): the GN product's left operand */
    double *U;            /* (block, T, N): stored rates (gradient) */
    double *GX;           /* (block, T+1, Np): gx_t in cols < N, ey_{t-1} in cols [N, N+Nout) */
    double *db;           /* (block, Np): per-trial sums of gx_t (bias gradient) */
    double *dphi;         /* (Np,): phi'(x_t) of one trial's row (backward pass) */
    double *S;            /* (R, Np): partial gradient, S layout */
    double *SQ;           /* (R, Np): partial sum of squared per-trial gradients */
    double *G0;           /* (share, Np): gx_0 of the partition's trials (GRC_X0_ENCODED) */
    double *G0SQ;         /* (share, Np): (M gx_0)^2 of them (GRC_X0_ENCODED, sq only) */
    double E, RFR;        /* partial sums of the readout's errors and of squared rates */
} grc__part;

/* The kernels of one instruction set. Each runs one partition: trials
 * [m0, m0 + mb) of the problem, block by block. */
typedef struct grc__kernels {
    int isa;              /* GRC_ISA_* */
    int64_t vw;           /* doubles per vector */
    void (*forward)(const grc__prob *p, grc__part *s, int64_t m0, int64_t mb);
    void (*gradient)(const grc__prob *p, grc__part *s, int64_t m0, int64_t mb);
    void (*gn_product)(const grc__prob *p, grc__part *s, int64_t m0, int64_t mb);
} grc__kernels;

/* Kernel tables defined in grc_kernels.c; NULL entries were not compiled. */
const grc__kernels *grc__kernels_for(int isa);
int grc__cpu_supports(int isa);

/* ---- checks and packing shared by the entry points (gridcore.c, grc_step.c, grc_net.c) ---- */

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
void grc__set_noise(grc__prob *p, const grc_noise *z);

/* A caller's array of n doubles (p NULL or n 0: not given). */
typedef struct grc__span {
    const void *p;
    int64_t n;
} grc__span;

/* GRC_EOVERLAP if an output shares a byte with another output or with an
 * input; O(outputs x arrays) comparisons of addresses, never of contents. */
int grc__check_disjoint(const grc__span *out, int n_out, const grc__span *in, int n_in);

/* Pack the forward weights of theta into the padded layout of p (p->N,
 * p->Nin, p->Nout, p->Np, p->lay): BF (N, Np) = [Wrec' | Wout'] (Wout'
 * only if with_wout), WinT (Nin, Np) and bias (Np), pads zeroed. */
void grc__pack_forward(const grc__prob *p, const double *theta, double *BF, double *WinT, double *bias,
                       int with_wout);

/* WencT (Nc, Np): WencT[c, i] = Wenc[i, c] of the flat vector w (theta, or
 * v in the GN product), so that c_m @ WencT = Wenc c_m (x_0, or dx_0). */
void grc__pack_wenc(const grc__prob *p, const double *w, double *WencT);

#endif /* GRC_INTERNAL_H */
