-- +goose Up

-- The version of an account's access index: every transaction that changes
-- what an access check reads (roles, assignments, technician states, sites,
-- folders) adds one. Each replica of rolepolicy keeps the version it built
-- its in-memory index from, and rebuilds an account whose version moved on
-- (app/replicas.go, docs/operations.md "Replicas").
ALTER TABLE accounts ADD COLUMN index_version BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN index_version;
