-- Administrators, accounts that can be disabled, supervisors limited to departments, and sessions an
-- administrator can see and end: when they began, from where, when they were last used.

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('dispatcher', 'operator', 'supervisor', 'administrator'));
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
-- A supervisor with departments sees only those departments' windows; empty: all of them.
ALTER TABLE users ADD COLUMN departments text[] NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE sessions ADD COLUMN id bigserial UNIQUE;
ALTER TABLE sessions ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE sessions ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE sessions ADD COLUMN address text NOT NULL DEFAULT '';
CREATE INDEX sessions_user ON sessions (user_id);
