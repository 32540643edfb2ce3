"""Report layer: the figures of an analysis, its ``report.html`` and the files of ``RUN_DIR/analysis/``."""
