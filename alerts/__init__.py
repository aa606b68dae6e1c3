"""Alerts: what happens when a ticket stage is late (escalation rules and the escalator), the channels
that reach people outside the terminals (webhook, e-mail, SMS gateway) and the sender that delivers
the outbox, and public warnings as OASIS CAP 1.2 (messages, their publisher and routes)."""
