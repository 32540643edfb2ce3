/*
 * example.c - embedding gridcore's C core: a forward pass and a gradient on
 * a tiny network under the paper's model, then a gradient and a
 * Gauss-Newton product under Sorscher et al.'s place-cell model (softmax
 * readout over place cells, x_0 encoded from the start's place-cell code,
 * weight decay on Wrec), printed as checksums.
 *
 *   make -C csrc && csrc/examples/example [threads]
 *
 * threads: partitions of the trials (default 0: all cores). A given thread
 * count prints the same bits with or without OpenMP.
 *
 * The parameters and data come from closed formulas (below), so any other
 * implementation can rebuild the same problems and compare the checksums
 * (tests/test_c_core.py does, against the Python backend).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gridcore.h"

enum { N = 5, NIN = 2, NOUT = 2, M = 3, T = 7, P = N * (N + NIN + 1 + NOUT) };
/* the place-cell problem: NPC place cells, as outputs and as start code */
enum { NPC = 4, PPC = N * (N + NIN + 1 + NPC + NPC) };

static int fail(const char *what, int status)
{
    fprintf(stderr, "%s: %s\n", what, grc_strerror(status));
    return 1;
}

static double sum(const double *a, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i];
    return s;
}

/* rows of `cols` positive numbers 1 + 0.5 sin(f i + ph), each scaled to sum to 1 */
static void distributions(double *a, int rows, int cols, double f, double ph)
{
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int k = 0; k < cols; k++)
            s += a[r * cols + k] = 1.0 + 0.5 * sin(f * (r * cols + k) + ph);
        for (int k = 0; k < cols; k++)
            a[r * cols + k] /= s;
    }
}

/* The paper's model: y = (x, y) position, squared error, x_0 = 0. */
static int paper_model(grc_workspace *ws)
{
    static double theta[P], inputs[M * T * NIN], targets[M * T * NOUT];
    static double u[M * T * N], y[M * T * NOUT], x_end[M * N], grad[P];
    double terms[5];
    for (int i = 0; i < P; i++)
        theta[i] = 0.5 * sin(0.7 * i + 0.3);
    for (int i = 0; i < M * T * NIN; i++)
        inputs[i] = cos(1.3 * i);
    for (int i = 0; i < M * T * NOUT; i++)
        targets[i] = 0.4 * sin(0.5 * i);

    const grc_shape shape = {N, NIN, NOUT, M, T, 0};       /* n_code 0: no Wenc block */
    const grc_model model = {0.1, GRC_PHI_TANH, GRC_READOUT_XY, GRC_X0_ZERO};  /* the paper's */
    const grc_reg reg = {0.01, 0.02, 0.0};                  /* lam_l2, lam_fr, lam_rec */
    /* counter-based noise of std 0.1 and seed 42, made in the kernels: no array */
    const grc_noise noise = {NULL, 0.1, 42, 0, 0};
    grc_layout layout;                                      /* where Wout lies in theta */
    int rc = grc_param_layout(shape, model, &layout);
    if (rc)
        return fail("grc_param_layout", rc);
    if (layout.size != P)
        return fail("grc_param_layout: unexpected size", GRC_ESHAPE);
    rc = grc_forward(ws, shape, model, theta, inputs, noise, NULL, NULL, u, y, x_end);
    if (rc)
        return fail("grc_forward", rc);
    rc = grc_gradient(ws, shape, model, theta, inputs, targets, noise, NULL, reg, terms, grad, NULL);
    if (rc)
        return fail("grc_gradient", rc);
    printf("loss %.17g\n", terms[4]);
    printf("sum_y %.17g\n", sum(y, M * T * NOUT));
    printf("sum_grad %.17g\n", sum(grad, P));
    printf("sum_grad_wout %.17g\n", sum(grad + layout.off_wout, layout.size - layout.off_wout));
    return 0;
}

/* Sorscher et al.'s model: logits over NPC place cells, softmax cross-entropy
 * against the cells' code of the position; x_0 = Wenc c from the start's
 * code c; weight decay lam_rec on Wrec. */
static int place_cell_model(grc_workspace *ws)
{
    static double theta[PPC], inputs[M * T * NIN], targets[M * T * NPC], codes[M * NPC];
    static double u[M * T * N], y[M * T * NPC], x_end[M * N], grad[PPC], gv[PPC];
    double terms[5];
    for (int i = 0; i < PPC; i++)
        theta[i] = 0.5 * sin(0.9 * i + 0.1);
    for (int i = 0; i < M * T * NIN; i++)
        inputs[i] = cos(1.3 * i);
    distributions(targets, M * T, NPC, 0.5, 0.0);           /* each targets[m, t] sums to 1 */
    distributions(codes, M, NPC, 0.3, 1.0);

    const grc_shape shape = {N, NIN, NPC, M, T, NPC};       /* n_code: columns of Wenc */
    const grc_model model = {0.1, GRC_PHI_RELU, GRC_READOUT_PLACE_CELLS, GRC_X0_ENCODED};
    const grc_reg reg = {0.0, 0.02, 1e-3};
    const grc_noise no_noise = {0};
    grc_layout layout;                                      /* Wenc comes last */
    int rc = grc_param_layout(shape, model, &layout);
    if (rc)
        return fail("grc_param_layout", rc);
    if (layout.size != PPC || layout.off_wenc != PPC - N * NPC)
        return fail("grc_param_layout: unexpected layout", GRC_ESHAPE);
    rc = grc_forward(ws, shape, model, theta, inputs, no_noise, codes, NULL, u, y, x_end);
    if (rc)
        return fail("grc_forward", rc);
    rc = grc_gradient(ws, shape, model, theta, inputs, targets, no_noise, codes, reg, terms, grad, NULL);
    if (rc)
        return fail("grc_gradient", rc);
    /* G v needs the forward pass's rates u and (for the softmax) outputs y; v = theta here */
    rc = grc_gn_product(ws, shape, model, theta, inputs, codes, u, y, theta, reg, 0.1, gv);
    if (rc)
        return fail("grc_gn_product", rc);
    printf("pc_loss %.17g\n", terms[4]);
    printf("pc_E %.17g\n", terms[0]);
    printf("pc_sum_y %.17g\n", sum(y, M * T * NPC));
    printf("pc_sum_grad %.17g\n", sum(grad, PPC));
    printf("pc_sum_grad_wenc %.17g\n", sum(grad + layout.off_wenc, layout.size - layout.off_wenc));
    printf("pc_sum_gv %.17g\n", sum(gv, PPC));
    return 0;
}

int main(int argc, char **argv)
{
    /* A library built from another header would misread every call: refuse it. */
    if (grc_abi_version() != GRC_ABI_VERSION) {
        fprintf(stderr, "libgridcore has ABI version %d, this program was built for %d\n",
                grc_abi_version(), GRC_ABI_VERSION);
        return 1;
    }
    grc_workspace *ws = NULL;              /* create once, reuse for every call */
    const int threads = argc > 1 ? atoi(argv[1]) : 0;
    int rc = grc_workspace_create(threads, GRC_ISA_AUTO, &ws);
    if (rc)
        return fail("grc_workspace_create", rc);
    printf("abi %d\nthreads %d\nisa %s\nopenmp %d\n", grc_abi_version(),
           grc_workspace_threads(ws), grc_isa_name(grc_workspace_isa(ws)), grc_openmp_enabled());
    rc = paper_model(ws) || place_cell_model(ws);
    grc_workspace_destroy(ws);
    return rc;
}
