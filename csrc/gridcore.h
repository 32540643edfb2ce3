/*
 * gridcore.h - the C core of gridcore: a continuous-time RNN (Euler step,
 * rate function phi) trained on path integration. Forward pass, loss, BPTT
 * gradient and Gauss-Newton-vector product, multithreaded over trials, in
 * float64 (grc_forward, ...) or float32 (grc_forward_f32, ...).
 *
 * The maths (equation labels F1-F3, L1-L4, B1-B7, G1-G5) is in docs/math.md;
 * embedding guide: docs/c_api.md. This header is the single source of the
 * declarations: the cffi builder (python/build_gridcore.py) reads the part
 * between GRC_CDEF_BEGIN and GRC_CDEF_END, so that part holds only plain C
 * declarations (no preprocessor lines besides integer #defines).
 *
 * Conventions for every kernel
 * ----------------------------
 * Shapes: M trials, T time steps, N units, Nin inputs, Nout outputs, Nc
 * entries of a start code (0 unless the initial state is encoded).
 * All arrays are float64 (the _f32 functions: float trial arrays, see
 * "float32" below), C-contiguous (row-major), not aliasing each other.
 *   theta   [P]: the flat parameter vector. Its blocks and their offsets are
 *           given by grc_param_layout (the one coding of the layout); today
 *           [Wrec (N,N), Win (N,Nin), b (N), Wout (Nout,N), Wenc (N,Nc)],
 *           each block row-major, P = N*N + N*Nin + N + Nout*N + N*Nc;
 *           Wrec[i*N + j] is the weight from unit j to unit i. Wenc is
 *           empty (Nc = 0) unless model.initial_state == GRC_X0_ENCODED.
 *   inputs  [M*T*Nin], (M, T, Nin): inputs[m, t] drives the step x_t -> x_{t+1}.
 *   noise   grc_noise: xi_t, added inside the step like b: an (M, T, N)
 *           array, counter-based noise computed in the kernels, or none.
 *   codes   [M*Nc],    (M, Nc) or NULL: c_m, trial m's start code; the
 *           encoded initial state is x_0 = Wenc c_m. Required (GRC_ENULL)
 *           exactly when the model's initial state is GRC_X0_ENCODED
 *           (grc_forward: and no x0 is given); ignored otherwise.
 *   targets [M*T*Nout], (M, T, Nout): desired outputs y_t; under
 *           GRC_READOUT_PLACE_CELLS each row targets[m, t] is a probability
 *           distribution (>= 0, summing to 1; the caller's contract).
 *   u       [M*T*N],   (M, T, N): rates u_t = phi(x_t), t = 0..T-1.
 *   y       [M*T*Nout], (M, T, Nout): outputs y_t = Wout u_t (logits under
 *           GRC_READOUT_PLACE_CELLS).
 * The model (alpha = dt/tau, phi, readout, x_0) travels in a grc_model, the
 * regularisation weights in a grc_reg.
 *
 * The caller's contract:
 *   - Lengths: every pointer argument points to an array of at least the
 *     length given above for the call's shape and model. The C side cannot
 *     check it: a short array is read or written out of bounds.
 *   - Values: theta, inputs, targets, codes, x0, v (and the stepper's
 *     inputs, x, codes) are checked for NaN and inf (GRC_ENONFINITE); the
 *     large arrays noise.xi, u and y are not (the check would cost a pass
 *     over M*T*N numbers) and must be finite; place-cell targets must be
 *     distributions.
 *   - Aliasing: no output array may share memory with another output or
 *     with an input (grc_forward's x0 may be x_end itself, and grc_step's x
 *     is read and written in place). Every call compares the address ranges
 *     its shape gives (a few comparisons, no pass over the data) and returns
 *     GRC_EOVERLAP; inputs may share memory with each other.
 *   - Workspaces and steppers are used only between their create and their
 *     destroy (see GRC_EWORKSPACE: detecting a destroyed one is best effort).
 * The Python wrappers (gridcore/backends/c/backend.py, gridcore/sim/stepper.py)
 * check all of this before calling and hand C only arrays they allocated
 * for the outputs.
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

/* Version of the binary interface: the declarations below. It goes up by one
 * with ANY change to a function signature, a struct, or the value or meaning
 * of a code (#define) here; a caller compiled against one version must refuse
 * a library reporting another (grc_abi_version). History: 1, the unversioned
 * interface taking `double alpha`; 2, grc_model, grc_param_layout, the
 * thread and size caps, GRC_EMODEL and GRC_EWORKSPACE; 3, the place-cell
 * readout (GRC_READOUT_PLACE_CELLS) and the encoded initial state
 * (GRC_X0_ENCODED: grc_shape.n_code, grc_layout.off_wenc, the `codes`
 * argument), grc_reg by value with lam_rec (terms[5] with R_rec), and the
 * outputs `y` as an argument of grc_gn_product; 4, grc_noise by value in
 * place of the noise pointer (counter-based noise in the kernels),
 * grc_noise_fill, GRC_ENOISE and GRC_ENONFINITE; the stepping API (grc_stepper,
 * grc_stepper_create/_destroy, grc_stepper_start, grc_stepper_outputs,
 * grc_step) and exported networks (grc_net, grc_net_load, grc_net_free,
 * grc_net_decode, grc_net_place_code, GRC_NET_FORMAT_VERSION, GRC_ENC_*,
 * GRC_ARENA_*, GRC_EFORMAT, GRC_EIO) and GRC_EOVERLAP came in 4 as additions;
 * 5, the float32 kernels (grc_forward_f32, grc_loss_f32, grc_gradient_f32,
 * grc_gn_product_f32, grc_noise_f32). */
