// Package migrations holds the audit service's versioned schema.
package migrations

import "embed"

// FS holds the goose .sql files.
//
//go:embed *.sql
var FS embed.FS
