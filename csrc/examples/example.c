/*
 * example.c - embedding gridcore's C core: a forward pass and a gradient on
 * a tiny network under the paper's model, printed as checksums.
 *
 *   make -C csrc && csrc/examples/example [threads]
 *
 * threads: partitions of the trials (default 0: all cores). A given thread
 * count prints the same bits with or without OpenMP.
 *
 * The parameters and data come from closed formulas (below), so any other
 * implementation can rebuild the same problem and compare the checksums
 * (tests/test_c_core.py does, against the Python backend).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gridcore.h"

enum { N = 5, NIN = 2, NOUT = 2, M = 3, T = 7, P = N * (N + NIN + 1 + NOUT) };

static int fail(const char *what, int status)
{
    fprintf(stderr, "%s: %s\n", what, grc_strerror(status));
    return 1;
}

int main(int argc, char **argv)
{
    static double theta[P], inputs[M * T * NIN], targets[M * T * NOUT];
    static double u[M * T * N], y[M * T * NOUT], x_end[M * N], grad[P];
    double terms[4];
    for (int i = 0; i < P; i++)
        theta[i] = 0.5 * sin(0.7 * i + 0.3);
    for (int i = 0; i < M * T * NIN; i++)
        inputs[i] = cos(1.3 * i);
    for (int i = 0; i < M * T * NOUT; i++)
        targets[i] = 0.4 * sin(0.5 * i);

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
    const grc_shape shape = {N, NIN, NOUT, M, T};
    const grc_model model = {0.1, GRC_PHI_TANH, GRC_READOUT_XY, GRC_X0_ZERO};  /* the paper's */
    const double lam_l2 = 0.01, lam_fr = 0.02;
    grc_layout layout;                     /* where Wout lies in theta */
    rc = grc_param_layout(shape, model, &layout);
    if (rc)
        return fail("grc_param_layout", rc);
    if (layout.size != P)
        return fail("grc_param_layout: unexpected size", GRC_ESHAPE);
    rc = grc_forward(ws, shape, model, theta, inputs, NULL, NULL, u, y, x_end);
    if (rc)
        return fail("grc_forward", rc);
    rc = grc_gradient(ws, shape, model, theta, inputs, targets, NULL, lam_l2, lam_fr,
                      terms, grad, NULL);
    if (rc)
        return fail("grc_gradient", rc);

    double sum_y = 0.0, sum_grad = 0.0, sum_grad_wout = 0.0;
    for (int i = 0; i < M * T * NOUT; i++)
        sum_y += y[i];
    for (int i = 0; i < P; i++)
        sum_grad += grad[i];
    for (int64_t i = layout.off_wout; i < layout.size; i++)
        sum_grad_wout += grad[i];
    printf("abi %d\nthreads %d\nisa %s\nopenmp %d\n", grc_abi_version(),
           grc_workspace_threads(ws), grc_isa_name(grc_workspace_isa(ws)), grc_openmp_enabled());
    printf("loss %.17g\n", terms[3]);
    printf("sum_y %.17g\n", sum_y);
    printf("sum_grad %.17g\n", sum_grad);
    printf("sum_grad_wout %.17g\n", sum_grad_wout);
    grc_workspace_destroy(ws);
    return 0;
}
