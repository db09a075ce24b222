-- +goose Up

-- One subscription per account, opened from identity's AccountCreated.
-- Dates are YYYY-MM-DD text, timestamps store.Time text, money in minor units.
CREATE TABLE subscriptions (
    account_id     TEXT    NOT NULL PRIMARY KEY,
    profile        TEXT    NOT NULL,
    plan           TEXT    NOT NULL,
    billing_period TEXT    NOT NULL,
    billing_anchor TEXT    NOT NULL,
    unit_price     BIGINT  NOT NULL,
    currency       TEXT    NOT NULL,
    seats_total    INTEGER NOT NULL CHECK (seats_total >= 0),
    cycle_start    TEXT    NOT NULL,
    cycle_end      TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);

-- S-2: which technician occupies which seat. One row per technician and
-- account: later slices move it between occupied, released (S-4) and
-- pending removal (S-5) instead of adding rows.
CREATE TABLE seats (
    account_id    TEXT NOT NULL REFERENCES subscriptions (account_id),
    technician_id TEXT NOT NULL,
    status        TEXT NOT NULL,
    assigned_at   TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (account_id, technician_id)
);

-- +goose Down
DROP TABLE seats;
DROP TABLE subscriptions;
