"""Utility layer, below everything: argument checks and atomic file writes."""
