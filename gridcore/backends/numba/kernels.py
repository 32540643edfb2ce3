"""Numba kernels of the forward pass, loss, BPTT gradient and Gauss-Newton product.

These functions assume clean input: C-contiguous arrays of consistent
shapes, checked and assembled by :mod:`gridcore.backends.numba.backend`. Equation labels
(F1, B4, G2, ...) refer to ``docs/math.md``.

Element types: the arrays of states, weights and trial data are all float64
or all float32 (a float32 backend); each kernel is compiled once per type.
Every scratch array takes the type of the weights it works with, and the
register tiles take theirs from the product's output (:func:`_matmul`). Loss
sums and the per-block gradient sums are float64 for both types; scalar
arithmetic on float32 values with the float64 scalars (alpha, the
tanh polynomial) is done in float64 and rounded where it is stored.

Parallelism and determinism: the M trials are split into ``n_blocks``
contiguous blocks (``n_blocks`` = the thread count, an argument, so results do
not depend on Numba's scheduling); a ``prange`` over blocks runs each block's
whole time loop, and every sum over trials is written to a per-block row of a
``(n_blocks, ...)`` buffer, then summed over blocks in a fixed order. The same
thread count gives the same bits. The ``prange`` bodies only call the
``_*_block`` helpers: Numba 0.68 mis-compiled a slice assignment written
directly in a ``prange`` body (``a[i, n:2 * n] = u[i]`` stored garbage).

Speed: the per-step work of a block of Mb trials is a few matrix products,
done by :func:`_matmul`: register tiles of 4 rows x 16 columns, each column
vector a chain of fused multiply-adds over the summed axis, written in LLVM IR
(:func:`_make_fma_tile`) because Numba has no vector types and LLVM did not
form such tiles from scalar code (7 GFLOP/s). On one core of the project
machine, for the per-step shapes, these tiles ran at about 75 GFLOP/s,
dot-product tiles in plain Numba at 52-65 and SciPy's OpenBLAS (with
``OPENBLAS_CORETYPE=Haswell``) at about 48. No BLAS, so no BLAS thread pool
competes with the blocks either. Weights, inputs and bias are stacked so that
each product does several jobs:

- forward (F2-F3): ``[u_t | I_t | 1] [[Wrec', Wout'], [Win', 0], [b, 0]]``
  gives ``Wrec u_t + Win I_t + b`` and ``y_t`` in one product;
- backward (B2): ``[alpha g_{t+1} | e_t] [[Wrec], [Wout]]``;
- weight gradients (B4-B6): ``[alpha g_{t+1} | e_t]' [u_t | I_t | 1]``, summed
  over the block's trials step by step, or over the steps trial by trial
  when the per-trial squares (B7) are wanted;
- R-op forward (G2-G3): ``[du_t | u_t | I_t | 1] [[Wrec', Wout'], [V_rec', V_out'], [V_in', 0], [v_b, 0]]``.

The large (M, T, N) scratch arrays come from the caller (``numba_backend``
reuses them from call to call): NumPy asks Linux for huge pages for them,
where first-touch page faults on Numba's 4 KiB pages cost about 0.24 s per
400 MB on the project machine.

Every kernel has one compiled signature: the wrappers pass dummy arrays and
flags instead of ``None``, and the model variants as integer codes (``phi``:
``ModelSpec.phi_code``; ``readout``: 0 "xy", 1 "place-cells", one branch per
trial and step in :func:`_output_error` and :func:`_rop_forward_block`).

The kernels compute the blocks Wrec, Win, b and Wout. The initial states
``x_0`` (and the GN product's ``dx_0``) are an argument, 0 or ``Wenc c``
(F0, P6), and the adjoints ``g_0`` of ``x_0`` are returned per trial; the
wrapper forms the Wenc block from them (P5), an O(M N Nc) product.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# Rows of a register tile, and elements per vector (8 doubles: AVX-512; LLVM
# splits the vectors on narrower CPUs; float32 tiles keep the 8 lanes, half a
# register). A tile is 4 x 16: 8 accumulators, 2 loads of B and 4 broadcasts
# of A per step of the summed axis.
_MR = 4
_VW = 8
# Products sum over at most this many terms at a time, adding to C between
# chunks, so that a tile's operands stay in L1 (10% faster gradients than
# without, in an A/B run on 2 threads).
_KC = 64
# Trials per sub-block of the per-trial path: their factors (2 x 8 x 500 x 104
# doubles, 6.7 MB, at the paper's size) stay in cache for the products.
_SQ_TRIALS = 8

# tanh on |x| < 0.625: x + x^3 P(x^2) / Q(x^2), the rational approximation of
# Cephes' tanh.c (relative error below 3e-16). Beyond: 1 - 2 / (exp(2|x|) + 1).
_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two (Cody-Waite): k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10


@njit(inline="always", error_model="numpy")
def _tanh(x):
    """tanh(x) within 2 ulp of NumPy's, in plain arithmetic that LLVM vectorises.

    Numba's ``np.tanh`` calls the C library once per element: 17 ns per call
    on the project machine, more than the matrix products.
    """
    s = abs(x)
    x2 = x * x
    small = x + x * x2 * (((_TANH_P[0] * x2 + _TANH_P[1]) * x2 + _TANH_P[2])
                          / (((x2 + _TANH_Q[0]) * x2 + _TANH_Q[1]) * x2 + _TANH_Q[2]))
    # exp(w) = 2^k exp(r), |r| <= ln(2)/2, exp(r) by Taylor to degree 13 (error < 1e-17).
    # w is capped at 40: tanh(20) rounds to 1.
    w = 2.0 * min(s, 20.0)
    k = int(w * _INV_LN2 + 0.5)
    r = (w - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    big = 1.0 - 2.0 / (p * float(1 << k) + 1.0)  # 0 <= k <= 58: 1 << k is exact
    if x < 0.0:
        big = -big
    return small if s < 0.625 else big


# The nonlinearity, coded once for the Numba core (NumPy: gridcore.model.nonlinearity;
# C: FN(phi), FN(dphi) in csrc/grc_kernels.inc). ``code`` is ModelSpec.phi_code; a
# new nonlinearity adds one branch to each.
@njit(inline="always", error_model="numpy")
def _phi(x, code):
    """Rate ``u = phi(x)`` (F1) for the nonlinearity ``code`` (0: tanh, 1: relu)."""
    if code == 1:
        return max(x, 0.0)
    return _tanh(x)


@njit(inline="always", error_model="numpy")
def _dphi(u, code):
    """``phi'(x)`` from the rate ``u = phi(x)`` (B3, G1); tanh: ``1 - u**2``, relu: ``u > 0``."""
    if code == 1:
        return 1.0 if u > 0.0 else 0.0
    return 1.0 - u * u


