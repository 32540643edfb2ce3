"""Place cells: a population code of position (Sorscher et al. 2019/2023).

:class:`PlaceCells` holds N_p centres in an arena and turns positions into
target distributions over the cells (:meth:`PlaceCells.encode`) and
activities back into positions (:meth:`PlaceCells.decode`). With the
place-cell readout the network outputs logits over the cells and is
trained on the cross-entropy against ``encode(positions)``; decoding its
outputs gives positions in arena units, so tracking errors keep their units.

Tuning, for a position p and centres c_i, with d_i = |p - c_i| (arena units):

- Gaussian (``surround=False``): ``target = softmax_i(-d_i^2 / (2 sigma^2))``;
- difference of Gaussians (``surround=True``, the default):
  ``g = softmax_i(-d_i^2 / (2 sigma^2)) - softmax_i(-d_i^2 / (2 s sigma^2))``
  with ``s = surround_scale`` (2: the surround's variance is twice the
  centre's, its width sqrt(2) sigma), then ``target = (g - min_i g) /
  sum_j (g_j - min_i g)``: shifted to be non-negative and normalised to sum 1,
  as in Sorscher et al.'s ``place_cells.py``.

In a periodic arena (:class:`gridcore.sim.arenas.Torus`) d_i is the
minimum-image distance, so the code is periodic, and decoding takes the
circular mean of the centres.

Units: arena units throughout; with the smooth motion model one arena unit
is one metre, so the defaults (sigma = 0.12) are Sorscher et al.'s 12 cm.
"""

import math
from numbers import Integral, Real

import numpy as np

from gridcore.sim.arenas import Arena, arena_from_dict, make_arena, min_image
from gridcore.util.checks import check_choice

__all__ = ["PLACE_CELL_DEFAULTS", "LAYOUTS", "PlaceCells", "outputs_to_positions"]

PLACE_CELL_DEFAULTS = {
    "n_cells": 512,          # N_p, place cells (Sorscher et al.)
    "sigma": 0.12,           # arena units (= m for the smooth motion model): width of the centre Gaussian
    "surround": True,        # difference of Gaussians (True) or a plain Gaussian (False)
    "surround_scale": 2.0,   # ratio of the surround's variance to the centre's (width sqrt(2) sigma)
    "layout": "random",      # centres uniform at random in the arena, or on a square "lattice"
    "seed": 0,               # seed of the random centres (recorded, unused by the lattice)
}
"""Defaults of :class:`PlaceCells` (Sorscher et al.'s model)."""

LAYOUTS = ("random", "lattice")

# Centres may lie this far outside the arena (relative to its inradius) in a
# saved file: round-off of a JSON round trip, not a misplaced cell.
_INSIDE_RTOL = 1e-9

# Lattice search: the spacing starts at sqrt(area / N_p) and shrinks by this
# factor until at least N_p lattice points fall inside the arena.
_LATTICE_SHRINK = 0.999

# Positions are encoded in chunks of this many rows: the temporaries stay in
# cache (2.6x faster than 4096 rows at N_p = 512) and memory stays bounded.
_CHUNK = 256


