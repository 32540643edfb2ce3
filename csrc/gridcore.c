/*
 * gridcore.c - the public entry points: argument checks, the workspace and
 * its scratch, the parameter layout; the packing of the weights, the OpenMP
 * loop over trial partitions and the kernels' entry points are in
 * grc_driver.inc, included here once per element type (double, float). The
 * arithmetic per trial lives in grc_kernels.inc.
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

/* 1 if a and b share a byte; unsigned differences, so no address overflows. */
static int overlaps(const grc__span *a, const grc__span *b)
{
    if (!a->p || !b->p || a->bytes <= 0 || b->bytes <= 0)
        return 0;
    const uintptr_t x = (uintptr_t)a->p, y = (uintptr_t)b->p;
    return x - y < (uintptr_t)b->bytes || y - x < (uintptr_t)a->bytes;
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

/* The next piece: n elements of `size` bytes (8 or 4). */
static void *carve(carver *c, int64_t n, size_t size)
{
    void *ptr = c->base ? c->base + c->used : NULL;
    const uint64_t room = (SIZE_MAX - c->used) / size;   /* elements left */
    if ((uint64_t)n + 64 / size > room)                 /* + 64 bytes: round64's padding */
        c->used = SIZE_MAX;
    else
        c->used += round64((size_t)n * size);
    return ptr;
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

/* ---- the typed driver: double, then float -------------------------------- */

#define GRC_F32 0
#include "grc_driver.inc"
#undef GRC_F32
#define GRC_F32 1
#include "grc_driver.inc"
#undef GRC_F32

/* ---- noise as an array --------------------------------------------------- */

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
            const uint64_t key = grc__noise_key(noise.seed, noise.trial0 + m, noise.step0 + t);
            for (int64_t i = 0; i < dims[2]; i++)
                row[i] = noise.std * grc__noise_z(key, i);
        }
    return GRC_OK;
}
