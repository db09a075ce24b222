-- +goose Up

-- Issue 18: the counts of an account's seats, kept on its subscription row
-- and changed in the transaction of every change of a seat, under the
-- account's lock (adapters/seat_counters.go), so that no seat operation
-- counts the account's seats: count(*) made each one O(seats), and adding
-- the technicians of a 100,000-seat account O(seats²).
--   seats_occupied        seats.status = 'occupied' (S-2)
--   seats_leaving         released, yet pending removal at cycle end (S-5)
--   seats_pending_removal pending removal at cycle end, occupied or not (S-5)
-- Numbered 0060 so that a migration 0006 of another branch goes first.
ALTER TABLE subscriptions ADD COLUMN seats_occupied INTEGER NOT NULL DEFAULT 0 CHECK (seats_occupied >= 0);
ALTER TABLE subscriptions ADD COLUMN seats_leaving INTEGER NOT NULL DEFAULT 0 CHECK (seats_leaving >= 0);
ALTER TABLE subscriptions ADD COLUMN seats_pending_removal INTEGER NOT NULL DEFAULT 0 CHECK (seats_pending_removal >= 0);
UPDATE subscriptions SET
    seats_occupied = (SELECT count(*) FROM seats t
        WHERE t.account_id = subscriptions.account_id AND t.status = 'occupied'),
    seats_leaving = (SELECT count(*) FROM seats t
        WHERE t.account_id = subscriptions.account_id AND t.status <> 'occupied' AND t.removal_date IS NOT NULL),
    seats_pending_removal = (SELECT count(*) FROM seats t
        WHERE t.account_id = subscriptions.account_id AND t.removal_date IS NOT NULL);

-- The live held reservations stay a count (their expiry is a moment, not
-- a write), but one that reads the index alone: purchase joins its columns.
DROP INDEX reservations_held;
CREATE INDEX reservations_held ON reservations (account_id, status, expires_at, purchase);

-- +goose Down
DROP INDEX reservations_held;
CREATE INDEX reservations_held ON reservations (account_id, status, expires_at);
ALTER TABLE subscriptions DROP COLUMN seats_pending_removal;
ALTER TABLE subscriptions DROP COLUMN seats_leaving;
ALTER TABLE subscriptions DROP COLUMN seats_occupied;
