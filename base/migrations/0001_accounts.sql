-- Accounts and their sessions. An operator belongs to a sub-centre; dispatch's migrations declare
-- that reference, since the platform knows no sub-centres.

CREATE TABLE users (
    id            serial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('dispatcher', 'operator', 'supervisor')),
    subcentre_id  integer,
    CHECK ((role = 'operator') = (subcentre_id IS NOT NULL))
);

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,              -- sha256 of the bearer token; the token itself is never stored
    user_id    integer NOT NULL REFERENCES users (id),
    expires_at timestamptz NOT NULL
);
