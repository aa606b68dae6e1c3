-- Correction notices (纠错通知) and their steps, complaints (投诉), window ratings (评价器), and the
-- monthly bulletins (一月一通报) as issued.

CREATE TABLE correction_notices (
    id         bigserial PRIMARY KEY,
    case_id    bigint NOT NULL REFERENCES approval_cases (id),
    card_id    bigint REFERENCES efficiency_cards (id),   -- the card it answers, if any
    department text NOT NULL,
    state      text NOT NULL CHECK (state IN ('issued', 'answered', 'accepted', 'returned')),
    issued_at  timestamptz NOT NULL DEFAULT now(),
    closed_at  timestamptz                                 -- accepted
);
CREATE INDEX correction_notices_case ON correction_notices (case_id);
CREATE INDEX correction_notices_open ON correction_notices (department) WHERE closed_at IS NULL;

-- Every step of a notice, in order: the notice itself, each answer, each acceptance or return.
CREATE TABLE correction_steps (
    id        bigserial PRIMARY KEY,
    notice_id bigint NOT NULL REFERENCES correction_notices (id),
    kind      text NOT NULL CHECK (kind IN ('issued', 'answered', 'accepted', 'returned')),
    body      text NOT NULL,
    actor     text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX correction_steps_notice ON correction_steps (notice_id, id);

CREATE TABLE complaints (
    id           bigserial PRIMARY KEY,
    channel      text NOT NULL CHECK (channel IN ('public', 'hotline')),
    department   text NOT NULL,
    window_label text NOT NULL DEFAULT '',
    case_id      bigint REFERENCES approval_cases (id),
    staff        text NOT NULL DEFAULT '',
    complainant  text NOT NULL,
    contact      text NOT NULL,
    body         text NOT NULL,
    happened_at  timestamptz,                  -- when what is complained of happened, if said
    address      text NOT NULL DEFAULT '',     -- where a public complaint came from
    received_at  timestamptz NOT NULL DEFAULT now(),
    yellow_at    timestamptz NOT NULL,         -- the answer's time limit, as for cases
    due_at       timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('received', 'assigned', 'answered', 'closed')),
    assigned_to  text NOT NULL DEFAULT '',
    answer       text NOT NULL DEFAULT '',
    answered_at  timestamptz,
    upheld       boolean,                      -- the department's finding: was the complaint founded?
    verdict      text CHECK (verdict IN ('satisfied', 'unsatisfied')),  -- the complainant's
    closed_at    timestamptz
);
CREATE INDEX complaints_department ON complaints (department, received_at);
CREATE INDEX complaints_open ON complaints (due_at) WHERE answered_at IS NULL;

-- A card belongs to a case or to a complaint (an answer not given in time).
ALTER TABLE efficiency_cards ALTER COLUMN case_id DROP NOT NULL;
ALTER TABLE efficiency_cards ADD COLUMN complaint_id bigint REFERENCES complaints (id);
ALTER TABLE efficiency_cards ADD CONSTRAINT efficiency_cards_one_subject
    CHECK ((case_id IS NULL) <> (complaint_id IS NULL));
CREATE UNIQUE INDEX efficiency_cards_complaint ON efficiency_cards (complaint_id, colour) WHERE complaint_id IS NOT NULL;
ALTER TABLE efficiency_cards ADD COLUMN closed_by text NOT NULL DEFAULT '';

CREATE TABLE window_ratings (
    id           bigserial PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES approval_cases (id),
    moment       text NOT NULL CHECK (moment IN ('accepted', 'completed')),
    verdict      text NOT NULL CHECK (verdict IN ('satisfied', 'basically', 'unsatisfied')),
    department   text NOT NULL,
    window_label text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, moment)                   -- one rating per case and moment: a tablet cannot be stuffed
);
CREATE INDEX window_ratings_department ON window_ratings (department, at);

CREATE TABLE efficiency_bulletins (
    month      date PRIMARY KEY,               -- the first day of the month it covers
    issued_at  timestamptz NOT NULL DEFAULT now(),
    issued_by  text NOT NULL,
    figures    jsonb NOT NULL,                 -- what the bulletin says, as numbers
    html       text NOT NULL,
    pdf        bytea NOT NULL,
    pdf_sha256 text NOT NULL
);

CREATE INDEX approval_cases_completed ON approval_cases (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX approval_cases_accepted ON approval_cases (accepted_at);
CREATE INDEX efficiency_cards_case ON efficiency_cards (case_id);

-- What the dashboard groups and judges by, kept on the case so a month's figures need no join:
-- the staff member who accepted it, and the item's limits as they stood when it was accepted.
ALTER TABLE approval_cases ADD COLUMN staff text NOT NULL DEFAULT '';
ALTER TABLE approval_cases ADD COLUMN promised_days integer NOT NULL DEFAULT 0;
ALTER TABLE approval_cases ADD COLUMN legal_days integer NOT NULL DEFAULT 0;
ALTER TABLE approval_cases ADD COLUMN received_at timestamptz NOT NULL DEFAULT now();
UPDATE approval_cases c SET promised_days = (i.body ->> 'promised_days')::int, legal_days = (i.body ->> 'legal_days')::int
    FROM approval_items i WHERE i.code = c.item_code;
CREATE INDEX approval_cases_department_accepted ON approval_cases (department, accepted_at);
CREATE INDEX efficiency_cards_opened ON efficiency_cards (opened_at);
CREATE INDEX case_anomalies_found ON case_anomalies (found_at);
CREATE INDEX approval_cases_window ON approval_cases (department, window_label, id);
CREATE INDEX complaints_received ON complaints (received_at);
CREATE INDEX window_ratings_at ON window_ratings (at);
CREATE INDEX efficiency_cards_closed ON efficiency_cards (closed_at) WHERE closed_at IS NOT NULL;  -- the live board's look
