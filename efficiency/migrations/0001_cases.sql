-- Approval items, the cases the departments' systems report, every event of each case as received,
-- the anomalies the stage rules find, and the yellow and red cards.

CREATE TABLE approval_items (
    code        text PRIMARY KEY,
    department  text NOT NULL,
    name        text NOT NULL,
    body        jsonb NOT NULL,                 -- the whole item (efficiency.items.ApprovalItem)
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_items_department ON approval_items (department);

CREATE TABLE approval_cases (
    id           bigserial PRIMARY KEY,
    department   text NOT NULL,
    reference    text NOT NULL,                 -- the department system's own case number
    item_code    text NOT NULL REFERENCES approval_items (code),
    applicant    text NOT NULL DEFAULT '',
    window_label text NOT NULL DEFAULT '',
    accepted_at  timestamptz,
    completed_at timestamptz,
    suspended    boolean NOT NULL DEFAULT false,
    used_days    double precision NOT NULL DEFAULT 0,
    yellow_at    timestamptz,                   -- when its yellow card falls due, as the clock stands
    red_at       timestamptz,
    estimated    boolean NOT NULL DEFAULT false, -- a year without the State Council's notice was involved
    UNIQUE (department, reference)
);
CREATE INDEX approval_cases_open_yellow ON approval_cases (yellow_at) WHERE completed_at IS NULL;
CREATE INDEX approval_cases_open_red ON approval_cases (red_at) WHERE completed_at IS NULL;

CREATE TABLE case_events (
    id          bigserial PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES approval_cases (id),
    department  text NOT NULL,
    event_id    text NOT NULL,                  -- the department system's id: a retry carries the same one
    kind        text NOT NULL CHECK (kind IN ('stage', 'suspend', 'resume')),
    stage       text,
    at          timestamptz NOT NULL,
    actor       text NOT NULL DEFAULT '',
    documents   text[] NOT NULL DEFAULT '{}',
    fee_yuan    double precision,
    digest      bytea NOT NULL,                 -- SHA-256 of what was sent: a retry must match it
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department, event_id)
);
CREATE INDEX case_events_case ON case_events (case_id, at);

CREATE TABLE case_anomalies (
    case_id  bigint NOT NULL REFERENCES approval_cases (id),
    rule     text NOT NULL,
    event_id text NOT NULL,
    detail   text NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, rule, event_id)
);

CREATE TABLE efficiency_cards (
    id        bigserial PRIMARY KEY,
    case_id   bigint NOT NULL REFERENCES approval_cases (id),
    colour    text NOT NULL CHECK (colour IN ('yellow', 'red')),
    reason    text NOT NULL,                    -- "time", or the anomaly's rule
    event_id  text NOT NULL DEFAULT '',         -- the anomaly's event; '' for a time card
    detail    text NOT NULL DEFAULT '',
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    UNIQUE (case_id, colour, reason, event_id)
);
CREATE INDEX efficiency_cards_open ON efficiency_cards (opened_at) WHERE closed_at IS NULL;
