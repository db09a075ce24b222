package domain

import (
	"fmt"
	"time"

	"roster.dev/pkg/profile"
)

// Subscription is an account's seat subscription.
type Subscription struct {
	AccountID string
	// Profile and Plan are ids: "atera-msp", "growth".
	Profile  string
	Plan     string
	Schedule Schedule
	// UnitPrice is per seat per month (S-1).
	UnitPrice Money
	// Seats is how many seats are paid for in the current cycle (S-7 total).
	Seats int
	// Cycle is the current billing cycle.
	Cycle Cycle
}

// SeatStatus is where a seat is in its life (S-2).
type SeatStatus string

const (
	// SeatOccupied: a technician holds the seat (S-2).
	SeatOccupied SeatStatus = "occupied"
	// SeatReleased: the technician was disabled and the seat is free for
	// reuse in the same cycle at no charge (S-4), unless a licence removal
	// is pending on it (S-5, Seat.RemovalDate). The row stays, so that a
	// re-enable occupies it again.
	SeatReleased SeatStatus = "released"
)

// Seat is one technician's hold on one of the subscription's seats (S-2).
type Seat struct {
	AccountID    string
	TechnicianID string
	Status       SeatStatus
	// RemovalDate is the last day of the cycle at whose end the seat leaves
	// the subscription (S-5); zero when no removal is pending. It is kept
	// when the technician is disabled meanwhile: the seat is released but
	// not free for reuse, and the licence count still drops.
	RemovalDate time.Time
}

// SeatCount is how an account's seats are taken (S-7).
type SeatCount struct {
	// Occupied seats hold a technician (S-2); Leaving are pending removal
	// although their technician was disabled (Occupancy.Leaving); Pending
	// counts every seat pending removal at cycle end (S-5), occupied or not:
	// the pending reductions.
	Occupied, Leaving, Pending int
}

// Usage is the seat count that S-7 reports.
type Usage struct {
	Total, Used, Available int
}

// UsageOf is the usage of a subscription with total seats, used of them
// occupied, and leaving of them pending removal at cycle end although their
// technician no longer occupies them (Occupancy.Leaving): those are neither
// used nor available (S-5).
func UsageOf(total, used, leaving int) Usage {
	return Usage{Total: total, Used: used, Available: max(total-used-leaving, 0)}
}

// Opening is what an account's creation asks of its subscription.
type Opening struct {
	AccountID string
	// Profile is the account's profile id; Plans and Currency are its
	// seat-billing data.
	Profile  string
	Plans    map[string]profile.Plan
	Currency string

	Plan   string
	Period string
	Seats  int
	// AccountPrice is the price per seat of a custom plan (S-1).
	AccountPrice Money
	// Anchor is the date the cycles count from, YYYY-MM-DD.
	Anchor string
	// AdminTechnicianID is the account's first admin, who takes a seat.
	AdminTechnicianID string
	// On is when the account was created: the current cycle is the one
	// holding that day.
	On time.Time
}

// Open opens the subscription of a new account, with its first admin
// occupying one of its seats.
func Open(o Opening) (Subscription, Seat, error) {
	if o.AccountID == "" {
		return Subscription{}, Seat{}, fmt.Errorf("%w: account id", ErrMissingField)
	}
	if o.AdminTechnicianID == "" {
		return Subscription{}, Seat{}, fmt.Errorf("%w: admin technician id", ErrMissingField)
	}
	plan, ok := o.Plans[o.Plan]
	if !ok {
		return Subscription{}, Seat{}, fmt.Errorf("%w: %q in profile %s", ErrUnknownPlan, o.Plan, o.Profile)
	}
	period, err := ParsePeriod(o.Period)
	if err != nil {
		return Subscription{}, Seat{}, err
	}
	anchor, err := ParseDate(o.Anchor)
	if err != nil {
		return Subscription{}, Seat{}, fmt.Errorf("billing anchor: %w", err)
	}
	schedule, err := NewSchedule(anchor, period)
	if err != nil {
		return Subscription{}, Seat{}, err
	}
	price, err := UnitPrice(plan, period, o.AccountPrice, o.Currency)
	if err != nil {
		return Subscription{}, Seat{}, err
	}
	// S-6: the first admin occupies a seat, so there must be one.
	if o.Seats < 1 {
		return Subscription{}, Seat{}, fmt.Errorf("%w: %d (the first admin needs one)", ErrInvalidSeats, o.Seats)
	}
	sub := Subscription{
		AccountID: o.AccountID,
		Profile:   o.Profile,
		Plan:      o.Plan,
		Schedule:  schedule,
		UnitPrice: price,
		Seats:     o.Seats,
		Cycle:     schedule.CycleAt(o.On),
	}
	// S-2: a technician occupies a seat from creation; the first admin is
	// one of the initial seats, which count as paid (api.md: creating an
	// account charges nothing).
	admin := Seat{AccountID: o.AccountID, TechnicianID: o.AdminTechnicianID, Status: SeatOccupied}
	return sub, admin, nil
}
