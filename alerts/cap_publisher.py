"""Issues CAP messages for incidents under a public-warning plan: Alert when one opens, Update when
its severity changes, Cancel when it closes (or its plan no longer warns). Each is claimed with
SKIP LOCKED and stored with its timeline event in one transaction, so it is issued exactly once."""

from __future__ import annotations

from alerts.cap import Issued, Issuer, identifier, message
from base.pg import Pool, every
from dispatch.store import NewEvent, record_events
from dispatch.views import Views

_DUE = """
WITH latest AS (
    SELECT DISTINCT ON (incident_id) incident_id, msg_type, severity FROM cap_messages
    ORDER BY incident_id, seq DESC)
SELECT i.*, now() AS now, l.msg_type AS last_type, p.body->>'name' AS plan_name,
       coalesce((p.body->>'public_warning')::boolean, false) AS warns
FROM incidents i
LEFT JOIN plans p ON p.key = i.plan_key AND p.version = i.plan_version
LEFT JOIN latest l ON l.incident_id = i.id
WHERE (l.incident_id IS NULL AND i.state = 'open' AND coalesce((p.body->>'public_warning')::boolean, false))
   OR (l.msg_type <> 'Cancel' AND (i.state = 'closed' OR l.severity <> i.severity
                                   OR NOT coalesce((p.body->>'public_warning')::boolean, false)))
ORDER BY i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED
"""


class CapPublisher:
    def __init__(self, pool: Pool, views: Views, origin: Issuer, poll_s: float) -> None:
        self._pool = pool
        self._views = views
        self.origin = origin
        self._poll_s = poll_s

    async def run(self) -> None:
        await every(self._poll_s, self.publish_due, "CAP pass")

    async def publish_due(self) -> int:
        issued = 0
        while await self._publish_one():
            issued += 1
        return issued

    async def _publish_one(self) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_DUE)
            if row is None:
                return False
            previous = await connection.fetch(
                "SELECT identifier, sent FROM cap_messages WHERE incident_id = $1 ORDER BY seq", row["id"])
            if not previous:
                msg_type = "Alert"
            elif row["state"] == "closed" or not row["warns"]:
                msg_type = "Cancel"
            else:
                msg_type = "Update"
            seq, now = len(previous) + 1, row["now"]
            ident = identifier(self.origin, row["id"], seq)
            xml = message(self.origin, self._views.incident(row), row["plan_name"] or "", msg_type, ident, now,
                          [Issued(p["identifier"], p["sent"]) for p in previous])
            await connection.execute(
                "INSERT INTO cap_messages (identifier, incident_id, seq, msg_type, severity, sent, xml)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)", ident, row["id"], seq, msg_type, row["severity"], now,
                xml.decode())
            await record_events(connection, [NewEvent(row["id"], f"cap.{msg_type.lower()}", now,
                                                      {"identifier": ident, "msg_type": msg_type})])
        return True
