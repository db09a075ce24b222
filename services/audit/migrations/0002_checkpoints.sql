-- +goose Up
-- A-2: signed checkpoints. Each is an Ed25519 signature over (account,
-- sequence, head hash, time, key id); the private key never enters the
-- database (it is a file, --audit-signing-key), so whoever can write here
-- cannot forge one.
CREATE TABLE audit_checkpoints (
    account_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    hash TEXT NOT NULL,
    -- store.Time
    time TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (account_id, sequence)
);

-- Every key that ever signed, so old checkpoints still verify after a key
-- change; served at GET /v1/audit/keys.
CREATE TABLE audit_keys (
    key_id TEXT PRIMARY KEY,
    -- standard base64 of the 32-byte Ed25519 public key
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The last checkpoint of each chain: the next is due after N more records
-- or T seconds (app.CheckpointPolicy).
ALTER TABLE audit_heads ADD COLUMN checkpoint_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_heads ADD COLUMN checkpoint_time TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_heads_unsigned ON audit_heads (checkpoint_time);

-- +goose Down
DROP INDEX audit_heads_unsigned;
ALTER TABLE audit_heads DROP COLUMN checkpoint_time;
ALTER TABLE audit_heads DROP COLUMN checkpoint_sequence;
DROP TABLE audit_keys;
DROP TABLE audit_checkpoints;