#define GRC_ABI_VERSION 5

#define GRC_OK 0
#define GRC_ENOMEM -1      /* scratch memory could not be allocated */
#define GRC_ESHAPE -2      /* a dimension is < 1 or > GRC_MAX_DIM, an array would pass GRC_MAX_ELEMS, Nout does not fit the readout, or n_code does not fit the initial state */
#define GRC_ENULL -3       /* a required pointer is NULL */
#define GRC_EALPHA -4      /* model.alpha is not in (0, 1] (NaN included) */
#define GRC_EREG -5        /* reg.lam_l2, reg.lam_fr, reg.lam_rec or mu is negative or not finite */
#define GRC_EISA -6        /* the requested instruction set is unknown or not supported by this CPU */
#define GRC_ETHREADS -7    /* threads is negative or above GRC_MAX_THREADS */
#define GRC_EMODEL -8      /* model.nonlinearity, model.readout or model.initial_state is not a known code */
#define GRC_EWORKSPACE -9  /* the workspace or stepper is not a live one (destroyed, or not from grc_workspace_create / grc_stepper_create) */
#define GRC_ENOISE -10     /* noise.std is negative or not finite, both noise.xi and noise.std > 0 are given, or noise.trial0 or noise.step0 is negative or so large that noise.trial0 + n_trials or noise.step0 + n_steps passes INT64_MAX */
#define GRC_ENONFINITE -11 /* theta, inputs, targets, codes, x0 or v holds NaN or an infinity (checked in O(P + M T (Nin + Nout)); noise.xi, u and y are not checked: the caller's contract) */
#define GRC_EFORMAT -12    /* not a gridcore network file: bad magic, unknown format version, truncated or trailing bytes, or sizes or codes that do not fit each other (grc_net_load) */
#define GRC_EIO -13        /* the file could not be opened or read (grc_net_load) */
#define GRC_EOVERLAP -14   /* an output array shares memory with another output or with an input (the one exception: grc_forward's x0 may be x_end itself) */

/* Limits. GRC_MAX_THREADS caps the partitions (= OpenMP threads) of one
 * call: each partition holds its own partial gradient, so threads beyond the
 * cores add memory and reduction work and gain nothing, and asking OpenMP for
 * tens of thousands of threads makes libgomp abort the process ("Thread
 * creation failed") instead of returning an error. 256 is above the hardware
 * threads of common shared-memory machines. It is a fixed number, not a
 * multiple of this machine's cores, because the bits of a result depend on
 * the thread count: a run made with k threads must be repeatable, if
 * oversubscribed, on a smaller machine. A call never runs more partitions
 * than it has trials (agents, for a stepper: one per 32). GRC_MAX_DIM caps each dimension
 * (so the product of two never overflows int64) and GRC_MAX_ELEMS each
 * array, input or scratch (2^56 doubles = 2^59 bytes, so byte counts and
 * sums of them never overflow either). */
