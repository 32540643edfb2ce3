"""The design matrix of the unit-type classification: (spatial | speed | heading) bins x steps.

One sparse one-hot matrix ``D`` of shape (bins, steps) holds, for every
step, its spatial bin, its speed bin (moving steps only, equal-count bins)
and its heading bin (all steps, equal-width over [-pi, pi)). ``D @ A`` with
the activity ``A`` (steps, units) gives every unit's activity sums per bin
of all three kinds in one product; bin counts are ``D``'s row sums.

A shuffle shifts every unit's activity circularly by one lag along the
path. Rolling the columns of ``D`` by the lag instead gives the same sums
(``roll(D) @ A == D @ roll(A)``) without copying the activity, and the
counts (the occupancy) never change. :class:`BinDesign` does both; the
scores of the sums are in :mod:`gridcore.analysis.shuffles`.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from gridcore.analysis.ratemaps import SpatialBins, spatial_bins
from gridcore.analysis.tuning import bin_mean_speed, direction_bin_index, speed_bin_index

__all__ = ["BinDesign", "design_matrix"]


@dataclass(frozen=True, eq=False)
class BinDesign:
    """Spatial, speed and heading bins of every step of a path, as one sparse matrix.

    Rows ``[0, n_spatial)`` are the flat spatial bins (:class:`SpatialBins`),
    the next ``n_speed`` the speed bins, the last ``n_direction`` the heading bins.

    Attributes
    ----------
    matrix : scipy.sparse.csc_matrix, shape (n_rows, n)
        One-hot: ``matrix[r, t] = 1`` when step t falls in bin r (at most
        three ones per column; a still step has no speed bin).
    binning : SpatialBins
        The spatial bins.
    n_spatial, n_speed, n_direction : int
        Rows of each kind.
    counts : ndarray of int64, shape (n_rows,)
        Steps per bin.
    speed_edges : ndarray, shape (n_speed + 1,)
        Speed bin edges (arena units per step).
    speed_x : ndarray, shape (n_speed,)
        Mean speed of the steps in each speed bin (arena units per step).
    """

    matrix: scipy.sparse.csc_matrix
    binning: SpatialBins
    n_spatial: int
    n_speed: int
    n_direction: int
    counts: np.ndarray
    speed_edges: np.ndarray
    speed_x: np.ndarray

    @property
    def n_steps(self):
        """Steps of the path (columns of the matrix)."""
        return self.matrix.shape[1]

    @property
    def spatial_counts(self):
        """Steps per flat spatial bin, shape (H W,) (the occupancy)."""
        return self.counts[:self.n_spatial]

    @property
    def speed_counts(self):
        """Steps per speed bin, shape (n_speed,)."""
        return self.counts[self.n_spatial:self.n_spatial + self.n_speed]

    @property
    def direction_counts(self):
        """Steps per heading bin, shape (n_direction,)."""
        return self.counts[self.n_spatial + self.n_speed:]

    def sums(self, activity, shift=0):
        """Activity sums per bin, with the activity circularly shifted by ``shift`` steps.

        Parameters
        ----------
        activity : ndarray of float64, shape (n, U)
            Unit activity per step (n = :attr:`n_steps`).
        shift : int
            Lag in [0, n): the sums are those of ``roll(activity, shift)``
            seen from the path, computed by rolling the matrix's columns.

        Returns
        -------
        ndarray of float64, shape (n_rows, U)
        """
        if shift == 0:
            return np.asarray(self.matrix @ activity)
        indptr, indices = _roll_columns(self.matrix.indptr, self.matrix.indices, int(shift))
        rolled = scipy.sparse.csc_matrix((self.matrix.data, indices, indptr), shape=self.matrix.shape)
        return np.asarray(rolled @ activity)


def _roll_columns(indptr, indices, shift):
    """CSC structure whose column j is column (j + shift) % n of the input."""
    nnz = indptr[-1]
    cut = indptr[shift]
    new_indices = np.concatenate([indices[cut:], indices[:cut]])
    new_indptr = np.concatenate([indptr[shift:] - cut, indptr[1:shift + 1] + (nnz - cut)])
    return new_indptr, new_indices


def design_matrix(positions, speed, heading, arena, bins, speed_bins=20, direction_bins=36):
    """The bins of every step of a path (see the module docstring).

    Parameters
    ----------
    positions : ndarray of float64, shape (n, 2)
        Position per step (arena units).
    speed : ndarray of float64, shape (n,)
        Speed per step (arena units per step); steps with speed 0 get no
        speed bin.
    heading : ndarray of float64, shape (n,)
        Heading per step (rad).
    arena : Arena
    bins : int
        Spatial bins along the longer side of the arena (:func:`gridcore.analysis.ratemaps.spatial_bins`).
    speed_bins : int
        Equal-count bins of the moving speeds (:func:`gridcore.analysis.tuning.speed_bin_index`).
    direction_bins : int
        Equal-width heading bins over [-pi, pi) (:func:`gridcore.analysis.tuning.direction_bin_index`).

    Returns
    -------
    BinDesign
    """
    n = len(positions)
    binning = spatial_bins(arena, bins)
    n_sp = binning.n_bins
    sp_idx = binning.flat_index(positions)
    speed_idx, speed_edges = speed_bin_index(speed, speed_bins)   # moving, equal-count bins
    dir_idx, _ = direction_bin_index(heading, direction_bins)
    n_speed = len(speed_edges) - 1
    rows = np.stack([sp_idx, np.where(speed_idx >= 0, n_sp + speed_idx, -1),
                     n_sp + n_speed + dir_idx])                  # (3, n)
    cols = np.broadcast_to(np.arange(n), rows.shape)
    keep = rows >= 0
    n_rows = n_sp + n_speed + direction_bins
    matrix = scipy.sparse.csc_matrix(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n_rows, n))
    matrix.sort_indices()
    counts = np.asarray(matrix.sum(axis=1)).ravel().astype(np.int64)
    return BinDesign(matrix=matrix, binning=binning, n_spatial=n_sp, n_speed=n_speed,
                     n_direction=int(direction_bins), counts=counts, speed_edges=speed_edges,
                     speed_x=bin_mean_speed(speed, speed_idx, n_speed))
