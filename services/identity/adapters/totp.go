package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
)

var _ app.TOTPStore = Store{}

// TOTPFactor returns the technician's TOTP factor; app.ErrNotFound when none.
func (s Store) TOTPFactor(ctx context.Context, q app.Querier, technicianID string) (app.TOTPFactor, error) {
	var f app.TOTPFactor
	var confirmed sql.NullString
	err := q.QueryRowContext(ctx, `SELECT technician_id, secret, confirmed_at, last_step FROM totp_factors WHERE technician_id = $1`,
		technicianID).Scan(&f.TechnicianID, &f.Secret, &confirmed, &f.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return f, app.ErrNotFound
	}
	if err != nil {
		return f, fmt.Errorf("totp factor: %w", err)
	}
	f.Confirmed = confirmed.Valid
	return f, nil
}

// StartTOTP stores a new secret for the technician unless a confirmed
// factor exists; false then.
func (s Store) StartTOTP(ctx context.Context, tx *sql.Tx, technicianID, secret string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO totp_factors (technician_id, secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (technician_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0
		WHERE totp_factors.confirmed_at IS NULL`, technicianID, secret, store.Time(now))
	if err != nil {
		return false, fmt.Errorf("start totp: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ConfirmTOTP confirms the enrolment with the step of its first code.
func (s Store) ConfirmTOTP(ctx context.Context, tx *sql.Tx, technicianID string, step int64, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE totp_factors SET confirmed_at = $1, last_step = $2
		WHERE technician_id = $3 AND confirmed_at IS NULL`, store.Time(now), step, technicianID)
	if err != nil {
		return false, fmt.Errorf("confirm totp: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UseTOTPStep accepts a code of step once: only a step after the last one
// accepted moves last_step, in one conditional update (no replay, even in
// parallel).
func (s Store) UseTOTPStep(ctx context.Context, tx *sql.Tx, technicianID string, step int64) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE totp_factors SET last_step = $1
		WHERE technician_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1`, step, technicianID)
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RemoveTOTP deletes the technician's factor and recovery codes; whether
// there was a factor.
func (s Store) RemoveTOTP(ctx context.Context, tx *sql.Tx, technicianID string) (bool, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE technician_id = $1`, technicianID); err != nil {
		return false, fmt.Errorf("remove recovery codes: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM totp_factors WHERE technician_id = $1`, technicianID)
	if err != nil {
		return false, fmt.Errorf("remove totp: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReplaceRecoveryCodes stores new recovery code hashes, dropping the old.
func (s Store) ReplaceRecoveryCodes(ctx context.Context, tx *sql.Tx, technicianID string, hashes []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE technician_id = $1`, technicianID); err != nil {
		return fmt.Errorf("drop recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (technician_id, code_hash) VALUES ($1, $2)`, technicianID, h); err != nil {
			return fmt.Errorf("insert recovery code: %w", err)
		}
	}
	return nil
}

// UseRecoveryCode spends the code with this hash once; the codes left.
func (s Store) UseRecoveryCode(ctx context.Context, tx *sql.Tx, technicianID, hash string, now time.Time) (bool, int, error) {
	res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE technician_id = $2 AND code_hash = $3 AND used_at IS NULL`,
		store.Time(now), technicianID, hash)
	if err != nil {
		return false, 0, fmt.Errorf("use recovery code: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n != 1 {
		return false, 0, err
	}
	var left int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE technician_id = $1 AND used_at IS NULL`, technicianID).Scan(&left)
	return true, left, err
}

// FreeSessions lifts the enrolment-only restriction of the technician's
// sessions (L-3: the factor is enrolled now).
func (s Store) FreeSessions(ctx context.Context, tx *sql.Tx, technicianID string) error {
	_, err := tx.ExecContext(ctx, `UPDATE sessions SET enrollment_only = 0 WHERE technician_id = $1 AND enrollment_only = 1`, technicianID)
	if err != nil {
		return fmt.Errorf("free sessions: %w", err)
	}
	return nil
}
