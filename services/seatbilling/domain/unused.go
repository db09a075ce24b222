package domain

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Bounds of the unused-seat report's window (S-7), in days.
const (
	DefaultInactiveDays = 30
	MaxInactiveDays     = 3650
)

// ErrInvalidInactiveDays: a report window outside 1…MaxInactiveDays.
var ErrInvalidInactiveDays = errors.New("invalid inactive days")

// SeatHolder is a technician occupying one of the subscription's seats,
// with what seatbilling heard of their logins (I-11).
type SeatHolder struct {
	TechnicianID string
	// Since is when they took the seat (created or enabled).
	Since time.Time
	// FirstLoginAt and LastLoginAt are zero when no login was ever heard.
	FirstLoginAt, LastLoginAt time.Time
	// RemovalPending: the seat leaves at cycle end (S-5).
	RemovalPending bool
}

// Unused reasons (S-7).
const (
	// UnusedInactive: active, no login within the window.
	UnusedInactive = "inactive"
	// UnusedNeverLoggedIn: invited, never logged in.
	UnusedNeverLoggedIn = "never_logged_in"
)

// UnusedSeat is one line of the unused-seat report.
type UnusedSeat struct {
	TechnicianID string
	// Status is active (they logged in at least once) or invited.
	Status, Reason string
	Since          time.Time
	// LastLoginAt is zero for a technician who never logged in.
	LastLoginAt time.Time
	// MonthlyCost is what the seat costs per month (S-1's unit price: the
	// monthly price, or the annual-billing monthly price).
	MonthlyCost Money
}

// UnusedReport is S-7's unused-seat report.
type UnusedReport struct {
	InactiveDays int
	// Cutoff is now less the window: a last login before it is idle.
	Cutoff time.Time
	Seats  []UnusedSeat
	// Total is the monthly cost of every listed seat.
	Total Money
}

// UnusedSeats is S-7's report on day now over the last inactiveDays days:
// the seat holders who are active but have not logged in since the cutoff,
// and the invited ones who never logged in, each costing the unit price per
// month. Seats already pending removal (S-5) are left out: they leave at
// cycle end anyway. The most idle come first: never logged in, then by last
// login, then by technician id.
func (s Subscription) UnusedSeats(holders []SeatHolder, now time.Time, inactiveDays int) (UnusedReport, error) {
	if inactiveDays < 1 || inactiveDays > MaxInactiveDays {
		return UnusedReport{}, fmt.Errorf("%w: %d (from 1 to %d)", ErrInvalidInactiveDays, inactiveDays, MaxInactiveDays)
	}
	r := UnusedReport{
		InactiveDays: inactiveDays,
		Cutoff:       now.UTC().Add(-time.Duration(inactiveDays) * 24 * time.Hour),
		Seats:        []UnusedSeat{},
		Total:        Money{Currency: s.UnitPrice.Currency},
	}
	for _, h := range holders {
		if h.RemovalPending {
			continue
		}
		u := UnusedSeat{TechnicianID: h.TechnicianID, Since: h.Since, LastLoginAt: h.LastLoginAt, MonthlyCost: s.UnitPrice}
		switch {
		case h.FirstLoginAt.IsZero() && h.LastLoginAt.IsZero():
			u.Status, u.Reason = "invited", UnusedNeverLoggedIn
		case h.LastLoginAt.Before(r.Cutoff):
			u.Status, u.Reason = "active", UnusedInactive
		default:
			continue
		}
		if r.Total.Amount > math.MaxInt64-u.MonthlyCost.Amount {
			return UnusedReport{}, fmt.Errorf("%w: total of the unused seats", ErrAmountOverflow)
		}
		r.Total.Amount += u.MonthlyCost.Amount
		r.Seats = append(r.Seats, u)
	}
	slices.SortFunc(r.Seats, func(a, b UnusedSeat) int {
		return cmp.Or(a.LastLoginAt.Compare(b.LastLoginAt), strings.Compare(a.TechnicianID, b.TechnicianID))
	})
	return r, nil
}
