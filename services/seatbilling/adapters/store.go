// Package adapters holds seatbilling's SQL store. The same SQL runs on
// SQLite and PostgreSQL (pkg/store): $n placeholders, text dates and
// timestamps, integers for money and counts.
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

// Store reads and writes subscriptions and seats.
type Store struct {
	db *store.DB
}

// NewStore returns the store on db, migrated with migrations.FS.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// InsertSubscription stores a new subscription within tx. It reports false,
// and changes nothing, when the account already has one.
func (s *Store) InsertSubscription(ctx context.Context, tx *sql.Tx, sub domain.Subscription, at time.Time) (bool, error) {
	// ON CONFLICT DO NOTHING rather than catching the unique violation: a
	// failed statement would abort the whole PostgreSQL transaction.
	res, err := tx.ExecContext(ctx, `
		INSERT INTO subscriptions (account_id, profile, plan, billing_period, billing_anchor,
			unit_price, currency, seats_total, cycle_start, cycle_end, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
		ON CONFLICT (account_id) DO NOTHING`,
		sub.AccountID, sub.Profile, sub.Plan, string(sub.Schedule.Period()), domain.FormatDate(sub.Schedule.Anchor()),
		sub.UnitPrice.Amount, sub.UnitPrice.Currency, sub.Seats,
		domain.FormatDate(sub.Cycle.Start), domain.FormatDate(sub.Cycle.End), store.Time(at))
	if err != nil {
		return false, fmt.Errorf("insert subscription of %s: %w", sub.AccountID, err)
	}
	return inserted(res, "subscription of "+sub.AccountID)
}

// InsertSeat stores a seat within tx. It reports false, and changes
// nothing, when the technician already has a seat row in the account.
func (s *Store) InsertSeat(ctx context.Context, tx *sql.Tx, seat domain.Seat, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO seats (account_id, technician_id, status, assigned_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (account_id, technician_id) DO NOTHING`,
		seat.AccountID, seat.TechnicianID, string(seat.Status), store.Time(at))
	if err != nil {
		return false, fmt.Errorf("insert seat of %s in %s: %w", seat.TechnicianID, seat.AccountID, err)
	}
	ok, err := inserted(res, "seat of "+seat.TechnicianID)
	if err != nil || !ok {
		return false, err
	}
	if err := s.countSeat(ctx, tx, seat.AccountID, seatState{}, seatState{occupied: seat.Status == domain.SeatOccupied}); err != nil {
		return false, err
	}
	return true, nil
}

func inserted(res sql.Result, what string) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert %s: %w", what, err)
	}
	return n == 1, nil
}

// Subscription returns the account's subscription and how its seats are
// taken (its counters, seat_counters.go), read in one statement so they
// agree. It returns domain.ErrNotFound when the account has none.
func (s *Store) Subscription(ctx context.Context, accountID string) (domain.Subscription, domain.SeatCount, error) {
	var (
		sub                        domain.Subscription
		period, anchor, start, end string
		c                          domain.SeatCount
	)
	err := s.db.QueryRowContext(ctx, `
		SELECT s.account_id, s.profile, s.plan, s.billing_period, s.billing_anchor,
			s.unit_price, s.currency, s.seats_total, s.cycle_start, s.cycle_end,
			s.seats_occupied, s.seats_leaving, s.seats_pending_removal
		FROM subscriptions s
		WHERE s.account_id = $1`, accountID).Scan(
		&sub.AccountID, &sub.Profile, &sub.Plan, &period, &anchor,
		&sub.UnitPrice.Amount, &sub.UnitPrice.Currency, &sub.Seats, &start, &end, &c.Occupied, &c.Leaving, &c.Pending)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Subscription{}, domain.SeatCount{}, fmt.Errorf("account %s: %w", accountID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Subscription{}, domain.SeatCount{}, fmt.Errorf("load subscription of %s: %w", accountID, err)
	}
	if err := decodeDates(&sub, period, anchor, start, end); err != nil {
		return domain.Subscription{}, domain.SeatCount{}, fmt.Errorf("load subscription of %s: %w", accountID, err)
	}
	return sub, c, nil
}

func decodeDates(sub *domain.Subscription, period, anchor, start, end string) error {
	a, err := domain.ParseDate(anchor)
	if err != nil {
		return fmt.Errorf("billing_anchor: %w", err)
	}
	if sub.Schedule, err = domain.NewSchedule(a, domain.Period(period)); err != nil {
		return err
	}
	if sub.Cycle.Start, err = domain.ParseDate(start); err != nil {
		return fmt.Errorf("cycle_start: %w", err)
	}
	if sub.Cycle.End, err = domain.ParseDate(end); err != nil {
		return fmt.Errorf("cycle_end: %w", err)
	}
	return nil
}
