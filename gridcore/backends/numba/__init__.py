"""The Numba core: kernels (``kernels.py``) and their backend wrapper (``backend.py``)."""
