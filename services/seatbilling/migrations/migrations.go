// Package migrations holds seatbilling's goose migrations, applied by the
// host (store.DB.Migrate) before the service starts.
package migrations

import "embed"

// FS holds the .sql files at its root.
//
//go:embed *.sql
var FS embed.FS
