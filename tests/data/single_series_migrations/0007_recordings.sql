-- Full-time recording (全程录像): every finished segment, and every gap between them.

CREATE TABLE segments (
    id         bigserial PRIMARY KEY,
    camera_id  integer NOT NULL REFERENCES cameras (id),
    started_at timestamptz NOT NULL,
    ended_at   timestamptz NOT NULL CHECK (ended_at >= started_at),
    bytes      bigint NOT NULL,
    path       text NOT NULL UNIQUE
);
CREATE INDEX segments_camera_time ON segments (camera_id, started_at);

CREATE TABLE recording_gaps (
    id         bigserial PRIMARY KEY,
    camera_id  integer NOT NULL REFERENCES cameras (id),
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,               -- open while the camera is still not recording
    reason     text NOT NULL
);
CREATE INDEX recording_gaps_camera ON recording_gaps (camera_id, started_at);
