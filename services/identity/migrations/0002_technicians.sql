-- +goose Up
-- A touch of this row serialises the account's rule checks that span
-- several rows (I-9 last admin) on both backends.
ALTER TABLE accounts ADD COLUMN lock_version BIGINT NOT NULL DEFAULT 0;

ALTER TABLE technicians ADD COLUMN disabled_at TEXT;
ALTER TABLE technicians ADD COLUMN last_login_at TEXT;
ALTER TABLE technicians ADD COLUMN reservation_id TEXT NOT NULL DEFAULT '';
-- Projection of rolepolicy's RoleAssigned: identity shows the role and
-- enforces I-9 without asking rolepolicy.
ALTER TABLE technicians ADD COLUMN role_id TEXT NOT NULL DEFAULT '';
ALTER TABLE technicians ADD COLUMN role_name TEXT NOT NULL DEFAULT '';
ALTER TABLE technicians ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE technicians ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';

CREATE INDEX technicians_account ON technicians (account_id, id);

CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (account_id, name_key)
);

CREATE TABLE folders (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    site_id TEXT NOT NULL REFERENCES sites (id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE technician_sites (
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    site_id TEXT NOT NULL REFERENCES sites (id),
    PRIMARY KEY (technician_id, site_id)
);

ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;

-- +goose Down
DROP TABLE technician_sites;
DROP TABLE folders;
DROP TABLE sites;
