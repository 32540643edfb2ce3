/*
 * grc_step.c - the stepping API of gridcore.h (grc_stepper, grc_step): a
 * trained network advanced one Euler step at a time for B agents whose
 * states the caller owns, as agent simulators call it (often B = 1).
 *
 * Everything that costs more than a few pointer checks is done once, in
 * grc_stepper_create: the argument checks of the kernels, the finiteness of
 * theta, the packing of the weights and all scratch memory. A call checks
 * its own arrays (inputs and x finite: O(B (Nin + N))) and runs the forward
 * pass's kernel for one step (grc_step.inc). Each agent's numbers depend
 * only on its own row (every product sums over k in one fixed order), so
 * neither the batch nor the thread count changes them.
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gridcore.h"
#include "grc_internal.h"
#include "grc_noise.h"

/* The kernels are compiled here once more per instruction set, as in
 * grc_kernels.c, so that the step can call their static helpers; the
 * compiler drops every kernel the step does not use (the gradient, the GN
 * product and their table). */
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#pragma GCC diagnostic ignored "-Wunused-function"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GRC_MULTI_ISA 1
#endif

#define GRC_SUFFIX generic
#define GRC_ISA_NAME GENERIC
#define GRC_F32 0
#define GRC_VW 2
#define GRC_MR 6
#define GRC_NV 2
#include "grc_kernels.inc"
#include "grc_step.inc"
#undef GRC_SUFFIX
#undef GRC_ISA_NAME
#undef GRC_VW
#undef GRC_F32
#undef GRC_MR
#undef GRC_NV

#ifdef GRC_MULTI_ISA
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define GRC_SUFFIX avx2
#define GRC_ISA_NAME AVX2
#define GRC_F32 0
#define GRC_VW 4
#define GRC_MR 6
#define GRC_NV 2
#include "grc_kernels.inc"
#include "grc_step.inc"
#undef GRC_SUFFIX
#undef GRC_ISA_NAME
#undef GRC_VW
#undef GRC_F32
#undef GRC_MR
#undef GRC_NV
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,prefer-vector-width=512")
#define GRC_SUFFIX avx512
#define GRC_ISA_NAME AVX512
#define GRC_F32 0
#define GRC_VW 8
#define GRC_MR 8
#define GRC_NV 3
#include "grc_kernels.inc"
#include "grc_step.inc"
#undef GRC_SUFFIX
#undef GRC_ISA_NAME
#undef GRC_VW
#undef GRC_F32
#undef GRC_MR
#undef GRC_NV
#pragma GCC pop_options
#endif

typedef void (*grc__step_fn)(const grc__prob_f64 *, grc__part_f64 *, const double *, int64_t,
                             double *, double *, double *, int64_t, int64_t);

static grc__step_fn step_fn_for(int isa)
{
    switch (isa) {
#ifdef GRC_MULTI_ISA
    case GRC_ISA_AVX2: return grc__step_run_avx2_f64;
    case GRC_ISA_AVX512: return grc__step_run_avx512_f64;
#endif
    default: return grc__step_run_generic_f64;
    }
}

/* grc_stepper.magic of a live stepper ("grc_step"); see GRC_EWORKSPACE. */
#define GRC__STEP_LIVE UINT64_C(0x6772635f73746570)

struct grc_stepper {
    uint64_t magic;             /* first, as in grc_workspace */
    grc__step_fn run;           /* FN(step_run) of the chosen instruction set */
    int64_t threads;            /* partitions at most */
    int64_t capacity;           /* agents per call at most */
    grc__prob_f64 p;            /* dimensions and packed weights; a call copies it */
    int64_t nyp;                /* Nout rounded up to the vector width */
    double *WoutT;              /* (N, nyp): WoutT[j, o] = Wout[o, j] */
    grc__part_f64 *parts;       /* per partition: x, z, ut (block, Np), acc (2 block) */
    double *ybuf;               /* per partition: (block, nyp) */
    void *mem;
};

/* The next 64-byte-aligned piece of n doubles of *at (or only counted when *at is NULL). */
static double *take(char **at, size_t *used, int64_t n)
{
    double *ptr = *at ? (double *)(*at + *used) : NULL;
    *used += ((size_t)n * sizeof(double) + 63) & ~(size_t)63;
    return ptr;
}

