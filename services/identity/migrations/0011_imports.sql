-- +goose Up
-- H-3: CSV imports. The rows are stored with the import before the 202 and
-- each gets its outcome as the background processor applies it, so an
-- import interrupted by a crash resumes at its first row without one.
CREATE TABLE imports (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX imports_status ON imports (status, created_at);
CREATE INDEX imports_account ON imports (account_id, id);

CREATE TABLE import_rows (
    import_id TEXT NOT NULL REFERENCES imports (id),
    row_number INTEGER NOT NULL,
    fields TEXT NOT NULL,
    parse_error TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    entity_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (import_id, row_number)
);

-- End users' department (H-3, roster); technicians' is in
-- technician_directory.
CREATE TABLE end_user_directory (
    end_user_id TEXT PRIMARY KEY REFERENCES end_users (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    department TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE end_user_directory;
DROP TABLE import_rows;
DROP TABLE imports;