def _check_real(name, value, low, high=math.inf, low_open=True):
    """``value`` as float, or ValueError naming ``name`` unless low < value < high (or <= low)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    ok = (v > low if low_open else v >= low) and v < high
    if not ok:  # NaN fails too
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _lattice(arena, n):
    """``n`` centres on a square lattice centred on the origin, inside ``arena``.

    The spacing starts at ``sqrt(area / n)`` (one cell per lattice square)
    and shrinks until at least ``n`` points (at half-integer multiples of the
    spacing) lie inside; surplus points nearest the walls are dropped (ties
    by row order). A square arena with n = k^2 gets the k x k grid of
    spacing side / k exactly. A periodic arena has no walls to drop cells
    near: it gets the k x k grid with k = ceil(sqrt(n)), which tiles the
    torus evenly, and drops its surplus at evenly spaced row-major indices.
    """
    if arena.periodic:
        k = math.ceil(math.sqrt(n))
        g = (np.arange(k) + 0.5) * (arena.side / k) - 0.5 * arena.side
        gx, gy = np.meshgrid(g, g, indexing="xy")
        pts = np.column_stack([gx.ravel(), gy.ravel()])
        return pts[np.round(np.linspace(0, k * k - 1, n)).astype(np.int64)]
    h = math.sqrt(arena.area / n)
    xmin, ymin, xmax, ymax = arena.bounds
    while True:
        ix = np.arange(math.floor(xmin / h - 0.5), math.ceil(xmax / h - 0.5) + 1)
        iy = np.arange(math.floor(ymin / h - 0.5), math.ceil(ymax / h - 0.5) + 1)
        gx, gy = np.meshgrid((ix + 0.5) * h, (iy + 0.5) * h, indexing="xy")
        pts = np.column_stack([gx.ravel(), gy.ravel()])
        pts = pts[arena.wall_distance(pts) > 0]
        if len(pts) >= n:
            break
        h *= _LATTICE_SHRINK
    if len(pts) > n:
        keep = np.sort(np.argsort(-arena.wall_distance(pts), kind="stable")[:n])
        pts = pts[keep]
    return pts


class PlaceCells:
    """N_p place cells with Gaussian or difference-of-Gaussians tuning in an arena.

    Parameters
    ----------
    arena : Arena or str
        Where the cells live; a name is built with
        :func:`gridcore.sim.arenas.make_arena` (default size).
    n_cells : int >= 2 or None
        N_p, the number of cells; None: :data:`PLACE_CELL_DEFAULTS`' 512, or
        the number of ``centres`` when they are given.
    sigma : float > 0
        Width of the centre Gaussian (arena units).
    surround : bool
        Difference of Gaussians made non-negative and normalised (True) or a
        plain softmax-normalised Gaussian (False).
    surround_scale : float > 1
        Ratio of the surround's variance to the centre's (2: width sqrt(2) sigma).
    layout : {"random", "lattice"}
        Centres uniform at random inside the arena (from ``seed``) or on a
        square lattice centred on the origin (see :func:`_lattice`).
    seed : int >= 0
        Seed of the random centres (``numpy.random.default_rng(seed)``).
    centres : array_like, shape (N_p, 2), optional
        Given centres (arena units), inside the arena; then ``n_cells`` must
        be None or their number, and ``layout`` and ``seed`` are only recorded.

    Attributes
    ----------
    centres : ndarray of float64, shape (N_p, 2), read-only
        The cells' centres (arena units).
    arena, n_cells, sigma, surround, surround_scale, layout, seed
        As given.
    """

    def __init__(self, arena, n_cells=None, sigma=PLACE_CELL_DEFAULTS["sigma"],
                 surround=PLACE_CELL_DEFAULTS["surround"], surround_scale=PLACE_CELL_DEFAULTS["surround_scale"],
                 layout=PLACE_CELL_DEFAULTS["layout"], seed=PLACE_CELL_DEFAULTS["seed"], centres=None):
        if isinstance(arena, str):
            arena = make_arena(arena)
        elif not isinstance(arena, Arena):
            raise ValueError(f"arena must be an Arena or a name, got {arena!r}")
        self.arena = arena
        self.sigma = _check_real("sigma", sigma, 0.0)
        if not isinstance(surround, (bool, np.bool_)):
            raise ValueError(f"surround must be True or False, got {surround!r}")
        self.surround = bool(surround)
        self.surround_scale = _check_real("surround_scale", surround_scale, 1.0)
        self.layout = check_choice("layout", layout, LAYOUTS)
        self.seed = _check_seed(seed)
        if centres is None:
            if n_cells is None:
                n_cells = PLACE_CELL_DEFAULTS["n_cells"]
            if isinstance(n_cells, bool) or not isinstance(n_cells, Integral) or n_cells < 2:
                raise ValueError(f"n_cells must be an integer >= 2, got {n_cells!r}")
            n_cells = int(n_cells)
            if layout == "random":
                c = arena.sample_uniform(n_cells, np.random.default_rng(self.seed))
            else:
                c = _lattice(arena, n_cells)
        else:
            c = np.array(centres, dtype=np.float64)
            if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] < 2:
                raise ValueError(f"centres must have shape (N_p, 2) with N_p >= 2, got shape {np.shape(centres)}")
            if not np.all(np.isfinite(c)):
                raise ValueError("centres must be finite (no NaN or inf)")
            if n_cells is not None and n_cells != len(c):
                raise ValueError(f"n_cells = {n_cells!r} but {len(c)} centres were given")
            outside = ~arena.contains(c, tol=_INSIDE_RTOL * arena.inradius)
            if outside.any():
                raise ValueError(
                    f"centres must lie inside the {arena.name} arena; {int(outside.sum())} do not "
                    f"(first: {c[outside][0].tolist()})")
        c.setflags(write=False)
        self.centres = c
        self.n_cells = len(c)

    # ---- the code

    def encode(self, positions):
        """Target distributions over the cells at ``positions``.

        Parameters
        ----------
        positions : array_like, shape (..., 2)
            Positions (arena units).

        Returns
        -------
        ndarray of float64, shape (..., N_p)
            Non-negative, summing to 1 over the last axis; largest at the
            cell whose centre is nearest.
        """
        p = np.asarray(positions, dtype=np.float64)
        if p.ndim == 0 or p.shape[-1] != 2:
            raise ValueError(f"positions must have shape (..., 2), got shape {np.shape(positions)}")
        if not np.all(np.isfinite(p)):
            raise ValueError("positions must be finite (no NaN or inf)")
        lead = p.shape[:-1]
        flat = p.reshape(-1, 2)
        out = np.empty((len(flat), self.n_cells))
        for lo in range(0, len(flat), _CHUNK):
            out[lo:lo + _CHUNK] = self._encode_rows(flat[lo:lo + _CHUNK])
        return out.reshape(*lead, self.n_cells)

    def _encode_rows(self, p):
        """:meth:`encode` of rows p, shape (n, 2) -> (n, N_p), in place where it can."""
        c = self.centres
        z = p[:, None, 0] - c[:, 0]
        dy = p[:, None, 1] - c[:, 1]
        if self.arena.periodic:            # minimum-image distances: the code is periodic
            z = min_image(z, self.arena.side)
            dy = min_image(dy, self.arena.side)
        z *= z
        dy *= dy
        z += dy
        # z = -d^2 / (2 sigma^2) shifted so that its maximum (the nearest
        # cell) is 0: the softmax is then exp(z) / sum exp(z), overflow-free.
        z -= z.min(axis=-1, keepdims=True)
        z *= -1.0 / (2.0 * self.sigma**2)
        if not self.surround:
            np.exp(z, out=z)
            z /= z.sum(axis=-1, keepdims=True)
            return z
        if self.surround_scale == 2.0:     # exp(z) = exp(z / 2)^2: one exp instead of two
            surround = np.exp(0.5 * z)
            centre = surround * surround
        else:
            centre = np.exp(z)
            surround = np.exp(z / self.surround_scale)
        centre /= centre.sum(axis=-1, keepdims=True)
        surround /= surround.sum(axis=-1, keepdims=True)
        centre -= surround
        centre -= centre.min(axis=-1, keepdims=True)
        centre /= centre.sum(axis=-1, keepdims=True)
        return centre

    def decode(self, activity, k=3):
        """Positions from activities: the mean of the centres of the ``k`` most active cells.

        The mean is the arena's (:meth:`gridcore.sim.arenas.Arena.mean`):
        circular per coordinate in a periodic arena, so cells either side of
        a seam decode near the seam.

        Parameters
        ----------
        activity : array_like, shape (..., N_p)
            Logits, probabilities or any activation that is larger where a
            cell is more active.
        k : int, 1 <= k <= N_p
            Cells averaged (Sorscher et al.: 3).

        Returns
        -------
        ndarray of float64, shape (..., 2)
            Positions (arena units).
        """
        a = np.asarray(activity, dtype=np.float64)
        if a.ndim == 0 or a.shape[-1] != self.n_cells:
            raise ValueError(
                f"activity must have shape (..., {self.n_cells}) (one value per cell), got shape "
                f"{np.shape(activity)}")
        if np.isnan(a).any():
            raise ValueError("activity contains NaN")
        if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= self.n_cells:
            raise ValueError(f"k must be an integer in [1, {self.n_cells}], got {k!r}")
        top = np.argpartition(-a, k - 1, axis=-1)[..., :k]
        return self.arena.mean(self.centres[top], axis=-2)

    # ---- saving

    def to_dict(self):
        """JSON-ready description; rebuild with :meth:`from_dict`.

        Returns
        -------
        dict
            ``centres`` (list of [x, y]), ``sigma``, ``surround``,
            ``surround_scale``, ``layout``, ``seed`` and ``arena``
            (:meth:`gridcore.sim.arenas.Arena.to_dict`).
        """
        return {"centres": self.centres.tolist(), "sigma": self.sigma, "surround": self.surround,
                "surround_scale": self.surround_scale, "layout": self.layout, "seed": self.seed,
                "arena": self.arena.to_dict()}

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict` output, validated.

        Parameters
        ----------
        d : dict
            Exactly the keys of :meth:`to_dict`.

        Returns
        -------
        PlaceCells

        Raises
        ------
        ValueError
            Missing or unknown keys, or a value out of range (named); centres
            outside the arena.
        """
        keys = ("centres", "sigma", "surround", "surround_scale", "layout", "seed", "arena")
        if not isinstance(d, dict):
            raise ValueError(f"place cells must be a dict with keys {list(keys)}, got {type(d).__name__}")
        if set(d) != set(keys):
            raise ValueError(f"place cells must have exactly the keys {sorted(keys)}, got {sorted(d)}")
        return cls(arena_from_dict(d["arena"]), n_cells=None, sigma=d["sigma"], surround=d["surround"],
                   surround_scale=d["surround_scale"], layout=d["layout"], seed=d["seed"],
                   centres=d["centres"])

    def __eq__(self, other):
        if not isinstance(other, PlaceCells):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self):
        return (f"PlaceCells(arena={self.arena.name!r}, n_cells={self.n_cells}, sigma={self.sigma!r}, "
                f"surround={self.surround}, surround_scale={self.surround_scale!r}, "
                f"layout={self.layout!r}, seed={self.seed})")


def outputs_to_positions(y, spec, place_cells=None):
    """The positions a network's outputs report, in arena units, for either readout.

    Parameters
    ----------
    y : array_like, shape (..., Nout)
        Outputs of a network of model ``spec``.
    spec : ModelSpec
    place_cells : PlaceCells or None
        The run's place cells; required by the ``"place-cells"`` readout.

    Returns
    -------
    ndarray of float64, shape (..., 2)
        ``y`` itself for the ``"xy"`` readout; for ``"place-cells"``,
        ``place_cells.decode(y)`` (the mean centre of the 3 cells with the
        largest logits).
    """
    if spec.readout == "xy":
        return np.asarray(y, dtype=np.float64)
    if not isinstance(place_cells, PlaceCells) or place_cells.n_cells != spec.n_place_cells:
        raise ValueError(f"the 'place-cells' readout needs the run's PlaceCells ({spec.n_place_cells} cells) "
                         f"to decode positions, got {place_cells!r}")
    return place_cells.decode(y)
