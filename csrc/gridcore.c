/*
 * gridcore.c - the public entry points: argument checks, the workspace,
 * packing of the weights into the kernels' padded layouts, the OpenMP loop
 * over trial partitions and the fixed-order reduction of their sums.
 * The arithmetic per trial lives in grc_kernels.inc.
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gridcore.h"
#include "grc_internal.h"
#include "grc_noise.h"

#ifndef GRC_BUILD_FLAGS
#define GRC_BUILD_FLAGS "unknown"
#endif

#define GRC__STR_(x) #x
#define GRC__STR(x) GRC__STR_(x)

/* grc_workspace.magic of a live workspace ("grc_live"); see GRC_EWORKSPACE. */
#define GRC__WS_LIVE UINT64_C(0x6772635f6c697665)

struct grc_workspace {
    uint64_t magic;             /* GRC__WS_LIVE from create to destroy. First in the
                                   struct: allocators reuse a freed block's first bytes
                                   for their lists, which also clears it. */
    int threads;                /* partitions per call, 1..GRC_MAX_THREADS */
    const grc__kernels *kern;   /* kernels of the chosen instruction set */
    void *mem;                  /* scratch, 64-byte aligned, zeroed when allocated */
    size_t bytes;               /* size of mem */
};

enum grc__op { OP_FORWARD, OP_LOSS, OP_GRADIENT, OP_GN };

const char *grc_strerror(int status)
{
    switch (status) {
    case GRC_OK: return "success";
    case GRC_ENOMEM: return "out of memory: the workspace's scratch could not be allocated";
    case GRC_ESHAPE: return "invalid shape: every dimension must be in 1.." GRC__STR(GRC_MAX_DIM)
        ", no array may pass " GRC__STR(GRC_MAX_ELEMS) " doubles (GRC_MAX_ELEMS), the "
        "readout fixes n_out (2 for GRC_READOUT_XY), and n_code must be >= 1 under "
        "GRC_X0_ENCODED and 0 otherwise";
    case GRC_ENULL: return "a required pointer argument is NULL";
    case GRC_EALPHA: return "model.alpha (dt/tau) must be in (0, 1]";
    case GRC_EREG: return "reg.lam_l2, reg.lam_fr, reg.lam_rec and mu must be finite and >= 0";
    case GRC_ENOISE: return "noise.std must be finite and >= 0, not both noise.xi and noise.std > 0 "
        "may be given, and noise.trial0 and noise.step0 must be >= 0 with noise.trial0 + n_trials and "
        "noise.step0 + n_steps at most INT64_MAX";
    case GRC_ENONFINITE: return "theta, inputs, targets, codes, x0 or v holds NaN or an infinity";
    case GRC_EISA: return "instruction set unknown, not compiled in, or not supported by this CPU";
    case GRC_ETHREADS: return "threads must be in 0.." GRC__STR(GRC_MAX_THREADS)
        " (GRC_MAX_THREADS; 0 = all available)";
    case GRC_EMODEL: return "unknown model code: model.nonlinearity must be a GRC_PHI_* code "
        "(0 = tanh, 1 = relu), model.readout a GRC_READOUT_* code (0 = xy, 1 = place cells) and "
        "model.initial_state a GRC_X0_* code (0 = zero, 1 = encoded)";
    case GRC_EWORKSPACE: return "the workspace or stepper is not live: it was destroyed or did not "
        "come from grc_workspace_create or grc_stepper_create (detection is best effort: never use "
        "a destroyed one)";
    case GRC_EFORMAT: return "not a gridcore network file of a known format version: wrong magic, "
        "version or header size, truncated or trailing bytes, or sizes and codes that do not fit "
        "each other";
    case GRC_EIO: return "the network file could not be opened or read";
    case GRC_EOVERLAP: return "an output array overlaps another output or an input (only grc_forward's "
        "x0 and x_end may be the same array)";
    default: return "unknown gridcore status code";
    }
}

int grc_abi_version(void)
{
    return GRC_ABI_VERSION;
}

int grc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int grc_max_threads(void)
{
#ifdef _OPENMP
    const int n = omp_get_max_threads();
    return n < GRC_MAX_THREADS ? n : GRC_MAX_THREADS;
#else
    return 1;
#endif
}

int grc_isa_available(int isa)
{
    return isa != GRC_ISA_AUTO && grc__kernels_for(isa) != NULL && grc__cpu_supports(isa);
}

