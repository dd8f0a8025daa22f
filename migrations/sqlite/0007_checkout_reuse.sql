-- A resubmitted form or a second press on a resume link finds the open checkout instead of
-- opening another: recent leads by offer and email, and a mark on an attempt whose
-- checkout could not be opened (so nobody waits for it to appear).
CREATE INDEX leads_offer_email ON leads (offer_slug, email, created_at);
ALTER TABLE attempts ADD COLUMN checkout_failed_at BIGINT;
