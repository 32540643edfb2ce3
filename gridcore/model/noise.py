"""Counter-based Gaussian noise: ``xi[m, t, i]`` as a pure function of
``(seed, trial, step, unit)``, computed inside the kernels instead of read
from an (M, T, N) array (docs/math.md section 8).

Every core computes the same bits: the NumPy reference here, the Numba core
(``gridcore/backends/numba/kernels.py``) and the C core (``csrc/grc_noise.h``,
whose table ``csrc/grc_normal_table.h`` is written by
``python -m gridcore.model.noise``). The counters are global trial and step
indices, so a sub-batch of the first trials and a chunk of later steps see
the same noise as the whole batch.
"""

import sys
from dataclasses import dataclass, replace

import numpy as np

from gridcore.util.checks import check_nonneg_float

_GOLDEN = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
TABLE_BITS = 12         # 4096 intervals of the inverse normal CDF
FRAC_BITS = 20          # uniform position inside an interval
SIG_BITS = 32           # significant bits kept in the table, so D f is exact
U64 = (1 << 64) - 1


def _round_sig(v, bits):
    m, e = np.frexp(v)
    return np.ldexp(np.round(m * 2.0**bits) / 2.0**bits, e)


def _normal_table():
    """``(Q, D)``, each (4096,) float64: z = Q[j] + D[j] f is the inverse normal CDF,
    piecewise linear on 4096 equal-probability intervals (math.md eq. N2)."""
    from scipy.special import ndtr, ndtri
    from scipy.stats import norm

    n = 1 << TABLE_BITS
    a = ndtri(np.arange(n + 1) / n)
    edge = a[n - 1]     # the outer intervals: uniform with the normal tail's conditional mean
    a[n] = 2.0 * norm.pdf(edge) / (1.0 - ndtr(edge)) - edge
    a[0] = -a[n]
    d = np.diff(a)
    k = float(1 << FRAC_BITS)
    ef, ef2 = (k - 1) / (2 * k), (k - 1) * (2 * k - 1) / (6 * k * k)
    var = np.mean(a[:-1] ** 2 + 2 * a[:-1] * d * ef + d * d * ef2)
    q = _round_sig(a / np.sqrt(var), SIG_BITS)
    return q[:-1].copy(), _round_sig(np.diff(q), SIG_BITS)


TABLE_Q, TABLE_D = _normal_table()


def mix64(z):
    """splitmix64's finaliser on uint64 (array or scalar), wrapping arithmetic."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):      # wrapping is the point
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _plus(h, k):
    """``h + GOLDEN * (k + 1)`` mod 2**64 (eq. N1); ``k`` a non-negative int or int array."""
    with np.errstate(over="ignore"):
        step = (np.asarray(k, dtype=np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
        return np.asarray(h, dtype=np.uint64) + step


def gaussian(r):
    """Standard normal draws from uint64 counters' hashes ``r`` (eq. N2), float64, same shape."""
    r = np.asarray(r, dtype=np.uint64)
    j = (r >> np.uint64(64 - TABLE_BITS)).astype(np.intp)
    f = ((r >> np.uint64(32)) & np.uint64((1 << FRAC_BITS) - 1)).astype(np.float64) * 2.0**-FRAC_BITS
    return TABLE_Q[j] + TABLE_D[j] * f


@dataclass(frozen=True)
class CounterNoise:
    """Gaussian noise ``xi[m, t, i] = std * z(seed, trial0 + m, step0 + t, i)`` (math.md section 8).

    Pass it wherever a noise array goes (``Batch.noise``, ``forward(noise=)``):
    every backend computes the values in its kernels, so no (M, T, N) array
    is made, and the values are bit-identical across backends and thread counts.

    Attributes
    ----------
    seed : int in [0, 2**64)
    std : float >= 0, the standard deviation (0: no noise)
    trial0, step0 : int >= 0, the global index of trial 0 and step 0 of the
        arrays this noise goes with (``forward_stream`` shifts ``step0``
        for each chunk of time).
    """

    seed: int
    std: float
    trial0: int = 0
    step0: int = 0

    def __post_init__(self):
        for name, hi in (("seed", U64), ("trial0", 1 << 62), ("step0", 1 << 62)):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= hi:
                raise ValueError(f"CounterNoise.{name} must be an integer in [0, {hi}], got {v!r}")
            object.__setattr__(self, name, int(v))
        object.__setattr__(self, "std", check_nonneg_float("CounterNoise.std", self.std))

    def shifted(self, steps):
        """The same noise for a chunk of time that starts ``steps`` steps later."""
        return replace(self, step0=self.step0 + int(steps))

    def step_keys(self, n_trials, step):
        """(n_trials,) uint64: the per-(trial, step) keys ``h_{m,t}`` of eq. N1 at local step ``step``."""
        h = mix64(_plus(np.uint64(self.seed), self.trial0 + np.arange(n_trials)))
        return mix64(_plus(h, self.step0 + step))

    def step(self, n_trials, step, n_units):
        """``xi[:, step]``, (n_trials, n_units) float64."""
        keys = self.step_keys(n_trials, step)
        return self.std * gaussian(mix64(_plus(keys[:, None], np.arange(n_units)[None, :])))

    def array(self, n_trials, n_steps, n_units):
        """The whole (n_trials, n_steps, n_units) float64 noise array (for tests and inspection)."""
        out = np.empty((n_trials, n_steps, n_units))
        for t in range(n_steps):
            out[:, t] = self.step(n_trials, t, n_units)
        return out


def c_header():
    """Text of ``csrc/grc_normal_table.h``: the table as exact hexadecimal literals."""
    def rows(v):
        return ",\n".join("    " + ", ".join(float(x).hex() for x in v[i:i + 4]) for i in range(0, len(v), 4))

    return (f"/* Generated by `python -m gridcore.model.noise > csrc/grc_normal_table.h`: do not edit.\n"
            f" * The inverse normal CDF of docs/math.md eq. N2: z = Q[j] + D[j] f. */\n"
            f"#ifndef GRC_NORMAL_TABLE_H\n#define GRC_NORMAL_TABLE_H\n\n"
            f"#define GRC_NOISE_TABLE_BITS {TABLE_BITS}\n#define GRC_NOISE_FRAC_BITS {FRAC_BITS}\n\n"
            f"static const double grc__normal_q[{len(TABLE_Q)}] = {{\n{rows(TABLE_Q)}\n}};\n\n"
            f"static const double grc__normal_d[{len(TABLE_D)}] = {{\n{rows(TABLE_D)}\n}};\n\n"
            f"#endif /* GRC_NORMAL_TABLE_H */\n")


if __name__ == "__main__":
    sys.stdout.write(c_header())
