"""The bottom layer: argument checks and atomic file writes, used by every other layer."""
