/*
 * gridcore.h - the C core of gridcore: a continuous-time RNN (Euler, tanh)
 * trained on path integration. Forward pass, loss, BPTT gradient and
 * Gauss-Newton-vector product, multithreaded over trials, float64.
 *
 * The maths (equation labels F1-F3, L1-L4, B1-B7, G1-G5) is in docs/math.md;
 * embedding guide: docs/c_api.md. This header is the single source of the
 * declarations: the cffi builder (python/build_gridcore.py) reads the part
 * between GRC_CDEF_BEGIN and GRC_CDEF_END, so that part holds only plain C
 * declarations (no preprocessor lines besides integer #defines).
 *
 * Conventions for every kernel
 * ----------------------------
 * Shapes: M trials, T time steps, N units, Nin inputs, Nout outputs.
 * All arrays are float64, C-contiguous (row-major), not aliasing each other.
 *   theta   [P], P = N*N + N*Nin + N + Nout*N: the flat parameter vector in
 *           the order [Wrec (N,N), Win (N,Nin), b (N), Wout (Nout,N)], each
 *           block row-major; Wrec[i*N + j] is the weight from unit j to unit i.
 *   inputs  [M*T*Nin], (M, T, Nin): inputs[m, t] drives the step x_t -> x_{t+1}.
 *   noise   [M*T*N],   (M, T, N) or NULL: xi_t, added inside the step like b.
 *   targets [M*T*Nout], (M, T, Nout): desired outputs y_t.
 *   u       [M*T*N],   (M, T, N): rates u_t = tanh(x_t), t = 0..T-1.
 *   y       [M*T*Nout], (M, T, Nout): outputs y_t = Wout u_t.
 * alpha = dt/tau in (0, 1]. x_0 = 0 unless an initial state is given.
 *
 * Threads and determinism: a workspace runs each call over `threads`
 * partitions of the trials (partition p owns the contiguous trials
 * [p*M/n, (p+1)*M/n), n = min(threads, M)), each with its own partial sums,
 * added in partition order. The same thread count therefore gives the same
 * bits, with or without OpenMP (a serial build runs the partitions one after
 * the other). Different thread counts agree to round-off.
 *
 * Thread safety: a workspace is used by one call at a time. Use one
 * workspace per calling thread; distinct workspaces may run concurrently.
 *
 * Status: every function returning int returns GRC_OK (0) or a negative
 * GRC_E* code; grc_strerror() turns it into a message. Outputs are
 * unspecified after an error.
 */
#ifndef GRIDCORE_H
#define GRIDCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GRC_CDEF_BEGIN */

#define GRC_OK 0
#define GRC_ENOMEM -1      /* scratch memory could not be allocated */
#define GRC_ESHAPE -2      /* a dimension is < 1 or the sizes overflow */
#define GRC_ENULL -3       /* a required pointer is NULL */
#define GRC_EALPHA -4      /* alpha is not in (0, 1] */
#define GRC_EREG -5        /* lam_l2, lam_fr or mu is negative or not finite */
#define GRC_EISA -6        /* the requested instruction set is unknown or not supported by this CPU */
#define GRC_ETHREADS -7    /* threads is negative */

/* Instruction sets of the compute kernels, chosen per workspace. */
#define GRC_ISA_AUTO 0     /* the widest one this CPU supports */
#define GRC_ISA_GENERIC 1  /* baseline of the build target (SSE2 on x86-64), 2-wide */
#define GRC_ISA_AVX2 2     /* x86-64-v3: AVX2 + FMA, 4-wide */
#define GRC_ISA_AVX512 3   /* x86-64-v4: AVX-512, 8-wide */

/* Opaque scratch memory and settings of one caller; see grc_workspace_create. */
typedef struct grc_workspace grc_workspace;

/* The dimensions of one call. All must be >= 1.
 *   n_units  N     n_in  Nin     n_out  Nout
 *   n_trials M     n_steps T */
typedef struct grc_shape {
    int64_t n_units;
    int64_t n_in;
    int64_t n_out;
    int64_t n_trials;
    int64_t n_steps;
} grc_shape;

/* Message for a status code (a static string; never NULL). */
const char *grc_strerror(int status);

/* 1 if this library was compiled with OpenMP, else 0. */
int grc_openmp_enabled(void);

/* Threads used when a workspace is created with threads = 0: OpenMP's
 * omp_get_max_threads() (honours OMP_NUM_THREADS), 1 in a serial build. */
int grc_max_threads(void);

/* 1 if `isa` (a GRC_ISA_* code other than AUTO) was compiled in and this CPU
 * supports it, else 0. */
int grc_isa_available(int isa);

/* Name of a GRC_ISA_* code ("auto", "generic", "avx2", "avx512"), or "unknown". */
const char *grc_isa_name(int isa);

/* The compiler flags this library was built with (a static string). */
const char *grc_build_flags(void);

