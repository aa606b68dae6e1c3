-- Surge triage: reports can wait in a pending queue, and a duplicate report is merged into the
-- incident it duplicates (closed, pointing at it) instead of being dispatched again.

ALTER TABLE incidents DROP CONSTRAINT incidents_state_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_state_check CHECK (state IN ('pending', 'open', 'closed'));
ALTER TABLE incidents ADD COLUMN merged_into bigint REFERENCES incidents (id);
CREATE INDEX incidents_pending_queue ON incidents (severity, created_at) WHERE state = 'pending';
CREATE INDEX incidents_recent_open ON incidents (created_at) WHERE state IN ('pending', 'open');
