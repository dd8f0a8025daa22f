-- One running job per lead across every worker and process: a claim takes the lead's
-- row here (or finds it held and skips the job) in the same transaction as the job's lease.
CREATE TABLE lead_locks (
    lead_id      TEXT PRIMARY KEY,
    job_id       TEXT NOT NULL,
    locked_by    TEXT NOT NULL,
    locked_until BIGINT NOT NULL
);
