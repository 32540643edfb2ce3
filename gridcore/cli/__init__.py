"""Command-line layer: the ``python -m gridcore ...`` commands and their argument types.

train, analyze, reproduce and info; the entry points are ``gridcore/train/__main__.py``,
``gridcore/analyze.py``, ``gridcore/reproduce.py`` and ``gridcore/__main__.py``.
"""
