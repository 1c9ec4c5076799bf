"""Metric points: validation, Parquet segments, the background writer and history readers."""
