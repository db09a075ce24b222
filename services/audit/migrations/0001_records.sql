-- +goose Up
-- A-1, A-2: one row per audit record; each account's records form a hash
-- chain numbered 1, 2, 3 … (the primary key makes a sequence impossible to
-- take twice). Every column but hash is covered by hash (domain.Canonical).
CREATE TABLE audit_records (
    account_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    -- aud_<event id>: one record per event.
    id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    -- store.Time: fixed-width UTC text, so text order is time order.
    time TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    -- The event's fields, a JSON object.
    data TEXT NOT NULL,
    source_address TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (account_id, sequence)
);

CREATE UNIQUE INDEX audit_records_id ON audit_records (id);
-- A-3: query by action, actor, target and time range.
CREATE INDEX audit_records_action ON audit_records (account_id, action, sequence);
CREATE INDEX audit_records_actor ON audit_records (account_id, actor_id, sequence);
CREATE INDEX audit_records_target ON audit_records (account_id, target_id, sequence);
CREATE INDEX audit_records_time ON audit_records (account_id, time);

-- A-2: the end of each account's chain. Appending locks the account's row
-- (INSERT … ON CONFLICT DO UPDATE), so concurrent appends to one account
-- queue while other accounts go on; verify compares the chain with it.
CREATE TABLE audit_heads (
    account_id TEXT PRIMARY KEY,
    sequence BIGINT NOT NULL,
    hash TEXT NOT NULL
);

-- +goose Down
DROP TABLE audit_heads;
DROP TABLE audit_records;
