-- Escalation groundwork: each ticket's stage limits and deadlines, kept as rows (a restart loses
-- none, a claimed row fires once), the contacts escalation reaches, and the outbox's references.

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

ALTER TABLE subcentres
    ADD COLUMN duty_phone          text NOT NULL DEFAULT '',
    ADD COLUMN leader_name         text NOT NULL DEFAULT '',
    ADD COLUMN leader_phone        text NOT NULL DEFAULT '',
    ADD COLUMN leader_email        text NOT NULL DEFAULT '',
    ADD COLUMN backup_subcentre_id integer REFERENCES subcentres (id);

ALTER TABLE notifications
    ADD CONSTRAINT notifications_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES incidents (id),
    ADD CONSTRAINT notifications_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES tickets (id);
