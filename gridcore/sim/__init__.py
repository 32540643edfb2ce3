"""Simulation layer: arenas, simulated trajectories and their Numba walk, real paths and path files."""
