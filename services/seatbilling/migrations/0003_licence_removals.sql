-- +goose Up

-- S-5: the last day (YYYY-MM-DD) of the cycle at whose end the seat leaves
-- the subscription; NULL when no removal is pending. It stays when the
-- technician is disabled meanwhile (status released): the seat is then
-- neither used nor free for reuse, and the licence count still drops.
ALTER TABLE seats ADD COLUMN removal_date TEXT;

-- S-10: one row per closed cycle of an account (the cycle processed), written
-- in the transaction that applied its removals, recorded the renewal and
-- advanced subscriptions.cycle_*: a second run for the same cycle finds it
-- and does nothing.
CREATE TABLE cycle_renewals (
    account_id    TEXT    NOT NULL REFERENCES subscriptions (account_id),
    cycle_start   TEXT    NOT NULL,
    cycle_end     TEXT    NOT NULL,
    seats_removed INTEGER NOT NULL,
    seats         INTEGER NOT NULL,
    charge_id     TEXT,
    created_at    TEXT    NOT NULL,
    PRIMARY KEY (account_id, cycle_start)
);

-- The scheduler's scan: subscriptions whose cycle ended.
CREATE INDEX subscriptions_cycle_end ON subscriptions (cycle_end);

-- +goose Down
DROP INDEX subscriptions_cycle_end;
DROP TABLE cycle_renewals;
ALTER TABLE seats DROP COLUMN removal_date;