def _make_fma_tile(n_vec):
    """An intrinsic computing one register tile of ``C (+)= A B``: ``_MR`` rows, ``n_vec`` vectors wide.

    ``tile(a, rs, cs, b, ldb, c, ldc, k_len, accumulate, like)``: addresses in
    bytes and strides in elements; ``A[r, k]`` is at ``a + e (r rs + k cs)``,
    row k of B at ``b + e k ldb`` and row r of C at ``c + e r ldc``, e the
    bytes of the element type, that of the scalar ``like`` (float64 or
    float32; its value is not read). For k in order, every accumulator does
    one fused multiply-add: the result depends only on the operands.
    Requires ``k_len >= 1``.
    """
    @intrinsic
    def tile(typingctx, a, rs, cs, b, ldb, c, ldc, k_len, accumulate, like):
        sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp,
                         types.intp, types.intp, types.boolean, like)
        f32 = like == types.float32

        def codegen(context, builder, signature, args):
            a, rs, cs, b, ldb, c, ldc, k_len, accumulate, _ = args
            fl, i64, i32 = (ir.FloatType() if f32 else ir.DoubleType()), ir.IntType(64), ir.IntType(32)
            align = 4 if f32 else 8
            vec = ir.VectorType(fl, _VW)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 f"llvm.fma.v{_VW}{'f32' if f32 else 'f64'}")
            a, b, c = (builder.inttoptr(p, fl.as_pointer()) for p in (a, b, c))

            def vec_at(base, offset):
                return builder.bitcast(builder.gep(base, [offset]), vec.as_pointer())

            entry = builder.block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.branch(loop)
            builder.position_at_end(loop)
            k = builder.phi(i64)
            k.add_incoming(ir.Constant(i64, 0), entry)
            acc = []
            for _ in range(_MR * n_vec):
                phi = builder.phi(vec)
                phi.add_incoming(ir.Constant(vec, [0.0] * _VW), entry)
                acc.append(phi)
            b_row = builder.mul(k, ldb)
            b_vec = [builder.load(vec_at(b, builder.add(b_row, ir.Constant(i64, _VW * v))), align=align)
                     for v in range(n_vec)]
            k_off = builder.mul(k, cs)
            new = []
            for r in range(_MR):
                a_rk = builder.load(
                    builder.gep(a, [builder.add(builder.mul(ir.Constant(i64, r), rs), k_off)]))
                splat = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(vec, ir.Undefined), a_rk, ir.Constant(i32, 0)),
                    ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(i32, _VW), [0] * _VW))
                new.extend(builder.call(fma, [splat, b_vec[v], acc[r * n_vec + v]]) for v in range(n_vec))
            k_next = builder.add(k, ir.Constant(i64, 1))
            for phi, value in zip(acc, new):
                phi.add_incoming(value, loop)
            k.add_incoming(k_next, loop)
            builder.cbranch(builder.icmp_signed("<", k_next, k_len), loop, done)
            builder.position_at_end(done)
            for r in range(_MR):
                for v in range(n_vec):
                    offset = builder.add(builder.mul(ir.Constant(i64, r), ldc), ir.Constant(i64, _VW * v))
                    ptr = vec_at(c, offset)
                    value = new[r * n_vec + v]
                    summed = builder.fadd(builder.load(ptr, align=align), value)
                    builder.store(builder.select(accumulate, summed, value), ptr, align=align)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_fma_tile_2 = _make_fma_tile(2)
