"""Dispatch: incident taxonomy, routing decisions, tickets and their state machine, the terminal protocol."""