const char *grc_isa_name(int isa)
{
    switch (isa) {
    case GRC_ISA_AUTO: return "auto";
    case GRC_ISA_GENERIC: return "generic";
    case GRC_ISA_AVX2: return "avx2";
    case GRC_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

const char *grc_build_flags(void)
{
    return GRC_BUILD_FLAGS;
}

int grc_workspace_create(int threads, int isa, grc_workspace **out)
{
    if (!out)
        return GRC_ENULL;
    *out = NULL;
    if (threads < 0 || threads > GRC_MAX_THREADS)
        return GRC_ETHREADS;
    if (isa == GRC_ISA_AUTO) {
        isa = GRC_ISA_AVX512;
        while (isa > GRC_ISA_GENERIC && !grc_isa_available(isa))
            isa--;
    } else if (!grc_isa_available(isa)) {
        return GRC_EISA;
    }
    grc_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return GRC_ENOMEM;
    ws->threads = threads ? threads : grc_max_threads();
    ws->kern = grc__kernels_for(isa);
    ws->magic = GRC__WS_LIVE;
    *out = ws;
    return GRC_OK;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize_address))
#endif
int grc__is_live(const void *obj, uint64_t magic)
{
    return *(const uint64_t *)obj == magic;
}

/* GRC_OK if ws (not NULL) is live, else GRC_EWORKSPACE (best effort, see gridcore.h). */
static int check_ws(const grc_workspace *ws)
{
    return grc__is_live(ws, GRC__WS_LIVE) ? GRC_OK : GRC_EWORKSPACE;
}

void grc_workspace_destroy(grc_workspace *ws)
{
    if (ws && check_ws(ws) == GRC_OK) {
        /* volatile: a store just before free() is otherwise removed as dead */
        *(volatile uint64_t *)&ws->magic = 0;
        free(ws->mem);
        free(ws);
    }
}

int grc_workspace_threads(const grc_workspace *ws)
{
    return !ws ? GRC_ENULL : check_ws(ws) ? GRC_EWORKSPACE : ws->threads;
}

int grc_workspace_isa(const grc_workspace *ws)
{
    return !ws ? GRC_ENULL : check_ws(ws) ? GRC_EWORKSPACE : ws->kern->isa;
}

size_t grc_workspace_bytes(const grc_workspace *ws)
{
    return !ws || check_ws(ws) ? 0 : ws->bytes;
}

/* ---- argument checks ---------------------------------------------------- */

/* a * b for a, b >= 0, or -1 if the product would pass GRC_MAX_ELEMS. */
static int64_t mul_capped(int64_t a, int64_t b)
{
    const int64_t cap = (int64_t)GRC_MAX_ELEMS;
    return (a && b > cap / a) ? -1 : a * b;
}

/* GRC_EALPHA or GRC_EMODEL unless the model is valid. Its codes are checked
 * here only: the kernels (grc_kernels.inc) treat any other code as the first. */
static int check_model(const grc_model *m)
{
    if (!(m->alpha > 0.0 && m->alpha <= 1.0))                   /* NaN fails */
        return GRC_EALPHA;
    if ((m->nonlinearity != GRC_PHI_TANH && m->nonlinearity != GRC_PHI_RELU)
        || (m->readout != GRC_READOUT_XY && m->readout != GRC_READOUT_PLACE_CELLS)
        || (m->initial_state != GRC_X0_ZERO && m->initial_state != GRC_X0_ENCODED))
        return GRC_EMODEL;
    return GRC_OK;
}

/* GRC_ESHAPE unless every dimension is in [1, GRC_MAX_DIM] (n_code: in it
 * under GRC_X0_ENCODED, 0 otherwise), every array a call touches holds at
 * most GRC_MAX_ELEMS doubles, and Nout fits the (checked) model's readout.
 * No step overflows, for any int64 values. */
static int check_shape(const grc_shape *s, const grc_model *m)
{
    const int64_t dims[5] = {s->n_units, s->n_in, s->n_out, s->n_trials, s->n_steps};
    for (int i = 0; i < 5; i++)
        if (dims[i] < 1 || dims[i] > GRC_MAX_DIM)
            return GRC_ESHAPE;
    if (m->initial_state == GRC_X0_ENCODED ? (s->n_code < 1 || s->n_code > GRC_MAX_DIM)
                                           : s->n_code != 0)
        return GRC_ESHAPE;
    /* From here sums of a few dimensions and products of two are exact.
     * W bounds every row length (Np <= N + Nout + 7, R = N + Nin + 1 + Nc,
     * Ka = 2N + Nin + 1, and P / N = N + Nin + 1 + Nout + Nc); the arrays are
     * at most (M, T+1, W) (inputs, targets, noise, codes, states, the
     * gradient's scratch) or (W, W) (weights and their packed copies), so
     * bounding those two bounds every index and size. */
    const int64_t W = 2 * s->n_units + s->n_in + s->n_out + s->n_code + 1 + 16;
    if (mul_capped(s->n_trials * (s->n_steps + 1), W) < 0 || mul_capped(W, W) < 0)
        return GRC_ESHAPE;
    if (m->readout == GRC_READOUT_XY && s->n_out != 2)
        return GRC_ESHAPE;
    return GRC_OK;
}

static int check_weight(double w)
{
    return (isfinite(w) && w >= 0.0) ? GRC_OK : GRC_EREG;
}

static int check_reg(const grc_reg *r)
{
    int rc;
    if ((rc = check_weight(r->lam_l2)) || (rc = check_weight(r->lam_fr))
        || (rc = check_weight(r->lam_rec)))
        return rc;
    return GRC_OK;
}

/* One pass: a[i] * 0 is 0 for finite a[i] (however large) and NaN for NaN or
 * inf, and the sums keep a NaN. Eight independent sums, so the pass runs at
 * the adder's throughput, not its latency. */
int grc__check_finite(const double *a, int64_t n)
{
    if (!a)
        return GRC_OK;
    double s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[i + l] * 0.0;
    for (; i < n; i++)
        s[0] += a[i] * 0.0;
    for (int l = 1; l < 8; l++)
        s[0] += s[l];
    return s[0] == 0.0 ? GRC_OK : GRC_ENONFINITE;
}

/* 1 if a and b share a byte; unsigned differences, so no address overflows. */
static int overlaps(const grc__span *a, const grc__span *b)
{
    if (!a->p || !b->p || a->n <= 0 || b->n <= 0)
        return 0;
    const uintptr_t x = (uintptr_t)a->p, y = (uintptr_t)b->p;
    return x - y < (uintptr_t)b->n * sizeof(double) || y - x < (uintptr_t)a->n * sizeof(double);
}

int grc__check_disjoint(const grc__span *out, int n_out, const grc__span *in, int n_in)
{
    for (int i = 0; i < n_out; i++) {
        for (int j = i + 1; j < n_out; j++)
            if (overlaps(&out[i], &out[j]))
                return GRC_EOVERLAP;
        for (int j = 0; j < n_in; j++)
            if (overlaps(&out[i], &in[j]))
                return GRC_EOVERLAP;
    }
    return GRC_OK;
}

/* The small inputs of a call: parameters, inputs, targets, codes (and x0 or
 * v), O(P + M T (Nin + Nout)), cheap beside the kernels. The large arrays
 * (noise.xi, u, y) are the caller's contract (gridcore.h). */
static int check_values(const grc__prob *p, const double *theta, const double *inputs,
                        const double *targets, const double *codes, const double *extra,
                        int64_t n_extra)
{
    const int64_t MT = p->M * p->T;
    int rc;
    if ((rc = grc__check_finite(theta, p->lay.size)) || (rc = grc__check_finite(inputs, MT * p->Nin))
        || (rc = grc__check_finite(targets, MT * p->Nout)) || (rc = grc__check_finite(codes, p->M * p->Nc))
        || (rc = grc__check_finite(extra, n_extra)))
        return rc;
    return GRC_OK;
}

/* An (M, T, w) array of p, and an (M, w) one: spans for grc__check_disjoint. */
static grc__span per_step(const grc__prob *p, const void *a, int64_t w)
{
    return (grc__span){a, p->M * p->T * w};
}

static grc__span per_trial(const grc__prob *p, const void *a, int64_t w)
{
    return (grc__span){a, p->M * w};
}

int grc__check_noise(const grc_noise *z, int64_t M, int64_t T)
{
    if (!(isfinite(z->std) && z->std >= 0.0) || (z->xi && z->std > 0.0) || z->trial0 < 0 || z->step0 < 0
        || z->trial0 > INT64_MAX - M || z->step0 > INT64_MAX - T)
        return GRC_ENOISE;
    return GRC_OK;
}

void grc__set_noise(grc__prob *p, const grc_noise *z)
{
    p->noise = z->xi;
    p->noise_std = z->std;
    p->noise_seed = z->seed;
    p->noise_trial0 = z->trial0;
    p->noise_step0 = z->step0;
}

/* The checks every kernel makes after its NULL checks, in the order gridcore.h gives. */
static int check_call(const grc_workspace *ws, const grc_shape *shape, const grc_model *model)
{
    int rc;
    if ((rc = check_ws(ws)) || (rc = check_model(model)) || (rc = check_shape(shape, model)))
        return rc;
    return GRC_OK;
}

/* ---- the parameter layout ----------------------------------------------- */

/* The one coding of theta's block order (gridcore.h, grc_layout), for a
 * checked shape and model; every offset below is read from it. */
static grc_layout layout_of(const grc_shape *s, const grc_model *m)
{
    (void)m;                    /* the model enters through n_code (checked against it) */
    const int64_t N = s->n_units, Nin = s->n_in, Nout = s->n_out, Nc = s->n_code;
    grc_layout l;
    l.off_wrec = 0;
    l.off_win = l.off_wrec + N * N;
    l.off_b = l.off_win + N * Nin;
    l.off_wout = l.off_b + N;
    l.off_wenc = l.off_wout + Nout * N;
    l.size = l.off_wenc + N * Nc;
    return l;
}

int grc_param_layout(grc_shape shape, grc_model model, grc_layout *out)
{
    if (!out)
        return GRC_ENULL;
    int rc;
    if ((rc = check_model(&model)) || (rc = check_shape(&shape, &model)))
        return rc;
    *out = layout_of(&shape, &model);
    return GRC_OK;
}

/* ---- scratch layout ----------------------------------------------------- */

static size_t round64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Hands out 64-byte-aligned pieces of one block; with base == NULL it only
 * counts, so the same code computes the size and then the pointers. The
 * count saturates at SIZE_MAX (then reserve() fails with GRC_ENOMEM). */
typedef struct { char *base; size_t used; } carver;

static double *carve(carver *c, int64_t n_doubles)
{
    double *ptr = c->base ? (double *)(c->base + c->used) : NULL;
    const uint64_t room = (SIZE_MAX - c->used) / sizeof(double);   /* doubles left */
    if ((uint64_t)n_doubles + 8 > room)                 /* + 8: round64's padding */
        c->used = SIZE_MAX;
    else
        c->used += round64((size_t)n_doubles * sizeof(double));
    return ptr;
}

/* Shared packed weights (written by the driver, then read by all partitions). */
typedef struct {
    double *BF, *BB, *BG, *WinT, *bias, *WencT, *codes_sq, *scale, *l2grad, *flat_a, *flat_b;
} grc__shared;

static void scratch_layout(carver *c, const grc__prob *p, enum grc__op op, int64_t nparts,
                           grc__shared *sh, grc__part **parts)
{
    const int64_t N = p->N, Nout = p->Nout, Np = p->Np, R = p->R, T = p->T, B = p->block;
    const int64_t P = p->lay.size, share = (p->M + nparts - 1) / nparts;  /* trials of a partition, at most */
    const int sq = op == OP_GRADIENT && p->want_sq;
    *parts = (grc__part *)(c->base ? c->base + c->used : NULL);
    c->used += round64((size_t)nparts * sizeof(grc__part));
    sh->BF = carve(c, N * Np);
    sh->WinT = carve(c, p->Nin * Np);
    sh->bias = carve(c, Np);
    sh->WencT = carve(c, p->Nc * Np);
    const int grad = op == OP_GRADIENT || op == OP_GN;
    sh->BB = grad ? carve(c, (N + Nout) * Np) : NULL;
    sh->BG = op == OP_GN ? carve(c, p->Ka * Np) : NULL;
    sh->scale = grad ? carve(c, R * Np) : NULL;
    sh->l2grad = grad ? carve(c, R * Np) : NULL;
    sh->flat_a = grad ? carve(c, P) : NULL;
    sh->flat_b = grad ? carve(c, P) : NULL;
    sh->codes_sq = sq && p->Nc ? carve(c, p->M * p->Nc) : NULL;
    for (int64_t q = 0; q < nparts; q++) {
        grc__part s = {0};
        s.x = carve(c, B * Np);
        s.z = carve(c, B * Np);
        s.ut = carve(c, B * Np);
        s.acc = carve(c, 2 * B);
        if (grad) {
            s.GX = carve(c, B * (T + 1) * Np);
            s.db = carve(c, B * Np);
            s.dphi = carve(c, Np);
            s.S = carve(c, R * Np);
            s.G0 = p->Nc ? carve(c, share * Np) : NULL;
        }
        if (op == OP_GRADIENT)
            s.U = carve(c, B * T * N);
        if (op == OP_GN)
            s.a = carve(c, B * p->Ka);
        if (sq) {
            s.SQ = carve(c, R * Np);
            s.G0SQ = p->Nc ? carve(c, share * Np) : NULL;
        }
        if (c->base)
            (*parts)[q] = s;
    }
}

/* Make ws hold at least `bytes` of zeroed scratch (grows, never shrinks). */
static int reserve(grc_workspace *ws, size_t bytes)
{
    if (bytes <= ws->bytes)
        return GRC_OK;
    free(ws->mem);
    ws->mem = NULL;
    ws->bytes = 0;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, bytes) != 0)
        return GRC_ENOMEM;
    memset(mem, 0, bytes); /* finite (zero) even where a product reads unused pads */
    ws->mem = mem;
    ws->bytes = bytes;
    return GRC_OK;
}

