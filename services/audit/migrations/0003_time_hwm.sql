-- +goose Up
-- A-3: a query from a time on (since) must not scan the chain from record 1.
-- time_hwm is the latest time among the account's records up to this one:
-- it never decreases along the chain, so the first record whose time_hwm
-- reaches `since` bounds where matching records can start (no earlier
-- record has a time that late). An index column, not part of the record:
-- the hash does not cover it.
ALTER TABLE audit_records ADD COLUMN time_hwm TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_heads ADD COLUMN time_hwm TEXT NOT NULL DEFAULT '';
UPDATE audit_records SET time_hwm = w.hwm
FROM (SELECT account_id, sequence, MAX(time) OVER (PARTITION BY account_id ORDER BY sequence) AS hwm FROM audit_records) AS w
WHERE audit_records.account_id = w.account_id AND audit_records.sequence = w.sequence;
UPDATE audit_heads SET time_hwm = COALESCE((SELECT MAX(time) FROM audit_records r WHERE r.account_id = audit_heads.account_id), '');
CREATE INDEX audit_records_time_hwm ON audit_records (account_id, time_hwm, sequence);

-- +goose Down
DROP INDEX audit_records_time_hwm;
ALTER TABLE audit_heads DROP COLUMN time_hwm;
ALTER TABLE audit_records DROP COLUMN time_hwm;
