package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/seatbilling/domain"
)

// RecordRole keeps the role assigned latest (by the assignment's time).
func (s *Store) RecordRole(ctx context.Context, tx *sql.Tx, accountID, technicianID, roleName string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO seat_roles (account_id, technician_id, role_name, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, technician_id) DO UPDATE SET role_name = excluded.role_name, updated_at = excluded.updated_at
			WHERE excluded.updated_at >= seat_roles.updated_at`,
		accountID, technicianID, roleName, store.Time(at))
	if err != nil {
		return fmt.Errorf("record role of %s in %s: %w", technicianID, accountID, err)
	}
	return nil
}

// OccupiedByRole counts occupied seats by their holder's role name; seats
// of technicians whose role is not known yet are not counted.
func (s *Store) OccupiedByRole(ctx context.Context, accountID string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.role_name, count(*) FROM seats t
		JOIN seat_roles r ON r.account_id = t.account_id AND r.technician_id = t.technician_id
		WHERE t.account_id = $1 AND t.status = $2
		GROUP BY r.role_name`, accountID, string(domain.SeatOccupied))
	if err != nil {
		return nil, fmt.Errorf("seats by role of %s: %w", accountID, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}
