-- +goose Up
-- I-10: end users submit tickets; they never hold a seat or a role.
CREATE TABLE end_users (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    site_id TEXT NOT NULL REFERENCES sites (id),
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, email_key)
);

CREATE INDEX end_users_site ON end_users (account_id, site_id, id);

-- +goose Down
DROP TABLE end_users;
