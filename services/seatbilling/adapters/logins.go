package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/seatbilling/domain"
)

// RecordLogin keeps, within tx, the technician's earliest and latest login
// heard (I-11, S-7): first marks a FirstLogin, whose time may set the
// first login. Applying logins in any order, or twice, keeps the same
// times: the earliest first and the latest last (fixed-width text
// timestamps compare as times).
func (s *Store) RecordLogin(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time, first bool) error {
	var firstAt any
	if first {
		firstAt = store.Time(at)
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO technician_logins (account_id, technician_id, first_login_at, last_login_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, technician_id) DO UPDATE SET
			first_login_at = CASE
				WHEN technician_logins.first_login_at IS NULL THEN excluded.first_login_at
				WHEN excluded.first_login_at IS NOT NULL AND excluded.first_login_at < technician_logins.first_login_at
					THEN excluded.first_login_at
				ELSE technician_logins.first_login_at END,
			last_login_at = CASE
				WHEN excluded.last_login_at > technician_logins.last_login_at THEN excluded.last_login_at
				ELSE technician_logins.last_login_at END`,
		accountID, technicianID, firstAt, store.Time(at))
	if err != nil {
		return fmt.Errorf("record login of %s in %s: %w", technicianID, accountID, err)
	}
	return nil
}

// SeatHolders lists the technicians occupying the account's seats, with
// their logins and pending removals (S-7), in technician order.
func (s *Store) SeatHolders(ctx context.Context, accountID string) ([]domain.SeatHolder, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT t.technician_id, t.assigned_at, t.removal_date, l.first_login_at, l.last_login_at
		FROM seats t
		LEFT JOIN technician_logins l ON l.account_id = t.account_id AND l.technician_id = t.technician_id
		WHERE t.account_id = $1 AND t.status = $2
		ORDER BY t.technician_id`, accountID, string(domain.SeatOccupied))
	if err != nil {
		return nil, fmt.Errorf("list the seat holders of %s: %w", accountID, err)
	}
	defer rows.Close()
	var out []domain.SeatHolder
	for rows.Next() {
		var h domain.SeatHolder
		var since string
		var removal, first, last sql.NullString
		if err := rows.Scan(&h.TechnicianID, &since, &removal, &first, &last); err != nil {
			return nil, fmt.Errorf("list the seat holders of %s: %w", accountID, err)
		}
		h.RemovalPending = removal.Valid
		for _, f := range []struct {
			dst *time.Time
			src sql.NullString
		}{{&h.Since, sql.NullString{String: since, Valid: true}}, {&h.FirstLoginAt, first}, {&h.LastLoginAt, last}} {
			if !f.src.Valid {
				continue
			}
			if *f.dst, err = store.ParseTime(f.src.String); err != nil {
				return nil, fmt.Errorf("seat holder %s of %s: %w", h.TechnicianID, accountID, err)
			}
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the seat holders of %s: %w", accountID, err)
	}
	return out, nil
}