#define GRC_MAX_THREADS 256
#define GRC_MAX_DIM 2147483647
#define GRC_MAX_ELEMS 72057594037927936

/* Codes of the model (grc_model). They equal the Python side's codes
 * (gridcore.model.spec.NONLINEARITIES; the readout and initial-state maps in
 * gridcore/backends/c/backend.py), which the tests check. */
#define GRC_PHI_TANH 0     /* u = tanh(x) */
#define GRC_PHI_RELU 1     /* u = max(x, 0) */
#define GRC_READOUT_XY 0   /* y = Wout u, squared error; Nout must be 2 (x, y) */
#define GRC_READOUT_PLACE_CELLS 1  /* y = Wout u, logits over Nout >= 1 place cells; softmax cross-entropy */
#define GRC_X0_ZERO 0      /* x_0 = 0; n_code must be 0 */
#define GRC_X0_ENCODED 1   /* x_0 = Wenc c_m, c_m trial m's start code (codes); n_code >= 1 */

/* Instruction sets of the compute kernels, chosen per workspace. */
#define GRC_ISA_AUTO 0     /* the widest one this CPU supports */
#define GRC_ISA_GENERIC 1  /* baseline of the build target (SSE2 on x86-64), 2-wide */
#define GRC_ISA_AVX2 2     /* x86-64-v3: AVX2 + FMA, 4-wide */
#define GRC_ISA_AVX512 3   /* x86-64-v4: AVX-512, 8-wide */

/* Opaque scratch memory and settings of one caller; see grc_workspace_create. */
typedef struct grc_workspace grc_workspace;

/* The dimensions of one call, each in [1, GRC_MAX_DIM] except n_code.
 *   n_units  N     n_in  Nin     n_out  Nout
 *   n_trials M     n_steps T
 *   n_code   Nc    entries of a start code (columns of Wenc): in
 *                  [1, GRC_MAX_DIM] under GRC_X0_ENCODED, 0 under any other
 *                  initial state (else GRC_ESHAPE). */
typedef struct grc_shape {
    int64_t n_units;
    int64_t n_in;
    int64_t n_out;
    int64_t n_trials;
    int64_t n_steps;
    int64_t n_code;
} grc_shape;

/* The model of one call (math.md section 1), passed by value.
 *   alpha          dt/tau, the Euler step as a fraction of the time constant, in (0, 1].
 *   nonlinearity   GRC_PHI_*: the rate function u = phi(x).
 *   readout        GRC_READOUT_*: what y reports and the error that trains it.
 *                  GRC_READOUT_XY needs n_out == 2 (else GRC_ESHAPE);
 *                  GRC_READOUT_PLACE_CELLS takes any n_out >= 1.
 *   initial_state  GRC_X0_*: x_0 of every trial (grc_forward's x0 overrides it).
 *                  GRC_X0_ENCODED needs n_code >= 1 and the codes argument.
 * An unknown code gives GRC_EMODEL, a bad alpha GRC_EALPHA. */
typedef struct grc_model {
    double alpha;
    int32_t nonlinearity;
    int32_t readout;
    int32_t initial_state;
} grc_model;

/* Where each block of theta lies: theta[off_X .. off_X + size of X) holds
 * block X, row-major (Wrec (N,N), Win (N,Nin), b (N), Wout (Nout,N),
 * Wenc (N,Nc)); size is P, the length of theta. Wenc[i*Nc + c] maps entry c
 * of the start code to unit i; with Nc = 0 the block is empty and
 * off_wenc == size. */
typedef struct grc_layout {
    int64_t off_wrec;
    int64_t off_win;
    int64_t off_b;
    int64_t off_wout;
    int64_t off_wenc;
    int64_t size;
} grc_layout;

