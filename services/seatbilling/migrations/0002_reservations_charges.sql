-- +goose Up

-- S-3, S-6: a seat held for a technician that identity is about to create
-- or enable, keyed by the id identity chose. A held reservation that is not
-- a purchase counts against the free seats until expires_at; a purchase
-- (purchase = 1) brings its own seat, added with its charge only when
-- TechnicianCreated / TechnicianEnabled confirms it. Booleans are 0/1
-- integers, timestamps store.Time text (fixed width: text order is time
-- order on both backends).
CREATE TABLE reservations (
    account_id     TEXT    NOT NULL REFERENCES subscriptions (account_id),
    reservation_id TEXT    NOT NULL,
    purchase       INTEGER NOT NULL CHECK (purchase IN (0, 1)),
    amount         BIGINT  NOT NULL,
    currency       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    technician_id  TEXT    NOT NULL DEFAULT '',
    correlation_id TEXT    NOT NULL DEFAULT '',
    expires_at     TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (account_id, reservation_id)
);
-- The free-seat count: live held reservations of an account.
CREATE INDEX reservations_held ON reservations (account_id, status, expires_at);

-- The charges ledger (api.md Charge). A seat purchase names the
-- reservation it confirmed: one charge per reservation, however often the
-- confirmation is delivered. Other charges (renewal, add-on) have none;
-- NULLs never collide in a unique index on either backend.
CREATE TABLE charges (
    id             TEXT   NOT NULL PRIMARY KEY,
    account_id     TEXT   NOT NULL REFERENCES subscriptions (account_id),
    amount         BIGINT NOT NULL,
    currency       TEXT   NOT NULL,
    reason         TEXT   NOT NULL,
    technician_id  TEXT,
    reservation_id TEXT,
    created_at     TEXT   NOT NULL
);
CREATE UNIQUE INDEX charges_reservation ON charges (account_id, reservation_id);
-- GET …/charges pages in (created_at, id) order.
CREATE INDEX charges_ledger ON charges (account_id, created_at, id);

-- A technician seated when no seat was free: a confirmation that arrived
-- after its reservation expired and its seat went to someone else. The
-- technician keeps the seat (identity already created them); this row and
-- an error log make the overallocation visible until an operator buys a
-- seat or disables someone.
CREATE TABLE overallocations (
    account_id     TEXT    NOT NULL REFERENCES subscriptions (account_id),
    technician_id  TEXT    NOT NULL,
    reservation_id TEXT    NOT NULL,
    seats_total    INTEGER NOT NULL,
    occupied       INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    PRIMARY KEY (account_id, technician_id, reservation_id)
);

-- +goose Down
DROP TABLE overallocations;
DROP TABLE charges;
DROP TABLE reservations;
