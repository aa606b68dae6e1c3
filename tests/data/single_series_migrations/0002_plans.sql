-- Contingency plans (预案), versioned: editing a plan adds a version; an incident keeps the one it ran under.

CREATE TABLE plans (
    key        text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    version    integer NOT NULL CHECK (version >= 1),
    body       jsonb NOT NULL,
    retired    boolean NOT NULL DEFAULT false,
    created_by integer REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);

ALTER TABLE incidents
    ADD COLUMN plan_key text,
    ADD COLUMN plan_version integer,
    ADD FOREIGN KEY (plan_key, plan_version) REFERENCES plans (key, version);

-- The plan's checklist for the ticket's department, part of the order the sub-centre receives.
ALTER TABLE tickets ADD COLUMN tasks jsonb NOT NULL DEFAULT '[]';
