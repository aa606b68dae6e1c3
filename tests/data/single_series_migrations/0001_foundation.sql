-- Foundation: sub-centres and their jurisdictions, accounts, incidents, tickets, and the event log.

CREATE TABLE subcentres (
    id           serial PRIMARY KEY,
    code         text NOT NULL UNIQUE,
    name         text NOT NULL,
    department   text NOT NULL,
    site_lon     double precision NOT NULL,
    site_lat     double precision NOT NULL,
    jurisdiction jsonb NOT NULL,              -- GeoJSON geometry, WGS-84
    -- Per-sub-centre event sequence: a row lock makes numbers gap-free and in commit order, so a
    -- terminal that says "I saw up to N" can be sent exactly what it missed.
    last_seq     bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            serial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('dispatcher', 'operator', 'supervisor')),
    subcentre_id  integer REFERENCES subcentres (id),
    CHECK ((role = 'operator') = (subcentre_id IS NOT NULL))
);

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,              -- sha256 of the bearer token; the token itself is never stored
    user_id    integer NOT NULL REFERENCES users (id),
    expires_at timestamptz NOT NULL
);

CREATE TABLE incidents (
    id           bigserial PRIMARY KEY,
    type_code    text NOT NULL,
    severity     smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    address      text NOT NULL DEFAULT '',
    caller_name  text NOT NULL DEFAULT '',
    caller_phone text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    flagged      boolean NOT NULL DEFAULT false, -- routing needs the dispatcher's eye
    created_by   integer REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz
);
CREATE INDEX incidents_state_created ON incidents (state, created_at DESC);
CREATE INDEX incidents_created ON incidents (created_at DESC);

CREATE TABLE tickets (
    id                   bigserial PRIMARY KEY,
    incident_id          bigint NOT NULL REFERENCES incidents (id),
    subcentre_id         integer NOT NULL REFERENCES subcentres (id),
    department           text NOT NULL,
    state                text NOT NULL CHECK (state IN
                             ('created', 'delivered', 'acknowledged', 'closed', 'rejected', 'cancelled')),
    created_at           timestamptz NOT NULL,
    delivered_at         timestamptz,
    acknowledged_at      timestamptz,
    closed_at            timestamptz,
    rejected_at          timestamptz,
    cancelled_at         timestamptz,
    reason               text NOT NULL DEFAULT '',
    feedback             jsonb,
    outside_jurisdiction boolean NOT NULL DEFAULT false,
    distance_m           double precision NOT NULL DEFAULT 0,
    UNIQUE (incident_id, subcentre_id)
);
CREATE INDEX tickets_open_by_subcentre ON tickets (subcentre_id) WHERE state NOT IN ('closed', 'cancelled');

-- Every state change, in the order it happened: an incident's timeline, and the stream each
-- sub-centre's terminals replay from.
CREATE TABLE events (
    id            bigserial PRIMARY KEY,
    incident_id   bigint NOT NULL REFERENCES incidents (id),
    ticket_id     bigint REFERENCES tickets (id),
    subcentre_id  integer REFERENCES subcentres (id),
    subcentre_seq bigint,
    kind          text NOT NULL,
    actor_id      integer REFERENCES users (id),
    at            timestamptz NOT NULL DEFAULT now(),
    data          jsonb NOT NULL,
    UNIQUE (subcentre_id, subcentre_seq)
);
CREATE INDEX events_incident ON events (incident_id, id);
