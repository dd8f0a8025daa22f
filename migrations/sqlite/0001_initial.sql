-- Times are UTC milliseconds since the Unix epoch (BIGINT), ids are UUIDv7 text:
-- the same columns and comparisons work on SQLite and PostgreSQL.

CREATE TABLE leads (
    id           TEXT PRIMARY KEY,
    offer_slug   TEXT NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    phone        TEXT NOT NULL,
    tax_id       TEXT,
    lang         TEXT NOT NULL,
    utm_source   TEXT,
    utm_medium   TEXT,
    utm_campaign TEXT,
    utm_term     TEXT,
    utm_content  TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX leads_email ON leads (email);

CREATE TABLE attempts (
    id            TEXT PRIMARY KEY,
    lead_id       TEXT NOT NULL REFERENCES leads (id),
    offer_slug    TEXT NOT NULL,
    gateway       TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    status        TEXT NOT NULL,
    gateway_ref   TEXT,
    status_detail TEXT,
    checkout_url  TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX attempts_lead ON attempts (lead_id);
CREATE INDEX attempts_status ON attempts (status, updated_at);

-- Durable job queue. A job is claimed by setting locked_until (a lease); an expired
-- lease means its worker died and the job is due again.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    lead_id      TEXT,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       BIGINT NOT NULL,
    locked_until BIGINT,
    locked_by    TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_lead ON jobs (lead_id);

-- Webhook inbox: the raw body as received, deduplicated on the gateway's event id.
CREATE TABLE webhook_events (
    id           TEXT PRIMARY KEY,
    gateway      TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    reference    TEXT,
    status       TEXT,
    body         BLOB NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    outcome      TEXT,
    UNIQUE (gateway, event_id)
);

-- Every CRM object leadgate created, keyed by what it stands for, so retries find it.
CREATE TABLE crm_records (
    crm        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    local_key  TEXT NOT NULL,
    lead_id    TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    state      TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (crm, kind, local_key)
);
CREATE INDEX crm_records_lead ON crm_records (lead_id);

-- The built-in CRM's own objects.
CREATE TABLE builtin_persons (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    phone      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE builtin_deals (
    id           TEXT PRIMARY KEY,
    person_id    TEXT NOT NULL REFERENCES builtin_persons (id),
    external_key TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    value_minor  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    pipeline     TEXT NOT NULL,
    stage        TEXT NOT NULL,
    status       TEXT NOT NULL,
    lost_reason  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE builtin_tasks (
    id           TEXT PRIMARY KEY,
    deal_id      TEXT REFERENCES builtin_deals (id),
    person_id    TEXT REFERENCES builtin_persons (id),
    external_key TEXT NOT NULL UNIQUE,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- The sandbox gateway's own ledger: what its hosted page was asked to charge and
-- what the customer chose there. Our attempts never read it directly, only through
-- the gateway adapter, exactly as with a real gateway's API.
CREATE TABLE sandbox_payments (
    id             TEXT PRIMARY KEY,
    reference      TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    customer_name  TEXT NOT NULL,
    customer_email TEXT NOT NULL,
    customer_phone TEXT NOT NULL,
    lang           TEXT NOT NULL,
    redirect_url   TEXT NOT NULL,
    cancel_url     TEXT NOT NULL,
    webhook_url    TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Generated secrets for the zero-config run (an operator's LEADGATE_SECRET_KEY wins).
CREATE TABLE app_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
