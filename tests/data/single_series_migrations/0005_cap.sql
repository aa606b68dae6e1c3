-- Public warnings: every OASIS CAP 1.2 message issued, as sent.

CREATE TABLE cap_messages (
    identifier  text PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    seq         integer NOT NULL,          -- 1, 2, 3 ... per incident: Alert, then Updates, then Cancel
    msg_type    text NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    severity    smallint NOT NULL,
    sent        timestamptz NOT NULL,
    xml         text NOT NULL,
    UNIQUE (incident_id, seq)
);
