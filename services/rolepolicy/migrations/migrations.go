// Package migrations holds the rolepolicy service's goose migrations. The
// SQL runs unchanged on SQLite and PostgreSQL: TEXT, BIGINT and INTEGER
// columns only, booleans as INTEGER 0/1, timestamps as store.Time text, and
// lists (permissions, site ids, folder ids) as JSON arrays in TEXT, because a
// role is read and saved whole.
package migrations

import "embed"

// FS holds the .sql files at its root, as store.DB.Migrate expects.
//
//go:embed *.sql
var FS embed.FS
