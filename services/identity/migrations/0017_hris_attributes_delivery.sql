-- +goose Up

-- The delivery whose event last set an HRIS employee's attributes: a
-- delivery retried after a crash recognises itself (it is not "an older
-- event"), and two events of one employee stamped with the same time are
-- ordered by their deliveries, whose ids grow in the order they arrived
-- (issue 18: per-employee order decided by a timestamp is not an order).
ALTER TABLE hris_employees ADD COLUMN attributes_delivery TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE hris_employees DROP COLUMN attributes_delivery;
