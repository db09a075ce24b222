-- +goose Up

-- Last activity per technician (atlan, seat hygiene): a login, or a use of
-- one of their sessions (noted at most once a minute per session). Logins
-- so far are the activity known.
ALTER TABLE technicians ADD COLUMN last_active_at TEXT;
UPDATE technicians SET last_active_at = last_login_at;
CREATE INDEX technicians_last_active ON technicians (account_id, last_active_at);

-- An API token may act for one technician (its owner): it stops working
-- when they are deactivated (atlan). NULL: an account token.
ALTER TABLE api_tokens ADD COLUMN technician_id TEXT;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN technician_id;
DROP INDEX technicians_last_active;
ALTER TABLE technicians DROP COLUMN last_active_at;
