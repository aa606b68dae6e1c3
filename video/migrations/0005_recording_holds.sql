-- Recordings kept past retention while something still needs them (an open red card or complaint about
-- a window): retention deletes no segment an active hold covers.

CREATE TABLE recording_holds (
    id          bigserial PRIMARY KEY,
    camera_id   integer NOT NULL REFERENCES cameras (id),
    since       timestamptz NOT NULL,
    until       timestamptz,              -- NULL: everything from `since` on, for as long as the hold lasts
    reference   text NOT NULL,            -- what needs it, e.g. "efficiency-card:12"
    placed_at   timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    UNIQUE (reference, camera_id)
);
CREATE INDEX recording_holds_active ON recording_holds (camera_id, since) WHERE released_at IS NULL;
