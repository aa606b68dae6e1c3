"""Dispatch: the incident taxonomy, routing decisions, tickets (their state machine, stage deadlines
and tones), the store and its event stream, the terminal protocol and socket, and the terminal page."""
