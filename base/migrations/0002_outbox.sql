-- The notification outbox: messages queued in the transaction that decides to send them, delivered
-- with retries. Dispatch's migrations add the references to incidents and tickets.

CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    incident_id     bigint,
    ticket_id       bigint,
    reason          text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('sms', 'email', 'webhook')),
    recipient       text NOT NULL,
    address         text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_incident ON notifications (incident_id);
