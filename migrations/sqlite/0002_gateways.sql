-- Real gateways: Mercado Pago signs the query string, so the inbox keeps it beside the
-- body; attempts remember what settled them and when reconciliation last asked.
ALTER TABLE webhook_events ADD COLUMN query TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN settled_by TEXT;
ALTER TABLE attempts ADD COLUMN checked_at BIGINT;
CREATE INDEX attempts_unsettled ON attempts (status, created_at);
