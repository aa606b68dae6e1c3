"""Benchmarks. Each prints one JSON object and measures its floor in the same run."""
