"""The platform every package stands on (基础平台): PostgreSQL (pool, codecs, each package's migrations),
LISTEN/NOTIFY fan-out, accounts and sessions, the notification outbox, domain errors and their one
code table, HTTP route declarations, and the one WebSocket session. It imports no other package."""
