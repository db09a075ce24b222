-- +goose Up
-- I-3 (roster): an erased technician keeps its row and id under a
-- pseudonym; email_key becomes the pseudonym's, which frees the email.
ALTER TABLE technicians ADD COLUMN erased_at TEXT;

-- +goose Down
SELECT 1;
