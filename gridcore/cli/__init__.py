"""Command-line layer: the ``python -m gridcore ...`` commands (train, analyze, reproduce, info) and their argument types."""
