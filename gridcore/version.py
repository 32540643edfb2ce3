"""The package version, in one place (read by pyproject.toml, run configs and reports)."""

__version__ = "0.1.0"
