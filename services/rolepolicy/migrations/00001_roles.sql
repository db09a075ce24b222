-- +goose Up

-- Accounts this service knows, from identity's AccountCreated. The row is
-- also the guard that makes setting up an account happen once.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    profile    TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Roles (R-2, R-3, R-8). name_key is the trimmed, lower-cased name: role
-- names are unique per account, compared case-insensitively.
CREATE TABLE roles (
    role_id             TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    name                TEXT NOT NULL,
    name_key            TEXT NOT NULL,
    built_in            INTEGER NOT NULL,
    site_scopable       INTEGER NOT NULL,
    default_for_new     INTEGER NOT NULL,
    first_admin         INTEGER NOT NULL,
    permissions         TEXT NOT NULL,
    site_ids            TEXT NOT NULL,
    excluded_folder_ids TEXT NOT NULL,
    version             BIGINT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (account_id, name_key)
);

-- The role each technician holds: one per technician.
CREATE TABLE role_assignments (
    account_id    TEXT NOT NULL,
    technician_id TEXT NOT NULL,
    role_id       TEXT NOT NULL REFERENCES roles (role_id),
    assigned_at   TEXT NOT NULL,
    PRIMARY KEY (account_id, technician_id)
);

CREATE INDEX role_assignments_by_role ON role_assignments (role_id);

-- +goose Down
DROP TABLE role_assignments;
DROP TABLE roles;
DROP TABLE accounts;
