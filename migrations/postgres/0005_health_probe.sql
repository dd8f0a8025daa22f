-- One row that /healthz rewrites: proof that the database still takes durable writes
-- (a full disk answers reads but refuses commits).
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
