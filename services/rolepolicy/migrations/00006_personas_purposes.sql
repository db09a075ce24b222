-- +goose Up

-- Personas and purposes of the layered role model (R-9, atlan). Grants,
-- UI areas, classifications, members, actions and the data policy are
-- JSON: they are read whole, never queried into.
CREATE TABLE personas (
    persona_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    grants     TEXT NOT NULL,
    ui         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, name_key)
);

-- The personas each technician is assigned.
CREATE TABLE persona_assignments (
    account_id    TEXT NOT NULL,
    technician_id TEXT NOT NULL,
    persona_id    TEXT NOT NULL REFERENCES personas (persona_id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, technician_id, persona_id)
);

CREATE TABLE purposes (
    purpose_id      TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL,
    classifications TEXT NOT NULL,
    members         TEXT NOT NULL,
    actions         TEXT NOT NULL,
    data_policy     TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (account_id, name_key)
);

-- +goose Down
DROP TABLE purposes;
DROP TABLE persona_assignments;
DROP TABLE personas;