/* The regularisation weights of one call (math.md eq. L2-L4, P4),
 * passed by value; each finite and >= 0 (else GRC_EREG).
 *   lam_l2   weight of R_L2 = sum Win^2/(N Nin) + sum Wout^2/(N Nout)
 *   lam_fr   weight of R_FR = mean u^2 over M*T*N
 *   lam_rec  weight of R_rec = sum Wrec^2 (not normalised: a weight decay)
 * Wenc is not regularised. */
typedef struct grc_reg {
    double lam_l2;
    double lam_fr;
    double lam_rec;
} grc_reg;

/* The noise xi_t of the Euler step (math.md eq. F3), passed by value.
 *   xi      [M*T*N], (M, T, N): the noise as an array, or NULL.
 *   std     standard deviation of counter-based noise (math.md section 8),
 *           computed in the kernels from (seed, trial0 + m, step0 + t, unit):
 *           no array, the same bits in every core and for any thread count.
 *           0 with xi NULL: no noise. std > 0 with xi given: GRC_ENOISE.
 *   seed    the key of the counter-based noise.
 *   trial0, step0  global index (>= 0) of this call's trial 0 and step 0, so
 *           that a call on a later chunk of steps or a subset of trials
 *           continues the same noise; trial0 + n_trials and step0 + n_steps
 *           must not pass INT64_MAX.
 * {0} (all zero) means no noise. */
typedef struct grc_noise {
    const double *xi;
    double std;
    uint64_t seed;
    int64_t trial0;
    int64_t step0;
} grc_noise;

/* GRC_ABI_VERSION of the header this library was compiled from. */
int grc_abi_version(void);

/* Message for a status code (a static string; never NULL). */
const char *grc_strerror(int status);

/* 1 if this library was compiled with OpenMP, else 0. */
int grc_openmp_enabled(void);

/* Threads used when a workspace is created with threads = 0: OpenMP's
 * omp_get_max_threads() (honours OMP_NUM_THREADS), 1 in a serial build,
 * at most GRC_MAX_THREADS. */
int grc_max_threads(void);

/* 1 if `isa` (a GRC_ISA_* code other than AUTO) was compiled in and this CPU
 * supports it, else 0. */
int grc_isa_available(int isa);

/* Name of a GRC_ISA_* code ("auto", "generic", "avx2", "avx512"), or "unknown". */
const char *grc_isa_name(int isa);

/* The compiler flags this library was built with (a static string). */
const char *grc_build_flags(void);

/* The parameter layout of a network: the offsets of theta's blocks.
 *   shape  in : checked as for the kernels (n_trials and n_steps, unused
 *               here, must be valid too: pass 1; n_code sizes Wenc).
 *   model  in : checked as for the kernels.
 *   out    out: the layout.
 * Returns GRC_OK, GRC_ENULL, GRC_ESHAPE, GRC_EALPHA or GRC_EMODEL. */
int grc_param_layout(grc_shape shape, grc_model model, grc_layout *out);

/* Create a workspace.
 *   threads  in : partitions of the trials (= OpenMP threads) per call, in
 *                 [0, GRC_MAX_THREADS]; 0 means grc_max_threads().
 *   isa      in : a GRC_ISA_* code; GRC_ISA_AUTO picks the widest available.
 *   out      out: the new workspace (NULL on error).
 * Scratch memory is allocated by the kernels on first use, grown when a call
 * needs more and kept for the next call; grc_workspace_destroy frees it. */
int grc_workspace_create(int threads, int isa, grc_workspace **out);

/* Free a workspace and its scratch memory. NULL is allowed; a workspace
 * already destroyed is left alone when that is detected (best effort). */
void grc_workspace_destroy(grc_workspace *ws);

/* Thread count (partitions per call) of a workspace; GRC_ENULL or
 * GRC_EWORKSPACE (negative) for a NULL or dead workspace. */
int grc_workspace_threads(const grc_workspace *ws);

/* GRC_ISA_* code a workspace runs (never GRC_ISA_AUTO); GRC_ENULL or
 * GRC_EWORKSPACE (negative) for a NULL or dead workspace. */
int grc_workspace_isa(const grc_workspace *ws);