/* Scratch and packed weights of a stepper with nparts partitions (counted when base is NULL). */
static size_t layout(grc_stepper *st, char *base, int64_t nparts)
{
    grc__prob_f64 *p = &st->p;
    size_t used = ((size_t)nparts * sizeof(grc__part_f64) + 63) & ~(size_t)63;
    grc__part_f64 *parts = (grc__part_f64 *)base;
    double *BF = take(&base, &used, p->N * p->Np);
    double *WinT = take(&base, &used, p->Nin * p->Np);
    double *bias = take(&base, &used, p->Np);
    double *WencT = take(&base, &used, p->Nc * p->Np);
    double *WoutT = take(&base, &used, p->N * st->nyp);
    double *ybuf = take(&base, &used, nparts * p->block * st->nyp);
    for (int64_t q = 0; q < nparts; q++) {
        grc__part_f64 s = {0};
        s.x = take(&base, &used, p->block * p->Np);
        s.z = take(&base, &used, p->block * p->Np);
        s.ut = take(&base, &used, p->block * p->Np);
        s.acc = take(&base, &used, 2 * p->block);
        if (base)
            parts[q] = s;
    }
    if (base) {
        p->BF = BF;
        p->WinT = WinT;
        p->bias = bias;
        p->WencT = p->Nc ? WencT : NULL;
        st->WoutT = WoutT;
        st->parts = parts;
        st->ybuf = ybuf;
    }
    return used;
}

/* The weights in the kernels' padded layout, as the forward pass packs them
 * (grc__pack_forward, grc__pack_wenc), except that BF holds Wrec' alone: the
 * step reads out the new state through WoutT instead. */
static void pack(grc_stepper *st, const double *theta)
{
    grc__prob_f64 *p = &st->p;
    const double *Wout = theta + p->lay.off_wout;
    grc__pack_forward(p, theta, (double *)p->BF, (double *)p->WinT, (double *)p->bias, 0);
    if (p->Nc)
        grc__pack_wenc(p, theta, (double *)p->WencT);
    for (int64_t i = 0; i < p->N; i++)
        for (int64_t o = 0; o < p->Nout; o++)
            st->WoutT[i * st->nyp + o] = Wout[o * p->N + i];
}

int grc_stepper_create(grc_shape shape, grc_model model, const double *theta, int threads, int isa,
                       grc_stepper **out)
{
    if (!out)
        return GRC_ENULL;
    *out = NULL;
    if (!theta)
        return GRC_ENULL;
    /* threads and isa are checked and resolved (0, GRC_ISA_AUTO) as for a
     * workspace; shape and model as for the kernels. */
    grc_workspace *ws = NULL;
    grc_layout lay;
    int rc = grc_workspace_create(threads, isa, &ws);
    if (rc)
        return rc;
    threads = grc_workspace_threads(ws);
    isa = grc_workspace_isa(ws);
    grc_workspace_destroy(ws);
    if ((rc = grc_param_layout(shape, model, &lay)) || (rc = grc__check_finite(theta, lay.size)))
        return rc;
    grc_stepper *st = calloc(1, sizeof *st);
    if (!st)
        return GRC_ENOMEM;
    const int64_t vw = grc__kernels_for(isa)->f64->vw;
    grc__prob_f64 *p = &st->p;
    p->lay = lay;
    p->N = shape.n_units;
    p->Nin = shape.n_in;
    p->Nout = shape.n_out;
    p->Nc = shape.n_code;
    p->Np = (p->N + vw - 1) / vw * vw;
    p->block = shape.n_trials < GRC_BLOCK_TRIALS ? shape.n_trials : GRC_BLOCK_TRIALS;
    p->alpha = model.alpha;
    p->phi = model.nonlinearity;
    p->readout = model.readout;
    st->nyp = (p->Nout + vw - 1) / vw * vw;
    st->run = step_fn_for(isa);
    st->capacity = shape.n_trials;
    const int64_t blocks = (shape.n_trials + p->block - 1) / p->block;
    st->threads = threads < blocks ? threads : blocks;
    const size_t bytes = layout(st, NULL, st->threads);
    if (posix_memalign(&st->mem, 64, bytes) != 0) {
        free(st);
        return GRC_ENOMEM;
    }
    memset(st->mem, 0, bytes);                 /* the pads stay 0 */
    layout(st, st->mem, st->threads);
    pack(st, theta);
    st->magic = GRC__STEP_LIVE;
    *out = st;
    return GRC_OK;
}

