package domain

import (
	"fmt"
	"math"
	"time"
)

// RemovalOutcome is what asking to remove a technician's seat at cycle end
// answers (S-5).
type RemovalOutcome string

const (
	// RemovalScheduled: the seat is marked for removal now.
	RemovalScheduled RemovalOutcome = "scheduled"
	// RemovalAlreadyScheduled: it was marked before; nothing changes.
	RemovalAlreadyScheduled RemovalOutcome = "already_scheduled"
	// RemovalNotOccupying: the technician occupies no seat (never seated,
	// not confirmed yet, or disabled): there is no seat of theirs to remove.
	// Plain disabling never reduces the licence count (S-5).
	RemovalNotOccupying RemovalOutcome = "not_occupying"
)

// ScheduleRemoval decides S-5's "reducing the licence count removes a
// named technician's seat at the end of the cycle" for the technician's
// seat (found false when they have none) on day today: an occupied seat is
// marked for removal at the end of the cycle that holds today; a seat
// already marked keeps its date. It returns the removal date: the cycle's
// last day.
//
// The cycle is the one that holds today, not the stored one: a removal
// asked for after a cycle ended and before the scheduler closed it applies
// at the end of the cycle that is running, never in the past.
func (s Subscription) ScheduleRemoval(seat Seat, found bool, today time.Time) (RemovalOutcome, time.Time) {
	switch {
	case !found:
		return RemovalNotOccupying, time.Time{}
	case !seat.RemovalDate.IsZero():
		return RemovalAlreadyScheduled, seat.RemovalDate
	case seat.Status != SeatOccupied:
		return RemovalNotOccupying, time.Time{}
	}
	return RemovalScheduled, s.Schedule.CycleAt(today).End
}

// CycleEnded reports whether the subscription's stored cycle is over on
// day today (the scheduler's "due"): today is after its last day.
func (s Subscription) CycleEnded(today time.Time) bool { return Day(today).After(s.Cycle.End) }

// Renewal is what closing a cycle does to a subscription (S-10): pending
// reductions apply, then the next cycle is charged seats × unit.
type Renewal struct {
	// Closed is the cycle that ended; Next the one that starts.
	Closed, Next Cycle
	// Removed is how many seats the pending removals took away; Seats the
	// seats left, paid for in Next.
	Removed, Seats int
	// Amount is Seats × the unit price of one cycle (CycleUnit): the
	// renewal charge. Zero when no seat is left.
	Amount Money
}

// Renew closes the subscription's current cycle with removals seats
// pending removal at its end (S-5, S-10). Removals beyond the seats there
// are (an overallocated account) leave zero seats, never fewer.
func (s Subscription) Renew(removals int) (Renewal, error) {
	if removals < 0 {
		return Renewal{}, fmt.Errorf("%w: %d removals", ErrInvalidQuantity, removals)
	}
	unit, err := s.CycleUnit()
	if err != nil {
		return Renewal{}, err
	}
	seats := max(s.Seats-removals, 0)
	if seats > 0 && unit.Amount > math.MaxInt64/int64(seats) {
		return Renewal{}, fmt.Errorf("%w: %d seats × %d", ErrAmountOverflow, seats, unit.Amount)
	}
	return Renewal{
		Closed:  s.Cycle,
		Next:    s.Schedule.CycleAt(s.Cycle.End.AddDate(0, 0, 1)),
		Removed: s.Seats - seats,
		Seats:   seats,
		Amount:  Money{Amount: int64(seats) * unit.Amount, Currency: unit.Currency},
	}, nil
}
