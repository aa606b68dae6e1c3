-- An incident's case file of video: the recordings of the cameras near it are held against retention
-- (video's recording_holds, reference "incident:<id>"). This row says the incident has been looked at,
-- so one with no camera nearby is not looked at again.
CREATE TABLE incident_evidence (
    incident_id bigint PRIMARY KEY REFERENCES incidents (id),
    held_at     timestamptz NOT NULL DEFAULT now(),
    cameras     integer NOT NULL
);