/* Bytes of scratch memory a workspace currently holds (0 for a NULL or dead one). */
size_t grc_workspace_bytes(const grc_workspace *ws);

/* The counter-based noise of a call as an array (math.md eq. N1-N2).
 *   noise  in : counter-based (noise.xi NULL), as for the kernels.
 *   shape  in : n_trials M, n_steps T and n_units N are used (each in
 *               [1, GRC_MAX_DIM], M*T*N at most GRC_MAX_ELEMS).
 *   out    out: [M*T*N], (M, T, N): xi[m, t, i].
 * Returns GRC_OK, GRC_ENULL, GRC_ESHAPE or GRC_ENOISE. */
int grc_noise_fill(grc_noise noise, grc_shape shape, double *out);

/* Every kernel below checks, in this order: pointers (GRC_ENULL), the
 * workspace (GRC_EWORKSPACE: it holds a magic number set by
 * grc_workspace_create and cleared by grc_workspace_destroy, so a call on a
 * destroyed workspace is usually caught; but reading freed memory is
 * undefined behaviour and the block may have been reused, so this is a
 * safety net, not a licence: never use a destroyed workspace), the model
 * (GRC_EALPHA, GRC_EMODEL), the shape (GRC_ESHAPE), the weights (GRC_EREG),
 * the noise (GRC_ENOISE), then (after allocating scratch: GRC_ENOMEM)
 * that no output overlaps another array (GRC_EOVERLAP) and the values of
 * the small arrays (GRC_ENONFINITE).
 *
 * The readout (math.md sections 2 and 7). E is the error term of the loss:
 *   GRC_READOUT_XY:          E = mean (y - targets)^2 over M*T*Nout;
 *   GRC_READOUT_PLACE_CELLS: E = (1/(M T)) sum_{m,t} sum_k targets_k (lse(y) - y_k) (eq. P1),
 *                            lse(y) = log sum_k exp(y_k) over the Nout
 *                            logits of (m, t): softmax cross-entropy.
 * loss = E + lam_l2 R_L2 + lam_fr R_FR + lam_rec R_rec (see grc_reg). */

/* Forward pass (math.md eq. F1-F3); also the streaming mode for long paths.
 *   ws      in/out: workspace.
 *   shape   in : N, Nin, Nout, M, T, Nc.
 *   model   in : alpha, phi, readout, initial state.
 *   theta   in : [P], flat parameters (see grc_param_layout).
 *   inputs  in : [M*T*Nin].
 *   noise   in : the noise (grc_noise; {0}: none).
 *   codes   in : [M*Nc], the start codes: required when the initial state is
 *                GRC_X0_ENCODED and x0 is NULL, else may be NULL (not read).
 *   x0      in : [M*N], (M, N), initial activations x_0, or NULL (the
 *                model's initial state: 0, or Wenc c_m).
 *   u       out: [M*T*N] rates u_t, or NULL not to store them (streaming:
 *                scratch memory is then O(M*N) whatever T).
 *   y       out: [M*T*Nout] outputs y_t.
 *   x_end   out: [M*N], (M, N), x_T: the state after the last input; pass
 *                it as x0 to continue the same trials.
 * x0 may be the same array as x_end (continuing in place); no other overlap. */
int grc_forward(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                const double *inputs, grc_noise noise, const double *codes,
                const double *x0, double *u, double *y, double *x_end);

/* Loss terms (math.md eq. L1-L4) from a forward pass that stores no states.
 *   ws, shape, model, theta, inputs, noise: as for grc_forward (x_0 from the model).
 *   targets in : [M*T*Nout].
 *   codes   in : [M*Nc]; required (GRC_ENULL) under GRC_X0_ENCODED, else may be NULL.
 *   reg     in : regularisation weights (grc_reg), each finite and >= 0.
 *   terms   out: [5] = {E, R_L2, R_FR, R_rec, loss}, with
 *                E as the readout says (above),
 *                R_L2 = sum Win^2/(N Nin) + sum Wout^2/(N Nout),
 *                R_FR = mean u^2 over M*T*N,
 *                R_rec = sum Wrec^2,
 *                loss = E + lam_l2 R_L2 + lam_fr R_FR + lam_rec R_rec. */