/* ---- packing ------------------------------------------------------------ */

/* Fill p's dimensions, layout and model from a checked shape and model, for
 * kernels of vector width vw. */
static void set_dims(grc__prob *p, const grc_shape *s, const grc_model *m, int64_t vw,
                     int64_t nparts, int64_t per_trial_doubles)
{
    p->lay = layout_of(s, m);
    p->alpha = m->alpha;
    p->phi = m->nonlinearity;
    p->readout = m->readout;
    p->N = s->n_units;
    p->Nin = s->n_in;
    p->Nout = s->n_out;
    p->M = s->n_trials;
    p->T = s->n_steps;
    p->Nc = s->n_code;
    p->Np = (p->N + p->Nout + vw - 1) / vw * vw;
    p->R0 = p->N + p->Nin + 1;
    p->R = p->R0 + p->Nc;
    p->Ka = 2 * p->N + p->Nin + 1;
    p->m_total = (double)p->M;
    /* block: at most GRC_BLOCK_TRIALS, a partition's share, and what fits GRC_BLOCK_BYTES */
    const int64_t share = (p->M + nparts - 1) / nparts;
    int64_t block = share < GRC_BLOCK_TRIALS ? share : GRC_BLOCK_TRIALS;
    const int64_t fit = (int64_t)(GRC_BLOCK_BYTES / sizeof(double)) / (per_trial_doubles + 1);
    if (block > fit)
        block = fit > 1 ? fit : 1;
    p->block = block;
}

