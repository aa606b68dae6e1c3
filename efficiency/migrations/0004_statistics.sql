-- The statistics read a period's cases and cards from indexes alone (efficiency/statistics.py): each
-- index on a time carries the keys a figure is grouped by, so a month of 100,000 cases is counted
-- without visiting their rows.

DROP INDEX approval_cases_accepted;
CREATE INDEX approval_cases_accepted ON approval_cases (accepted_at)
    INCLUDE (department, item_code, window_label, staff);

DROP INDEX approval_cases_completed;
CREATE INDEX approval_cases_completed ON approval_cases (completed_at)
    INCLUDE (department, item_code, window_label, staff, used_days, promised_days, legal_days)
    WHERE completed_at IS NOT NULL;

CREATE INDEX approval_cases_open ON approval_cases (accepted_at)
    INCLUDE (department, item_code, window_label, staff) WHERE completed_at IS NULL;

-- Each case's card carries its case's keys, so the statistics count the open cards without a join to
-- every case (about 100 ms at a million cases, whichever plan: a scan of the cases or a probe for
-- each of 25,000 open cards). The case stays the truth: a card takes the keys when it opens, and a
-- case's new window or staff member reaches its cards in the same statement.
ALTER TABLE efficiency_cards ADD COLUMN department text NOT NULL DEFAULT '',
    ADD COLUMN item_code text NOT NULL DEFAULT '', ADD COLUMN window_label text NOT NULL DEFAULT '',
    ADD COLUMN staff text NOT NULL DEFAULT '';
UPDATE efficiency_cards k SET department = c.department, item_code = c.item_code,
    window_label = c.window_label, staff = c.staff FROM approval_cases c WHERE c.id = k.case_id;

CREATE FUNCTION efficiency_card_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.department, c.item_code, c.window_label, c.staff
        INTO NEW.department, NEW.item_code, NEW.window_label, NEW.staff
        FROM approval_cases c WHERE c.id = NEW.case_id;
    RETURN NEW;
END $$;
CREATE TRIGGER efficiency_card_keys BEFORE INSERT ON efficiency_cards
    FOR EACH ROW WHEN (NEW.case_id IS NOT NULL) EXECUTE FUNCTION efficiency_card_keys();

CREATE FUNCTION efficiency_case_keys_to_cards() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE efficiency_cards SET window_label = NEW.window_label, staff = NEW.staff WHERE case_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER efficiency_case_keys_to_cards AFTER UPDATE OF window_label, staff ON approval_cases
    FOR EACH ROW WHEN (OLD.window_label IS DISTINCT FROM NEW.window_label OR OLD.staff IS DISTINCT FROM NEW.staff)
    EXECUTE FUNCTION efficiency_case_keys_to_cards();