int grc_loss(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
             const double *inputs, const double *targets, grc_noise noise,
             const double *codes, grc_reg reg, double *terms);

/* Loss terms and their gradient by BPTT (math.md eq. B1-B6), and optionally
 * the mean over trials of the squared per-trial gradients (eq. B7).
 *   ws, shape, model, theta, inputs, targets, noise, codes, reg, terms:
 *           as for grc_loss.
 *   grad    out: [P], d loss / d theta in theta's order. The error enters
 *                through ey_t = dE/dy_t: c_y (y_t - targets_t) with
 *                c_y = 2/(M T Nout) (GRC_READOUT_XY), or c_y (p_t - targets_t)
 *                with p_t = softmax(y_t), c_y = 1/(M T) (GRC_READOUT_PLACE_CELLS).
 *                Under GRC_X0_ENCODED the Wenc block is sum_m gx_0,m c_m',
 *                gx_0 = d loss / d x_0 by BPTT.
 *   sq      out: [P] or NULL: mean_m (dL_m/dtheta)^2 where loss = mean_m L_m
 *                (L_m: trial m's loss, the L2 and R_rec terms included in
 *                each; the Wenc block too).
 * Scratch memory: per thread, the states of up to 32 trials (about
 * 2*(T+1)*N doubles per trial), not the whole batch. */
int grc_gradient(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                 const double *inputs, const double *targets, grc_noise noise,
                 const double *codes, grc_reg reg, double *terms, double *grad, double *sq);

/* Gauss-Newton matrix times a vector, G v (math.md eq. G1-G5, P3, P4, P6):
 * G = J_y' H_y J_y + J_u' H_u J_u + lam_l2 Hess(R_L2) + lam_rec Hess(R_rec),
 * with H_u = 2 (lam_fr + mu)/(N T M) I and, per (m, t), H_y = 2/(M T Nout) I
 * (GRC_READOUT_XY) or (1/(M T)) (diag(p_t) - p_t p_t'), p_t = softmax(y_t)
 * (GRC_READOUT_PLACE_CELLS). Under GRC_X0_ENCODED the tangent starts from
 * dx_0 = dWenc c_m (dWenc: v's Wenc block) and G v has a Wenc block.
 *   ws, shape, model, theta, inputs, reg: as for grc_gradient.
 *   codes   in : [M*Nc]; required (GRC_ENULL) under GRC_X0_ENCODED, else may be NULL.
 *   u       in : [M*T*N], the rates of the forward pass of these inputs
 *                (and their noise and codes) under theta and model, as
 *                grc_forward returns them.
 *   y       in : [M*T*Nout], the outputs of that forward pass; required
 *                (GRC_ENULL) under GRC_READOUT_PLACE_CELLS, may be NULL
 *                (not read) under GRC_READOUT_XY.
 *   v       in : [P], the vector, in theta's order.
 *   mu      in : structural damping weight, finite and >= 0.
 *   gv      out: [P], G v.
 * Scratch memory: per thread, about (T+1)*N doubles per trial for up to 32
 * trials at a time; the stored states u are read, never copied whole. */
int grc_gn_product(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                   const double *inputs, const double *codes, const double *u, const double *y,
                   const double *v, grc_reg reg, double mu, double *gv);

/* ---- float32 ---------------------------------------------------------------
 *
 * The same four kernels computing in float32: twice the elements per vector
 * register and half the memory traffic of the stored states, at float32's
 * rounding (relative 6e-8 per operation; see docs/c_api.md for the
 * accuracy). Each takes the arguments of its float64 twin, in the same
 * order and with the same checks and status codes, except that the trial
 * arrays are float:
 *   inputs, targets, codes, x0 (in) and u, y, x_end (out): float, shapes as above;
 *   noise: a grc_noise_f32, whose xi is a float array (counter-based noise
 *          is computed in double and rounded to float: the same z values).
 * theta and v stay double (the kernels pack rounded copies of the weights),
 * and terms, grad, sq and gv are double (the sums of the partitions are
 * formed in float; the loss sums E and R_FR are accumulated in double).
 * A workspace serves both types. */

