"""One row per unit: its type, every score with its shuffle threshold, and how its map and tuning look.

:func:`unit_columns` makes the table, as columns of equal length; the
analysis writes it as ``units.csv`` (:mod:`gridcore.report.outputs`) and
:func:`unit_table` returns it as a pandas DataFrame (``pip install
'gridcore[pandas]'``) for ``gridcore.load_run(...).units()``.

Columns, in order: ``unit``; ``type`` (grid, border, band, irregular or
none), ``labels`` (the type, then speed and/or direction, space-separated),
``grid_symmetry`` (60 or 90 for grid units, else 0), ``periodic``;
``plane`` (the map's plane score) and ``ramp`` (plane >= ``RAMP_R2``);
then for each score of :data:`gridcore.analysis.shuffles.SCORE_NAMES`
(grid60, grid90, border, band, spatial_information, lifetime_sparseness,
speed_selectivity, direction_selectivity) the score, ``<score>_threshold``
(the 95th percentile of its shuffle null) and ``<score>_passes``; and
``speed_r2`` (R^2 of a line through the speed tuning curve) when given.
Undefined scores are NaN (see ``docs/scores.md``).
"""

import numpy as np

from gridcore.analysis.scores import plane_score
from gridcore.analysis.shuffles import SCORE_NAMES
from gridcore.analysis.unitsummary import RAMP_R2

__all__ = ["unit_columns", "unit_table"]


def unit_columns(types, speed_r2=None):
    """The per-unit table as columns.

    Parameters
    ----------
    types : CellTypes
        From :func:`gridcore.analysis.celltypes.classify`.
    speed_r2 : array_like, shape (N,), optional
        R^2 of the line through each unit's speed tuning curve
        (:func:`gridcore.analysis.unitsummary.tuning_curves`).

    Returns
    -------
    dict of str -> ndarray, shape (N,)
        Column name -> values, in the order of the module docstring.
    """
    n = len(types.spatial_type)
    plane = plane_score(types.maps)
    passes = types.passes()
    cols = {
        "unit": np.arange(n),
        "type": np.asarray(types.spatial_type, dtype=str),
        "labels": np.array([" ".join(lab) for lab in types.labels], dtype=str),
        "grid_symmetry": np.asarray(types.grid_symmetry, dtype=np.int64),
        "periodic": np.asarray(types.periodic, dtype=bool),
        "plane": plane,
        "ramp": np.nan_to_num(plane, nan=-1.0) >= RAMP_R2,
    }
    for k in SCORE_NAMES:
        cols[k] = np.asarray(types.scores[k], dtype=np.float64)
        cols[f"{k}_threshold"] = np.asarray(types.thresholds[k], dtype=np.float64)
        cols[f"{k}_passes"] = passes[k]
    if speed_r2 is not None:
        r2 = np.asarray(speed_r2, dtype=np.float64)
        if r2.shape != (n,):
            raise ValueError(f"speed_r2 must have shape ({n},) (one value per unit), got {r2.shape}")
        cols["speed_r2"] = r2
    return cols


def unit_table(types, speed_r2=None):
    """The per-unit table (:func:`unit_columns`) as a pandas DataFrame indexed by unit.

    Raises
    ------
    ImportError
        pandas is not installed (the message says how to install it).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("unit tables as DataFrames need pandas: pip install 'gridcore[pandas]' "
                          "(python -m gridcore.analyze writes the same table as units.csv without it)") from None
    return pd.DataFrame(unit_columns(types, speed_r2)).set_index("unit")
