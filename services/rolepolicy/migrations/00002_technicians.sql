-- +goose Up

-- Technicians as this service knows them, from identity's events (R-6, R-7,
-- I-9): ids and states only, never personal data (flows.md). The role held
-- stays in role_assignments.
--   status            invited, active or disabled (disabled: denied, R-7)
--   status_at         time of the identity event that set status, so that a
--                     late redelivery of an older event cannot undo a newer one
--   first_login_at    NULL until FirstLogin (I-6)
--   requested_role    the role asked at creation or pre-assigned, '' for none
--   requested_role_id its id, '' when it names no role of the account
CREATE TABLE technicians (
    account_id        TEXT NOT NULL REFERENCES accounts (account_id),
    technician_id     TEXT NOT NULL,
    status            TEXT NOT NULL,
    status_at         TEXT NOT NULL,
    first_login_at    TEXT,
    requested_role    TEXT NOT NULL,
    requested_role_id TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (account_id, technician_id)
);

-- Technicians assigned a role before this table existed (first admins) were
-- created invited.
INSERT INTO technicians (account_id, technician_id, status, status_at, first_login_at,
                         requested_role, requested_role_id, created_at, updated_at)
SELECT account_id, technician_id, 'invited', assigned_at, NULL, '', '', assigned_at, assigned_at
FROM role_assignments;

-- +goose Down
DROP TABLE technicians;
