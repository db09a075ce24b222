-- +goose Up
-- I-4: single-use set-password links. Only the SHA-256 (hex) of the token
-- is kept; the token exists in the mail alone.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    -- replaced by a resend, or the technician was disabled (I-7)
    revoked_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX invitations_technician ON invitations (technician_id);

-- Rendered mails waiting for the mailer, written in the transaction that
-- causes them. A row carries a secret link, so it lives here only until
-- the transport took it; the id is the id of what is mailed (an
-- invitation), which is also the message id.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- retries: '' is due now; a failed send waits longer each time
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at, created_at);

-- L-1: argon2id PHC strings; method: invitation, temporary (set by an
-- admin, I-4) or reset.
CREATE TABLE passwords (
    technician_id TEXT PRIMARY KEY REFERENCES technicians (id),
    hash TEXT NOT NULL,
    method TEXT NOT NULL,
    set_at TEXT NOT NULL
);

-- Login sessions; the token is kept as its SHA-256 (hex), like API tokens.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX sessions_technician ON sessions (technician_id);

-- I-6: the primary key makes the first login happen once, whatever
-- retries and races: the insert that wins emits FirstLogin.
CREATE TABLE first_logins (
    technician_id TEXT PRIMARY KEY REFERENCES technicians (id),
    method TEXT NOT NULL,
    at TEXT NOT NULL
);

-- +goose Down
DROP TABLE first_logins;
DROP TABLE sessions;
DROP TABLE passwords;
DROP TABLE mail_outbox;
DROP TABLE invitations;
