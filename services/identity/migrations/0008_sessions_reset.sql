-- +goose Up
-- L-4: what a session shows its technician and admins, and its idle
-- expiry: idle_expires_at moves on with every use (at most once a minute),
-- never past expires_at (the absolute expiry). Sessions opened before this
-- migration have no idle expiry.
ALTER TABLE sessions ADD COLUMN device_label TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN source_address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_used_at TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idle_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN idle_expires_at TEXT NOT NULL DEFAULT '9999';
ALTER TABLE sessions ADD COLUMN revoke_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_live ON sessions (technician_id, revoked_at, expires_at);

-- L-5: reset requests wait here for the mailer, whether or not the email
-- belongs to anyone: the request itself does the same work either way
-- (one insert), so neither its answer nor its timing says which.
CREATE TABLE password_reset_requests (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    email_key TEXT NOT NULL,
    source_address TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

-- L-5: single-use reset links; only the SHA-256 (hex) of the token is
-- kept, the token is in the mail alone.
CREATE TABLE password_resets (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX password_resets_technician ON password_resets (technician_id);

-- +goose Down
DROP TABLE password_resets;
DROP TABLE password_reset_requests;
DROP INDEX sessions_live;
ALTER TABLE sessions DROP COLUMN revoke_reason;
ALTER TABLE sessions DROP COLUMN idle_expires_at;
ALTER TABLE sessions DROP COLUMN idle_seconds;
ALTER TABLE sessions DROP COLUMN last_used_at;
ALTER TABLE sessions DROP COLUMN source_address;
ALTER TABLE sessions DROP COLUMN device_label;
