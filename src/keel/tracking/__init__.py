"""Experiment tracking: runs, params, metrics, tags, artifacts, provenance, search."""
