-- Notes the built-in CRM keeps on a deal (payment details, decline reasons,
-- reconciliation results), idempotent on our key like its tasks.
CREATE TABLE builtin_notes (
    id           TEXT PRIMARY KEY,
    deal_id      TEXT NOT NULL REFERENCES builtin_deals (id),
    external_key TEXT NOT NULL UNIQUE,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
