-- +goose Up
-- O-4: the ownership registry. Systems that own work register it, keyed by
-- (kind, item id) within the account; owner_id '' is an unassigned item.
-- archived_until is set while a personal report is archived by an
-- offboarding (O-3), which archived_by names.
CREATE TABLE ownership (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    owner_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    folder TEXT NOT NULL DEFAULT '',
    on_disable TEXT NOT NULL DEFAULT '',
    archived_until TEXT,
    archived_by TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, item_id)
);
CREATE INDEX ownership_owner ON ownership (account_id, owner_id, kind, item_id);
CREATE INDEX ownership_archived ON ownership (archived_until) WHERE archived_until IS NOT NULL;

-- O-1…O-3: one offboarding per disable; outstanding counts the
-- instructions not yet acknowledged by their owning systems.
CREATE TABLE offboardings (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    technician_id TEXT NOT NULL,
    policy TEXT NOT NULL,
    successor_id TEXT NOT NULL DEFAULT '',
    successor_source TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    outstanding INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX offboardings_technician ON offboardings (account_id, technician_id, created_at);

-- Every action of an offboarding, in order (seq); instruction is the
-- event type sent to the owning system ('' for keep, which sends none).
CREATE TABLE offboarding_actions (
    offboarding_id TEXT NOT NULL REFERENCES offboardings (id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_owner TEXT NOT NULL DEFAULT '',
    to_owner TEXT NOT NULL DEFAULT '',
    instruction TEXT NOT NULL DEFAULT '',
    acked_at TEXT,
    PRIMARY KEY (offboarding_id, seq)
);
CREATE INDEX offboarding_actions_item ON offboarding_actions (offboarding_id, kind, item_id);

-- O-4: how far identity has applied the ownership events owning systems
-- publish (stream ROSTER_OWNERSHIP): the last stream sequence applied,
-- stored in the transaction that applies it (one row).
CREATE TABLE ownership_feed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO ownership_feed (id, last_seq) VALUES (1, 0);

-- +goose Down
DROP TABLE ownership_feed;
DROP TABLE offboarding_actions;
DROP TABLE offboardings;
DROP TABLE ownership;
