-- CRM webhooks (a deal entering the payment-link stage), as received, once per
-- (crm, the vendor's event id); the job that acts on one marks it processed.
CREATE TABLE crm_events (
    id           TEXT PRIMARY KEY,
    crm          TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    body         BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    outcome      TEXT,
    UNIQUE (crm, event_id)
);
