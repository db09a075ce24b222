-- +goose Up

-- S-9: the add-ons on a subscription, each with its own price per unit
-- per month (minor units, the subscription's currency) and quantity. Every
-- renewal charges those present when the cycle closes (an add_on charge
-- each, charges.add_on_id naming it).
CREATE TABLE add_ons (
    account_id TEXT    NOT NULL REFERENCES subscriptions (account_id),
    add_on_id  TEXT    NOT NULL,
    price      BIGINT  NOT NULL CHECK (price >= 0),
    currency   TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (account_id, add_on_id)
);
ALTER TABLE charges ADD COLUMN add_on_id TEXT;

-- S-7, I-11: what seatbilling heard of each technician's logins
-- (FirstLogin, TechnicianLoggedIn), by identity's clock: the first and the
-- latest. Not tied to a subscription row: a login may be applied before
-- the account's events that seat the technician.
CREATE TABLE technician_logins (
    account_id     TEXT NOT NULL,
    technician_id  TEXT NOT NULL,
    first_login_at TEXT,
    last_login_at  TEXT NOT NULL,
    PRIMARY KEY (account_id, technician_id)
);

-- +goose Down
DROP TABLE technician_logins;
ALTER TABLE charges DROP COLUMN add_on_id;
DROP TABLE add_ons;
