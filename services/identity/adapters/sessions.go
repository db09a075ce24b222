package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/identity/app"
)

var _ app.SessionStore = Store{}

func (s Store) InsertSession(ctx context.Context, tx *sql.Tx, ses app.Session) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, account_id, technician_id, token_hash, created_at, expires_at,
		device_label, source_address, last_used_at, idle_seconds, idle_expires_at, enrollment_only)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		ses.ID, ses.AccountID, ses.TechnicianID, ses.TokenHash, store.Time(ses.CreatedAt), store.Time(ses.ExpiresAt),
		ses.DeviceLabel, ses.SourceAddress, store.Time(ses.LastUsedAt), int64(ses.Idle/time.Second), store.Time(ses.IdleExpiresAt), boolInt(ses.EnrollmentOnly))
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

const sessionColumns = `s.id, s.account_id, s.technician_id, s.device_label, s.source_address, s.created_at, s.last_used_at,
	s.expires_at, s.idle_seconds, s.idle_expires_at, s.enrollment_only`

func scanSession(row interface{ Scan(...any) error }) (app.Session, error) {
	var ses app.Session
	var created, used, expires, idleExpires string
	var idle, enrollmentOnly int64
	if err := row.Scan(&ses.ID, &ses.AccountID, &ses.TechnicianID, &ses.DeviceLabel, &ses.SourceAddress, &created, &used,
		&expires, &idle, &idleExpires, &enrollmentOnly); err != nil {
		return ses, err
	}
	ses.EnrollmentOnly = enrollmentOnly == 1
	ses.Idle = time.Duration(idle) * time.Second
	ses.CreatedAt, _ = store.ParseTime(created)
	ses.LastUsedAt, _ = store.ParseTime(used)
	ses.ExpiresAt, _ = store.ParseTime(expires)
	ses.IdleExpiresAt = ses.ExpiresAt
	if t, err := store.ParseTime(idleExpires); err == nil {
		ses.IdleExpiresAt = t
	}
	return ses, nil
}

// LiveSession returns the session whose token has this SHA-256 (hex) if it
// is neither expired at now (absolute or idle) nor revoked, and its
// technician is not disabled; app.ErrNotFound otherwise.
func (s Store) LiveSession(ctx context.Context, hash string, now time.Time) (app.Session, error) {
	ses, err := scanSession(s.DB.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions s
		JOIN technicians t ON t.id = s.technician_id
		WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2 AND t.status <> 'disabled'`,
		hash, store.Time(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return ses, app.ErrNotFound
	}
	if err != nil {
		return ses, fmt.Errorf("session: %w", err)
	}
	return ses, nil
}

// TouchSession records a use of the session at now, unless one was
// recorded after since (so a busy session is written once a minute).
func (s Store) TouchSession(ctx context.Context, id string, now, since, idleUntil time.Time) error {
	return s.DB.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET last_used_at = $1, idle_expires_at = $2
			WHERE id = $3 AND last_used_at <= $4 AND revoked_at IS NULL`, store.Time(now), store.Time(idleUntil), id, store.Time(since))
		if err != nil {
			return fmt.Errorf("touch session: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		// The session's use is its technician's activity (last_active_at).
		if _, err := tx.ExecContext(ctx, `UPDATE technicians SET last_active_at = $1
			WHERE id = (SELECT technician_id FROM sessions WHERE id = $2) AND (last_active_at IS NULL OR last_active_at < $1)`,
			store.Time(now), id); err != nil {
			return fmt.Errorf("touch session: last active: %w", err)
		}
		return nil
	})
}

// LiveSessions returns the technician's live sessions at now, oldest first.
func (s Store) LiveSessions(ctx context.Context, q app.Querier, technicianID string, now time.Time) ([]app.Session, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions s
		WHERE s.technician_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2
		ORDER BY s.created_at, s.id`, technicianID, store.Time(now))
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	defer rows.Close()
	var out []app.Session
	for rows.Next() {
		ses, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ses)
	}
	return out, rows.Err()
}

// RevokeSessions ends the technician's unrevoked sessions named by ids
// (all when ids is nil) except one, and returns the ids it ended.
func (s Store) RevokeSessions(ctx context.Context, tx *sql.Tx, technicianID string, ids []string, except string, now time.Time, reason string) ([]string, error) {
	q := `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
		WHERE technician_id = $3 AND revoked_at IS NULL AND id <> $4 AND expires_at > $1`
	args := []any{store.Time(now), reason, technicianID, except}
	if ids != nil {
		if len(ids) == 0 {
			return nil, nil
		}
		ph := make([]string, len(ids))
		for i, id := range ids {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		q += ` AND id IN (` + strings.Join(ph, ", ") + `)`
	}
	rows, err := tx.QueryContext(ctx, q+` RETURNING id`, args...)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	defer rows.Close()
	var ended []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ended = append(ended, id)
	}
	return ended, rows.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