/* BF: with Wout', u_t @ BF = [Wrec u_t | y_t] (eq. F1, F3). */
void grc__pack_forward(const grc__prob *p, const double *restrict theta, double *restrict BF,
                       double *restrict WinT, double *restrict bias, int with_wout)
{
    const int64_t N = p->N, Nin = p->Nin, Np = p->Np, Nout = with_wout ? p->Nout : 0;
    const double *Wrec = theta + p->lay.off_wrec, *Win = theta + p->lay.off_win,
                 *b = theta + p->lay.off_b, *Wout = theta + p->lay.off_wout;
    memset(BF, 0, (size_t)(N * Np) * sizeof(double));
    memset(WinT, 0, (size_t)(Nin * Np) * sizeof(double));
    memset(bias, 0, (size_t)Np * sizeof(double));
    for (int64_t j = 0; j < N; j++) {
        double *row = BF + j * Np;
        for (int64_t i = 0; i < N; i++)
            row[i] = Wrec[i * N + j];
        for (int64_t o = 0; o < Nout; o++)
            row[N + o] = Wout[o * N + j];
    }
    for (int64_t k = 0; k < Nin; k++)
        for (int64_t i = 0; i < N; i++)
            WinT[k * Np + i] = Win[i * Nin + k];
    memcpy(bias, b, (size_t)N * sizeof(double));
}

void grc__pack_wenc(const grc__prob *p, const double *restrict w, double *restrict WencT)
{
    const int64_t N = p->N, Nc = p->Nc, Np = p->Np;
    const double *Wenc = w + p->lay.off_wenc;
    memset(WencT, 0, (size_t)(Nc * Np) * sizeof(double));
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < Nc; c++)
            WencT[c * Np + i] = Wenc[i * Nc + c];
}

/* BB (N+Nout, Np) = [alpha Wrec; Wout], so [gx_{t+1} | ey_t] @ BB is the
 * back-propagated part of gu_t (eq. B3); scale and l2grad in the S layout:
 * l2grad is the gradient of lam_l2 R_L2 + lam_rec R_rec (zero on b and Wenc). */
