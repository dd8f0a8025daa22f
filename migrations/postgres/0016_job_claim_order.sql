-- A claim walks the due jobs in (run_at, id) order and stops at the first few it can take,
-- so its cost no longer grows with the backlog (it sorted every due job before).
CREATE INDEX jobs_claim_order ON jobs (state, run_at, id);
DROP INDEX jobs_due;
