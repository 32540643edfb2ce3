"""Speed and head-direction tuning curves and selectivities (paper App. D).

- speed tuning curve: mean activity per speed bin (equal-count bins by
  default), against the mean speed in the bin; speed selectivity: the
  absolute slope of a least-squares line through the curve (activity per
  arena unit per step, the bins weighted equally), 0 for a unit not
  modulated by speed;
- direction tuning curve: mean activity per heading bin; direction
  selectivity: its maximum minus its minimum, 0 for a unit not modulated
  by heading.

Speeds are in arena units per step and headings in rad, as in
:class:`gridcore.sim.trajectories.Trajectories`. Every function handles all units
at once: a curve is one sparse (bins x samples) product with the activity.
"""

import numpy as np

from gridcore.analysis.ratemaps import bin_sums
from gridcore.util.checks import as_float_array, check_choice, check_positive_int

__all__ = [
    "speed_tuning",
    "speed_selectivity",
    "direction_tuning",
    "direction_selectivity",
    "speed_bin_index",
    "bin_mean_speed",
    "direction_bin_index",
    "SPEED_QUANTILE",
]

# Equal-width speed bins end at this quantile of the moving speeds by
# default: the sparse tail beyond it would give a few noisy bins as much
# weight in the line fit as the well-sampled ones.
SPEED_QUANTILE = 0.99


def _flatten(activity, behaviour, name):
    """Validate (activity, behaviour) and flatten to (n, U) and (n,)."""
    act = np.asarray(activity)
    if act.ndim == 3:
        act = as_float_array("activity", act, (None, None, None))
        beh = as_float_array(name, behaviour, act.shape[:2])
        return act.reshape(-1, act.shape[2]), beh.ravel()
    act = as_float_array("activity", act, (None, None))
    return act, as_float_array(name, behaviour, (act.shape[0],))


def speed_bin_index(speed, n_bins, speed_range=None, moving_only=True, spacing="quantile"):
    """Speed bin of each sample, -1 for samples left out.

    Parameters
    ----------
    speed : ndarray, shape (n,)
        Speed per sample (arena units per step), >= 0.
    n_bins : int
        Number of bins.
    speed_range : (float, float), optional
        ``(low, high)`` (arena units per step); samples outside are left out.
        Default: every included speed for ``"quantile"``, ``(0, q)`` with q
        the :data:`SPEED_QUANTILE` quantile of the included speeds for
        ``"uniform"``.
    moving_only : bool
        Leave out steps with speed exactly 0 (see :func:`speed_tuning`).
    spacing : {"quantile", "uniform"}
        Bins holding equal numbers of samples, or of equal width.

    Returns
    -------
    idx : ndarray of int64, shape (n,)
    edges : ndarray, shape (n_bins + 1,)
        Bin edges (arena units per step).
    """
    n_bins = check_positive_int("n_bins", n_bins)
    check_choice("spacing", spacing, ("quantile", "uniform"))
    if np.any(speed < 0):
        raise ValueError("speed must be >= 0")
    use = speed > 0 if moving_only else np.ones(len(speed), dtype=bool)
    if speed_range is not None:
        lo, hi = map(float, speed_range)
        if not hi > lo:
            raise ValueError(f"speed_range must be (low, high) with high > low, got {speed_range}")
        use &= (speed >= lo) & (speed <= hi)
    if not np.any(use):
        raise ValueError("speed: no samples to bin (all speeds are 0 and moving_only=True, "
                         "or none in speed_range)")
    if spacing == "quantile":
        edges = np.quantile(speed[use], np.linspace(0.0, 1.0, n_bins + 1))
        if speed_range is not None:
            edges[0], edges[-1] = lo, hi
    else:
        if speed_range is None:
            lo, hi = 0.0, float(np.quantile(speed[use], SPEED_QUANTILE))
            use &= speed <= hi
        edges = np.linspace(lo, hi, n_bins + 1)
    # Right-closed on the last edge, so the fastest sample is binned.
    idx = np.clip(np.searchsorted(edges, speed, side="right") - 1, 0, n_bins - 1)
    idx[~use] = -1
    return idx, edges


def direction_bin_index(heading, n_bins):
    """Heading bin of each sample: bin k covers [-pi + k w, -pi + (k+1) w), w = 2pi/n_bins.

    Parameters
    ----------
    heading : ndarray, shape (n,)
        Heading (rad), any real value (wrapped).
    n_bins : int

    Returns
    -------
    idx : ndarray of int64, shape (n,)
    centres : ndarray, shape (n_bins,)
        Bin centres (rad).
    """
    n_bins = check_positive_int("n_bins", n_bins)
    width = 2 * np.pi / n_bins
    idx = np.floor(np.mod(heading + np.pi, 2 * np.pi) / width).astype(np.int64)
    centres = -np.pi + width * (np.arange(n_bins) + 0.5)
    return np.minimum(idx, n_bins - 1), centres


