package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"roster.dev/services/seatbilling/domain"
)

// The subscription row keeps the counts of its account's seats
// (seats_occupied, seats_leaving, seats_pending_removal: domain.SeatCount,
// migration 0060). Every method that changes a seat's status or pending
// removal moves them by what the change moves, within its transaction and
// under the account's lock that its use case took (LockSubscription), so
// that Occupancy and Subscription read one row however many seats the
// account holds (issue 18: counting them made each seat operation
// O(seats)). CountSeats is the count they replace, kept to check them.

// seatState is one seat as the counters see it. The zero value counts
// nowhere: no row, or a released seat with no removal pending.
type seatState struct {
	occupied bool // status occupied (S-2)
	pending  bool // removal_date set (S-5)
}

// count is what the seat adds to the counters.
func (st seatState) count() domain.SeatCount {
	var c domain.SeatCount
	if st.occupied {
		c.Occupied = 1
	}
	if st.pending {
		c.Pending = 1
		if !st.occupied {
			c.Leaving = 1
		}
	}
	return c
}

// seatStateOf reads, within tx, the technician's seat as the counters see
// it; found is false when the technician has no seat row in the account.
func (s *Store) seatStateOf(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (st seatState, found bool, err error) {
	var status string
	var removal sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT status, removal_date FROM seats WHERE account_id = $1 AND technician_id = $2`,
		accountID, technicianID).Scan(&status, &removal)
	if errors.Is(err, sql.ErrNoRows) {
		return seatState{}, false, nil
	}
	if err != nil {
		return seatState{}, false, fmt.Errorf("load seat of %s in %s: %w", technicianID, accountID, err)
	}
	return seatState{occupied: status == string(domain.SeatOccupied), pending: removal.Valid}, true, nil
}

// countSeat moves the account's seat counters, within tx, by the change of
// one seat from before to after.
func (s *Store) countSeat(ctx context.Context, tx *sql.Tx, accountID string, before, after seatState) error {
	b, a := before.count(), after.count()
	d := domain.SeatCount{Occupied: a.Occupied - b.Occupied, Leaving: a.Leaving - b.Leaving, Pending: a.Pending - b.Pending}
	if d == (domain.SeatCount{}) {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
		UPDATE subscriptions SET seats_occupied = seats_occupied + $2,
			seats_leaving = seats_leaving + $3, seats_pending_removal = seats_pending_removal + $4
		WHERE account_id = $1`, accountID, d.Occupied, d.Leaving, d.Pending)
	if err != nil {
		return fmt.Errorf("count the seats of %s: %w", accountID, err)
	}
	return nil
}

// CountSeats counts the account's seats row by row, with count(*): what the
// subscription's counters (Subscription) must always equal. It costs
// O(seats); no use case calls it, the tests of the counters do.
func (s *Store) CountSeats(ctx context.Context, accountID string) (domain.SeatCount, error) {
	var c domain.SeatCount
	err := s.db.QueryRowContext(ctx, `
		SELECT
			(SELECT count(*) FROM seats WHERE account_id = $1 AND status = $2),
			(SELECT count(*) FROM seats WHERE account_id = $1 AND status <> $2 AND removal_date IS NOT NULL),
			(SELECT count(*) FROM seats WHERE account_id = $1 AND removal_date IS NOT NULL)`,
		accountID, string(domain.SeatOccupied)).Scan(&c.Occupied, &c.Leaving, &c.Pending)
	if err != nil {
		return domain.SeatCount{}, fmt.Errorf("count seats of %s: %w", accountID, err)
	}
	return c, nil
}
