package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/seatbilling/domain"
)

// Seat reads a technician's seat, with its pending removal, within tx;
// found is false when the technician never held one in the account.
func (s *Store) Seat(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (domain.Seat, bool, error) {
	seat := domain.Seat{AccountID: accountID, TechnicianID: technicianID}
	var status string
	var removal sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT status, removal_date FROM seats WHERE account_id = $1 AND technician_id = $2`,
		accountID, technicianID).Scan(&status, &removal)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Seat{}, false, nil
	}
	if err != nil {
		return domain.Seat{}, false, fmt.Errorf("load seat of %s in %s: %w", technicianID, accountID, err)
	}
	seat.Status = domain.SeatStatus(status)
	if removal.Valid {
		if seat.RemovalDate, err = domain.ParseDate(removal.String); err != nil {
			return domain.Seat{}, false, fmt.Errorf("load seat of %s in %s: removal_date: %w", technicianID, accountID, err)
		}
	}
	return seat, true, nil
}

// MarkRemoval records, within tx, that the technician's seat leaves the
// subscription at the end of the cycle whose last day is date (S-5). A
// technician with no seat row changes nothing.
func (s *Store) MarkRemoval(ctx context.Context, tx *sql.Tx, accountID, technicianID string, date, at time.Time) error {
	before, found, err := s.seatStateOf(ctx, tx, accountID, technicianID)
	if err != nil || !found {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE seats SET removal_date = $3, updated_at = $4 WHERE account_id = $1 AND technician_id = $2`,
		accountID, technicianID, domain.FormatDate(date), store.Time(at))
	if err != nil {
		return fmt.Errorf("mark the seat of %s in %s for removal: %w", technicianID, accountID, err)
	}
	return s.countSeat(ctx, tx, accountID, before, seatState{occupied: before.occupied, pending: true})
}

// DueSubscriptions lists the accounts whose stored cycle ended before day
// today (dates are YYYY-MM-DD text: text order is date order).
func (s *Store) DueSubscriptions(ctx context.Context, today time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT account_id FROM subscriptions WHERE cycle_end < $1 ORDER BY account_id`,
		domain.FormatDate(today))
	if err != nil {
		return nil, fmt.Errorf("list subscriptions due for renewal: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list subscriptions due for renewal: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions due for renewal: %w", err)
	}
	return out, nil
}

// DueRemovals returns, within tx, the account's seats pending removal on or
// before through (a cycle's last day), in technician order.
func (s *Store) DueRemovals(ctx context.Context, tx *sql.Tx, accountID string, through time.Time) ([]domain.Seat, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT technician_id, status, removal_date FROM seats
		WHERE account_id = $1 AND removal_date IS NOT NULL AND removal_date <= $2
		ORDER BY technician_id`, accountID, domain.FormatDate(through))
	if err != nil {
		return nil, fmt.Errorf("list the seats of %s due for removal: %w", accountID, err)
	}
	defer rows.Close()
	var out []domain.Seat
	for rows.Next() {
		seat := domain.Seat{AccountID: accountID}
		var status, date string
		if err := rows.Scan(&seat.TechnicianID, &status, &date); err != nil {
			return nil, fmt.Errorf("list the seats of %s due for removal: %w", accountID, err)
		}
		seat.Status = domain.SeatStatus(status)
		if seat.RemovalDate, err = domain.ParseDate(date); err != nil {
			return nil, fmt.Errorf("seat of %s in %s: removal_date: %w", seat.TechnicianID, accountID, err)
		}
		out = append(out, seat)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the seats of %s due for removal: %w", accountID, err)
	}
	return out, nil
}

// RemoveSeat applies a pending removal within tx: the seat is released
// and no longer pending. The row stays, so that a re-enabled technician
// occupies it again as after a disable.
func (s *Store) RemoveSeat(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time) error {
	before, found, err := s.seatStateOf(ctx, tx, accountID, technicianID)
	if err != nil || !found {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE seats SET status = $3, removal_date = NULL, updated_at = $4 WHERE account_id = $1 AND technician_id = $2`,
		accountID, technicianID, string(domain.SeatReleased), store.Time(at))
	if err != nil {
		return fmt.Errorf("remove the seat of %s in %s: %w", technicianID, accountID, err)
	}
	return s.countSeat(ctx, tx, accountID, before, seatState{})
}

// InsertRenewal records, within tx, that renewal r closed its cycle. It
// reports false, changing nothing, when that cycle was closed before.
func (s *Store) InsertRenewal(ctx context.Context, tx *sql.Tx, accountID string, r domain.Renewal, chargeID string, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO cycle_renewals (account_id, cycle_start, cycle_end, seats_removed, seats, charge_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (account_id, cycle_start) DO NOTHING`,
		accountID, domain.FormatDate(r.Closed.Start), domain.FormatDate(r.Closed.End), r.Removed, r.Seats, nullable(chargeID), store.Time(at))
	if err != nil {
		return false, fmt.Errorf("record the renewal of %s: %w", accountID, err)
	}
	return inserted(res, "renewal of "+accountID)
}

// Renew stores, within tx, the seats and the cycle that renewal r starts.
func (s *Store) Renew(ctx context.Context, tx *sql.Tx, accountID string, r domain.Renewal, at time.Time) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE subscriptions SET seats_total = $2, cycle_start = $3, cycle_end = $4, updated_at = $5
		WHERE account_id = $1`,
		accountID, r.Seats, domain.FormatDate(r.Next.Start), domain.FormatDate(r.Next.End), store.Time(at))
	if err != nil {
		return fmt.Errorf("renew the subscription of %s: %w", accountID, err)
	}
	return nil
}
