-- +goose Up
-- H-2: SCIM 2.0. The client's externalId of each user and group, and SCIM
-- groups with their members (a group's displayName names the role its
-- members are given, docs/api-notes.md).
CREATE TABLE scim_external_ids (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    resource_id TEXT NOT NULL,
    external_id TEXT NOT NULL,
    PRIMARY KEY (account_id, resource_id)
);

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    display_name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, name_key)
);
CREATE INDEX scim_groups_account ON scim_groups (account_id, id);

CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id),
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    PRIMARY KEY (group_id, technician_id)
);
CREATE INDEX scim_group_members_technician ON scim_group_members (technician_id);

-- +goose Down
DROP TABLE scim_group_members;
DROP TABLE scim_groups;
DROP TABLE scim_external_ids;
