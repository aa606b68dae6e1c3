-- A report's key, made by the dispatcher's console: the same report sent again after its answer was
-- lost (a node died with the request in flight) returns the stored incident instead of a second one.
ALTER TABLE incidents ADD COLUMN report_key text;
CREATE UNIQUE INDEX incidents_report_key ON incidents (created_by, report_key) WHERE report_key IS NOT NULL;
