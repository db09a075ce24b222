-- +goose Up

-- S-2 (atlan): the role each technician holds, as rolepolicy's
-- RoleAssigned said, so that the subscription shows the seats of the
-- profile's separate seat roles (Guest) apart. updated_at is the event's
-- time: a late, older assignment changes nothing.
CREATE TABLE seat_roles (
    account_id    TEXT NOT NULL,
    technician_id TEXT NOT NULL,
    role_name     TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (account_id, technician_id)
);

-- +goose Down
DROP TABLE seat_roles;
