-- Attribution beyond the UTMs: the ad click ids and the page the visitor came from.
ALTER TABLE leads ADD COLUMN gclid TEXT;
ALTER TABLE leads ADD COLUMN fbclid TEXT;
ALTER TABLE leads ADD COLUMN referrer TEXT;
-- The offer's consent the lead ticked: the version of its text, the language it was
-- shown in and when (all three NULL when none was given).
ALTER TABLE leads ADD COLUMN consent_version TEXT;
ALTER TABLE leads ADD COLUMN consent_lang TEXT;
ALTER TABLE leads ADD COLUMN consent_at BIGINT;
-- The version of the reminder-email consent text the lead agreed to (`email_consent`).
ALTER TABLE leads ADD COLUMN email_consent_version TEXT;
