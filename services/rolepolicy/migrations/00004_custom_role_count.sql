-- +goose Up

-- How many custom roles each account has created, deleted ones included:
-- a custom role's id is derived from its number (domain.RoleID), so that
-- replaying the account's events reproduces it (docs/events.md).
ALTER TABLE accounts ADD COLUMN custom_roles_created BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN custom_roles_created;
