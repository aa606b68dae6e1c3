"""Delivers queued notifications, retrying with backoff; every outcome stays visible per incident.

A batch is claimed by pushing its rows' next attempt a lease into the future (committed at once),
so no transaction stays open across network calls and a crashed sender's claims simply fall due
again. Delivery is therefore at least once: a crash right after sending can repeat a message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

import asyncpg

from alerts.channels import Channel, DeliveryFailed, Outgoing, Unconfigured
from base.pg import Pool, every
from dispatch.store import NewEvent, record_events

log = logging.getLogger(__name__)

LEASE_S = 120.0
_BATCH = 20
_MAX_BACKOFF_S = 600


def backoff_s(attempts: int) -> int:
    """Seconds before attempt n+1: 2, 4, 8, ... up to ten minutes."""
    return int(min(_MAX_BACKOFF_S, 2 ** attempts))


class NotificationSender:
    def __init__(self, pool: Pool, channels: Mapping[str, Channel], max_attempts: int, poll_s: float) -> None:
        self._pool = pool
        self._channels = channels
        self._max_attempts = max_attempts
        self._poll_s = poll_s

    async def run(self) -> None:
        await every(self._poll_s, self._deliver_everything_due, "notification pass")

    async def _deliver_everything_due(self) -> None:
        while await self.deliver_due():
            pass

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Try every notification due at `now` (default: the database's clock); how many were tried."""
        claimed = await self._pool.fetch(
            "UPDATE notifications SET attempts = attempts + 1,"
            " next_attempt_at = coalesce($1::timestamptz, now()) + make_interval(secs => $2)"
            " WHERE id IN (SELECT id FROM notifications WHERE status = 'pending'"
            " AND next_attempt_at <= coalesce($1::timestamptz, now()) ORDER BY next_attempt_at, id LIMIT $3"
            " FOR UPDATE SKIP LOCKED)"
            " RETURNING id, incident_id, ticket_id, reason, channel, recipient, address, subject, body, attempts,"
            " coalesce($1::timestamptz, now()) AS now", now, LEASE_S, _BATCH)
        await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def _deliver(self, row: asyncpg.Record) -> None:
        message = Outgoing(row["id"], row["incident_id"], row["ticket_id"], row["reason"], row["recipient"],
                           row["address"], row["subject"], row["body"])
        channel = self._channels.get(row["channel"], Unconfigured(row["channel"]))
        try:
            await channel.send(message)
        except DeliveryFailed as error:
            final = row["attempts"] >= self._max_attempts or isinstance(channel, Unconfigured)
            retry_at: datetime = row["now"] + timedelta(seconds=backoff_s(row["attempts"]))
            await self._outcome(row, "failed" if final else "pending", str(error)[:1000], retry_at)
            log.warning("notification %d to %s by %s failed (attempt %d%s): %s", row["id"], row["recipient"],
                        row["channel"], row["attempts"], ", giving up" if final else "", error)
            return
        await self._outcome(row, "sent", "", row["now"])

    async def _outcome(self, row: asyncpg.Record, status: str, error: str, at: datetime) -> None:
        """Store what became of one attempt and, for a message about an incident, put it on the incident's
        timeline in the same transaction: screens say "sent" or "failed" only from this."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE notifications SET status = $2, last_error = $3,"
                " next_attempt_at = CASE WHEN $2 = 'pending' THEN $4 ELSE next_attempt_at END,"
                " sent_at = CASE WHEN $2 = 'sent' THEN $4 END WHERE id = $1", row["id"], status, error, at)
            if row["incident_id"] is None:
                return
            kind = {"sent": "notification.sent", "failed": "notification.failed"}.get(status, "notification.retrying")
            await record_events(connection, [NewEvent(row["incident_id"], kind, row["now"], {"notification": {
                "id": row["id"], "ticket_id": row["ticket_id"], "reason": row["reason"], "channel": row["channel"],
                "recipient": row["recipient"], "status": status, "error": error, "attempts": row["attempts"]}},
                ticket_id=row["ticket_id"])])