static void pack_backward(const grc__prob *p, const double *restrict theta, double lam_l2,
                          double lam_rec, grc__shared *sh)
{
    const int64_t N = p->N, Nin = p->Nin, Nout = p->Nout, Np = p->Np, R = p->R;
    const double *Wrec = theta + p->lay.off_wrec, *Win = theta + p->lay.off_win,
                 *Wout = theta + p->lay.off_wout;
    /* the scratch holds the previous call's data: clear pads and unused entries */
    memset(sh->BB, 0, (size_t)((N + Nout) * Np) * sizeof(double));
    memset(sh->scale, 0, (size_t)(R * Np) * sizeof(double));
    memset(sh->l2grad, 0, (size_t)(R * Np) * sizeof(double));
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < N; i++)
            sh->BB[j * Np + i] = p->alpha * Wrec[j * N + i];
    for (int64_t o = 0; o < Nout; o++)
        memcpy(sh->BB + (N + o) * Np, Wout + o * N, (size_t)N * sizeof(double));
    const double c_in = 2.0 * lam_l2 / (double)(N * Nin), c_out = 2.0 * lam_l2 / (double)(N * Nout);
    for (int64_t j = 0; j < R; j++)            /* alpha on Wrec, Win, b; 1 on Wenc */
        for (int64_t i = 0; i < N; i++)
            sh->scale[j * Np + i] = j < N + Nin + 1 ? p->alpha : 1.0;
    for (int64_t j = 0; j < N; j++)
        for (int64_t o = 0; o < Nout; o++) {
            sh->scale[j * Np + N + o] = 1.0;
            sh->l2grad[j * Np + N + o] = c_out * Wout[o * N + j];
        }
    for (int64_t k = 0; k < Nin; k++)
        for (int64_t i = 0; i < N; i++)
            sh->l2grad[(N + k) * Np + i] = c_in * Win[i * Nin + k];
    const double c_rec = 2.0 * lam_rec;
    if (c_rec != 0.0)
        for (int64_t j = 0; j < N; j++)
            for (int64_t i = 0; i < N; i++)
                sh->l2grad[j * Np + i] = c_rec * Wrec[i * N + j];
}

/* BG (Ka, Np), the right operand of [du_t | u_t | I_t | 1] (eq. G2-G3):
 *   rows [0, N):   [Wrec' | Wout']     (du_t -> Wrec du_t, Wout du_t)
 *   rows [N, 2N):  [dWrec' | dWout']   (u_t  -> dWrec u_t, dWout u_t)
 *   rows 2N + k:   [dWin[:, k] | 0]
 *   row 2N + Nin:  [db | 0]
 * where d* are the blocks of v. */
static void pack_gn(const grc__prob *p, const double *restrict theta, const double *restrict v,
                    grc__shared *sh)
{
    const int64_t N = p->N, Nin = p->Nin, Nout = p->Nout, Np = p->Np;
    const double *W[2] = {theta, v};
    memset(sh->BG, 0, (size_t)(p->Ka * Np) * sizeof(double));
    for (int h = 0; h < 2; h++) {
        const double *Wrec = W[h] + p->lay.off_wrec, *Wout = W[h] + p->lay.off_wout;
        for (int64_t j = 0; j < N; j++) {
            double *row = sh->BG + (h * N + j) * Np;
            for (int64_t i = 0; i < N; i++)
                row[i] = Wrec[i * N + j];
            for (int64_t o = 0; o < Nout; o++)
                row[N + o] = Wout[o * N + j];
        }
    }
    const double *dWin = v + p->lay.off_win, *db = v + p->lay.off_b;
    for (int64_t k = 0; k < Nin; k++)
        for (int64_t i = 0; i < N; i++)
            sh->BG[(2 * N + k) * Np + i] = dWin[i * Nin + k];
    memcpy(sh->BG + (2 * N + Nin) * Np, db, (size_t)N * sizeof(double));
}

/* Copy an S-layout array into theta's flat order (grc_internal.h). */
static void gather(const grc__prob *p, const double *restrict S, double *restrict flat)
{
    const int64_t N = p->N, Nin = p->Nin, Np = p->Np;
    const int64_t Nc = p->Nc;
    double *dWrec = flat + p->lay.off_wrec, *dWin = flat + p->lay.off_win,
           *db = flat + p->lay.off_b, *dWout = flat + p->lay.off_wout,
           *dWenc = flat + p->lay.off_wenc;
    for (int64_t i = 0; i < N; i++) {
        for (int64_t j = 0; j < N; j++)
            dWrec[i * N + j] = S[j * Np + i];
        for (int64_t k = 0; k < Nin; k++)
            dWin[i * Nin + k] = S[(N + k) * Np + i];
        db[i] = S[(N + Nin) * Np + i];
        for (int64_t c = 0; c < Nc; c++)
            dWenc[i * Nc + c] = S[(N + Nin + 1 + c) * Np + i];
    }
    for (int64_t o = 0; o < p->Nout; o++)
        for (int64_t j = 0; j < N; j++)
            dWout[o * N + j] = S[j * Np + N + o];
}

/* ---- the parallel loop -------------------------------------------------- */

/* Run `op` over the partitions and add their sums, in partition order, into
 * parts[0]. Partition q owns trials [q*M/n, (q+1)*M/n). */
