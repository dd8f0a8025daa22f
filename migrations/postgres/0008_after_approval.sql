-- A payment's life after approval: the hosted checkout the attempt opened (so a payment
-- through another attempt's checkout is refused), the refunded total in minor units, a
-- void, a dispute with its deadline, a second payment for one purchase, and how the
-- customer paid. `reversal_version` is the compare-and-set token for the reversal columns.
ALTER TABLE attempts ADD COLUMN checkout_ref TEXT;
ALTER TABLE attempts ADD COLUMN refunded_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN voided BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN refund_reason TEXT;
ALTER TABLE attempts ADD COLUMN dispute TEXT;
ALTER TABLE attempts ADD COLUMN dispute_due_at BIGINT;
ALTER TABLE attempts ADD COLUMN dispute_reason TEXT;
ALTER TABLE attempts ADD COLUMN reversal_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN duplicate_of TEXT;
ALTER TABLE attempts ADD COLUMN payment_method TEXT;
-- Stripe attempts kept their session id as the payment id all along.
UPDATE attempts SET checkout_ref = gateway_ref WHERE gateway = 'stripe';
CREATE INDEX attempts_duplicates ON attempts (duplicate_of) WHERE duplicate_of IS NOT NULL;
-- The built-in CRM keeps the payment's fields on the deal, as a JSON object by role.
ALTER TABLE builtin_deals ADD COLUMN payment_fields TEXT;
