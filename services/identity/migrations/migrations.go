// Package migrations holds the identity service's versioned schema.
package migrations

import "embed"

//go:embed *.sql
var FS embed.FS