_fma_tile_1 = _make_fma_tile(1)


@njit(nogil=True)
def _matmul(a, b, c, transpose_a, accumulate):
    """``c (+)= a[:, :K] @ b``, or ``c (+)= a[:K].T @ b`` if ``transpose_a``, with K = rows of ``b``.

    Parameters
    ----------
    a : (>= I, >= K), or (>= K, >= I) if ``transpose_a``; C-contiguous
    b : (K, J) with J a multiple of 8
    c : (I, J) with I a multiple of 4
    transpose_a, accumulate : bool
    (a, b and c of one element type, float64 or float32)

    Tiles of 16 columns, then one of 8, in chunks of ``_KC`` terms.
    K = 0 gives ``c (+)= 0``.
    """
    n_rows, n_cols = c.shape
    k_len = b.shape[0]
    if k_len == 0:
        if not accumulate:
            c[:] = 0.0
        return
    rs, cs = (1, a.shape[1]) if transpose_a else (a.shape[1], 1)
    pa, pb, pc = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(c.ctypes.data)
    e = c.itemsize
    like = c[0, 0]                          # the element type, for the tiles
    j16 = n_cols - n_cols % (2 * _VW)
    for k0 in range(0, k_len, _KC):
        k_chunk = min(_KC, k_len - k0)
        add = accumulate or k0 > 0
        a_k, b_k = pa + e * k0 * cs, pb + e * k0 * n_cols
        for i in range(0, n_rows, _MR):
            a_i = a_k + e * i * rs
            c_i = pc + e * i * n_cols
            for j in range(0, j16, 2 * _VW):
                _fma_tile_2(a_i, rs, cs, b_k + e * j, n_cols, c_i + e * j, n_cols, k_chunk, add, like)
            if j16 < n_cols:
                _fma_tile_1(a_i, rs, cs, b_k + e * j16, n_cols, c_i + e * j16, n_cols, k_chunk, add,
                            like)


@njit(inline="always")
def _block_range(n_trials, n_blocks, blk):
    """Trials ``lo:hi`` of block ``blk``: contiguous, sizes differing by at most one."""
    return blk * n_trials // n_blocks, (blk + 1) * n_trials // n_blocks


@njit(inline="always")
def _pad(k, q):
    """``k`` rounded up to a multiple of ``q``."""
    return (k + q - 1) // q * q


_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)
_FRAC_MASK = np.uint64((1 << 20) - 1)