static void run_parts(const grc__prob *p, const grc__kernels *k, enum grc__op op,
                      grc__part *parts, int64_t nparts)
{
    void (*fn)(const grc__prob *, grc__part *, int64_t, int64_t) =
        op == OP_GN ? k->gn_product : op == OP_GRADIENT ? k->gradient : k->forward;
    const int64_t M = p->M;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)nparts) schedule(static, 1)
#endif
    for (int64_t q = 0; q < nparts; q++) {
        const int64_t m0 = q * M / nparts, m1 = (q + 1) * M / nparts;
        grc__part *s = &parts[q];
        s->E = s->RFR = 0.0;
        if (s->S)
            memset(s->S, 0, (size_t)(p->R * p->Np) * sizeof(double));
        if (s->SQ)
            memset(s->SQ, 0, (size_t)(p->R * p->Np) * sizeof(double));
        fn(p, s, m0, m1 - m0);
    }
    const int64_t len = p->R * p->Np;
    for (int64_t q = 1; q < nparts; q++) {
        parts[0].E += parts[q].E;
        parts[0].RFR += parts[q].RFR;
        if (parts[0].S)
            for (int64_t i = 0; i < len; i++)
                parts[0].S[i] += parts[q].S[i];
        if (parts[0].SQ)
            for (int64_t i = 0; i < len; i++)
                parts[0].SQ[i] += parts[q].SQ[i];
    }
}

/* Set up p and the scratch for `op` (shape and model checked), pack the forward weights. */
static int prepare(grc_workspace *ws, const grc_shape *shape, const grc_model *model,
                   enum grc__op op, grc__prob *p, const double *theta, grc__shared *sh,
                   grc__part **parts, int64_t *nparts)
{
    int rc;
    *nparts = shape->n_trials < ws->threads ? shape->n_trials : ws->threads;
    const int64_t N = shape->n_units, T = shape->n_steps;
    const int64_t np_est = N + shape->n_out + ws->kern->vw;
    const int64_t per_trial = op == OP_GRADIENT ? T * N + (T + 1) * np_est
                              : op == OP_GN ? (T + 1) * np_est : 0;
    set_dims(p, shape, model, ws->kern->vw, *nparts, per_trial);
    carver c = {NULL, 0};
    scratch_layout(&c, p, op, *nparts, sh, parts);
    if ((rc = reserve(ws, c.used)))
        return rc;
    c.base = ws->mem;
    c.used = 0;
    scratch_layout(&c, p, op, *nparts, sh, parts);
    grc__pack_forward(p, theta, sh->BF, sh->WinT, sh->bias, 1);
    p->BF = sh->BF;
    p->WinT = sh->WinT;
    p->bias = sh->bias;
    return GRC_OK;
}

static double r_l2(const grc__prob *p, const double *theta)
{
    const int64_t N = p->N, Nin = p->Nin, Nout = p->Nout;
    const double *Win = theta + p->lay.off_win, *Wout = theta + p->lay.off_wout;
    double s_in = 0.0, s_out = 0.0;
    for (int64_t i = 0; i < N * Nin; i++)
        s_in += Win[i] * Win[i];
    for (int64_t i = 0; i < Nout * N; i++)
        s_out += Wout[i] * Wout[i];
    return s_in / (double)(N * Nin) + s_out / (double)(N * Nout);
}

static double r_rec(const grc__prob *p, const double *theta)
{
    const double *Wrec = theta + p->lay.off_wrec;
    double s = 0.0;
    for (int64_t i = 0; i < p->N * p->N; i++)
        s += Wrec[i] * Wrec[i];
    return s;
}

/* c_y of the readout: dE/dy = c_y (y - targets) (xy) or c_y (p - targets) (place
 * cells), and the scale of the GN output curvature (eq. B1, G4, section 7). */
static double error_scale(const grc__prob *p)
{
    const double MT = (double)p->M * (double)p->T;
    return p->readout == GRC_READOUT_PLACE_CELLS ? 1.0 / MT : 2.0 / (MT * (double)p->Nout);
}

/* terms = {E, R_L2, R_FR, R_rec, loss} from the reduced sums (eq. L1-L4):
 * E is the sum of the readout's errors over (M, T) (FN(readout_error)), per
 * (trial, step) for place cells and per output for xy. */
static void set_terms(const grc__prob *p, const grc__part *s, const double *theta,
                      const grc_reg *reg, double *terms)
{
    const double MT = (double)p->M * (double)p->T;
    terms[0] = p->readout == GRC_READOUT_PLACE_CELLS ? s->E / MT : s->E / (MT * (double)p->Nout);
    terms[1] = r_l2(p, theta);
    terms[2] = s->RFR / (MT * (double)p->N);
    terms[3] = r_rec(p, theta);
    terms[4] = terms[0] + reg->lam_l2 * terms[1] + reg->lam_fr * terms[2] + reg->lam_rec * terms[3];
}

/* ---- public kernels ----------------------------------------------------- */

int grc_noise_fill(grc_noise noise, grc_shape shape, double *out)
{
    if (!out)
        return GRC_ENULL;
    const int64_t dims[3] = {shape.n_trials, shape.n_steps, shape.n_units};
    for (int i = 0; i < 3; i++)
        if (dims[i] < 1 || dims[i] > GRC_MAX_DIM)
            return GRC_ESHAPE;
    if (mul_capped(dims[0] * dims[1], dims[2]) < 0)
        return GRC_ESHAPE;
    if (noise.xi || grc__check_noise(&noise, shape.n_trials, shape.n_steps))
        return GRC_ENOISE;
    for (int64_t m = 0; m < dims[0]; m++)
        for (int64_t t = 0; t < dims[1]; t++) {
            double *row = out + (m * dims[1] + t) * dims[2];
            memset(row, 0, (size_t)dims[2] * sizeof(double));
            grc__noise_add(grc__noise_key(noise.seed, noise.trial0 + m, noise.step0 + t), noise.std,
                           row, dims[2]);
        }
    return GRC_OK;
}

