"""Convex arenas centred on the origin (paper Sec. 2.2).

All lengths are in *arena units*; the default square is [-1, 1]^2 (area 4).
Every named arena built by :func:`make_arena` has the same area, ``size**2``,
where ``size`` is the side of the square of equal area (default 2.0).

Three concrete kinds exist: :class:`Polygon` (any convex polygon containing the
origin strictly inside), :class:`Circle` and :class:`Torus`, a square with
periodic boundaries (no walls for motion; it describes itself as its square).
All describe themselves to Numba code through :meth:`Arena.kernel_geometry`,
a ``(kind, params)`` pair read by the one njit helper
:func:`gridcore.sim.walk.point_inside` (kept in the module of the walk kernel
that calls it, for Numba's cache), so trajectory kernels handle every walled
arena with the same code.

Positions are compared through :meth:`Arena.difference`, :meth:`Arena.mean`
and :meth:`Arena.squared_distance`: plain arithmetic in a walled arena,
minimum-image and circular in the torus, so one code path serves both.
"""

import math
from numbers import Integral, Real

import numpy as np

from gridcore.sim.walk import KIND_CIRCLE, KIND_POLYGON

__all__ = [
    "ARENA_NAMES",
    "WALLED_ARENA_NAMES",
    "KIND_POLYGON",
    "KIND_CIRCLE",
    "Arena",
    "Polygon",
    "Circle",
    "Torus",
    "min_image",
    "position_ops",
    "make_arena",
    "arena_from_dict",
]

WALLED_ARENA_NAMES = ("square", "triangle", "hexagon", "circle")
ARENA_NAMES = WALLED_ARENA_NAMES + ("torus",)
DEFAULT_SIZE = 2.0  # arena units: side of the equal-area square, [-1, 1]^2
# Range of sizes (arena units): it keeps areas and the simulation's squared distances finite and
# normal. Polygon corners and circle radii are held to the matching extent, [MIN_SIZE / 2, MAX_SIZE].
MIN_SIZE, MAX_SIZE = 1e-6, 1e6


def _check_extent(what, extent):
    """Raise ValueError naming ``what`` unless ``extent`` (arena units) is in [MIN_SIZE / 2, MAX_SIZE]."""
    if not MIN_SIZE / 2 <= extent <= MAX_SIZE:
        raise ValueError(f"{what} must be in [{MIN_SIZE / 2:g}, {MAX_SIZE:g}] arena units (the extent of "
                         f"make_arena's sizes {MIN_SIZE:g} to {MAX_SIZE:g}), got {extent:g}")

# Relative tolerance for geometric degeneracy checks (collinear vertices, a
# zero-length edge, the origin on a wall), scaled by the polygon's extent.
_GEOM_RTOL = 1e-12


def min_image(d, period):
    """Displacements ``d`` (arena units) wrapped into [-period/2, period/2]: the minimum image."""
    return d - period * np.round(d / period)


def position_ops(arena):
    """``(difference, mean)`` for positions in ``arena``: its methods, or plain subtraction and mean for None."""
    if arena is None:
        return np.subtract, np.mean
    return arena.difference, arena.mean