def _curves(activity, idx, n_bins, min_count):
    """Mean activity per bin (U, n_bins) and counts; NaN below ``min_count``."""
    keep = idx >= 0
    sums = bin_sums(idx[keep], activity[keep], n_bins)
    counts = np.bincount(idx[keep], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        curves = (sums / counts[:, None]).T
    curves[:, counts < min_count] = np.nan
    return curves, counts


def speed_tuning(activity, speed, n_bins=20, speed_range=None, moving_only=True,
                 spacing="quantile", min_count=10):
    """Speed tuning curves: mean activity per speed bin.

    By default only moving steps count (speed > 0): the paper's paths stand
    still on 90% of steps, and a pause is a behavioural state of its own
    (speed-cell studies such as Kropff et al. 2015 also leave out
    near-stationary periods). ``moving_only=False`` keeps those steps (they
    fill the lowest bins).

    Bins hold equal numbers of samples by default: moving speeds are
    Rayleigh-like, so equal-width bins at either end hold few samples,
    and, weighted like the others in the line fit of
    :func:`speed_selectivity`, their noise would dominate the slope.

    Parameters
    ----------
    activity : array_like, shape (n, n_units) or (M, T, n_units)
        Unit activity per step.
    speed : array_like, shape (n,) or (M, T)
        Speed per step (arena units per step), >= 0.
    n_bins : int
        Number of speed bins.
    speed_range : (float, float), optional
        Binned speed range (arena units per step), see :func:`speed_bin_index`.
    moving_only : bool
        Leave out steps with speed 0.
    spacing : {"quantile", "uniform"}
        Equal-count (default) or equal-width bins.
    min_count : int
        Bins with fewer samples are NaN.

    Returns
    -------
    speeds : ndarray, shape (n_bins,)
        Mean speed of the samples in each bin (arena units per step; NaN if
        empty): the curve's abscissa.
    curves : ndarray, shape (n_units, n_bins)
        Mean activity per bin; NaN for bins with fewer than ``min_count`` samples.
    counts : ndarray of int64, shape (n_bins,)
        Samples per bin.
    """
    act, spd = _flatten(activity, speed, "speed")
    idx, _ = speed_bin_index(spd, n_bins, speed_range, moving_only, spacing)
    curves, counts = _curves(act, idx, n_bins, check_positive_int("min_count", min_count))
    return bin_mean_speed(spd, idx, n_bins), curves, counts


def bin_mean_speed(speed, idx, n_bins):
    """Mean speed of the samples in each bin (NaN if empty).

    The abscissa of a speed tuning curve: with it, a unit linear in speed
    gets exactly its slope back, whatever the speed distribution in a bin.

    Parameters
    ----------
    speed : ndarray, shape (n,)
        Speed per sample (arena units per step).
    idx : ndarray of int64, shape (n,)
        Bin of each sample, -1 for samples left out (:func:`speed_bin_index`).
    n_bins : int

    Returns
    -------
    ndarray of float64, shape (n_bins,)
        Arena units per step.
    """
    keep = idx >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.bincount(idx[keep], speed[keep], minlength=n_bins)
                / np.bincount(idx[keep], minlength=n_bins))


def speed_selectivity(speeds, curves):
    """Absolute slope of a least-squares line through each speed tuning curve.

    Parameters
    ----------
    speeds : array_like, shape (n_bins,)
        Abscissa of the curves (arena units per step), as returned by
        :func:`speed_tuning`; NaN entries are left out of the fit.
    curves : array_like, shape (n_units, n_bins)
        Tuning curves; NaN bins are left out of the fit.

    Returns
    -------
    ndarray of float64, shape (n_units,)
        |slope| (activity per arena unit per step); NaN with fewer than 2 bins.
    """
    curves = as_float_array("curves", curves, (None, None), finite=False)
    x = as_float_array("speeds", speeds, (curves.shape[1],), finite=False)
    v = np.isfinite(curves) & np.isfinite(x)
    y = np.where(v, curves, 0.0)
    xv = np.where(v, x, 0.0)
    n = v.sum(axis=1)
    sx, sy = xv.sum(axis=1), y.sum(axis=1)
    sxx, sxy = (xv * xv).sum(axis=1), (xv * y).sum(axis=1)
    den = n * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (n * sxy - sx * sy) / den
    slope[~((n >= 2) & (den > 0))] = np.nan
    return np.abs(slope)


def direction_tuning(activity, heading, n_bins=36, moving_only=False, speed=None, min_count=10):
    """Head-direction tuning curves: mean activity per heading bin.

    By default every step counts: the paper's network receives the heading
    as an input on every step, moving or not ("the average unit activity as
    a function of direction input", App. D).

    Parameters
    ----------
    activity : array_like, shape (n, n_units) or (M, T, n_units)
        Unit activity per step.
    heading : array_like, shape (n,) or (M, T)
        Heading per step (rad).
    n_bins : int
        Number of equal-width bins over [-pi, pi) (default 36, 10 deg).
    moving_only : bool
        Only count steps with speed > 0 (then ``speed`` is required).
    speed : array_like, shape like ``heading``, optional
        Speed per step (arena units per step).
    min_count : int
        Bins with fewer samples are NaN.

    Returns
    -------
    centres : ndarray, shape (n_bins,)
        Bin centres (rad).
    curves : ndarray, shape (n_units, n_bins)
        Mean activity per bin.
    counts : ndarray of int64, shape (n_bins,)
        Samples per bin.
    """
    act, hd = _flatten(activity, heading, "heading")
    idx, centres = direction_bin_index(hd, n_bins)
    if moving_only:
        if speed is None:
            raise ValueError("speed is required when moving_only=True")
        idx[as_float_array("speed", np.ravel(speed), (len(hd),)) <= 0] = -1
    curves, counts = _curves(act, idx, n_bins, check_positive_int("min_count", min_count))
    return centres, curves, counts


def direction_selectivity(curves):
    """Maximum minus minimum of each direction tuning curve (paper App. D).

    Parameters
    ----------
    curves : array_like, shape (n_units, n_bins)
        Tuning curves (NaN bins ignored).

    Returns
    -------
    ndarray of float64, shape (n_units,)
        In units of activity; NaN for an all-NaN curve.
    """
    curves = as_float_array("curves", curves, (None, None), finite=False)
    v = np.isfinite(curves)
    hi = np.max(np.where(v, curves, -np.inf), axis=1)
    lo = np.min(np.where(v, curves, np.inf), axis=1)
    out = hi - lo
    out[~v.any(axis=1)] = np.nan
    return out
