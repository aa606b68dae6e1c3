"""Geometry: coordinate datums, administrative boundaries, jurisdictions and their spatial index."""
