-- Follow-up tasks of the built-in CRM say what they are, how urgent, and for whom (a
-- free-text owner: the built-in CRM has no users), and when they were closed. A closed
-- task keeps its row: status 'done' (completed) or 'deleted' (withdrawn, never shown).
-- Rows from before this migration have no kind, priority or owner.
ALTER TABLE builtin_tasks ADD COLUMN kind TEXT;
ALTER TABLE builtin_tasks ADD COLUMN priority TEXT;
ALTER TABLE builtin_tasks ADD COLUMN owner TEXT;
ALTER TABLE builtin_tasks ADD COLUMN closed_at BIGINT;