/* grc_noise with a float array (see grc_noise). */
typedef struct grc_noise_f32 {
    const float *xi;
    double std;
    uint64_t seed;
    int64_t trial0;
    int64_t step0;
} grc_noise_f32;

int grc_forward_f32(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                    const float *inputs, grc_noise_f32 noise, const float *codes,
                    const float *x0, float *u, float *y, float *x_end);

int grc_loss_f32(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                 const float *inputs, const float *targets, grc_noise_f32 noise,
                 const float *codes, grc_reg reg, double *terms);

int grc_gradient_f32(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                     const float *inputs, const float *targets, grc_noise_f32 noise,
                     const float *codes, grc_reg reg, double *terms, double *grad, double *sq);

int grc_gn_product_f32(grc_workspace *ws, grc_shape shape, grc_model model, const double *theta,
                       const float *inputs, const float *codes, const float *u, const float *y,
                       const double *v, grc_reg reg, double mu, double *gv);

/* ---- Stepping: a trained network inside another simulator -------------
 *
 * A stepper holds a network's packed weights and scratch for up to
 * shape.n_trials agents; the state x (B, N) of the agents is the caller's.
 * One call of grc_step advances B agents by one Euler step (math.md eq.
 * F3, F1-F2, the forward pass's kernel with T = 1) and returns the rates u
 * and outputs y at the NEW state, so that after grc_stepper_start (y_0)
 * and t calls the outputs are y_t of a forward pass over the same inputs,
 * to round-off. No call after grc_stepper_create allocates memory. */
typedef struct grc_stepper grc_stepper;

/* Create a stepper (packs theta once; checks it is finite).
 *   shape    in : N, Nin, Nout, Nc as for the kernels; n_trials = the most
 *                 agents a call may take (sizes the scratch); n_steps: pass 1.
 *   model, theta: as for grc_forward (theta is copied: it may be freed after).
 *   threads  in : partitions of the agents, as for grc_workspace_create (a
 *                 call uses at most one per 32 agents; results do not depend on it).
 *   isa      in : a GRC_ISA_* code.
 *   out      out: the stepper (NULL on error).
 * Returns GRC_OK, GRC_ENULL, GRC_ETHREADS, GRC_EISA, GRC_EALPHA, GRC_EMODEL,
 * GRC_ESHAPE, GRC_ENOMEM or GRC_ENONFINITE. */
int grc_stepper_create(grc_shape shape, grc_model model, const double *theta, int threads, int isa,
                       grc_stepper **out);

/* Free a stepper (NULL allowed; a stepper already destroyed is left alone
 * when that is detected, as for workspaces). */
void grc_stepper_destroy(grc_stepper *st);

/* The model's initial state of B agents and its rates and outputs (eq. F0-F2).
 *   n_agents in : B, 1..shape.n_trials of the stepper.
 *   codes    in : [B*Nc] start codes under GRC_X0_ENCODED (x_0 = Wenc c_b),
 *                 else NULL (x_0 = 0).
 *   x        out: [B*N] x_0.   u out: [B*N] u_0.   y out: [B*Nout] y_0. */
int grc_stepper_start(grc_stepper *st, int64_t n_agents, const double *codes, double *x, double *u,
                      double *y);

/* Rates and outputs of any state x [B*N] (e.g. one the caller set): u [B*N],
 * y [B*Nout] (eq. F1-F2). */
int grc_stepper_outputs(grc_stepper *st, int64_t n_agents, const double *x, double *u, double *y);

/* One Euler step of B agents (eq. F3), then the rates and outputs of the new state.
 *   inputs in : [B*Nin], I_t of each agent.
 *   noise  in : xi_t: noise.xi a [B*N] array, or counter-based noise
 *               (noise.std > 0) for agent b from (seed, trial0 + b, step0, i):
 *               pass trial0 = the index of the first agent, step0 = t, the
 *               number of steps taken before this one, to get the noise of a
 *               forward pass with grc_noise {NULL, std, seed, trial0, 0}; {0}: none.
 *   x   in/out: [B*N] x_t in, x_{t+1} out.
 *   u      out: [B*N] u_{t+1}.   y out: [B*Nout] y_{t+1}.
 * Returns GRC_OK, GRC_ENULL, GRC_EWORKSPACE (not a live stepper), GRC_ESHAPE
 * (n_agents outside 1..capacity), GRC_ENOISE, GRC_EOVERLAP (x, u, y, inputs
 * and noise.xi must not share memory) or GRC_ENONFINITE (inputs or x).
 * grc_stepper_start and grc_stepper_outputs check the same way (their
 * outputs x, u, y against each other and codes or x). */
