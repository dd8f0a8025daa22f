-- Outbound events (Standard Webhooks). The id is the `webhook-id` every try of every
-- delivery of the event carries, so receivers can drop duplicates. The payload holds
-- ids, the offer, amounts and statuses only: the person is read from the lead at
-- delivery, for endpoints configured to receive them.
CREATE TABLE outbound_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    lead_id     TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX outbound_events_lead ON outbound_events (lead_id);

-- One event to one endpoint. The job in `job_id` does the tries; `state` is pending,
-- delivered or dead (the queue gave up; a redelivery makes it pending with a new job).
CREATE TABLE event_deliveries (
    id            TEXT PRIMARY KEY,
    event_id      TEXT NOT NULL REFERENCES outbound_events (id),
    endpoint      TEXT NOT NULL,
    state         TEXT NOT NULL,
    job_id        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    last_status   INTEGER,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    delivered_at  BIGINT,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX event_deliveries_state ON event_deliveries (state, updated_at);
