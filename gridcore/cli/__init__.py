"""Command-line layer: the ``gridcore`` commands and their argument types.

train, analyze, reproduce, sweep, info and export, each a module with ``main(argv)``;
:mod:`gridcore.cli.main` dispatches ``gridcore COMMAND`` (the console script and
``python -m gridcore``) to them, and ``python -m gridcore.COMMAND`` runs one directly
(``gridcore/train/__main__.py``, ``gridcore/analyze.py``, ``gridcore/reproduce.py``,
``gridcore/sweep/__main__.py``, ``gridcore/info.py``, ``gridcore/export.py``).
"""
