-- The statistics read a period's cases and cards from indexes alone (efficiency/statistics.py): each
-- index on a time carries the keys a figure is grouped by, so a month of 100,000 cases is counted
-- without visiting their rows, and a card finds its case's keys without reading the case.

DROP INDEX approval_cases_accepted;
CREATE INDEX approval_cases_accepted ON approval_cases (accepted_at)
    INCLUDE (department, item_code, window_label, staff);

DROP INDEX approval_cases_completed;
CREATE INDEX approval_cases_completed ON approval_cases (completed_at)
    INCLUDE (department, item_code, window_label, staff, used_days, promised_days, legal_days)
    WHERE completed_at IS NOT NULL;

CREATE INDEX approval_cases_keys ON approval_cases (id) INCLUDE (department, item_code, window_label, staff);

CREATE INDEX approval_cases_open ON approval_cases (accepted_at)
    INCLUDE (department, item_code, window_label, staff) WHERE completed_at IS NULL;
