-- +goose Up
-- H-1: HRIS webhook intake. Numbered from 0010: 0007…0009 belong to the
-- login-security work that lands alongside.

-- Signing secrets (whsec_…). An HMAC key must be readable to verify a
-- signature, so unlike API tokens it cannot be stored as a hash: it is kept
-- as issued, never logged, never returned after creation
-- (docs/api-notes.md). valid_until is NULL for the current secret and
-- creation time + 24 h for one replaced by a newer secret.
CREATE TABLE hris_secrets (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    valid_until TEXT
);
CREATE INDEX hris_secrets_account ON hris_secrets (account_id, created_at);

-- The account's mapping rules (api.md "HRIS mapping"), as JSON.
CREATE TABLE hris_mappings (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    mapping TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Every accepted delivery, unique on its webhook-id: a replay finds the
-- row and changes nothing. body is the parsed employee event (JSON).
CREATE TABLE hris_deliveries (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    source TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    technician_id TEXT NOT NULL DEFAULT '',
    end_user_id TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, webhook_id)
);
CREATE INDEX hris_deliveries_status ON hris_deliveries (status, occurred_at, id);
CREATE INDEX hris_deliveries_employee ON hris_deliveries (account_id, employee_id, status);

-- What each HRIS employee became: kind technician, end_user or ignore,
-- the mapped role, and the time of the newest event whose attributes were
-- applied (out-of-order deliveries older than it change nothing).
CREATE TABLE hris_employees (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    employee_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    technician_id TEXT NOT NULL DEFAULT '',
    end_user_id TEXT NOT NULL DEFAULT '',
    mapped_role TEXT NOT NULL DEFAULT '',
    attributes_at TEXT NOT NULL,
    PRIMARY KEY (account_id, employee_id)
);

-- Terminations with an effective date in the future, applied by identity's
-- scheduler on that date: done_at is set in the transaction that disables,
-- so each applies exactly once, across restarts and replicas.
CREATE TABLE hris_terminations (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    employee_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    done_at TEXT,
    PRIMARY KEY (account_id, employee_id)
);
CREATE INDEX hris_terminations_due ON hris_terminations (done_at, effective_date);

-- Directory attributes of technicians (HRIS, SCIM's enterprise extension,
-- CSV import), kept beside the technicians table.
CREATE TABLE technician_directory (
    technician_id TEXT PRIMARY KEY REFERENCES technicians (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    employee_number TEXT NOT NULL DEFAULT '',
    department TEXT NOT NULL DEFAULT '',
    job_title TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    manager TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE technician_directory;
DROP TABLE hris_terminations;
DROP TABLE hris_employees;
DROP TABLE hris_deliveries;
DROP TABLE hris_mappings;
DROP TABLE hris_secrets;