int grc_forward(grc_workspace *ws, grc_shape shape, grc_model model,
                const double *restrict theta, const double *restrict inputs,
                grc_noise noise, const double *restrict codes, const double *x0,
                double *restrict u, double *restrict y, double *x_end)
{
    if (!ws || !theta || !inputs || !y || !x_end
        || (model.initial_state == GRC_X0_ENCODED && !x0 && !codes))
        return GRC_ENULL;
    int rc = check_call(ws, &shape, &model);
    if (rc || (rc = grc__check_noise(&noise, shape.n_trials, shape.n_steps)))
        return rc;
    grc__prob p = {0};
    grc__shared sh;
    grc__part *parts;
    int64_t nparts;
    if ((rc = prepare(ws, &shape, &model, OP_FORWARD, &p, theta, &sh, &parts, &nparts)))
        return rc;
    const grc__span out[3] = {per_step(&p, u, p.N), per_step(&p, y, p.Nout), per_trial(&p, x_end, p.N)};
    const grc__span in[5] = {{theta, p.lay.size}, per_step(&p, inputs, p.Nin), per_step(&p, noise.xi, p.N),
                             per_trial(&p, x0 ? NULL : codes, p.Nc),
                             per_trial(&p, x0 == x_end ? NULL : x0, p.N)};   /* x0 may be x_end */
    if ((rc = grc__check_disjoint(out, 3, in, 5))
        || (rc = check_values(&p, theta, inputs, NULL, x0 ? NULL : codes, x0, p.M * p.N)))
        return rc;
    p.inputs = inputs;
    grc__set_noise(&p, &noise);
    p.x0 = x0;
    p.u_out = u;
    p.y_out = y;
    p.x_end = x_end;
    if (p.Nc && !x0) {                                           /* x_0 = Wenc c_m */
        grc__pack_wenc(&p, theta, sh.WencT);
        p.WencT = sh.WencT;
        p.codes = codes;
    }
    run_parts(&p, ws->kern, OP_FORWARD, parts, nparts);
    return GRC_OK;
}

int grc_loss(grc_workspace *ws, grc_shape shape, grc_model model,
             const double *restrict theta, const double *restrict inputs,
             const double *restrict targets, grc_noise noise,
             const double *restrict codes, grc_reg reg, double *restrict terms)
{
    if (!ws || !theta || !inputs || !targets || !terms
        || (model.initial_state == GRC_X0_ENCODED && !codes))
        return GRC_ENULL;
    int rc = check_call(ws, &shape, &model);
    if (rc || (rc = check_reg(&reg)) || (rc = grc__check_noise(&noise, shape.n_trials, shape.n_steps)))
        return rc;
    grc__prob p = {0};
    grc__shared sh;
    grc__part *parts;
    int64_t nparts;
    if ((rc = prepare(ws, &shape, &model, OP_LOSS, &p, theta, &sh, &parts, &nparts)))
        return rc;
    const grc__span out[1] = {{terms, 5}};
    const grc__span in[5] = {{theta, p.lay.size}, per_step(&p, inputs, p.Nin), per_step(&p, targets, p.Nout),
                             per_step(&p, noise.xi, p.N), per_trial(&p, codes, p.Nc)};
    if ((rc = grc__check_disjoint(out, 1, in, 5))
        || (rc = check_values(&p, theta, inputs, targets, codes, NULL, 0)))
        return rc;
    p.inputs = inputs;
    p.targets = targets;
    grc__set_noise(&p, &noise);
    p.want_loss = 1;
    if (p.Nc) {                                                  /* x_0 = Wenc c_m */
        grc__pack_wenc(&p, theta, sh.WencT);
        p.WencT = sh.WencT;
        p.codes = codes;
    }
    run_parts(&p, ws->kern, OP_LOSS, parts, nparts);
    set_terms(&p, &parts[0], theta, &reg, terms);
    return GRC_OK;
}

