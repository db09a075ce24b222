-- +goose Up
-- S-5: the last day (YYYY-MM-DD) of the cycle at whose end seatbilling
-- removes the technician's seat, as seatbilling answered the licence
-- removal; NULL when none is pending. Cleared when the removal applies
-- (LicenceExpired).
ALTER TABLE technicians ADD COLUMN licence_removal_date TEXT;

-- +goose Down
ALTER TABLE technicians DROP COLUMN licence_removal_date;
