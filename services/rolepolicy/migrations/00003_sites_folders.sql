-- +goose Up

-- Sites and device folders as identity announces them (SiteCreated,
-- FolderCreated): what a role's site scope (R-3, R-7) and excluded folders
-- (R-5) may name, and what an access check's site and folder must be.
CREATE TABLE sites (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    site_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, site_id)
);

CREATE TABLE folders (
    account_id TEXT NOT NULL,
    folder_id  TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, folder_id),
    FOREIGN KEY (account_id, site_id) REFERENCES sites (account_id, site_id)
);

-- Pre-assigned roles are counted before a role is deleted (R-3, R-6).
CREATE INDEX technicians_by_requested_role ON technicians (account_id, requested_role_id);

-- +goose Down
DROP INDEX technicians_by_requested_role;
DROP TABLE folders;
DROP TABLE sites;
