/*
 * closed_loop.c - a trained gridcore network driven one step at a time, as
 * inside an agent simulator: load a network exported with
 * `python -m gridcore export RUN_DIR net.grc`, read a path from a text file,
 * step the network along it and print its position estimate after each step.
 *
 *   make -C csrc && csrc/examples/closed_loop net.grc path.txt
 *
 * path.txt, one agent: blank lines and lines starting with '#' are skipped;
 * an optional first line "start X Y" gives the start position (arena units),
 * required when the network's initial state is encoded from it (x_0 = Wenc c,
 * c the place-cell code of the start), ignored otherwise (x_0 = 0: the
 * network assumes the arena centre); every other line holds the Nin inputs
 * of one step in the network's encoding (grc_net.encoding, arena units per
 * step and radians; gridcore.sim.trajectories.encode makes them).
 *
 * Output: one line "t x y" per state, t = 0 (the start) .. number of steps,
 * the position the outputs decode to (grc_net_decode), printed with 17
 * significant digits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcore.h"

static int fail(const char *what, int status)
{
    fprintf(stderr, "%s: %s (status %d)\n", what, grc_strerror(status), status);
    return 1;
}

static void print_estimate(const grc_net *net, long t, const double *y)
{
    double pos[2];
    grc_net_decode(net, 1, y, pos);
    printf("%ld %.17g %.17g\n", t, pos[0], pos[1]);
}

/* Step the network along the lines of `path`; 0 on success. */
static int run(const grc_net *net, grc_stepper *st, FILE *path)
{
    const int64_t N = net->shape.n_units, Nin = net->shape.n_in, Nout = net->shape.n_out;
    double *x = calloc((size_t)N, sizeof(double)), *u = calloc((size_t)N, sizeof(double));
    double *y = calloc((size_t)Nout, sizeof(double)), *in = calloc((size_t)Nin, sizeof(double));
    double *code = calloc((size_t)(net->n_place_cells + 1), sizeof(double));
    const int encoded = net->model.initial_state == GRC_X0_ENCODED;
    char line[4096];
    long t = 0, lineno = 0;
    int rc = 0, started = 0;
    if (!x || !u || !y || !in || !code) {
        rc = fail("allocation", GRC_ENOMEM);
        goto done;
    }
    while (fgets(line, sizeof line, path)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        if (!started) {
            double start[2];
            const int has_start = sscanf(p, "start %lf %lf", &start[0], &start[1]) == 2;
            if (encoded && !has_start) {
                fprintf(stderr, "line %ld: this network's initial state is encoded from the start "
                        "position: begin the path with \"start X Y\"\n", lineno);
                rc = 1;
                goto done;
            }
            if (encoded && (rc = grc_net_place_code(net, 1, start, code)))
                goto fail_rc;
            if ((rc = grc_stepper_start(st, 1, encoded ? code : NULL, x, u, y)))
                goto fail_rc;
            print_estimate(net, t, y);
            started = 1;
            if (has_start)
                continue;
        }
        for (int64_t k = 0; k < Nin; k++) {
            char *end;
            in[k] = strtod(p, &end);
            if (end == p) {
                fprintf(stderr, "line %ld: expected %lld inputs\n", lineno, (long long)Nin);
                rc = 1;
                goto done;
            }
            p = end;
        }
        /* no noise: a trained network is run noise-free (grc_noise {0}) */
        if ((rc = grc_step(st, 1, in, (grc_noise){0}, x, u, y)))
            goto fail_rc;
        print_estimate(net, ++t, y);
    }
    goto done;
fail_rc:
    rc = fail("gridcore", rc);
done:
    free(x);
    free(u);
    free(y);
    free(in);
    free(code);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s NET_FILE PATH_FILE\n", argv[0]);
        return 2;
    }
    if (grc_abi_version() != GRC_ABI_VERSION) {
        fprintf(stderr, "libgridcore has ABI version %d, this program was built for %d\n",
                grc_abi_version(), GRC_ABI_VERSION);
        return 1;
    }
    grc_net *net = NULL;
    int rc = grc_net_load(argv[1], &net);
    if (rc)
        return fail(argv[1], rc);
    FILE *path = fopen(argv[2], "r");
    if (!path) {
        perror(argv[2]);
        grc_net_free(net);
        return 1;
    }
    grc_stepper *st = NULL;            /* one agent, one thread, the widest instruction set */
    grc_shape shape = net->shape;
    shape.n_trials = 1;
    rc = grc_stepper_create(shape, net->model, net->theta, 1, GRC_ISA_AUTO, &st);
    rc = rc ? fail("grc_stepper_create", rc) : run(net, st, path);
    grc_stepper_destroy(st);
    fclose(path);
    grc_net_free(net);
    return rc;
}