void grc_stepper_destroy(grc_stepper *st)
{
    if (st && grc__is_live(st, GRC__STEP_LIVE)) {
        *(volatile uint64_t *)&st->magic = 0;
        free(st->mem);
        free(st);
    }
}

/* Run a call prepared in p (a copy of st->p) over the partitions. */
static int run(const grc_stepper *st, grc__prob_f64 *p, int64_t n, double *u, double *y)
{
    const int64_t blocks = (n + p->block - 1) / p->block;
    const int64_t nparts = st->threads < blocks ? st->threads : blocks;
    p->M = n;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)nparts) schedule(static, 1) if (nparts > 1)
#endif
    for (int64_t q = 0; q < nparts; q++) {
        const int64_t m0 = q * n / nparts, m1 = (q + 1) * n / nparts;
        st->run(p, &st->parts[q], st->WoutT, st->nyp, st->ybuf + q * p->block * st->nyp, u, y, m0,
                m1 - m0);
    }
    return GRC_OK;
}

/* GRC_EWORKSPACE or GRC_ESHAPE unless st is live and 1 <= n <= its capacity
 * (so n times a row length cannot overflow). */
static int check_call(const grc_stepper *st, int64_t n)
{
    if (!grc__is_live(st, GRC__STEP_LIVE))
        return GRC_EWORKSPACE;
    return n >= 1 && n <= st->capacity ? GRC_OK : GRC_ESHAPE;
}

int grc_stepper_start(grc_stepper *st, int64_t n_agents, const double *codes, double *x, double *u,
                      double *y)
{
    if (!st || !x || !u || !y)
        return GRC_ENULL;
    int rc;
    if ((rc = check_call(st, n_agents)))
        return rc;
    if (st->p.Nc && !codes)
        return GRC_ENULL;
    const int64_t B = n_agents, N = st->p.N, Nc = st->p.Nc;
    const grc__span out[3] = {GRC__SPAN(x, B * N), GRC__SPAN(u, B * N), GRC__SPAN(y, B * st->p.Nout)},
                    in[1] = {GRC__SPAN(codes, B * Nc)};
    if ((rc = grc__check_disjoint(out, 3, in, 1)) || (rc = grc__check_finite(codes, B * Nc)))
        return rc;
    grc__prob_f64 p = st->p;                   /* T = 0: x_0 only (eq. F0) */
    p.codes = st->p.Nc ? codes : NULL;
    p.x_end = x;
    return run(st, &p, n_agents, u, y);
}

int grc_stepper_outputs(grc_stepper *st, int64_t n_agents, const double *x, double *u, double *y)
{
    if (!st || !x || !u || !y)
        return GRC_ENULL;
    int rc;
    if ((rc = check_call(st, n_agents)))
        return rc;
    const int64_t B = n_agents, N = st->p.N;
    const grc__span out[2] = {GRC__SPAN(u, B * N), GRC__SPAN(y, B * st->p.Nout)},
                    in[1] = {GRC__SPAN(x, B * N)};
    if ((rc = grc__check_disjoint(out, 2, in, 1)) || (rc = grc__check_finite(x, B * N)))
        return rc;
    grc__prob_f64 p = st->p;                   /* T = 0 from x */
    p.x0 = x;
    return run(st, &p, n_agents, u, y);
}

int grc_step(grc_stepper *st, int64_t n_agents, const double *inputs, grc_noise noise, double *x,
             double *u, double *y)
{
    if (!st || !inputs || !x || !u || !y)
        return GRC_ENULL;
    int rc;
    if ((rc = check_call(st, n_agents)) || (rc = grc__check_noise(&noise, n_agents, 1)))
        return rc;
    const int64_t B = n_agents, N = st->p.N;
    const grc__span out[3] = {GRC__SPAN(x, B * N), GRC__SPAN(u, B * N),
                              GRC__SPAN(y, B * st->p.Nout)},   /* x: in and out */
        in[2] = {GRC__SPAN(inputs, B * st->p.Nin), GRC__SPAN(noise.xi, B * N)};
    if ((rc = grc__check_disjoint(out, 3, in, 2)) || (rc = grc__check_finite(inputs, B * st->p.Nin))
        || (rc = grc__check_finite(x, B * N)))
        return rc;
    grc__prob_f64 p = st->p;                   /* T = 1 from x, back into x (eq. F3) */
    p.T = 1;
    p.inputs = inputs;
    grc__set_noise(&p, &noise);
    p.x0 = x;
    p.x_end = x;
    return run(st, &p, n_agents, u, y);
}