/* Create a workspace.
 *   threads  in : partitions of the trials (= OpenMP threads) per call;
 *                 0 means grc_max_threads(); must be >= 0.
 *   isa      in : a GRC_ISA_* code; GRC_ISA_AUTO picks the widest available.
 *   out      out: the new workspace (NULL on error).
 * Scratch memory is allocated by the kernels on first use, grown when a call
 * needs more and kept for the next call; grc_workspace_destroy frees it. */
int grc_workspace_create(int threads, int isa, grc_workspace **out);

/* Free a workspace and its scratch memory. NULL is allowed. */
void grc_workspace_destroy(grc_workspace *ws);

/* Thread count (partitions per call) of a workspace. */
int grc_workspace_threads(const grc_workspace *ws);

/* GRC_ISA_* code a workspace runs (never GRC_ISA_AUTO). */
int grc_workspace_isa(const grc_workspace *ws);

/* Bytes of scratch memory a workspace currently holds. */
size_t grc_workspace_bytes(const grc_workspace *ws);

/* Forward pass (math.md eq. F1-F3); also the streaming mode for long paths.
 *   ws      in/out: workspace.
 *   shape   in : N, Nin, Nout, M, T.
 *   theta   in : [P], flat parameters (see above).
 *   inputs  in : [M*T*Nin].
 *   noise   in : [M*T*N] or NULL (no noise).
 *   x0      in : [M*N], (M, N), initial activations x_0, or NULL (x_0 = 0).
 *   alpha   in : dt/tau in (0, 1].
 *   u       out: [M*T*N] rates u_t, or NULL not to store them (streaming:
 *                scratch memory is then O(M*N) whatever T).
 *   y       out: [M*T*Nout] outputs y_t.
 *   x_end   out: [M*N], (M, N), x_T: the state after the last input; pass
 *                it as x0 to continue the same trials.
 * x0 may be the same array as x_end (continuing in place); no other overlap. */
int grc_forward(grc_workspace *ws, grc_shape shape, const double *theta,
                const double *inputs, const double *noise, const double *x0,
                double alpha, double *u, double *y, double *x_end);

/* Loss terms (math.md eq. L1-L4) from a forward pass that stores no states.
 *   ws, shape, theta, inputs, noise, alpha: as for grc_forward (x_0 = 0).
 *   targets in : [M*T*Nout].
 *   lam_l2, lam_fr in: regularisation weights, finite and >= 0.
 *   terms   out: [4] = {E, R_L2, R_FR, loss}, with
 *                E = mean (y - targets)^2 over M*T*Nout,
 *                R_L2 = sum Win^2/(N Nin) + sum Wout^2/(N Nout),
 *                R_FR = mean u^2 over M*T*N,
 *                loss = E + lam_l2 R_L2 + lam_fr R_FR. */
int grc_loss(grc_workspace *ws, grc_shape shape, const double *theta,
             const double *inputs, const double *targets, const double *noise,
             double alpha, double lam_l2, double lam_fr, double *terms);

/* Loss terms and their gradient by BPTT (math.md eq. B1-B6), and optionally
 * the mean over trials of the squared per-trial gradients (eq. B7).
 *   ws, shape, theta, inputs, targets, noise, alpha, lam_l2, lam_fr, terms:
 *           as for grc_loss.
 *   grad    out: [P], d loss / d theta in theta's order.
 *   sq      out: [P] or NULL: mean_m (dL_m/dtheta)^2 where loss = mean_m L_m
 *                (L_m: trial m's loss, L2 term included in each).
 * Scratch memory: per thread, the states of up to 32 trials (about
 * 2*(T+1)*N doubles per trial), not the whole batch. */
int grc_gradient(grc_workspace *ws, grc_shape shape, const double *theta,
                 const double *inputs, const double *targets, const double *noise,
                 double alpha, double lam_l2, double lam_fr, double *terms,
                 double *grad, double *sq);

/* Gauss-Newton matrix times a vector, G v (math.md eq. G1-G5):
 * G = J_y' H_y J_y + J_u' H_u J_u + lam_l2 Hess(R_L2), with
 * H_y = 2/(M T Nout) I and H_u = 2 (lam_fr + mu)/(N T M) I.
 *   ws, shape, theta, inputs, alpha, lam_l2, lam_fr: as for grc_gradient.
 *   u       in : [M*T*N], the rates of the forward pass of these inputs
 *                (and their noise) under theta, as grc_forward returns them.
 *   v       in : [P], the vector, in theta's order.
 *   mu      in : structural damping weight, finite and >= 0.
 *   gv      out: [P], G v.
 * Scratch memory: per thread, about (T+1)*N doubles per trial for up to 32
 * trials at a time; the stored states u are read, never copied whole. */
int grc_gn_product(grc_workspace *ws, grc_shape shape, const double *theta,
                   const double *inputs, const double *u, const double *v,
                   double alpha, double lam_l2, double lam_fr, double mu,
                   double *gv);

/* GRC_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* GRIDCORE_H */
