"""Alerts: what a terminal sounds for a ticket; escalation and notification channels come later."""
