package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

var _ app.ResetStore = Store{}

func (s Store) InsertResetRequest(ctx context.Context, tx *sql.Tx, r app.ResetRequest) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO password_reset_requests (id, account_id, email_key, source_address, created_at)
		VALUES ($1, $2, $3, $4, $5)`, r.ID, r.AccountID, r.EmailKey, r.SourceAddress, store.Time(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert reset request: %w", err)
	}
	return nil
}

// DueResetRequests returns up to limit waiting requests, oldest first.
func (s Store) DueResetRequests(ctx context.Context, limit int) ([]app.ResetRequest, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, account_id, email_key, source_address, created_at
		FROM password_reset_requests ORDER BY created_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reset requests: %w", err)
	}
	defer rows.Close()
	var out []app.ResetRequest
	for rows.Next() {
		var r app.ResetRequest
		var created string
		if err := rows.Scan(&r.ID, &r.AccountID, &r.EmailKey, &r.SourceAddress, &created); err != nil {
			return nil, err
		}
		r.CreatedAt, _ = store.ParseTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// TakeResetRequest deletes the request; false when another worker took it.
func (s Store) TakeResetRequest(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM password_reset_requests WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("take reset request: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s Store) InsertReset(ctx context.Context, tx *sql.Tx, r domain.PasswordReset) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO password_resets (id, account_id, technician_id, token_hash, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.AccountID, r.TechnicianID, r.TokenHash, store.Time(r.ExpiresAt), store.Time(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert reset: %w", err)
	}
	return nil
}

// ResetByHash returns the reset whose token has this SHA-256 (hex).
func (s Store) ResetByHash(ctx context.Context, q app.Querier, hash string) (domain.PasswordReset, error) {
	var r domain.PasswordReset
	var expires, created string
	var used sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, account_id, technician_id, token_hash, expires_at, used_at, created_at
		FROM password_resets WHERE token_hash = $1`, hash).Scan(&r.ID, &r.AccountID, &r.TechnicianID, &r.TokenHash, &expires, &used, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return r, app.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("reset: %w", err)
	}
	r.ExpiresAt, _ = store.ParseTime(expires)
	r.CreatedAt, _ = store.ParseTime(created)
	r.UsedAt = parseNullTime(used)
	return r, nil
}

// UseReset marks the reset used if still usable at now (single use: a
// conditional update).
func (s Store) UseReset(ctx context.Context, tx *sql.Tx, id string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE password_resets SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1`,
		store.Time(now), id)
	if err != nil {
		return false, fmt.Errorf("use reset: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RetireResets makes the technician's unused resets unusable and drops
// their unsent mails (a newer link, or the password changed).
func (s Store) RetireResets(ctx context.Context, tx *sql.Tx, technicianID string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE id IN
		(SELECT id FROM password_resets WHERE technician_id = $1 AND used_at IS NULL)`, technicianID); err != nil {
		return fmt.Errorf("drop reset mails: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE password_resets SET used_at = $1 WHERE technician_id = $2 AND used_at IS NULL`,
		store.Time(now), technicianID); err != nil {
		return fmt.Errorf("retire resets: %w", err)
	}
	return nil
}
