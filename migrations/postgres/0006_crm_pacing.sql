-- Pacing shared by every instance on this database: per CRM and lane (all calls, or
-- searches), the next free send slot (a GCRA theoretical arrival time) and how long a
-- 429 told us to stay away. Times are the database's clock, in ms since the epoch.
-- UNLOGGED: losing these rows (a crash empties the table) only forgets a few seconds of
-- pacing, and skipping the WAL keeps a write per CRM call off the disk's flush path.
CREATE UNLOGGED TABLE crm_pacing (
    vendor TEXT NOT NULL,
    lane TEXT NOT NULL,
    tat BIGINT NOT NULL,
    paused_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (vendor, lane)
);
