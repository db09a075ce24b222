package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/store"
	"roster.dev/services/seatbilling/domain"
)

// InTx runs fn in one transaction of the service's database (store.InTx:
// committed when fn succeeds, retried when it loses a serialisation race).
func (s *Store) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.db.InTx(ctx, fn)
}

// LockSubscriptions takes the locks of several accounts' subscriptions at
// once, in account order, first in the transaction of a batch of events
// (eventbus.BeforeBatch): its handlers then lock them again, already held,
// in whatever order the events come, and two replicas' batches never hold
// one account each while waiting for the other's. PostgreSQL only: on
// SQLite the transaction holds the database's write lock already.
func (s *Store) LockSubscriptions(ctx context.Context, tx *sql.Tx, accountIDs []string) error {
	if s.db.Dialect != store.Postgres || len(accountIDs) < 2 {
		return nil
	}
	marks := make([]string, len(accountIDs))
	args := make([]any, len(accountIDs))
	for i, id := range accountIDs {
		marks[i], args[i] = fmt.Sprintf("$%d", i+1), id
	}
	rows, err := tx.QueryContext(ctx, `SELECT account_id FROM subscriptions WHERE account_id IN (`+strings.Join(marks, ", ")+
		`) ORDER BY account_id FOR UPDATE`, args...)
	if err != nil {
		return fmt.Errorf("lock %d subscriptions: %w", len(accountIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// LockSubscription reads the account's subscription within tx and holds
// it until tx ends, so that the use cases changing an account's seats run
// one at a time per account (S-6): on PostgreSQL with SELECT … FOR UPDATE
// on the subscription row (a READ COMMITTED transaction then reads the
// seats and reservations as the previous holder committed them); on SQLite
// every transaction is BEGIN IMMEDIATE (pkg/store) and already holds the
// database's write lock, and SQLite has no FOR UPDATE. This is the one
// statement whose text differs between the backends. It returns
// domain.ErrNotFound when the account has no subscription.
func (s *Store) LockSubscription(ctx context.Context, tx *sql.Tx, accountID string) (domain.Subscription, error) {
	q := `SELECT account_id, profile, plan, billing_period, billing_anchor,
			unit_price, currency, seats_total, cycle_start, cycle_end
		FROM subscriptions WHERE account_id = $1`
	if s.db.Dialect == store.Postgres {
		q += ` FOR UPDATE`
	}
	var (
		sub                        domain.Subscription
		period, anchor, start, end string
	)
	err := tx.QueryRowContext(ctx, q, accountID).Scan(
		&sub.AccountID, &sub.Profile, &sub.Plan, &period, &anchor,
		&sub.UnitPrice.Amount, &sub.UnitPrice.Currency, &sub.Seats, &start, &end)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Subscription{}, fmt.Errorf("account %s: %w", accountID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("lock subscription of %s: %w", accountID, err)
	}
	if err := decodeDates(&sub, period, anchor, start, end); err != nil {
		return domain.Subscription{}, fmt.Errorf("lock subscription of %s: %w", accountID, err)
	}
	return sub, nil
}

// Occupancy reads, within tx, the account's occupied seats and the
// released seats pending removal at cycle end (domain.Occupancy.Leaving,
// S-5) from its counters (seat_counters.go), and counts the reservations
// that hold a seat at now (domain.Reservation.HoldsSeat: held, not a
// purchase, not expired). Expiry is computed here rather than by a
// background job: an expired reservation simply stops counting. That count
// seeks, in the index reservations_held (account_id, status, expires_at,
// purchase), the reservations expiring after now: it visits the live ones
// only, however many seats or past reservations the account has.
func (s *Store) Occupancy(ctx context.Context, tx *sql.Tx, sub domain.Subscription, now time.Time) (domain.Occupancy, error) {
	o := domain.Occupancy{Total: sub.Seats}
	err := tx.QueryRowContext(ctx, `
		SELECT s.seats_occupied, s.seats_leaving,
			(SELECT count(*) FROM reservations r
				WHERE r.account_id = s.account_id AND r.status = $2 AND r.expires_at > $3 AND r.purchase = 0)
		FROM subscriptions s WHERE s.account_id = $1`,
		sub.AccountID, string(domain.ReservationHeld), store.Time(now)).Scan(&o.Occupied, &o.Leaving, &o.Held)
	if err != nil {
		return domain.Occupancy{}, fmt.Errorf("count seats of %s: %w", sub.AccountID, err)
	}
	return o, nil
}

// Reservation reads one reservation within tx; found is false when there
// is none.
func (s *Store) Reservation(ctx context.Context, tx *sql.Tx, accountID, id string) (r domain.Reservation, found bool, err error) {
	var purchase int
	var status, expires string
	err = tx.QueryRowContext(ctx, `
		SELECT purchase, amount, currency, status, technician_id, expires_at
		FROM reservations WHERE account_id = $1 AND reservation_id = $2`, accountID, id).Scan(
		&purchase, &r.Amount.Amount, &r.Amount.Currency, &status, &r.TechnicianID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Reservation{}, false, nil
	}
	if err != nil {
		return domain.Reservation{}, false, fmt.Errorf("load reservation %s of %s: %w", id, accountID, err)
	}
	r.AccountID, r.ID, r.Purchase, r.Status = accountID, id, purchase == 1, domain.ReservationStatus(status)
	if r.ExpiresAt, err = store.ParseTime(expires); err != nil {
		return domain.Reservation{}, false, fmt.Errorf("load reservation %s of %s: expires_at: %w", id, accountID, err)
	}
	return r, true, nil
}

// SaveReservation stores a held reservation within tx. A row with the same
// id is replaced: the caller does so only for an expired, unconfirmed
// reservation asked for again.
func (s *Store) SaveReservation(ctx context.Context, tx *sql.Tx, r domain.Reservation, correlationID string, at time.Time) error {
	purchase := 0
	if r.Purchase {
		purchase = 1
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO reservations (account_id, reservation_id, purchase, amount, currency, status,
			technician_id, correlation_id, expires_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $9)
		ON CONFLICT (account_id, reservation_id) DO UPDATE SET
			purchase = excluded.purchase, amount = excluded.amount, currency = excluded.currency,
			status = excluded.status, technician_id = '', correlation_id = excluded.correlation_id,
			expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
		r.AccountID, r.ID, purchase, r.Amount.Amount, r.Amount.Currency, string(r.Status),
		correlationID, store.Time(r.ExpiresAt), store.Time(at))
	if err != nil {
		return fmt.Errorf("save reservation %s of %s: %w", r.ID, r.AccountID, err)
	}
	return nil
}

// PurgeReservations deletes, within tx, the account's unconfirmed
// reservations that expired before before.
func (s *Store) PurgeReservations(ctx context.Context, tx *sql.Tx, accountID string, before time.Time) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM reservations WHERE account_id = $1 AND status = $2 AND expires_at < $3`,
		accountID, string(domain.ReservationHeld), store.Time(before))
	if err != nil {
		return fmt.Errorf("purge reservations of %s: %w", accountID, err)
	}
	return nil
}

// ConfirmReservation marks a reservation as used by technicianID within tx.
func (s *Store) ConfirmReservation(ctx context.Context, tx *sql.Tx, accountID, id, technicianID string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE reservations SET status = $3, technician_id = $4, updated_at = $5
		WHERE account_id = $1 AND reservation_id = $2`,
		accountID, id, string(domain.ReservationConfirmed), technicianID, store.Time(at))
	if err != nil {
		return fmt.Errorf("confirm reservation %s of %s: %w", id, accountID, err)
	}
	return nil
}

// SeatStatus reads a technician's seat within tx; found is false when the
// technician never held one in the account.
func (s *Store) SeatStatus(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (status domain.SeatStatus, found bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT status FROM seats WHERE account_id = $1 AND technician_id = $2`,
		accountID, technicianID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("load seat of %s in %s: %w", technicianID, accountID, err)
	}
	return status, true, nil
}

// OccupySeat makes the technician occupy a seat within tx: a new row, or
// the technician's released seat taken again (a re-enable), its pending
// removal kept.
func (s *Store) OccupySeat(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time) error {
	before, _, err := s.seatStateOf(ctx, tx, accountID, technicianID)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO seats (account_id, technician_id, status, assigned_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (account_id, technician_id) DO UPDATE SET
			status = excluded.status, assigned_at = excluded.assigned_at, updated_at = excluded.updated_at`,
		accountID, technicianID, string(domain.SeatOccupied), store.Time(at))
	if err != nil {
		return fmt.Errorf("occupy seat of %s in %s: %w", technicianID, accountID, err)
	}
	return s.countSeat(ctx, tx, accountID, before, seatState{occupied: true, pending: before.pending})
}

// ReleaseSeat frees the technician's occupied seat within tx (S-4), its
// pending removal kept. It reports false, changing nothing, when the
// technician occupies none.
func (s *Store) ReleaseSeat(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time) (bool, error) {
	before, _, err := s.seatStateOf(ctx, tx, accountID, technicianID)
	if err != nil || !before.occupied {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE seats SET status = $3, updated_at = $4 WHERE account_id = $1 AND technician_id = $2`,
		accountID, technicianID, string(domain.SeatReleased), store.Time(at))
	if err != nil {
		return false, fmt.Errorf("release seat of %s in %s: %w", technicianID, accountID, err)
	}
	if err := s.countSeat(ctx, tx, accountID, before, seatState{pending: before.pending}); err != nil {
		return false, err
	}
	return true, nil
}

// AddSeat adds one seat to the subscription's total within tx (S-3).
func (s *Store) AddSeat(ctx context.Context, tx *sql.Tx, accountID string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE subscriptions SET seats_total = seats_total + 1, updated_at = $2 WHERE account_id = $1`,
		accountID, store.Time(at))
	if err != nil {
		return fmt.Errorf("add a seat to %s: %w", accountID, err)
	}
	return nil
}

// InsertCharge records a charge within tx. It reports false, changing
// nothing, when the charge exists: its id (domain.ChargeID, derived from
// its cause) or its reservation was already charged.
func (s *Store) InsertCharge(ctx context.Context, tx *sql.Tx, c domain.Charge) (bool, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO charges (id, account_id, amount, currency, reason, technician_id, reservation_id, add_on_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT DO NOTHING`,
		c.ID, c.AccountID, c.Amount.Amount, c.Amount.Currency, string(c.Reason),
		nullable(c.TechnicianID), nullable(c.ReservationID), nullable(c.AddOnID), store.Time(c.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert charge %s of %s: %w", c.ID, c.AccountID, err)
	}
	return inserted(res, "charge "+c.ID)
}

// InsertOverallocation records, within tx, a technician seated when no seat
// was free (domain.SettleOverallocate); once per technician and
// reservation.
func (s *Store) InsertOverallocation(ctx context.Context, tx *sql.Tx, accountID, technicianID, reservationID string, o domain.Occupancy, at time.Time) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO overallocations (account_id, technician_id, reservation_id, seats_total, occupied, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (account_id, technician_id, reservation_id) DO NOTHING`,
		accountID, technicianID, reservationID, o.Total, o.Occupied+1, store.Time(at))
	if err != nil {
		return fmt.Errorf("record overallocation of %s in %s: %w", technicianID, accountID, err)
	}
	return nil
}

// Charges returns up to limit charges of the account in ledger order
// (created_at, then id), starting after the charge (afterAt, afterID); a
// zero afterAt starts at the first.
func (s *Store) Charges(ctx context.Context, accountID string, afterAt time.Time, afterID string, limit int) ([]domain.Charge, error) {
	after := ""
	if !afterAt.IsZero() {
		after = store.Time(afterAt)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, amount, currency, reason, technician_id, reservation_id, add_on_id, created_at
		FROM charges
		WHERE account_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
		ORDER BY created_at, id
		LIMIT $4`, accountID, after, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list charges of %s: %w", accountID, err)
	}
	defer rows.Close()
	out := []domain.Charge{}
	for rows.Next() {
		c := domain.Charge{AccountID: accountID}
		var reason, created string
		var tech, res, addOn sql.NullString
		if err := rows.Scan(&c.ID, &c.Amount.Amount, &c.Amount.Currency, &reason, &tech, &res, &addOn, &created); err != nil {
			return nil, fmt.Errorf("list charges of %s: %w", accountID, err)
		}
		c.Reason, c.TechnicianID, c.ReservationID, c.AddOnID = domain.ChargeReason(reason), tech.String, res.String, addOn.String
		if c.CreatedAt, err = store.ParseTime(created); err != nil {
			return nil, fmt.Errorf("list charges of %s: created_at: %w", accountID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list charges of %s: %w", accountID, err)
	}
	return out, nil
}

// HasSubscription reports whether the account has a subscription.
func (s *Store) HasSubscription(ctx context.Context, accountID string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return false, fmt.Errorf("find subscription of %s: %w", accountID, err)
	}
	return n > 0, nil
}

// nullable stores "" as NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
