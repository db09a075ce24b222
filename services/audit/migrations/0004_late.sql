-- +goose Up
-- A-3: a time range must not read the chain past its end either. A record
-- is late when its time is before the time_hwm of the record before it (an
-- event delivered after later ones). Past the last record whose time_hwm is
-- before `until`, only late records can still be in the range: they are
-- found through their own index, and the scan stops there.
ALTER TABLE audit_records ADD COLUMN late INT NOT NULL DEFAULT 0;
UPDATE audit_records SET late = 1
FROM (SELECT account_id, sequence, time,
             MAX(time) OVER (PARTITION BY account_id ORDER BY sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
      FROM audit_records) AS w
WHERE audit_records.account_id = w.account_id AND audit_records.sequence = w.sequence AND w.time < w.before;
CREATE INDEX audit_records_late ON audit_records (account_id, late, sequence);

-- +goose Down
DROP INDEX audit_records_late;
ALTER TABLE audit_records DROP COLUMN late;
