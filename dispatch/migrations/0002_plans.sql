-- The contingency plan an incident runs under (its key and version; command's migrations declare the
-- reference to the plans table), and the plan's checklist on each ticket, part of the order the
-- sub-centre receives.

ALTER TABLE incidents
    ADD COLUMN plan_key text,
    ADD COLUMN plan_version integer;

ALTER TABLE tickets ADD COLUMN tasks jsonb NOT NULL DEFAULT '[]';
