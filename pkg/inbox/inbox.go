// Package inbox records which events a consumer has applied, in the same
// transaction as the effects, so a redelivered or republished event is
// recognised and applied once.
package inbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/pkg/store"
)

// Init creates the inbox table when missing.
func Init(ctx context.Context, db *store.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS roster_inbox (
		consumer TEXT NOT NULL,
		event_id TEXT NOT NULL,
		processed_at TEXT NOT NULL,
		PRIMARY KEY (consumer, event_id)
	)`)
	if err != nil && !store.IsUniqueViolation(err) {
		return fmt.Errorf("inbox: create table: %w", err)
	}
	return nil
}

// Claim records that consumer applies eventID within tx. It reports false
// when the event was applied before: the caller then changes nothing. The
// primary key makes this safe under concurrency — of two deliveries racing,
// the second waits for the first's transaction and then finds the row.
func Claim(ctx context.Context, tx *sql.Tx, consumer, eventID string) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO roster_inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		consumer, eventID, store.Time(time.Now()))
	if err != nil {
		return false, fmt.Errorf("inbox: claim %s: %w", eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("inbox: claim %s: %w", eventID, err)
	}
	return n == 1, nil
}

// Applied reports whether consumer has applied eventID.
func Applied(ctx context.Context, db *store.DB, consumer, eventID string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM roster_inbox WHERE consumer = $1 AND event_id = $2`, consumer, eventID).Scan(&n)
	return n > 0, err
}