int grc_step(grc_stepper *st, int64_t n_agents, const double *inputs, grc_noise noise, double *x,
             double *u, double *y);

/* ---- Exported networks (python -m gridcore export; docs/c_api.md) ------- */

#define GRC_NET_FORMAT_VERSION 1
/* Input encodings (gridcore.sim.trajectories.ENCODINGS), per step:
 * speed in arena units per step, heading in radians. */
#define GRC_ENC_SPEED_ANGLE 0     /* (speed, heading) */
#define GRC_ENC_SPEED_COS_SIN 1   /* (speed, cos heading, sin heading) */
#define GRC_ENC_VELOCITY 2        /* (speed cos heading, speed sin heading) */
/* Arenas (gridcore.sim.arenas.ARENA_NAMES), centred on the origin, area arena_size^2. */
#define GRC_ARENA_SQUARE 0
#define GRC_ARENA_TRIANGLE 1
#define GRC_ARENA_HEXAGON 2
#define GRC_ARENA_CIRCLE 3

/* A trained network read from an exported file, and what drives and decodes it.
 *   shape        N, Nin, Nout, Nc (n_trials = n_steps = 1).
 *   model        alpha, phi, readout, initial state.
 *   theta        [P] parameters (grc_param_layout(shape, model)).
 *   encoding     GRC_ENC_*: how inputs are made from speed and heading.
 *   arena        GRC_ARENA_*; arena_size: side of the equal-area square (arena units).
 *   n_place_cells Np (0 unless the readout or initial state uses place cells).
 *   centres      [Np*2] place-cell centres (x, y) in arena units, or NULL.
 *   decoder_k    position = mean centre of the k cells of largest output (0 without place cells).
 *   pc_sigma, pc_surround, pc_surround_scale: the cells' tuning
 *                (gridcore.PlaceCells), for grc_net_place_code. */
typedef struct grc_net {
    grc_shape shape;
    grc_model model;
    double *theta;
    int32_t encoding;
    int32_t arena;
    double arena_size;
    int64_t n_place_cells;
    double *centres;
    int64_t decoder_k;
    double pc_sigma;
    int32_t pc_surround;
    double pc_surround_scale;
} grc_net;

/* Read a file written by `python -m gridcore export` (no Python needed).
 * Checks the magic, the format version, every size and code against the
 * others and the file's length, and that every number is finite.
 * Returns GRC_OK, GRC_ENULL, GRC_EIO, GRC_EFORMAT, GRC_ESHAPE, GRC_EMODEL,
 * GRC_EALPHA, GRC_ENOMEM or GRC_ENONFINITE; *out is NULL on error. */
int grc_net_load(const char *path, grc_net **out);

/* Free a loaded network (NULL allowed). */
void grc_net_free(grc_net *net);

/* Positions (arena units) that the outputs y [B*Nout] of B agents report:
 * pos [B*2]; y itself under GRC_READOUT_XY, else the mean centre of the
 * decoder_k cells with the largest outputs (ties: the lower index).
 * GRC_ESHAPE for B outside 1..GRC_MAX_DIM, GRC_EOVERLAP if pos overlaps y. */
int grc_net_decode(const grc_net *net, int64_t n_agents, const double *y, double *pos);

/* The place-cell code [B*Np] of positions pos [B*2] (gridcore.PlaceCells.encode):
 * the start codes of the encoded initial state. GRC_ESHAPE without place
 * cells or for B outside 1..GRC_MAX_DIM, GRC_EOVERLAP if code overlaps pos. */
int grc_net_place_code(const grc_net *net, int64_t n_agents, const double *pos, double *code);

/* GRC_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* GRIDCORE_H */
