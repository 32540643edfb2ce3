"""Analysis layer: recordings of trained networks, rate maps, scores, unit types and the paper's claims C1-C8.

The pipeline that runs every analysis on a run is :mod:`gridcore.analysis.pipeline`.
"""
