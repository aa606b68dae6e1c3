-- Escalation: stage deadlines kept as rows (a restart loses none, a claimed row fires once), the
-- notification outbox, and the contacts escalation reaches.

ALTER TABLE tickets ADD COLUMN limits jsonb NOT NULL DEFAULT '{}';  -- the plan's stage limits, in seconds

CREATE TABLE deadlines (
    id        bigserial PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets (id),
    stage     text NOT NULL CHECK (stage IN ('deliver', 'acknowledge', 'feedback')),
    step      smallint NOT NULL DEFAULT 0,
    due_at    timestamptz NOT NULL,
    fired_at  timestamptz,
    outcome   text CHECK (outcome IN ('escalated', 'satisfied')),
    UNIQUE (ticket_id, stage, step)
);
CREATE INDEX deadlines_due ON deadlines (due_at) WHERE fired_at IS NULL;

CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    incident_id     bigint REFERENCES incidents (id),
    ticket_id       bigint REFERENCES tickets (id),
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

ALTER TABLE subcentres
    ADD COLUMN duty_phone          text NOT NULL DEFAULT '',
    ADD COLUMN leader_name         text NOT NULL DEFAULT '',
    ADD COLUMN leader_phone        text NOT NULL DEFAULT '',
    ADD COLUMN leader_email        text NOT NULL DEFAULT '',
    ADD COLUMN backup_subcentre_id integer REFERENCES subcentres (id);