def _as_points(points):
    """Return ``points`` as a float64 array of shape (..., 2) or raise."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] != 2:
        raise ValueError(
            f"points must have shape (..., 2), got shape {np.shape(points)}")
    return p


class Arena:
    """Common interface of convex arenas centred on the origin.

    Subclasses set ``name``, ``area``, ``perimeter``, ``inradius`` and
    ``bounds`` and implement the geometric queries. Point arguments are
    array-likes of shape (..., 2) in arena units; results have shape (...).
    """

    name: str
    area: float
    perimeter: float
    inradius: float
    bounds: tuple
    periodic = False  # True: opposite sides are joined (no walls for motion)

    def wrap(self, points):
        """Positions (..., 2) as a float64 array; periodic arenas wrap them into ``bounds``."""
        return _as_points(points)

    def difference(self, a, b):
        """Displacement ``a - b`` (arena units, shape of the broadcast), the minimum image if periodic."""
        return np.subtract(a, b)

    def squared_distance(self, a, b):
        """Squared distance |a - b|^2 (arena units^2) over the last axis, shape (...)."""
        return np.sum(self.difference(a, b) ** 2, axis=-1)

    def mean(self, points, axis):
        """Mean position over ``axis`` (arena units); periodic arenas take the circular mean per coordinate."""
        return np.mean(points, axis=axis)

    def contains(self, points, tol=0.0):
        """Whether points lie inside or on the boundary.

        Parameters
        ----------
        points : array_like, shape (..., 2)
            Positions (arena units).
        tol : float
            Points up to ``tol`` (Euclidean distance, arena units) outside
            still count as inside; a negative value demands that clearance
            inside.

        Returns
        -------
        ndarray of bool, shape (...)
        """
        return self.wall_distance(points) >= -tol

    def wall_distance(self, points):
        """Signed Euclidean distance to the nearest wall.

        Parameters
        ----------
        points : array_like, shape (..., 2)
            Positions (arena units).

        Returns
        -------
        ndarray of float64, shape (...)
            Distance (arena units), positive inside, negative outside.
        """
        raise NotImplementedError

    def nearest_wall(self, points):
        """Index of the nearest wall, shape (...) of int64."""
        raise NotImplementedError

    def kernel_geometry(self):
        """Plain-array description for Numba kernels.

        Returns
        -------
        kind : int
            ``KIND_POLYGON`` or ``KIND_CIRCLE``.
        params : ndarray of float64, shape (K, 3), C-contiguous
            Polygon: one row ``(nx, ny, offset)`` per wall, inside <=>
            ``nx*x + ny*y <= offset`` for every row. Circle: one row
            ``(0, 0, radius)``.
        """
        raise NotImplementedError

    def to_dict(self):
        """JSON-serialisable description; rebuild with :func:`arena_from_dict`."""
        raise NotImplementedError

    def sample_uniform(self, n, rng):
        """Points drawn uniformly inside the arena (rejection from ``bounds``).

        Parameters
        ----------
        n : int
            Number of points, >= 0.
        rng : numpy.random.Generator or int
            Random source (an int is used as a seed).

        Returns
        -------
        ndarray of float64, shape (n, 2)
            Positions (arena units).
        """
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        rng = np.random.default_rng(rng)
        xmin, ymin, xmax, ymax = self.bounds
        accept_rate = self.area / ((xmax - xmin) * (ymax - ymin))
        out = np.empty((0, 2))
        while len(out) < n:
            need = n - len(out)
            batch = rng.uniform((xmin, ymin), (xmax, ymax),
                                size=(int(need / accept_rate * 1.2) + 16, 2))
            out = np.concatenate([out, batch[self.contains(batch)][:need]])
        return out


class Polygon(Arena):
    """Convex polygon arena.

    Parameters
    ----------
    vertices : array_like, shape (K, 2)
        Corners (arena units) in either orientation, K >= 3, strictly convex
        (no three consecutive corners collinear). They are stored
        counter-clockwise. The origin must lie strictly inside.
    name : str
        Label used in reprs and saved configs.

    Attributes
    ----------
    vertices : ndarray, shape (K, 2)
        Counter-clockwise corners; wall k runs from vertex k to vertex k+1.
    walls : ndarray, shape (K, 2, 2)
        ``walls[k] = (vertices[k], vertices[k+1 mod K])``.
    normals : ndarray, shape (K, 2)
        Outward unit normal of each wall.
    offsets : ndarray, shape (K,)
        Distance of each wall's line from the origin; a point p is inside
        <=> ``normals @ p <= offsets``.
    area, perimeter, inradius : float
        Area (units^2), perimeter (units) and distance from the origin to the
        nearest wall (units; the usual inradius for regular polygons).
    bounds : tuple of float
        ``(xmin, ymin, xmax, ymax)``.
    """

    def __init__(self, vertices, name="polygon"):
        try:
            raw = np.asarray(vertices)
        except ValueError:  # ragged rows
            raw = np.asarray(vertices, dtype=object)
        if raw.dtype.kind not in "iuf":
            raise ValueError(f"vertices must be (x, y) pairs of real numbers (int or float), got an "
                             f"array of dtype {raw.dtype}: {vertices!r:.80}")
        v = np.array(raw, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3:
            raise ValueError(
                f"vertices must have shape (K, 2) with K >= 3, got "
                f"shape {np.shape(vertices)}")
        if not np.all(np.isfinite(v)):
            raise ValueError("vertices must be finite (no NaN or inf)")
        _check_extent("vertices: the largest |coordinate|", float(np.max(np.abs(v))))
        if not isinstance(name, str):
            raise ValueError(f"name must be a str, got {name!r}")
        edges = np.roll(v, -1, axis=0) - v
        signed_area = 0.5 * np.sum(v[:, 0] * edges[:, 1] - v[:, 1] * edges[:, 0])
        if signed_area < 0:
            v = v[::-1].copy()
            edges = np.roll(v, -1, axis=0) - v
        scale = np.max(np.abs(v))
        lengths = np.hypot(edges[:, 0], edges[:, 1])
        if np.min(lengths) <= _GEOM_RTOL * scale:
            raise ValueError("vertices are degenerate (repeated corner)")
        # Strictly convex and simple: every turn is left, and they add up to
        # one full turn (a star polygon also turns left, but twice round).
        nxt = np.roll(edges, -1, axis=0)
        cross = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]
        turns = np.arctan2(cross, np.sum(edges * nxt, axis=1))
        if (np.min(cross) <= _GEOM_RTOL * scale**2
                or not np.isclose(np.sum(turns), 2 * np.pi)):
            raise ValueError(
                "vertices must form a strictly convex polygon (got a "
                "non-convex, self-intersecting or degenerate one)")
        normals = np.column_stack([edges[:, 1], -edges[:, 0]]) / lengths[:, None]
        offsets = np.sum(normals * v, axis=1)
        if np.min(offsets) <= _GEOM_RTOL * scale:
            raise ValueError(
                "vertices: the origin must lie strictly inside the polygon "
                "(arenas are centred on the origin)")
        self.name = name
        self.vertices = v
        self.walls = np.stack([v, np.roll(v, -1, axis=0)], axis=1)
        self.normals = normals
        self.offsets = offsets
        self.area = float(abs(signed_area))
        self.perimeter = float(np.sum(lengths))
        self.inradius = float(np.min(offsets))
        self.bounds = (*map(float, v.min(axis=0)), *map(float, v.max(axis=0)))
        for a in (self.vertices, self.walls, self.normals, self.offsets):
            a.setflags(write=False)

    def _segment_distances(self, p):
        """Unsigned distance from points (..., 2) to each wall, (..., K)."""
        a = self.walls[:, 0]
        ab = self.walls[:, 1] - a
        ap = p[..., None, :] - a
        s = np.clip(np.sum(ap * ab, axis=-1) / np.sum(ab * ab, axis=-1), 0, 1)
        d = ap - s[..., None] * ab
        return np.hypot(d[..., 0], d[..., 1])

    def wall_distance(self, points):
        """Signed distance to the nearest wall segment (arena units; see :meth:`Arena.wall_distance`)."""
        p = _as_points(points)
        # For a convex polygon the distance to the boundary is the distance
        # to the nearest wall segment, inside and outside alike.
        d = np.min(self._segment_distances(p), axis=-1)
        inside = np.all(p @ self.normals.T <= self.offsets, axis=-1)
        return np.where(inside, d, -d)

    def nearest_wall(self, points):
        """Index k of the nearest wall (from vertex k to vertex k+1).

        Parameters
        ----------
        points : array_like, shape (..., 2)
            Positions (arena units).

        Returns
        -------
        ndarray of int64, shape (...)
            Ties (e.g. at a corner) go to the lower index.
        """
        return np.argmin(self._segment_distances(_as_points(points)), axis=-1)

    def kernel_geometry(self):
        """``(KIND_POLYGON, rows (nx, ny, offset) per wall)`` (see :meth:`Arena.kernel_geometry`)."""
        params = np.column_stack([self.normals, self.offsets])
        return KIND_POLYGON, np.ascontiguousarray(params)

    def to_dict(self):
        """``{"kind": "polygon", "name", "vertices"}`` (see :meth:`Arena.to_dict`)."""
        return {"kind": "polygon", "name": self.name,
                "vertices": self.vertices.tolist()}

    def __repr__(self):
        return f"Polygon(vertices={self.vertices.tolist()!r}, name={self.name!r})"


class Circle(Arena):
    """Circular arena of radius ``radius`` (arena units) centred on the origin.

    It has a single wall, so :meth:`nearest_wall` is always 0.
    """

    def __init__(self, radius, name="circle"):
        if (isinstance(radius, bool) or not isinstance(radius, Real)
                or not math.isfinite(radius) or radius <= 0):
            raise ValueError(
                f"radius must be a positive finite number, got {radius!r}")
        _check_extent("radius", float(radius))
        if not isinstance(name, str):
            raise ValueError(f"name must be a str, got {name!r}")
        self.name = name
        self.radius = float(radius)
        self.area = math.pi * self.radius**2
        self.perimeter = 2 * math.pi * self.radius
        self.inradius = self.radius
        self.bounds = (-self.radius, -self.radius, self.radius, self.radius)

    def wall_distance(self, points):
        """Radius minus the distance from the centre (arena units; see :meth:`Arena.wall_distance`)."""
        p = _as_points(points)
        return self.radius - np.hypot(p[..., 0], p[..., 1])

    def nearest_wall(self, points):
        """Always 0 (the circle is one wall), shape (...) of int64."""
        return np.zeros(_as_points(points).shape[:-1], dtype=np.int64)

    def kernel_geometry(self):
        """``(KIND_CIRCLE, [[0, 0, radius]])`` (see :meth:`Arena.kernel_geometry`)."""
        return KIND_CIRCLE, np.array([[0.0, 0.0, self.radius]])

    def to_dict(self):
        """``{"kind": "circle", "name", "radius"}`` (see :meth:`Arena.to_dict`)."""
        return {"kind": "circle", "name": self.name, "radius": self.radius}

    def __repr__(self):
        return f"Circle(radius={self.radius!r}, name={self.name!r})"


class Torus(Polygon):
    """Square of side ``size`` centred on the origin whose opposite sides are joined.

    Nothing stops motion: positions wrap modulo ``size`` into
    [-size/2, size/2]^2 and distances are minimum-image. The square's edges
    still serve as the "walls" of :meth:`wall_distance`, :meth:`nearest_wall`
    and :meth:`kernel_geometry`, for analyses of the unwrapped square
    (border scores, wall masks); they are no walls for motion.
    """

    periodic = True

    def __init__(self, size, name="torus"):
        if (isinstance(size, bool) or not isinstance(size, Real)
                or not math.isfinite(size) or size <= 0):
            raise ValueError(f"size must be a positive finite number, got {size!r}")
        h = 0.5 * float(size)
        super().__init__([(-h, -h), (h, -h), (h, h), (-h, h)], name=name)
        self.side = float(size)

    def wrap(self, points):
        """Positions (..., 2) wrapped modulo ``side`` into [-side/2, side/2) (arena units)."""
        p = _as_points(points)
        return p - self.side * np.floor((p + 0.5 * self.side) / self.side)

    def difference(self, a, b):
        """Minimum-image displacement ``a - b`` (arena units), each coordinate in [-side/2, side/2]."""
        return min_image(np.subtract(a, b), self.side)

    def mean(self, points, axis):
        """Circular mean per coordinate over ``axis`` (arena units, in [-side/2, side/2]).

        Each coordinate is an angle 2 pi x / side; the mean is the direction of
        the mean unit vector (0 if they cancel), so points either side of a
        seam average near the seam, not the centre.
        """
        a = np.asarray(points, dtype=np.float64) * (2 * np.pi / self.side)
        return np.arctan2(np.mean(np.sin(a), axis=axis), np.mean(np.cos(a), axis=axis)) * (self.side / (2 * np.pi))

    def to_dict(self):
        """``{"kind": "torus", "name", "size"}`` (see :meth:`Arena.to_dict`)."""
        return {"kind": "torus", "name": self.name, "size": self.side}

    def __repr__(self):
        return f"Torus(size={self.side!r}, name={self.name!r})"


def make_arena(name, size=None):
    """Build a named arena centred on the origin.

    Parameters
    ----------
    name : {"square", "triangle", "hexagon", "circle", "torus"}
        Shape. The triangle is equilateral with a horizontal base at the
        bottom and its centroid at the origin; the hexagon is regular with
        flat top and bottom walls (corners at 0, 60, ..., 300 degrees); the
        torus is the square with periodic boundaries (:class:`Torus`).
    size : float, optional
        Side of the square of equal area (arena units), default 2.0: every
        named arena has area ``size**2`` (default 4, the square [-1, 1]^2).

    Returns
    -------
    Arena
    """
    if not isinstance(name, str) or name not in ARENA_NAMES:
        raise ValueError(
            f"unknown arena {name!r}; allowed names: {', '.join(ARENA_NAMES)}")
    if size is None:
        size = DEFAULT_SIZE
    if (isinstance(size, bool) or not isinstance(size, Real)
            or not math.isfinite(size) or not MIN_SIZE <= size <= MAX_SIZE):
        raise ValueError(f"size must be a number in [{MIN_SIZE:g}, {MAX_SIZE:g}] (arena units), got {size!r}")
    area = float(size) ** 2
    if name == "circle":
        return Circle(math.sqrt(area / math.pi), name=name)
    if name == "torus":
        return Torus(float(size), name=name)
    if name == "square":
        h = 0.5 * size
        vertices = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif name == "triangle":
        side = math.sqrt(4 * area / math.sqrt(3))
        height = 0.5 * math.sqrt(3) * side
        vertices = [(-0.5 * side, -height / 3), (0.5 * side, -height / 3),
                    (0.0, 2 * height / 3)]
    else:  # hexagon: area = 3*sqrt(3)/2 * R^2 with R the corner radius
        r = math.sqrt(2 * area / (3 * math.sqrt(3)))
        h = 0.5 * math.sqrt(3) * r
        vertices = [(r, 0.0), (0.5 * r, h), (-0.5 * r, h), (-r, 0.0),
                    (-0.5 * r, -h), (0.5 * r, -h)]
    return Polygon(vertices, name=name)


def arena_from_dict(d):
    """Rebuild an arena from :meth:`Arena.to_dict` output.

    Parameters
    ----------
    d : dict
        ``{"kind": "polygon", "name": str, "vertices": [[x, y], ...]}`` or
        ``{"kind": "circle", "name": str, "radius": float}`` or
        ``{"kind": "torus", "name": str, "size": float}``.

    Returns
    -------
    Arena
    """
    fields = {"polygon": {"kind", "name", "vertices"},
              "circle": {"kind", "name", "radius"},
              "torus": {"kind", "name", "size"}}
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in fields:
        raise ValueError(
            f"d must be a dict with 'kind' in {sorted(fields)}, got {d!r}")
    if set(d) != fields[kind]:
        raise ValueError(
            f"d for kind {kind!r} must have exactly the keys "
            f"{sorted(fields[kind])}, got {sorted(d)}")
    if kind == "polygon":
        return Polygon(d["vertices"], name=d["name"])
    if kind == "torus":
        return Torus(d["size"], name=d["name"])
    return Circle(d["radius"], name=d["name"])