@njit(inline="always")
def _mix64(z):
    """splitmix64's finaliser (math.md section 8)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(nogil=True)
def _noise_row(ctr, tab, std, m, t, out):
    """``out[i] = xi_t[i]`` of trial ``m`` (local index), counter-based noise (math.md eq. N1-N2)."""
    h = _mix64(ctr[0] + _GOLDEN * (ctr[1] + np.uint64(m) + np.uint64(1)))
    h = _mix64(h + _GOLDEN * (ctr[2] + np.uint64(t) + np.uint64(1)))
    for i in range(out.shape[0]):
        r = _mix64(h + _GOLDEN * np.uint64(i + 1))
        j = np.intp(r >> np.uint64(52))
        f = np.float64((r >> np.uint64(32)) & _FRAC_MASK) * 9.5367431640625e-07     # 2**-20
        out[i] = std * (tab[0, j] + tab[1, j] * f)


@njit(nogil=True, error_model="numpy")
def _forward_block(w_fwd, inputs, noise, noise_kind, ctr, tab, std, x0, alpha, phi, lo, hi, keep_u, u_out, y_out,
                   x_end):
    """Run trials ``lo:hi`` through all T steps (F1-F3).

    Parameters
    ----------
    w_fwd : (N + Nin + 1, pad8(N + Nout)) ``[[Wrec', Wout'], [Win', 0], [b, 0]]``
    inputs : (M, T, Nin)
    noise : (M, T, N), read only if ``noise_kind`` is 1
    noise_kind : int, 0 no noise, 1 the array ``noise``, 2 counter-based noise
        (math.md section 8) from ``ctr`` = [seed, trial0, step0] (uint64),
        ``tab`` = [Q, D] (2, 4096) and ``std``
    x0 : (M, N) initial activations ``x_0``
    alpha : float, dt / tau
    phi : int, the nonlinearity's code (``ModelSpec.phi_code``)
    lo, hi : int, the block's trials
    keep_u : bool, store the rates in ``u_out``
    u_out : (M, T, N), rows ``lo:hi`` receive ``u_t`` if ``keep_u``
    y_out : (M, T, Nout), rows ``lo:hi`` receive ``y_t``
    x_end : (M, N), rows ``lo:hi`` receive ``x_T``

    Returns
    -------
    float, ``sum_{m,t,i} u_t**2`` over the block (L3)
    """
    t_steps, n_in = inputs.shape[1], inputs.shape[2]
    n, n_out = x0.shape[1], y_out.shape[2]
    mb = hi - lo
    keep = 1.0 - alpha
    x = x0[lo:hi].copy()
    dt = w_fwd.dtype
    a = np.zeros((_pad(mb, _MR), w_fwd.shape[0]), dt)  # [u_t | I_t | 1]
    out = np.empty((a.shape[0], w_fwd.shape[1]), dt)   # [Wrec u_t + Win I_t + b | y_t | 0]
    usq = np.zeros(n)                                  # per unit, so that the loops vectorise
    no_noise = np.zeros(n, dt)                         # stands in for the noise row if there is none
    ctr_row = np.empty(n, dt)                          # a counter-based noise row (rounded to dt)
    no_u = np.empty(n, dt)                             # receives u_t if it is not kept
    for i in range(mb):
        ai, xi = a[i], x[i]
        ai[n + n_in] = 1.0
        for j in range(n):
            ai[j] = _phi(xi[j], phi)                                        # F1 at t = 0
            usq[j] += ai[j] * ai[j]
        if keep_u:
            u_out[lo + i, 0] = ai[:n]
    for t in range(t_steps):
        for i in range(mb):
            ii, ai = inputs[lo + i, t], a[i]
            for k in range(n_in):
                ai[n + k] = ii[k]
        _matmul(a, w_fwd, out, False, False)
        for i in range(mb):
            xi, oi, ai = x[i], out[i], a[i]
            yi = y_out[lo + i, t]
            for o in range(n_out):
                yi[o] = oi[n + o]                                       # F2
            if noise_kind == 2:
                _noise_row(ctr, tab, std, lo + i, t, ctr_row)
                xii = ctr_row
            elif noise_kind == 1:
                xii = noise[lo + i, t]
            else:
                xii = no_noise
            if t == t_steps - 1:
                for j in range(n):
                    xi[j] = keep * xi[j] + alpha * (oi[j] + xii[j])     # F3: x_T
            else:
                # F3 and F1 of the next step in one pass
                ui = u_out[lo + i, t + 1] if keep_u else no_u
                for j in range(n):
                    xi[j] = keep * xi[j] + alpha * (oi[j] + xii[j])
                    ai[j] = _phi(xi[j], phi)
                    ui[j] = ai[j]
                    usq[j] += ai[j] * ai[j]
    x_end[lo:hi] = x
    return usq.sum()


@njit(nogil=True, error_model="numpy")
def _output_error(y, targets, c_y, readout, lo, hi):
    """Turn the outputs ``y`` of trials ``lo:hi`` into ``e_t = dE/dy_t`` (B1, P2); return their error sum.

    ``readout`` 0 ("xy"): ``e_t = c_y (y_t - y*_t)``, error sum ``sum (y - y*)**2`` (L1).
    ``readout`` 1 ("place-cells"): ``e_t = c_y (p_t - y*_t)`` with ``p_t = softmax(y_t)``,
    error sum ``sum_{m,t} sum_k y*_k (lse(y_t) - y_k)`` (P1), ``lse`` computed stably
    (the largest logit subtracted), Nout exponentials per step. The sum does not
    depend on ``c_y``: the loss and the gradient give the same bits.
    """
    err = 0.0
    n_out = y.shape[2]
    ex = np.empty(n_out)
    for m in range(lo, hi):
        ym, tm = y[m], targets[m]
        for t in range(ym.shape[0]):
            yt, tt = ym[t], tm[t]
            if readout == 1:
                top = yt[0]
                for o in range(1, n_out):
                    top = max(top, yt[o])
                s = 0.0
                for o in range(n_out):
                    ex[o] = math.exp(yt[o] - top)
                    s += ex[o]
                lse = top + math.log(s)
                inv = 1.0 / s
                for o in range(n_out):
                    err += tt[o] * (lse - yt[o])
                    yt[o] = c_y * (ex[o] * inv - tt[o])
            else:
                for o in range(n_out):
                    d = yt[o] - tt[o]
                    err += d * d
                    yt[o] = c_y * d
    return err


@njit(nogil=True, error_model="numpy")
def _backward_block(w_bwd, u, inputs, e, r_src, c_r, alpha, phi, lo, hi, per_trial, a_tr, z_tr, gx0):
    """BPTT over trials ``lo:hi`` (B2-B3) and the factors of the weight gradients (B4-B6).

    The weight gradients are sums over trials and steps of
    ``[alpha g_{t+1} | e_t]' [u_t | I_t | 1]``: summed here step by step over
    the block's trials, or, if ``per_trial``, the two factors are stored row
    by row (one row per step) in ``a_tr`` and ``z_tr``, for per-trial sums (B7).

    Parameters
    ----------
    w_bwd : (N + Nout, pad8(N)) ``[[Wrec], [Wout]]``
    u : (M, T, N) rates
    inputs : (M, T, Nin)
    e : (M, T, Nout) ``e_t`` (B1 or G4)
    r_src, c_r : (M, T, N) and float: the direct term of ``r_t`` is ``c_r * r_src``
        (``u_t`` for the gradient, ``du_t`` for the GN product)
    alpha : float
    lo, hi : int
    per_trial : bool
    a_tr : (>= hi - lo, T, pad4(N + Nout)); if ``per_trial``, ``a_tr[i, t]``
        receives ``[alpha g_{t+1} | e_t | 0]`` of trial ``lo + i``
    z_tr : (>= hi - lo, T, pad8(N + Nin + 1)); if ``per_trial``, ``z_tr[i, t]``
        receives ``[u_t | I_t | 1 | 0]``
    gx0 : (M, N), rows ``lo:hi`` receive the adjoints ``g_0`` of ``x_0`` (for the
        gradient of ``Wenc``, eq. P5)

    Returns
    -------
    (pad4(N + Nout), pad8(N + Nin + 1)) the block's sums (zero if ``per_trial``),
    laid out as :func:`_flatten_sums` reads them.
    """
    t_steps, n = u.shape[1], u.shape[2]
    n_in, n_out = inputs.shape[2], e.shape[2]
    mb = hi - lo
    keep = 1.0 - alpha
    dt = w_bwd.dtype
    a = np.zeros((_pad(mb, _MR), _pad(n + n_out, _MR)), dt)   # [alpha g_{t+1} | e_t | 0]
    h = np.empty((a.shape[0], w_bwd.shape[1]), dt)            # alpha Wrec' g_{t+1} + Wout' e_t
    g = np.zeros((mb, n), dt)                                 # g_T = 0
    z = np.zeros((0 if per_trial else mb, _pad(n + n_in + 1, _VW)), dt)   # [u_t | I_t | 1 | 0]
    sums = np.zeros((a.shape[1], _pad(n + n_in + 1, _VW)), dt)
    for i in range(z.shape[0]):
        z[i, n + n_in] = 1.0
    for t in range(t_steps - 1, -1, -1):
        for i in range(mb):
            a[i, n:n + n_out] = e[lo + i, t]
        _matmul(a, w_bwd, h, False, False)                            # B2
        if per_trial:
            for i in range(mb):
                ai, ui, ii, zi = a[i], u[lo + i, t], inputs[lo + i, t], z_tr[i, t]
                a_tr[i, t] = ai
                for j in range(n):
                    zi[j] = ui[j]
                for k in range(n_in):
                    zi[n + k] = ii[k]
                zi[n + n_in] = 1.0
        else:
            for i in range(mb):
                ui, ii, zi = u[lo + i, t], inputs[lo + i, t], z[i]
                for j in range(n):
                    zi[j] = ui[j]
                for k in range(n_in):
                    zi[n + k] = ii[k]
            _matmul(a, z, sums, True, True)                               # B4-B6, step t
        for i in range(mb):
            ui, ri = u[lo + i, t], r_src[lo + i, t]
            gi, ai, hrow = g[i], a[i], h[i]
            for j in range(n):
                hj = hrow[j] + c_r * ri[j]                              # B2 with r_t of B1/G4
                gi[j] = _dphi(ui[j], phi) * hj + keep * gi[j]        # B3
                ai[j] = alpha * gi[j]
    gx0[lo:hi] = g
    return sums


@njit(nogil=True)
def _flatten_sums(sums, n, n_in, n_out, offsets, out):
    """Write weight-gradient sums (pad4(N + Nout), pad8(N + Nin + 1)) to ``out`` (P,), ``Params.flat`` order.

    Rows < N hold ``[dWrec | dWin | db]``, the next Nout rows start with dWout.
    ``offsets`` (4,) are the flat offsets of Wrec, Win, b and Wout
    (``ParamLayout``, passed in by the wrapper).
    """
    for i in range(n):
        for j in range(n):                 # dWrec (B4)
            out[offsets[0] + i * n + j] = sums[i, j]
        for k in range(n_in):              # dWin (B5)
            out[offsets[1] + i * n_in + k] = sums[i, n + k]
        out[offsets[2] + i] = sums[i, n + n_in]   # db (B5)
    for o in range(n_out):                 # dWout (B6)
        for j in range(n):
            out[offsets[3] + o * n + j] = sums[n + o, j]


@njit(nogil=True, error_model="numpy")
def _rop_forward_block(w_rop, u, y, inputs, dx0, alpha, phi, readout, c_y, lo, hi, du, e):
    """R-op forward pass over trials ``lo:hi`` (G1-G4, P3, P6): the tangents along v.

    Parameters
    ----------
    w_rop : (2N + Nin + 1, pad8(N + Nout)) ``[[Wrec', Wout'], [V_rec', V_out'], [V_in', 0], [v_b, 0]]``
    u : (M, T, N) rates
    y : (M, T, Nout) outputs of the forward pass, read only if ``readout`` is 1
    inputs : (M, T, Nin)
    dx0 : (M, N) tangents ``dx_0`` of the initial states (0, or ``V_enc c``: P6)
    alpha : float
    phi, readout : int codes of the nonlinearity and the readout
    c_y : float, the output curvature's scale (``objective.error_scale``)
    lo, hi : int
    du : (M, T, N), rows ``lo:hi`` receive ``du_t``
    e : (M, T, Nout), rows ``lo:hi`` receive ``e_t = H_y dy_t``: ``c_y dy_t`` (readout 0,
        G4) or ``c_y (p * dy_t - p (p . dy_t))``, ``p = softmax(y_t)`` (readout 1, P3)
    """
    t_steps, n = u.shape[1], u.shape[2]
    n_in, n_out = inputs.shape[2], e.shape[2]
    mb = hi - lo
    keep = 1.0 - alpha
    a = np.zeros((_pad(mb, _MR), w_rop.shape[0]), w_rop.dtype)   # [du_t | u_t | I_t | 1]
    out = np.empty((a.shape[0], w_rop.shape[1]), w_rop.dtype)    # [Wrec du_t + V_rec u_t + V_in I_t + v_b | dy_t | 0]
    dx = dx0[lo:hi].copy()
    p = np.empty(n_out)
    for i in range(mb):
        ai, u0, du0, dxi = a[i], u[lo + i, 0], du[lo + i, 0], dx[i]
        ai[2 * n + n_in] = 1.0
        for j in range(n):
            ai[j] = _dphi(u0[j], phi) * dxi[j]                       # G1 at t = 0
            ai[n + j] = u0[j]
            du0[j] = ai[j]
    for t in range(t_steps):
        for i in range(mb):
            ii, ai = inputs[lo + i, t], a[i]
            for k in range(n_in):
                ai[2 * n + k] = ii[k]
        _matmul(a, w_rop, out, False, False)
        for i in range(mb):
            dxi, oi, ai, ei = dx[i], out[i], a[i], e[lo + i, t]
            if readout == 1:                                         # G3, P3
                yt = y[lo + i, t]
                top = yt[0]
                for o in range(1, n_out):
                    top = max(top, yt[o])
                s = 0.0
                for o in range(n_out):
                    p[o] = math.exp(yt[o] - top)
                    s += p[o]
                inv = 1.0 / s
                pd = 0.0
                for o in range(n_out):
                    p[o] *= inv
                    pd += p[o] * oi[n + o]
                for o in range(n_out):
                    ei[o] = c_y * p[o] * (oi[n + o] - pd)
            else:
                for o in range(n_out):
                    ei[o] = c_y * oi[n + o]                          # G3, G4
            if t < t_steps - 1:                                      # G2, then G1 of the next step
                u1, du1 = u[lo + i, t + 1], du[lo + i, t + 1]
                for j in range(n):
                    dxi[j] = keep * dxi[j] + alpha * oi[j]
                    ai[j] = _dphi(u1[j], phi) * dxi[j]
                    ai[n + j] = u1[j]
                    du1[j] = ai[j]


@njit(nogil=True, error_model="numpy")
def _sq_gradients_block(w_bwd, u, inputs, e, c_u, alpha, phi, lo, hi, l2, offsets, part, sq, gx0):
    """BPTT and the weight gradients trial by trial (B2-B6), summed into ``part``, and their squares (B7).

    The trials go through :func:`_backward_block` ``_SQ_TRIALS`` at a time,
    so that their per-trial factors are still in cache for the products.

    Parameters
    ----------
    w_bwd, u, inputs, e, alpha, phi, lo, hi, gx0 : as for :func:`_backward_block`
    c_u : float, ``2 lam_fr / (N T M)``
    l2 : (Pk,) gradient of ``lam_l2 R_L2 + lam_rec R_rec``, part of every trial's gradient
        (Pk: the length of the blocks Wrec, Win, b, Wout)
    offsets : (4,) flat offsets of the blocks
    part : (Pk,) receives ``sum_m`` of the trials' shares (without ``l2``)
    sq : (Pk,) receives ``sum_m (M * share_m + l2)**2``
    """
    n_trials, t_steps, n = u.shape
    n_in, n_out = inputs.shape[2], e.shape[2]
    a_tr = np.zeros((_SQ_TRIALS, t_steps, _pad(n + n_out, _MR)), w_bwd.dtype)
    z_tr = np.zeros((_SQ_TRIALS, t_steps, _pad(n + n_in + 1, _VW)), w_bwd.dtype)
    sums = np.empty((a_tr.shape[2], z_tr.shape[2]), w_bwd.dtype)
    share = np.empty(part.size)
    for sub in range(lo, hi, _SQ_TRIALS):
        sub_hi = min(sub + _SQ_TRIALS, hi)
        _backward_block(w_bwd, u, inputs, e, u, c_u, alpha, phi, sub, sub_hi, True, a_tr, z_tr, gx0)
        for i in range(sub_hi - sub):
            _matmul(a_tr[i], z_tr[i], sums, True, False)
            _flatten_sums(sums, n, n_in, n_out, offsets, share)
            for q in range(part.size):
                part[q] += share[q]
                s = n_trials * share[q] + l2[q]                          # dL_m/dtheta (B7)
                sq[q] += s * s


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def forward_kernel(w_fwd, inputs, noise, noise_kind, ctr, tab, std, x0, alpha, phi, keep_u, u_out, y_out, x_end,
                   n_blocks):
    """Forward pass (F1-F3), also the streaming one: only one step of state is held per block.

    Parameters
    ----------
    w_fwd : (N + Nin + 1, pad8(N + Nout)) ``[[Wrec', Wout'], [Win', 0], [b, 0]]``
    inputs : (M, T, Nin)
    noise, noise_kind, ctr, tab, std : the noise, as for :func:`_forward_block`
    x0 : (M, N) initial activations
    alpha : float
    keep_u : bool
    u_out : (M, T, N) if ``keep_u`` (filled with ``u_t``), else any array
    y_out : (M, T, Nout), filled with ``y_t``
    x_end : (M, N), filled with ``x_T``
    n_blocks : int >= 1, blocks of trials (= threads)
    """
    n_trials = x0.shape[0]
    for blk in prange(n_blocks):
        lo, hi = _block_range(n_trials, n_blocks, blk)
        if hi > lo:
            _forward_block(w_fwd, inputs, noise, noise_kind, ctr, tab, std, x0, alpha, phi, lo, hi, keep_u, u_out,
                           y_out, x_end)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def loss_kernel(w_fwd, inputs, noise, noise_kind, ctr, tab, std, x0, targets, alpha, phi, readout, n_blocks):
    """Sums for the loss terms.

    Parameters are those of :func:`forward_kernel` (``x0``: the initial states
    of the spec, 0 or ``Wenc c``), plus ``targets`` (M, T, Nout) and
    ``readout``, the readout's code (0: "xy", 1: "place-cells").

    Returns
    -------
    (2,) float64: the error sum (L1 or P1, see :func:`_output_error`) and
    ``sum u**2`` (L3), summed over blocks in order; the same arithmetic as
    :func:`gradient_kernel`'s terms.
    """
    n_trials, t_steps, n_out = targets.shape
    x_end = np.empty(x0.shape, x0.dtype)
    y = np.empty((n_trials, t_steps, n_out), x0.dtype)
    sums = np.zeros((n_blocks, 2))
    for blk in prange(n_blocks):
        lo, hi = _block_range(n_trials, n_blocks, blk)
        if hi > lo:
            sums[blk, 1] = _forward_block(w_fwd, inputs, noise, noise_kind, ctr, tab, std, x0, alpha, phi, lo, hi,
                                          False, y, y,
                                          x_end)
            sums[blk, 0] = _output_error(y, targets, 1.0, readout, lo, hi)
    return _sum_rows(sums)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def gradient_kernel(w_fwd, w_bwd, inputs, noise, noise_kind, ctr, tab, std, x0, targets, alpha, phi, readout, c_y,
                    c_u, l2,
                    with_sq, u, gx0, offsets, n_blocks):
    """Loss sums, gradient and (optionally) mean squared per-trial gradients (B1-B7) of the blocks
    Wrec, Win, b and Wout, and the adjoints of the initial states.

    Parameters
    ----------
    w_fwd : as for :func:`forward_kernel`
    w_bwd : (N + Nout, pad8(N)) ``[[Wrec], [Wout]]``
    inputs, noise, noise_kind, ctr, tab, std, x0, targets, alpha, phi, readout : as for :func:`loss_kernel`
    c_y : float, ``objective.error_scale`` (``2 / (M T Nout)`` for "xy", ``1 / (M T)`` for "place-cells")
    c_u : float, ``2 lam_fr / (N T M)``
    l2 : (Pk,) gradient of ``lam_l2 R_L2 + lam_rec R_rec`` over the first four blocks
    with_sq : bool, compute the per-trial squares
    u : (M, T, N) scratch for the rates
    gx0 : (M, N), receives ``g_0 = dloss/dx_0`` of every trial (for the Wenc block, P5)
    offsets : (4,) int64 flat offsets of Wrec, Win, b, Wout
    n_blocks : int

    Returns
    -------
    sums : (2,) as returned by :func:`loss_kernel`
    grad : (Pk,) the gradient of the loss
    sq : (Pk,) ``mean_m (dL_m/dtheta)**2`` if ``with_sq``, else zeros
    """
    n_trials, t_steps, n = u.shape
    n_in, n_out = inputs.shape[2], targets.shape[2]
    p = l2.size
    x_end = np.empty((n_trials, n), u.dtype)
    e = np.empty((n_trials, t_steps, n_out), u.dtype)
    sums = np.zeros((n_blocks, 2))
    part = np.zeros((n_blocks, p))
    sq = np.zeros((n_blocks, p))
    none = np.empty((0, 0, 0), u.dtype)
    for blk in prange(n_blocks):
        lo, hi = _block_range(n_trials, n_blocks, blk)
        if hi > lo:
            sums[blk, 1] = _forward_block(w_fwd, inputs, noise, noise_kind, ctr, tab, std, x0, alpha, phi, lo, hi,
                                          True, u, e,
                                          x_end)
            sums[blk, 0] = _output_error(e, targets, c_y, readout, lo, hi)
            if with_sq:
                _sq_gradients_block(w_bwd, u, inputs, e, c_u, alpha, phi, lo, hi, l2, offsets, part[blk], sq[blk],
                                    gx0)
            else:
                _flatten_sums(_backward_block(w_bwd, u, inputs, e, u, c_u, alpha, phi, lo, hi, False, none, none,
                                              gx0),
                              n, n_in, n_out, offsets, part[blk])
    return _sum_rows(sums), _sum_rows(part) + l2, _sum_rows(sq) / n_trials


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def gn_kernel(w_rop, w_bwd, u, y, inputs, dx0, alpha, phi, readout, c_y, c_r, l2v, du, e, gx0, offsets,
              n_blocks):
    """Gauss-Newton matrix times a vector (G1-G5, P3, P6) on the blocks Wrec, Win, b and Wout.

    Parameters
    ----------
    w_rop : (2N + Nin + 1, pad8(N + Nout)) ``[[Wrec', Wout'], [V_rec', V_out'], [V_in', 0], [v_b, 0]]``
    w_bwd : (N + Nout, pad8(N)) ``[[Wrec], [Wout]]``
    u : (M, T, N) rates of the forward pass
    y : (M, T, Nout) outputs of the forward pass if ``readout`` is 1, else any array
    inputs : (M, T, Nin)
    dx0 : (M, N) tangents of the initial states: 0, or ``V_enc c`` (P6)
    alpha : float
    phi, readout : int codes of the nonlinearity and the readout
    c_y : float, ``objective.error_scale``
    c_r : float, ``2 (lam_fr + mu) / (N T M)``
    l2v : (Pk,) Hessian of ``lam_l2 R_L2 + lam_rec R_rec`` times v, first four blocks
    du : (M, T, N) scratch for the tangents ``du_t``
    e : (M, T, Nout) scratch for ``e_t``
    gx0 : (M, N), receives the GN adjoints ``g_0`` (the Wenc block is ``gx0' c``)
    offsets : (4,) int64 flat offsets of Wrec, Win, b, Wout
    n_blocks : int

    Returns
    -------
    (Pk,) G v on the first four blocks
    """
    n_trials, n = u.shape[0], u.shape[2]
    n_in, n_out = inputs.shape[2], e.shape[2]
    part = np.zeros((n_blocks, l2v.size))
    none = np.empty((0, 0, 0), u.dtype)
    for blk in prange(n_blocks):
        lo, hi = _block_range(n_trials, n_blocks, blk)
        if hi > lo:
            _rop_forward_block(w_rop, u, y, inputs, dx0, alpha, phi, readout, c_y, lo, hi, du, e)
            _flatten_sums(_backward_block(w_bwd, u, inputs, e, du, c_r, alpha, phi, lo, hi, False, none, none,
                                          gx0),
                          n, n_in, n_out, offsets, part[blk])
    return _sum_rows(part) + l2v


@njit(nogil=True)
def _sum_rows(a):
    """``a[0] + a[1] + ...`` in that order: the fixed-order reduction over blocks."""
    total = a[0].copy()
    for blk in range(1, a.shape[0]):
        total += a[blk]
    return total