int grc_gradient(grc_workspace *ws, grc_shape shape, grc_model model,
                 const double *restrict theta, const double *restrict inputs,
                  const double *restrict targets, grc_noise noise,
                 const double *restrict codes, grc_reg reg, double *restrict terms,
                 double *restrict grad, double *restrict sq)
{
    if (!ws || !theta || !inputs || !targets || !terms || !grad
        || (model.initial_state == GRC_X0_ENCODED && !codes))
        return GRC_ENULL;
    int rc = check_call(ws, &shape, &model);
    if (rc || (rc = check_reg(&reg)) || (rc = grc__check_noise(&noise, shape.n_trials, shape.n_steps)))
        return rc;
    grc__prob p = {0};
    grc__shared sh;
    grc__part *parts;
    int64_t nparts;
    p.want_sq = sq != NULL;  /* scratch_layout() reads it */
    if ((rc = prepare(ws, &shape, &model, OP_GRADIENT, &p, theta, &sh, &parts, &nparts)))
        return rc;
    const grc__span out[3] = {{terms, 5}, {grad, p.lay.size}, {sq, p.lay.size}};
    const grc__span in[5] = {{theta, p.lay.size}, per_step(&p, inputs, p.Nin), per_step(&p, targets, p.Nout),
                             per_step(&p, noise.xi, p.N), per_trial(&p, codes, p.Nc)};
    if ((rc = grc__check_disjoint(out, 3, in, 5))
        || (rc = check_values(&p, theta, inputs, targets, codes, NULL, 0)))
        return rc;
    const double MT = (double)p.M * (double)p.T;
    p.c_y = error_scale(&p);                                     /* eq. B1 */
    p.c_u = 2.0 * reg.lam_fr / (MT * (double)p.N);
    p.inputs = inputs;
    p.targets = targets;
    grc__set_noise(&p, &noise);
    p.want_loss = 1;
    if (p.Nc) {                                                  /* x_0 = Wenc c_m */
        grc__pack_wenc(&p, theta, sh.WencT);
        p.WencT = sh.WencT;
        p.codes = codes;
    }
    if (p.Nc && sq) {                                            /* for the Wenc rows of sq */
        for (int64_t i = 0; i < p.M * p.Nc; i++)
            sh.codes_sq[i] = codes[i] * codes[i];
        p.codes_sq = sh.codes_sq;
    }
    pack_backward(&p, theta, reg.lam_l2, reg.lam_rec, &sh);
    p.BB = sh.BB;
    p.scale = sh.scale;
    p.l2grad = sh.l2grad;
    run_parts(&p, ws->kern, OP_GRADIENT, parts, nparts);
    set_terms(&p, &parts[0], theta, &reg, terms);
    const int64_t P = p.lay.size;
    double *sc = sh.flat_a, *l2 = sh.flat_b;
    gather(&p, p.scale, sc);
    gather(&p, p.l2grad, l2);
    gather(&p, parts[0].S, grad);
    for (int64_t i = 0; i < P; i++)                              /* eq. B6 + L2 + R_rec */
        grad[i] = sc[i] * grad[i] + l2[i];
    if (sq) {                                                    /* eq. B7 */
        gather(&p, parts[0].SQ, sq);
        for (int64_t i = 0; i < P; i++)
            sq[i] /= p.m_total;
    }
    return GRC_OK;
}

int grc_gn_product(grc_workspace *ws, grc_shape shape, grc_model model,
                   const double *restrict theta, const double *restrict inputs,
                   const double *restrict codes, const double *restrict u,
                   const double *restrict y, const double *restrict v, grc_reg reg, double mu,
                   double *restrict gv)
{
    if (!ws || !theta || !inputs || !u || !v || !gv
        || (model.initial_state == GRC_X0_ENCODED && !codes)
        || (model.readout == GRC_READOUT_PLACE_CELLS && !y))
        return GRC_ENULL;
    int rc = check_call(ws, &shape, &model);
    if (rc || (rc = check_reg(&reg)) || (rc = check_weight(mu)))
        return rc;
    grc__prob p = {0};
    grc__shared sh;
    grc__part *parts;
    int64_t nparts;
    if ((rc = prepare(ws, &shape, &model, OP_GN, &p, theta, &sh, &parts, &nparts)))
        return rc;
    const grc__span out[1] = {{gv, p.lay.size}};
    const grc__span in[6] = {{theta, p.lay.size}, per_step(&p, inputs, p.Nin), per_trial(&p, codes, p.Nc),
                             per_step(&p, u, p.N),
                             per_step(&p, p.readout == GRC_READOUT_PLACE_CELLS ? y : NULL, p.Nout),
                             {v, p.lay.size}};
    if ((rc = grc__check_disjoint(out, 1, in, 6))
        || (rc = check_values(&p, theta, inputs, NULL, codes, v, p.lay.size)))
        return rc;
    const double MT = (double)p.M * (double)p.T;
    p.c_y = error_scale(&p);                                     /* H_y, eq. G4 */
    p.c_u = 2.0 * (reg.lam_fr + mu) / (MT * (double)p.N);        /* H_u */
    p.inputs = inputs;
    p.u_in = u;
    p.y_in = p.readout == GRC_READOUT_PLACE_CELLS ? y : NULL;
    if (p.Nc) {                                                  /* dx_0 = dWenc c_m */
        grc__pack_wenc(&p, v, sh.WencT);
        p.WencT = sh.WencT;
        p.codes = codes;
    }
    pack_backward(&p, theta, 0.0, 0.0, &sh);
    pack_gn(&p, theta, v, &sh);
    p.BB = sh.BB;
    p.BG = sh.BG;
    p.scale = sh.scale;
    run_parts(&p, ws->kern, OP_GN, parts, nparts);
    const int64_t N = p.N, Nin = p.Nin, Nout = p.Nout, P = p.lay.size;
    double *sc = sh.flat_a;
    gather(&p, p.scale, sc);
    gather(&p, parts[0].S, gv);
    for (int64_t i = 0; i < P; i++)
        gv[i] *= sc[i];
    /* + lam_l2 Hess(R_L2) v: diagonal on Win and Wout (eq. G5); + lam_rec Hess(R_rec) v
     * = 2 lam_rec v on Wrec */
    const double c_in = 2.0 * reg.lam_l2 / (double)(N * Nin),
                 c_out = 2.0 * reg.lam_l2 / (double)(N * Nout), c_rec = 2.0 * reg.lam_rec;
    for (int64_t i = p.lay.off_win; i < p.lay.off_win + N * Nin; i++)
        gv[i] += c_in * v[i];
    for (int64_t i = p.lay.off_wout; i < p.lay.off_wout + Nout * N; i++)
        gv[i] += c_out * v[i];
    if (c_rec != 0.0)
        for (int64_t i = p.lay.off_wrec; i < p.lay.off_wrec + N * N; i++)
            gv[i] += c_rec * v[i];
    return GRC_OK;
}
