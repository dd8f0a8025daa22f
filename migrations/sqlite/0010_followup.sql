-- Follow-up sequences. `abandoned_at`: the attempt's last follow-up step fired unpaid
-- (the deal may move to the offer's "abandoned" stage). A lead can stop reminder emails
-- (`unsubscribed_at`) and may have agreed to receive them (`email_consent`).
ALTER TABLE attempts ADD COLUMN abandoned_at BIGINT;
ALTER TABLE leads ADD COLUMN unsubscribed_at BIGINT;
ALTER TABLE leads ADD COLUMN email_consent BIGINT NOT NULL DEFAULT 0;
-- Round-robin owners: one counter per list of users, shared by every instance.
CREATE TABLE round_robin (
    pool TEXT PRIMARY KEY,
    turns BIGINT NOT NULL
);
-- The owner a follow-up task got, so a retry assigns the same one.
CREATE TABLE followup_owners (
    task_key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Emails to customers, one row per idempotency key, written before the send: `sending`
-- until the server answers, then `sent`, `failed` (refused, may be tried again) or
-- `unknown` (the connection ended after the message was handed over: never sent twice).
CREATE TABLE emails (
    key TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    message_id TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX emails_lead ON emails (lead_id);
-- Follow-up tasks get a kind of their own, so the ones to close on payment are known
-- (dispute and second-payment tasks stay open).
UPDATE crm_records SET kind = 'followup_task'
 WHERE kind = 'task' AND (local_key LIKE '%:abandoned:%' OR local_key LIKE '%:declined');
UPDATE crm_records SET kind = 'followup_task_intent'
 WHERE kind = 'task_intent' AND (local_key LIKE '%:abandoned:%' OR local_key LIKE '%:declined');
