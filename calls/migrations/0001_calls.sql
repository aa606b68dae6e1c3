-- Three-way calls: one open call per incident at most, its parties, the caller's link and positions.
CREATE TABLE calls (
    id               bigserial PRIMARY KEY,
    incident_id      bigint NOT NULL REFERENCES incidents (id),
    dispatcher_id    integer NOT NULL REFERENCES users (id),  -- who holds the call (a transfer changes it)
    node             text NOT NULL,                           -- the server process whose mixer carries it
    opened_at        timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz,
    end_reason       text NOT NULL DEFAULT '',
    -- The recording, as stored when the call ended (files relative to the calls' folder).
    recording        jsonb,
    recorded_s       double precision,
    expired_at       timestamptz                              -- retention removed the files
);
CREATE UNIQUE INDEX calls_one_open_per_incident ON calls (incident_id) WHERE ended_at IS NULL;
CREATE INDEX calls_incident ON calls (incident_id, id);

CREATE TABLE call_parties (
    id            bigserial PRIMARY KEY,
    call_id       bigint NOT NULL REFERENCES calls (id),
    kind          text NOT NULL CHECK (kind IN ('dispatcher', 'subcentre', 'caller')),
    user_id       integer REFERENCES users (id),          -- the dispatcher
    subcentre_id  integer REFERENCES subcentres (id),     -- the sub-centre (whichever of its operators answers)
    answered_by   integer REFERENCES users (id),
    state         text NOT NULL DEFAULT 'invited' CHECK (state IN ('invited', 'joining', 'connected', 'gone', 'dropped')),
    muted         boolean NOT NULL DEFAULT false,
    invited_at    timestamptz NOT NULL DEFAULT now(),
    joined_at     timestamptz,
    left_at       timestamptz,
    CHECK ((kind = 'subcentre') = (subcentre_id IS NOT NULL))
);
CREATE UNIQUE INDEX call_parties_subcentre ON call_parties (call_id, subcentre_id) WHERE subcentre_id IS NOT NULL;
CREATE UNIQUE INDEX call_parties_one_caller ON call_parties (call_id) WHERE kind = 'caller';
CREATE UNIQUE INDEX call_parties_one_dispatcher ON call_parties (call_id) WHERE kind = 'dispatcher';

-- The caller's link: only hashes are stored. The token is good once; the page then holds a session
-- secret for rejoining after a reload or a drop.
CREATE TABLE caller_links (
    call_id       bigint PRIMARY KEY REFERENCES calls (id),
    token_hash    bytea NOT NULL UNIQUE,
    session_hash  bytea UNIQUE,
    phone         text NOT NULL DEFAULT '',
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

CREATE TABLE caller_positions (
    id          bigserial PRIMARY KEY,
    call_id     bigint NOT NULL REFERENCES calls (id),
    at          timestamptz NOT NULL DEFAULT now(),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    accuracy_m  double precision NOT NULL CHECK (accuracy_m >= 0)
);
CREATE INDEX caller_positions_call ON caller_positions (call_id, id);
