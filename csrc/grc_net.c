/*
 * grc_net.c - networks exported by `python -m gridcore export` (format 1,
 * written by gridcore/sim/netfile.py, documented in docs/c_api.md): the
 * loader, and the decoding and place-cell code that drive such a network
 * from positions. No Python, no zip: a fixed header and float64 arrays,
 * little-endian, read byte by byte so the host's byte order does not matter.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridcore.h"
#include "grc_internal.h"

#define HEADER_BYTES 128
static const unsigned char MAGIC[8] = {'G', 'R', 'C', 'N', 'E', 'T', '\r', '\n'};
/* inputs per step of each GRC_ENC_* code (gridcore.sim.trajectories.ENCODINGS) */
static const int64_t ENC_INPUTS[3] = {2, 3, 2};

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static int32_t le32(const unsigned char *b)
{
    return (int32_t)(uint32_t)(b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

static double lef64(const unsigned char *b)
{
    const uint64_t v = le64(b);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* n float64 of the file into out; GRC_EFORMAT if it ends first, GRC_ENONFINITE for NaN or inf. */
static int read_doubles(FILE *f, double *out, int64_t n)
{
    unsigned char buf[8 * 512];
    int nonfinite = 0;
    for (int64_t i = 0; i < n;) {
        const size_t want = (size_t)(n - i < 512 ? n - i : 512);
        if (fread(buf, 8, want, f) != want)
            return ferror(f) ? GRC_EIO : GRC_EFORMAT;
        for (size_t k = 0; k < want; k++, i++) {
            out[i] = lef64(buf + 8 * k);
            nonfinite |= !isfinite(out[i]);
        }
    }
    return nonfinite ? GRC_ENONFINITE : GRC_OK;
}

/* The header's sizes and codes against each other (the arrays come after). */
static int check_header(const grc_net *n, int64_t n_theta)
{
    grc_layout lay;
    int rc = grc_param_layout(n->shape, n->model, &lay);
    if (rc)
        return rc;
    if (n_theta != lay.size || n->encoding < 0 || n->encoding > 2
        || n->shape.n_in != ENC_INPUTS[n->encoding] || n->arena < GRC_ARENA_SQUARE
        || n->arena > GRC_ARENA_CIRCLE || !(n->arena_size > 0.0))
        return GRC_EFORMAT;
    const int64_t np = n->n_place_cells;
    const int pc = n->model.readout == GRC_READOUT_PLACE_CELLS,
              enc = n->model.initial_state == GRC_X0_ENCODED;
    if (!pc && !enc)
        return np == 0 && n->decoder_k == 0 ? GRC_OK : GRC_EFORMAT;
    if (np < 1 || np > GRC_MAX_DIM || (pc && n->shape.n_out != np) || (enc && n->shape.n_code != np)
        || n->decoder_k < 1 || n->decoder_k > np || !(n->pc_sigma > 0.0)
        || (n->pc_surround != 0 && n->pc_surround != 1) || !(n->pc_surround_scale > 1.0))
        return GRC_EFORMAT;
    return GRC_OK;
}

static int load(FILE *f, grc_net *n)
{
    unsigned char h[HEADER_BYTES];
    if (fread(h, 1, HEADER_BYTES, f) != HEADER_BYTES)
        return ferror(f) ? GRC_EIO : GRC_EFORMAT;
    if (memcmp(h, MAGIC, 8) != 0 || le32(h + 8) != GRC_NET_FORMAT_VERSION || le32(h + 12) != HEADER_BYTES)
        return GRC_EFORMAT;
    n->shape = (grc_shape){(int64_t)le64(h + 16), (int64_t)le64(h + 24), (int64_t)le64(h + 32), 1, 1,
                           (int64_t)le64(h + 40)};
    n->n_place_cells = (int64_t)le64(h + 48);
    n->decoder_k = (int64_t)le64(h + 56);
    n->model = (grc_model){lef64(h + 88), le32(h + 64), le32(h + 68), le32(h + 72)};
    n->encoding = le32(h + 76);
    n->arena = le32(h + 80);
    n->pc_surround = le32(h + 84);
    n->arena_size = lef64(h + 96);
    n->pc_sigma = lef64(h + 104);
    n->pc_surround_scale = lef64(h + 112);
    const int64_t n_theta = (int64_t)le64(h + 120);
    if (!isfinite(n->model.alpha) || !isfinite(n->arena_size) || !isfinite(n->pc_sigma)
        || !isfinite(n->pc_surround_scale))
        return GRC_ENONFINITE;
    int rc = check_header(n, n_theta);
    if (rc)
        return rc;
    n->theta = malloc((size_t)n_theta * sizeof(double));
    n->centres = n->n_place_cells ? malloc((size_t)(2 * n->n_place_cells) * sizeof(double)) : NULL;
    if (!n->theta || (n->n_place_cells && !n->centres))
        return GRC_ENOMEM;
    if ((rc = read_doubles(f, n->theta, n_theta))
        || (rc = read_doubles(f, n->centres, 2 * n->n_place_cells)))
        return rc;
    return fgetc(f) == EOF ? GRC_OK : GRC_EFORMAT;     /* nothing may follow */
}

int grc_net_load(const char *path, grc_net **out)
{
    if (!out)
        return GRC_ENULL;
    *out = NULL;
    if (!path)
        return GRC_ENULL;
    grc_net *n = calloc(1, sizeof *n);
    if (!n)
        return GRC_ENOMEM;
    FILE *f = fopen(path, "rb");
    const int rc = f ? load(f, n) : GRC_EIO;
    if (f)
        fclose(f);
    if (rc) {
        grc_net_free(n);
        return rc;
    }
    *out = n;
    return GRC_OK;
}

void grc_net_free(grc_net *net)
{
    if (net) {
        free(net->theta);
        free(net->centres);
        free(net);
    }
}

int grc_net_decode(const grc_net *net, int64_t n_agents, const double *y, double *pos)
{
    if (!net || !y || !pos)
        return GRC_ENULL;
    if (n_agents < 1 || n_agents > GRC_MAX_DIM)
        return GRC_ESHAPE;
    const int64_t no = net->shape.n_out, k = net->decoder_k;
    const grc__span out[1] = {GRC__SPAN(pos, 2 * n_agents)}, in[1] = {GRC__SPAN(y, n_agents * no)};
    int rc;
    if ((rc = grc__check_disjoint(out, 1, in, 1)))
        return rc;
    if (net->model.readout == GRC_READOUT_XY) {
        memcpy(pos, y, (size_t)(2 * n_agents) * sizeof(double));
        return GRC_OK;
    }
    enum { MAX_K = 64 };
    if (k > MAX_K)
        return GRC_ESHAPE;
    for (int64_t b = 0; b < n_agents; b++) {
        const double *yb = y + b * no;
        int64_t top[MAX_K];                    /* indices of the k largest, largest first */
        int64_t have = 0;
        for (int64_t i = 0; i < no; i++) {
            int64_t r = have < k ? have : k;   /* insertion point */
            while (r > 0 && yb[i] > yb[top[r - 1]])
                r--;
            if (r >= k)
                continue;
            for (int64_t j = (have < k ? have : k - 1); j > r; j--)
                top[j] = top[j - 1];
            top[r] = i;
            if (have < k)
                have++;
        }
        double sx = 0.0, sy = 0.0;
        for (int64_t j = 0; j < k; j++) {
            sx += net->centres[2 * top[j]];
            sy += net->centres[2 * top[j] + 1];
        }
        pos[2 * b] = sx / (double)k;
        pos[2 * b + 1] = sy / (double)k;
    }
    return GRC_OK;
}

/* The softmax of z[0..n) in place (z <= 0 with max 0: no overflow). */
static void softmax_in_place(double *z, int64_t n, double scale)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += z[i] = exp(z[i] * scale);
    for (int64_t i = 0; i < n; i++)
        z[i] /= s;
}

int grc_net_place_code(const grc_net *net, int64_t n_agents, const double *pos, double *code)
{
    if (!net || !pos || !code)
        return GRC_ENULL;
    const int64_t np = net->n_place_cells;
    if (np < 1 || n_agents < 1 || n_agents > GRC_MAX_DIM)
        return GRC_ESHAPE;
    const grc__span out[1] = {GRC__SPAN(code, n_agents * np)}, in[1] = {GRC__SPAN(pos, 2 * n_agents)};
    int rc;
    if ((rc = grc__check_disjoint(out, 1, in, 1)))
        return rc;
    for (int64_t b = 0; b < n_agents; b++) {
        double *c = code + b * np, zmin = INFINITY;
        for (int64_t i = 0; i < np; i++) {     /* d_i^2 */
            const double dx = pos[2 * b] - net->centres[2 * i], dy = pos[2 * b + 1] - net->centres[2 * i + 1];
            c[i] = dx * dx + dy * dy;
            zmin = c[i] < zmin ? c[i] : zmin;
        }
        const double w = -1.0 / (2.0 * net->pc_sigma * net->pc_sigma);
        for (int64_t i = 0; i < np; i++)       /* -d^2 / (2 sigma^2), max 0 */
            c[i] = (c[i] - zmin) * w;
        if (!net->pc_surround) {
            softmax_in_place(c, np, 1.0);
            continue;
        }
        /* difference of Gaussians, shifted to >= 0 and normalised (PlaceCells.encode) */
        double gmin = INFINITY, s = 0.0, centre_sum = 0.0, surround_sum = 0.0;
        for (int64_t i = 0; i < np; i++) {
            centre_sum += exp(c[i]);
            surround_sum += exp(c[i] / net->pc_surround_scale);
        }
        for (int64_t i = 0; i < np; i++) {
            c[i] = exp(c[i]) / centre_sum - exp(c[i] / net->pc_surround_scale) / surround_sum;
            gmin = c[i] < gmin ? c[i] : gmin;
        }
        for (int64_t i = 0; i < np; i++)
            s += c[i] -= gmin;
        for (int64_t i = 0; i < np; i++)
            c[i] /= s;
    }
    return GRC_OK;
}
