"""Supervision analysis: worker processes decode pictures, detectors judge them, alerts are stored."""
