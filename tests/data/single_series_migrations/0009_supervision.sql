-- Supervision alerts from the analysis: when the condition began (the clerk left), when it cleared
-- (the clerk came back), and who acknowledged and closed it. At most one active (uncleared) alert
-- per camera and kind; a supervisor may close an alert whose condition still lasts.

ALTER TABLE supervision_alerts
    ADD COLUMN began_at        timestamptz,
    ADD COLUMN cleared_at      timestamptz,
    ADD COLUMN acknowledged_by text,
    ADD COLUMN closed_by       text,
    ADD COLUMN note            text NOT NULL DEFAULT '';
UPDATE supervision_alerts SET began_at = opened_at, cleared_at = closed_at;
ALTER TABLE supervision_alerts ALTER COLUMN began_at SET NOT NULL;
DROP INDEX supervision_alerts_one_open;
CREATE UNIQUE INDEX supervision_alerts_one_active ON supervision_alerts (kind, coalesce(camera_id, 0))
    WHERE cleared_at IS NULL;
CREATE INDEX supervision_alerts_by_time ON supervision_alerts (opened_at);

-- The picture of each camera's empty seat (PNG, grey, tile size): what presence is judged against.
CREATE TABLE camera_empty_seats (
    camera_id integer PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    png       bytea NOT NULL,
    taken_at  timestamptz NOT NULL DEFAULT now(),
    how       text NOT NULL  -- marked (by a supervisor) | learned (while closed)
);
