-- Bearer tokens the operator makes for the API (`/api/v1`). Only a SHA-256 digest of the
-- token's 256-bit random secret is kept: the token itself is shown once, when made.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    -- Space-separated, e.g. `payment_links:write payment_links:read`.
    scopes       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
