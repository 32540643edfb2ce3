/*
 * fuzz_abi.c - random calls of every entry point of the C ABI (csrc/gridcore.h),
 * built by tests/test_c_fuzz.py with AddressSanitizer and UndefinedBehaviorSanitizer
 * (any out-of-bounds access, overflow or crash aborts the program).
 *
 *   fuzz_abi SEED ROUNDS TMPFILE
 *
 * Each round draws a shape (small and valid, or with dimensions near the
 * integer limits), a model, weights and noise, some of them bad, and checks
 * the status of every kernel against what the header promises. Arrays of a
 * call that should run are allocated with their exact lengths, so reading
 * one double too many is caught; a call that should be refused gets arrays
 * of one double, so touching them at all is caught. Also: NULL pointers,
 * overlapping outputs, NaN and inf, thread counts, destroyed and fake
 * workspaces and steppers, network files with mutated headers.
 * Prints "cases N" (the calls checked) and exits 0, or names the first
 * failed check and exits 1.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcore.h"

static uint64_t state;
static long cases;

static uint64_t next(void)     /* splitmix64 */
{
    uint64_t z = (state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int64_t below(int64_t n) { return (int64_t)(next() % (uint64_t)n); }
static double uniform(void) { return (double)(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0; }

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        cases++;                                                                  \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz_abi: check failed at line %d: ", __LINE__);     \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

/* A dimension near the integer limits (most of them invalid, some valid but huge). */
static int64_t extreme(void)
{
    static const int64_t fixed[] = {0, -1, 1, 2, INT64_MAX, INT64_MAX - 1, INT64_MIN, INT64_MIN + 1,
                                    GRC_MAX_DIM, (int64_t)GRC_MAX_DIM + 1, INT32_MIN, (int64_t)1 << 32,
                                    (int64_t)1 << 62, GRC_MAX_ELEMS, (int64_t)1 << 28, 3037000500};
    switch (below(3)) {
    case 0: return fixed[below(sizeof fixed / sizeof fixed[0])];
    case 1: return (int64_t)(next() >> below(64));                       /* any magnitude */
    default: return (int64_t)(((uint64_t)1 << below(63)) + (uint64_t)below(5) - 2);   /* 2^k +- 2 */
    }
}

static double *array(int64_t n, double scale)   /* exact length, random entries */
{
    double *a = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        a[i] = scale * uniform();
    return a;
}

typedef struct {
    grc_shape s;
    grc_model m;
    int64_t P;                 /* theta's length, from the formula in gridcore.h */
    double *theta, *inputs, *targets, *codes, *x0, *xi, *v;      /* inputs */
    double *u, *y, *x_end, *grad, *sq, *gv, terms[5];            /* outputs */
} call;

static int64_t mt(const call *c) { return c->s.n_trials * c->s.n_steps; }

/* Exact arrays of a valid small shape. */
static void alloc_call(call *c)
{
    const grc_shape *s = &c->s;
    const int64_t M = s->n_trials, N = s->n_units, Nout = s->n_out;
    c->P = N * (N + s->n_in + 1 + Nout + s->n_code);
    c->theta = array(c->P, 1.0);
    c->v = array(c->P, 1.0);
    c->inputs = array(mt(c) * s->n_in, 1.0);
    c->targets = array(mt(c) * Nout, 1.0);
    if (c->m.readout == GRC_READOUT_PLACE_CELLS)       /* distributions: the caller's contract */
        for (int64_t r = 0; r < mt(c); r++)
            for (int64_t k = 0; k < Nout; k++)
                c->targets[r * Nout + k] = 1.0 / (double)Nout;
    c->codes = array(M * s->n_code, 1.0);
    c->x0 = array(M * N, 1.0);
    c->xi = array(mt(c) * N, 0.1);
    c->u = array(mt(c) * N, 0.0);
    c->y = array(mt(c) * Nout, 0.0);
    c->x_end = array(M * N, 0.0);
    c->grad = array(c->P, 0.0);
    c->sq = array(c->P, 0.0);
    c->gv = array(c->P, 0.0);
}

static void free_call(call *c)
{
    double *all[] = {c->theta, c->inputs, c->targets, c->codes, c->x0, c->xi, c->v,
                     c->u, c->y, c->x_end, c->grad, c->sq, c->gv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* 1 if every array of the call's shape, and the scratch of a block of 32
 * trials, fit in `budget` doubles (int128: no overflow). */
static int small_enough(const grc_shape *s, __int128 budget)
{
    const __int128 W = (__int128)s->n_units + s->n_in + s->n_out + s->n_code + 1,
                   MT = (__int128)s->n_trials * s->n_steps;
    return W * W <= budget && MT * W <= budget && 32 * ((__int128)s->n_steps + 1) * W <= budget;
}

/* What the header promises for a shape: 0 if it must be accepted (or GRC_ENOMEM),
 * GRC_ESHAPE if it must be refused, 1 if either is allowed (valid dimensions whose
 * arrays or scratch come near GRC_MAX_ELEMS). */
static int expected_shape(const grc_shape *s, const grc_model *m)
{
    const int64_t d[5] = {s->n_units, s->n_in, s->n_out, s->n_trials, s->n_steps};
    for (int i = 0; i < 5; i++)
        if (d[i] < 1 || d[i] > GRC_MAX_DIM)
            return GRC_ESHAPE;
    const int encoded = m->initial_state == GRC_X0_ENCODED;
    if (encoded ? (s->n_code < 1 || s->n_code > GRC_MAX_DIM) : s->n_code != 0)
        return GRC_ESHAPE;
    if (m->readout == GRC_READOUT_XY && s->n_out != 2)
        return GRC_ESHAPE;
    const __int128 W = (__int128)s->n_units + s->n_in + s->n_out + s->n_code + 1;
    const __int128 MT = (__int128)s->n_trials * s->n_steps;
    if ((__int128)s->n_units * W > GRC_MAX_ELEMS || MT * W > GRC_MAX_ELEMS)
        return GRC_ESHAPE;                          /* theta or an (M, T, .) array passes the cap */
    return small_enough(s, (__int128)1 << 20) ? 0 : 1;
}

static grc_model valid_model(void)
{
    const double alphas[] = {0.1, 1.0, 0.5, 1e-300};
    grc_model m = {alphas[below(4)], (int32_t)below(2), (int32_t)below(2), (int32_t)below(2)};
    return m;
}

/* A model, bad with some probability; *want: GRC_OK, GRC_EALPHA or GRC_EMODEL. */
static grc_model draw_model(int *want)
{
    grc_model m = valid_model();
    *want = GRC_OK;
    if (below(8) == 0) {
        const double bad[] = {0.0, -0.1, 1.0000001, NAN, INFINITY, -INFINITY, 2.0};
        m.alpha = bad[below(7)];
        *want = GRC_EALPHA;
    } else if (below(8) == 0) {
        const int32_t bad[] = {2, -1, INT32_MAX, INT32_MIN, 3};
        int32_t *field[] = {&m.nonlinearity, &m.readout, &m.initial_state};
        *field[below(3)] = bad[below(5)];
        *want = GRC_EMODEL;
    }
    return m;
}

static grc_shape small_shape(const grc_model *m)
{
    const int big = below(10) == 0;             /* more trials than a block (32) and than threads */
    grc_shape s = {1 + below(big ? 12 : 6), 1 + below(4), 2, 1 + below(big ? 70 : 7), 1 + below(6), 0};
    if (m->readout == GRC_READOUT_PLACE_CELLS)
        s.n_out = 1 + below(5);
    if (m->initial_state == GRC_X0_ENCODED)
        s.n_code = 1 + below(4);
    return s;
}

/* The shape of a round: small and valid, or with 1 to 3 fields near the limits. */
static grc_shape draw_shape(const grc_model *m)
{
    grc_shape s = small_shape(m);
    if (below(2)) {
        int64_t *field[] = {&s.n_units, &s.n_in, &s.n_out, &s.n_trials, &s.n_steps, &s.n_code};
        for (int k = 1 + (int)below(3); k > 0; k--)
            *field[below(6)] = extreme();
    }
    return s;
}

static const grc_reg REG = {0.1, 0.01, 0.001};

static void check_layout(const grc_shape *s, const grc_model *m, int want_model)
{
    grc_layout lay;
    const int rc = grc_param_layout(*s, *m, &lay);
    if (want_model) {
        CHECK(rc == want_model, "grc_param_layout: %d, want %d (model)", rc, want_model);
        return;
    }
    const int want = expected_shape(s, m);
    CHECK(rc == want || (want == 1 && (rc == GRC_OK || rc == GRC_ESHAPE)),
          "grc_param_layout {%lld %lld %lld %lld %lld %lld}: %d, want %d", (long long)s->n_units,
          (long long)s->n_in, (long long)s->n_out, (long long)s->n_trials, (long long)s->n_steps,
          (long long)s->n_code, rc, want);
    if (rc == GRC_OK) {
        const __int128 N = s->n_units;
        CHECK(lay.off_wrec == 0 && lay.off_win == N * N && lay.off_b == lay.off_win + N * s->n_in
              && lay.off_wout == lay.off_b + N && lay.off_wenc == lay.off_wout + (__int128)s->n_out * N
              && lay.size == lay.off_wenc + N * s->n_code, "grc_param_layout: wrong offsets");
    }
    CHECK(grc_param_layout(*s, *m, NULL) == GRC_ENULL, "grc_param_layout(NULL)");
}

/* Every kernel on a shape or model that must be refused: one-double arrays. */
static void refused_calls(grc_workspace *ws, const grc_shape *s, const grc_model *m, int want)
{
    double a[1] = {0}, b[1] = {0}, c[1] = {0}, d[1] = {0}, terms[5];   /* touched: ASan stops */
    const double in[1] = {0};
    const grc_noise none = {0};
    int rc[4];
    rc[0] = grc_forward(ws, *s, *m, in, in, none, in, in, a, b, c);
    rc[1] = grc_loss(ws, *s, *m, in, in, in, none, in, REG, terms);
    rc[2] = grc_gradient(ws, *s, *m, in, in, in, none, in, REG, terms, a, b);
    rc[3] = grc_gn_product(ws, *s, *m, in, in, in, in, in, in, REG, 0.1, d);
    for (int k = 0; k < 4; k++)
        CHECK(rc[k] == want, "kernel %d on a refused shape or model: %d, want %d", k, rc[k], want);
}

static grc_noise draw_noise(call *c, int *want)
{
    grc_noise z = {NULL, 0.0, next(), below(1000), below(1000)};
    *want = GRC_OK;
    switch (below(6)) {
    case 0: z.xi = c->xi; break;
    case 1: case 2: z.std = 0.1 + uniform() * 0.05; break;
    case 3: break;
    case 4: {                                        /* a bad one */
        const int k = (int)below(5);
        z.std = k == 0 ? -0.1 : k == 1 ? NAN : k == 2 ? INFINITY : 0.1;
        if (k == 3) z.xi = c->xi;
        if (k == 4) z.trial0 = -1 - below(5);
        *want = GRC_ENOISE;
        break;
    }
    default:                 /* global indices up to INT64_MAX: fine; one more: refused */
        z.std = 0.1;
        z.trial0 = INT64_MAX - c->s.n_trials;
        z.step0 = INT64_MAX - c->s.n_steps;
        if (below(2)) {
            *(below(2) ? &z.trial0 : &z.step0) += 1;
            *want = GRC_ENOISE;
        }
        break;
    }
    return z;
}

static int finite_terms(const double *t)
{
    for (int k = 0; k < 5; k++)
        if (!isfinite(t[k]))
            return 0;
    return 1;
}

/* The kernels on a valid small shape, with its bad weights, noise, NaN or overlap. */
static void valid_calls(grc_workspace *ws, call *c)
{
    const grc_shape s = c->s;
    const grc_model m = c->m;
    const int enc = m.initial_state == GRC_X0_ENCODED, pc = m.readout == GRC_READOUT_PLACE_CELLS;
    int want_noise;
    const grc_noise z = draw_noise(c, &want_noise);
    grc_reg reg = REG;
    int want_reg = GRC_OK;
    if (below(8) == 0) {
        const double bad[] = {-1e-9, NAN, INFINITY};
        double *field[] = {&reg.lam_l2, &reg.lam_fr, &reg.lam_rec};
        *field[below(3)] = bad[below(3)];
        want_reg = GRC_EREG;
    }
    /* plain calls */
    int rc = grc_forward(ws, s, m, c->theta, c->inputs, z, c->codes, NULL, c->u, c->y, c->x_end);
    CHECK(rc == want_noise, "grc_forward: %d, want %d", rc, want_noise);
    rc = grc_forward(ws, s, m, c->theta, c->inputs, z, NULL, c->x0, NULL, c->y, c->x_end);
    CHECK(rc == want_noise, "grc_forward (x0, streaming): %d, want %d", rc, want_noise);
    memcpy(c->x_end, c->x0, (size_t)(s.n_trials * s.n_units) * sizeof(double));
    rc = grc_forward(ws, s, m, c->theta, c->inputs, z, NULL, c->x_end, c->u, c->y, c->x_end);
    CHECK(rc == want_noise, "grc_forward (x0 == x_end): %d, want %d", rc, want_noise);
    const int want_lg = want_reg ? want_reg : want_noise;
    rc = grc_loss(ws, s, m, c->theta, c->inputs, c->targets, z, c->codes, reg, c->terms);
    CHECK(rc == want_lg && (rc || finite_terms(c->terms)), "grc_loss: %d, want %d", rc, want_lg);
    rc = grc_gradient(ws, s, m, c->theta, c->inputs, c->targets, z, c->codes, reg, c->terms, c->grad,
                      below(2) ? c->sq : NULL);
    CHECK(rc == want_lg && (rc || finite_terms(c->terms)), "grc_gradient: %d, want %d", rc, want_lg);
    if (grc_forward(ws, s, m, c->theta, c->inputs, (grc_noise){0}, c->codes, NULL, c->u, c->y, c->x_end) == 0) {
        const double mu = below(8) ? 0.1 : -1.0;
        const int want_gn = want_reg ? want_reg : mu < 0 ? GRC_EREG : GRC_OK;
        rc = grc_gn_product(ws, s, m, c->theta, c->inputs, c->codes, c->u, pc || below(2) ? c->y : NULL, c->v,
                            reg, mu, c->gv);
        CHECK(rc == want_gn, "grc_gn_product: %d, want %d", rc, want_gn);
    }
    /* NULL pointers, one at a time */
    const grc_noise none = {0};
    CHECK(grc_forward(NULL, s, m, c->theta, c->inputs, none, c->codes, NULL, c->u, c->y, c->x_end) == GRC_ENULL, "ws NULL");
    CHECK(grc_forward(ws, s, m, NULL, c->inputs, none, c->codes, NULL, c->u, c->y, c->x_end) == GRC_ENULL, "theta NULL");
    CHECK(grc_forward(ws, s, m, c->theta, NULL, none, c->codes, NULL, c->u, c->y, c->x_end) == GRC_ENULL, "inputs NULL");
    CHECK(grc_forward(ws, s, m, c->theta, c->inputs, none, c->codes, NULL, c->u, NULL, c->x_end) == GRC_ENULL, "y NULL");
    CHECK(grc_forward(ws, s, m, c->theta, c->inputs, none, c->codes, NULL, c->u, c->y, NULL) == GRC_ENULL, "x_end NULL");
    CHECK(grc_forward(ws, s, m, c->theta, c->inputs, none, NULL, NULL, c->u, c->y, c->x_end) == (enc ? GRC_ENULL : GRC_OK),
          "codes NULL");
    CHECK(grc_loss(ws, s, m, c->theta, c->inputs, NULL, none, c->codes, REG, c->terms) == GRC_ENULL, "targets NULL");
    CHECK(grc_loss(ws, s, m, c->theta, c->inputs, c->targets, none, c->codes, REG, NULL) == GRC_ENULL, "terms NULL");
    CHECK(grc_gradient(ws, s, m, c->theta, c->inputs, c->targets, none, c->codes, REG, c->terms, NULL, NULL)
          == GRC_ENULL, "grad NULL");
    CHECK(grc_gn_product(ws, s, m, c->theta, c->inputs, c->codes, NULL, c->y, c->v, REG, 0.1, c->gv) == GRC_ENULL, "u NULL");
    CHECK(grc_gn_product(ws, s, m, c->theta, c->inputs, c->codes, c->u, NULL, c->v, REG, 0.1, c->gv)
          == (pc ? GRC_ENULL : GRC_OK), "gn y NULL");
    CHECK(grc_gn_product(ws, s, m, c->theta, c->inputs, c->codes, c->u, c->y, NULL, REG, 0.1, c->gv) == GRC_ENULL, "v NULL");
    CHECK(grc_gn_product(ws, s, m, c->theta, c->inputs, c->codes, c->u, c->y, c->v, REG, 0.1, NULL) == GRC_ENULL, "gv NULL");
    /* an output overlapping an input or another output: refused before anything is written */
    const int64_t MT = mt(c), N = s.n_units;
    double *into[] = {c->theta, c->inputs, c->xi, c->x0 + below(s.n_trials * N), c->u + MT * N - 1};
    double *bad = into[below(5)];
    CHECK(grc_forward(ws, s, m, c->theta, c->inputs, (grc_noise){c->xi, 0, 0, 0, 0}, c->codes, c->x0,
                      bad == c->u + MT * N - 1 ? c->u : bad, bad == c->u + MT * N - 1 ? bad : c->y, c->x_end)
          == GRC_EOVERLAP, "forward with an overlapping output");
    CHECK(grc_gradient(ws, s, m, c->theta, c->inputs, c->targets, none, c->codes, REG, c->terms, c->grad,
                       c->grad + below(c->P)) == GRC_EOVERLAP, "gradient: sq overlapping grad");
    CHECK(grc_gn_product(ws, s, m, c->theta, c->inputs, c->codes, c->u, c->y, c->v, REG, 0.1,
                         below(2) ? c->v : c->u + below(MT * N)) == GRC_EOVERLAP, "gn: gv overlapping an input");
    CHECK(grc_loss(ws, s, m, c->theta, c->inputs, c->targets, none, c->codes, REG, c->targets) == GRC_EOVERLAP,
          "loss: terms inside targets");
    /* NaN or inf in a small input; huge finite values are accepted */
    double *holders[] = {c->theta, c->inputs, c->targets, c->codes};
    const int64_t lens[] = {c->P, MT * s.n_in, MT * s.n_out, s.n_trials * s.n_code};
    const int k = enc ? (int)below(4) : (int)below(3);
    const int64_t at = below(lens[k]);
    const double keep = holders[k][at];
    holders[k][at] = below(2) ? NAN : -INFINITY;
    rc = grc_loss(ws, s, m, c->theta, c->inputs, c->targets, none, c->codes, REG, c->terms);
    CHECK(rc == GRC_ENONFINITE, "loss with NaN/inf in array %d: %d", k, rc);
    holders[k][at] = 1e308;
    rc = grc_loss(ws, s, m, c->theta, c->inputs, c->targets, none, c->codes, REG, c->terms);
    CHECK(rc == GRC_OK, "loss with 1e308 in array %d: %d", k, rc);
    holders[k][at] = keep;
}

static void workspace_rounds(long rounds)
{
    grc_workspace *shared = NULL;
    CHECK(grc_workspace_create(1 + (int)below(4), GRC_ISA_AUTO, &shared) == GRC_OK, "create");
    for (long r = 0; r < rounds; r++) {
        int want_model;
        const grc_model m = draw_model(&want_model);
        const grc_shape s = draw_shape(&m);
        check_layout(&s, &m, want_model);
        /* one workspace reused across every shape (grows), or a fresh one of any thread
         * count and instruction set */
        grc_workspace *ws = shared, *fresh = NULL;
        if (below(4) == 0) {
            const int threads = below(2) ? (int)below(GRC_MAX_THREADS + 1) : (int)extreme();
            const int isa = (int)below(4);
            const int want = threads < 0 || threads > GRC_MAX_THREADS ? GRC_ETHREADS
                             : isa != GRC_ISA_AUTO && !grc_isa_available(isa) ? GRC_EISA : GRC_OK;
            const int rc = grc_workspace_create(threads, isa, &fresh);
            CHECK(rc == want && (rc != GRC_OK || (grc_workspace_threads(fresh) >= 1
                                                  && grc_workspace_threads(fresh) <= GRC_MAX_THREADS)),
                  "grc_workspace_create(%d): %d, want %d", threads, rc, want);
            if (fresh)
                ws = fresh;
        }
        const int want_shape = want_model ? want_model : expected_shape(&s, &m);
        if (want_shape == GRC_ESHAPE || want_model) {
            refused_calls(ws, &s, &m, want_shape);
        } else if (want_shape == GRC_OK) {
            call c = {.s = s, .m = m};
            alloc_call(&c);
            valid_calls(ws, &c);
            free_call(&c);
        }
        grc_workspace_destroy(fresh);
    }
    grc_workspace_destroy(shared);
}

/* Destroyed and fake workspaces and steppers: GRC_EWORKSPACE, never a crash. */
static void dead_objects(void)
{
    grc_model m = {0.1, GRC_PHI_TANH, GRC_READOUT_XY, GRC_X0_ZERO};
    call c = {.s = {3, 2, 2, 2, 3, 0}, .m = m};
    alloc_call(&c);
    const grc_noise none = {0};
    grc_workspace *ws;
    CHECK(grc_workspace_create(2, GRC_ISA_AUTO, &ws) == GRC_OK, "create");
    CHECK(grc_loss(ws, c.s, m, c.theta, c.inputs, c.targets, none, NULL, REG, c.terms) == GRC_OK, "live");
    grc_workspace_destroy(ws);
    for (int twice = 0; twice < 2; twice++) {
        CHECK(grc_forward(ws, c.s, m, c.theta, c.inputs, none, NULL, NULL, c.u, c.y, c.x_end) == GRC_EWORKSPACE, "dead");
        CHECK(grc_loss(ws, c.s, m, c.theta, c.inputs, c.targets, none, NULL, REG, c.terms) == GRC_EWORKSPACE, "dead");
        CHECK(grc_gradient(ws, c.s, m, c.theta, c.inputs, c.targets, none, NULL, REG, c.terms, c.grad, c.sq)
              == GRC_EWORKSPACE, "dead");
        CHECK(grc_gn_product(ws, c.s, m, c.theta, c.inputs, NULL, c.u, c.y, c.v, REG, 0.1, c.gv) == GRC_EWORKSPACE,
              "dead");
        CHECK(grc_workspace_threads(ws) == GRC_EWORKSPACE && grc_workspace_isa(ws) == GRC_EWORKSPACE
              && grc_workspace_bytes(ws) == 0, "dead workspace queries");
        grc_workspace_destroy(ws);                         /* a detected second destroy does nothing */
    }
    uint64_t fake[16] = {0};                               /* never from grc_workspace_create */
    CHECK(grc_loss((grc_workspace *)fake, c.s, m, c.theta, c.inputs, c.targets, none, NULL, REG, c.terms)
          == GRC_EWORKSPACE, "fake workspace");
    CHECK(grc_step((grc_stepper *)fake, 1, c.inputs, none, c.x0, c.u, c.y) == GRC_EWORKSPACE, "fake stepper");
    grc_stepper *st;
    const grc_shape ss = {3, 2, 2, 2, 1, 0};
    CHECK(grc_stepper_create(ss, m, c.theta, 1, GRC_ISA_AUTO, &st) == GRC_OK, "stepper");
    grc_stepper_destroy(st);
    CHECK(grc_stepper_start(st, 1, NULL, c.x0, c.u, c.y) == GRC_EWORKSPACE, "dead stepper start");
    CHECK(grc_stepper_outputs(st, 1, c.x0, c.u, c.y) == GRC_EWORKSPACE, "dead stepper outputs");
    CHECK(grc_step(st, 1, c.inputs, none, c.x0, c.u, c.y) == GRC_EWORKSPACE, "dead stepper step");
    grc_stepper_destroy(st);
    free_call(&c);
}

static void stepper_rounds(long rounds)
{
    for (long r = 0; r < rounds; r++) {
        int want_model;
        const grc_model m = draw_model(&want_model);
        grc_shape s = draw_shape(&m);
        s.n_steps = 1;
        const int isa = (int)below(6) - 1;                 /* -1 and 4: unknown */
        const int threads = below(4) ? (int)below(9) : (int)extreme();
        int want = threads < 0 || threads > GRC_MAX_THREADS ? GRC_ETHREADS
                   : isa < GRC_ISA_AUTO || isa > GRC_ISA_AVX512
                             || (isa != GRC_ISA_AUTO && !grc_isa_available(isa)) ? GRC_EISA
                   : want_model ? want_model : expected_shape(&s, &m);
        if (want == 1)
            want = GRC_ESHAPE + 100;                       /* either; theta not allocated: skip */
        const int64_t N = s.n_units;
        const int64_t P = want == GRC_OK ? N * (N + s.n_in + 1 + s.n_out + s.n_code) : 1;
        double *theta = array(P, 1.0);
        const int nan = want == GRC_OK && below(10) == 0;
        if (nan)
            theta[below(P)] = NAN;
        grc_stepper *st = NULL;
        if (want == GRC_ESHAPE + 100) {
            free(theta);
            continue;
        }
        int rc = grc_stepper_create(s, m, theta, threads, isa, &st);
        const int want_create = nan ? GRC_ENONFINITE : want;
        CHECK(rc == want_create && (rc == GRC_OK) == (st != NULL), "grc_stepper_create: %d, want %d", rc, want_create);
        free(theta);                                        /* the stepper keeps its own copy */
        if (!st)
            continue;
        for (int k = 0; k < 4; k++) {
            int64_t B = below(3) ? 1 + below(s.n_trials) : extreme();
            const int ok = B >= 1 && B <= s.n_trials;
            const int64_t nb = ok ? B : 1;
            double *x = array(nb * N, 1.0), *u = array(nb * N, 0.0), *y = array(nb * s.n_out, 0.0);
            double *in = array(nb * s.n_in, 1.0), *codes = array(nb * s.n_code, 1.0);
            const grc_noise z = {NULL, below(2) ? 0.1 : 0.0, 7, 0, r};
            const int64_t want_b = ok ? GRC_OK : GRC_ESHAPE;
            rc = grc_stepper_start(st, B, codes, x, u, y);
            CHECK(rc == want_b, "grc_stepper_start(B=%lld): %d", (long long)B, rc);
            rc = grc_step(st, B, in, z, x, u, y);
            CHECK(rc == want_b, "grc_step(B=%lld): %d", (long long)B, rc);
            rc = grc_stepper_outputs(st, B, x, u, y);
            CHECK(rc == want_b, "grc_stepper_outputs(B=%lld): %d", (long long)B, rc);
            if (ok) {
                CHECK(grc_step(st, B, x, z, x, u, y) == GRC_EOVERLAP, "step: inputs are x");
                CHECK(grc_step(st, B, in, z, x, x, y) == GRC_EOVERLAP, "step: u is x");
                CHECK(grc_step(st, B, in, (grc_noise){u, 0, 0, 0, 0}, x, u, y) == GRC_EOVERLAP, "step: xi is u");
                CHECK(grc_stepper_outputs(st, B, x, u, x) == GRC_EOVERLAP, "outputs: y is x");
                CHECK(grc_step(st, B, NULL, z, x, u, y) == GRC_ENULL, "step: inputs NULL");
                in[below(nb * s.n_in)] = INFINITY;
                CHECK(grc_step(st, B, in, z, x, u, y) == GRC_ENONFINITE, "step: inf input");
            }
            free(x), free(u), free(y), free(in), free(codes);
        }
        grc_stepper_destroy(st);
    }
}

/* grc_noise_fill and the network helpers at the limits. */
static void helper_rounds(long rounds)
{
    double centres[6] = {0.1, 0.2, -0.3, 0.4, 0.5, -0.6};
    grc_net net = {.shape = {2, 2, 3, 1, 1, 0}, .model = {0.1, GRC_PHI_RELU, GRC_READOUT_PLACE_CELLS, GRC_X0_ZERO},
                   .n_place_cells = 3, .centres = centres, .decoder_k = 2, .pc_sigma = 0.2};
    for (long r = 0; r < rounds; r++) {
        const int64_t B = below(2) ? 1 + below(5) : extreme();
        const int ok = B >= 1 && B <= GRC_MAX_DIM;
        if (ok && B > 4096)
            continue;                                     /* valid but too big to allocate here */
        const int64_t nb = ok ? B : 1;
        double *y = array(nb * 3, 1.0), *pos = array(nb * 2, 1.0), *code = array(nb * 3, 0.0);
        const int want = ok ? GRC_OK : GRC_ESHAPE;
        int rc = grc_net_decode(&net, B, y, pos);
        CHECK(rc == want, "grc_net_decode(B=%lld): %d", (long long)B, rc);
        rc = grc_net_place_code(&net, B, pos, code);
        CHECK(rc == want, "grc_net_place_code(B=%lld): %d", (long long)B, rc);
        if (ok) {
            CHECK(grc_net_decode(&net, B, y, y) == GRC_EOVERLAP, "decode in place");
            CHECK(grc_net_place_code(&net, B, code, code) == GRC_EOVERLAP, "place code in place");
        }
        free(y), free(pos), free(code);
        grc_shape s = {1 + below(4), 1, 1, 1 + below(4), 1 + below(4), 0};
        int64_t *field[] = {&s.n_units, &s.n_trials, &s.n_steps};
        if (below(2))
            *field[below(3)] = extreme();
        const __int128 n = (__int128)s.n_units * s.n_trials * s.n_steps;
        const int valid = s.n_units >= 1 && s.n_trials >= 1 && s.n_steps >= 1 && s.n_units <= GRC_MAX_DIM
                          && s.n_trials <= GRC_MAX_DIM && s.n_steps <= GRC_MAX_DIM;
        if (valid && n > 4096)
            continue;                                     /* valid but too big to allocate here */
        double *out = array(valid ? (int64_t)n : 1, 0.0);
        rc = grc_noise_fill((grc_noise){NULL, 0.5, next(), below(9), below(9)}, s, out);
        CHECK(rc == (valid ? GRC_OK : GRC_ESHAPE), "grc_noise_fill: %d", rc);
        free(out);
    }
}

static void put64(unsigned char *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> 8 * i); }
static void put32(unsigned char *b, uint32_t v) { for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> 8 * i); }
static void putf(unsigned char *b, double d) { uint64_t v; memcpy(&v, &d, 8); put64(b, v); }

/* Network files (format 1, docs/c_api.md): a valid one, then mutated headers,
 * sizes near the limits and truncations; any status but a crash, and a
 * loaded network is consistent. */
static void net_file_rounds(long rounds, const char *path)
{
    enum { N = 3, P = N * (N + 2 + 1 + 2) };
    unsigned char file[128 + 8 * P];
    memset(file, 0, sizeof file);
    memcpy(file, "GRCNET\r\n", 8);
    put32(file + 8, 1), put32(file + 12, 128);
    put64(file + 16, N), put64(file + 24, 2), put64(file + 32, 2);    /* N, Nin, Nout; Nc = Np = k = 0 */
    putf(file + 88, 0.1), putf(file + 96, 2.0);
    put64(file + 120, P);
    for (int i = 0; i < P; i++)
        putf(file + 128 + 8 * i, uniform());
    for (long r = 0; r < rounds; r++) {
        unsigned char f[sizeof file];
        memcpy(f, file, sizeof f);
        size_t len = sizeof f;
        if (r > 0) {
            for (int k = 1 + (int)below(3); k > 0; k--) {
                switch (below(4)) {
                case 0: f[below(128)] = (unsigned char)next(); break;
                case 1: put64(f + 16 + 8 * below(6), (uint64_t)extreme()); break;
                case 2: put64(f + 120, (uint64_t)extreme()); break;
                default: len = (size_t)below((int64_t)sizeof f); break;
                }
            }
        }
        FILE *out = fopen(path, "wb");
        CHECK(out && fwrite(f, 1, len, out) == len && fclose(out) == 0, "writing %s", path);
        grc_net *net = NULL;
        const int rc = grc_net_load(path, &net);
        CHECK(rc <= 0 && rc >= GRC_EOVERLAP && (rc == GRC_OK) == (net != NULL), "grc_net_load: %d", rc);
        if (r == 0)
            CHECK(rc == GRC_OK, "the valid network file: %d", rc);
        if (net) {
            grc_layout lay;
            CHECK(grc_param_layout(net->shape, net->model, &lay) == GRC_OK, "loaded net's layout");
            grc_net_free(net);
        }
    }
    CHECK(grc_net_load("/nonexistent/gridcore.net", &(grc_net *){NULL}) == GRC_EIO, "missing file");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: fuzz_abi SEED ROUNDS TMPFILE\n");
        return 2;
    }
    state = strtoull(argv[1], NULL, 10);
    const long rounds = strtol(argv[2], NULL, 10);
    CHECK(grc_abi_version() == GRC_ABI_VERSION, "ABI version");
    for (int code = 0; code >= GRC_EOVERLAP; code--)
        CHECK(strcmp(grc_strerror(code), grc_strerror(1)) != 0, "no message for status %d", code);
    CHECK(grc_max_threads() >= 1 && grc_max_threads() <= GRC_MAX_THREADS, "grc_max_threads");
    dead_objects();
    workspace_rounds(rounds);
    stepper_rounds(rounds / 4);
    helper_rounds(rounds);
    net_file_rounds(rounds, argv[3]);
    printf("cases %ld\n", cases);
    return 0;
}
