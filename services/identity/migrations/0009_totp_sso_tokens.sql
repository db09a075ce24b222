-- +goose Up
-- L-3: TOTP second factor. The shared secret must be read back to check a
-- code, so it cannot be hashed (docs/api-notes.md); last_step is the
-- RFC 6238 time step of the last accepted code, moved forward by a
-- conditional update, so a code works once within its window.
CREATE TABLE totp_factors (
    technician_id TEXT PRIMARY KEY REFERENCES technicians (id),
    secret TEXT NOT NULL,
    confirmed_at TEXT,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- L-3: single-use recovery codes, as SHA-256 (hex) of 50-bit random codes.
CREATE TABLE recovery_codes (
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    code_hash TEXT NOT NULL,
    used_at TEXT,
    PRIMARY KEY (technician_id, code_hash)
);

-- L-3: a session opened while the policy requires a second factor the
-- technician has not enrolled yet serves the enrolment routes only.
ALTER TABLE sessions ADD COLUMN enrollment_only INTEGER NOT NULL DEFAULT 0;

-- L-6: per-account OIDC configuration; the client secret is write-only
-- in the API (it is needed in clear to call the IdP's token endpoint).
CREATE TABLE sso_configs (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    enforce INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

-- L-6: authorization requests in flight: state (the key, single use),
-- nonce and PKCE verifier, for ten minutes.
CREATE TABLE sso_logins (
    state_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

-- API tokens: last use (revoked_at exists since 0002).
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN last_used_at;
DROP TABLE sso_logins;
DROP TABLE sso_configs;
ALTER TABLE sessions DROP COLUMN enrollment_only;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
