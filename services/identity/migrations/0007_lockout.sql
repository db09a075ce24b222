-- +goose Up
-- api.md /security-policy (L-2, L-3, L-4): an account without a row has
-- domain.DefaultSecurityPolicy. The policy is one JSON document, read and
-- written whole.
CREATE TABLE security_policies (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    policy TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- L-2, L-3: consecutive failures and locks per technician and factor
-- (password, totp). The counter only moves through conditional updates
-- (failures = failures + 1 while not locked), so parallel attempts cannot
-- count past the threshold nor lock twice.
CREATE TABLE lockouts (
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    factor TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    -- temporary locks in a row since the last successful login
    locks INTEGER NOT NULL DEFAULT 0,
    -- '' when not locked; the end of a temporary lock; 'admin' when only an
    -- admin (or a password reset) unlocks. Compared as text with
    -- store.Time strings, which sort in time order ('admin' sorts after
    -- every date).
    locked_until TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (technician_id, factor)
);

-- +goose Down
DROP TABLE lockouts;
DROP TABLE security_policies;
