-- +goose Up
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    profile TEXT NOT NULL,
    plan TEXT NOT NULL,
    billing_period TEXT NOT NULL,
    seats INTEGER NOT NULL,
    price_per_seat BIGINT NOT NULL,
    currency TEXT NOT NULL,
    billing_anchor TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE technicians (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    email TEXT NOT NULL,
    -- I-2: trimmed, lower case; unique per account, and never freed (I-3).
    email_key TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    requested_role TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (account_id, email_key)
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    -- SHA-256 of the secret, hex; the secret is shown once and never stored.
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE technicians;
DROP TABLE accounts;
