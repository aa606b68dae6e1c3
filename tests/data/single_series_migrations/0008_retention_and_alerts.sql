-- Retention per camera, and supervision alerts (the video issue's analysis adds its kinds; storage
-- alerts — recordings near the disk quota — come first).

ALTER TABLE cameras ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 1 AND 3650);

CREATE TABLE supervision_alerts (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,           -- storage | absent | offline | covered | defocused | frozen | moved
    camera_id       integer REFERENCES cameras (id),
    opened_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    closed_at       timestamptz,
    detail          jsonb NOT NULL DEFAULT '{}',
    snapshot        bytea                    -- JPEG, when a picture explains the alert
);
CREATE UNIQUE INDEX supervision_alerts_one_open ON supervision_alerts (kind, coalesce(camera_id, 0))
    WHERE closed_at IS NULL;
