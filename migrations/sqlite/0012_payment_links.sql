-- Payment links sales send (from the CRM, the admin or the API). Each link has its own
-- lead (the person it was made for); its attempts are that lead's, so a link is paid
-- once, and an expired checkout of it is replaced by a fresh one on the next press.
CREATE TABLE payment_links (
    id              TEXT PRIMARY KEY,
    lead_id         TEXT NOT NULL REFERENCES leads (id),
    offer_slug      TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    -- Shown instead of the offer's title (NULL: the offer's title).
    description     TEXT,
    -- The CRM deal and person the link's attempts are bound to (NULL: one is created).
    crm             TEXT,
    crm_deal_id     TEXT,
    crm_person_id   TEXT,
    -- api, admin, pipedrive, hubspot.
    source          TEXT NOT NULL,
    -- Scoped by whoever sent it (an API token, a CRM deal); the fingerprint of the
    -- request it first came with, so a reuse with another request is refused.
    idempotency_key TEXT UNIQUE,
    fingerprint     TEXT,
    email_link      BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX payment_links_deal ON payment_links (crm, crm_deal_id);
CREATE INDEX payment_links_lead ON payment_links (lead_id);
