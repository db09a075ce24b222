package domain

import (
	"fmt"
	"time"
)

// DefaultReservationTTL is how long a reservation holds a seat when nobody
// confirms it (flows.md: "Reservations expire after a short TTL unless
// confirmed").
const DefaultReservationTTL = 2 * time.Minute

// Outcome is what ReserveSeat answers (flows.md, "Add a technician").
type Outcome string

const (
	// OutcomeReserved: a free seat is held for the caller.
	OutcomeReserved Outcome = "reserved"
	// OutcomePurchaseReserved: every seat is taken and the caller confirmed
	// the purchase; one more seat is held, bought only on confirmation (S-3).
	OutcomePurchaseReserved Outcome = "purchase_reserved"
	// OutcomeQuote: every seat is taken and the caller did not confirm a
	// purchase; the answer is the price of one more seat (S-3).
	OutcomeQuote Outcome = "quote"
)

// ReservationStatus is where a reservation is in its life.
type ReservationStatus string

const (
	// ReservationHeld: waiting for TechnicianCreated or TechnicianEnabled;
	// holds its seat until ExpiresAt.
	ReservationHeld ReservationStatus = "held"
	// ReservationConfirmed: it became TechnicianID's occupied seat.
	ReservationConfirmed ReservationStatus = "confirmed"
)

// Reservation is a seat held for a technician that identity is about to
// create or enable (S-3, S-6). Its id is chosen by identity and travels on
// TechnicianCreated / TechnicianEnabled.
type Reservation struct {
	AccountID string
	ID        string
	// Purchase is true when no seat was free and the caller confirmed
	// buying one: the seat is added, and Amount charged, only when the
	// reservation is confirmed (S-6: no charge without confirmation).
	Purchase bool
	// Amount is the prorated price of the seat (S-3) at reservation time;
	// zero unless Purchase.
	Amount       Money
	Status       ReservationStatus
	TechnicianID string
	ExpiresAt    time.Time
}

// Outcome is what a reservation answered when it was made; the same
// reservation asked again answers the same.
func (r Reservation) Outcome() Outcome {
	if r.Purchase {
		return OutcomePurchaseReserved
	}
	return OutcomeReserved
}

// Live reports whether r is still held at now: not confirmed and not
// expired.
func (r Reservation) Live(now time.Time) bool {
	return r.Status == ReservationHeld && now.Before(r.ExpiresAt)
}

// HoldsSeat reports whether r keeps one of the subscription's existing
// seats from everyone else at now (S-6). A purchase reservation does not:
// it brings a seat of its own when confirmed.
func (r Reservation) HoldsSeat(now time.Time) bool { return !r.Purchase && r.Live(now) }

// Occupancy is the state of an account's seats at one moment, read under
// the account's lock.
type Occupancy struct {
	// Total is the seats paid for; Occupied those technicians hold; Held
	// the live reservations that are not purchases (HoldsSeat).
	Total, Occupied, Held int
	// Leaving counts the seats pending removal at cycle end whose
	// technician was disabled meanwhile (released): S-5, such a seat is not
	// free for reuse, since it leaves the subscription at cycle end. (A seat
	// pending removal whose technician still works is among Occupied.)
	Leaving int
}

// Free counts the seats nobody occupies, holds or is about to remove;
// negative when the account is overallocated.
func (o Occupancy) Free() int { return o.Total - o.Occupied - o.Held - o.Leaving }

// Reserve decides what a new reservation gets (S-3, S-6): a free seat when
// there is one, whatever the caller confirmed; otherwise a purchase when
// the caller confirmed it, and a quote when not.
func Reserve(o Occupancy, confirmPurchase bool) Outcome {
	switch {
	case o.Free() > 0:
		return OutcomeReserved
	case confirmPurchase:
		return OutcomePurchaseReserved
	default:
		return OutcomeQuote
	}
}

// NewReservation is the reservation that outcome (reserved or
// purchase_reserved) writes, held until now+ttl; amount is the prorated
// price of the seat, kept for a purchase only.
func NewReservation(accountID, id string, outcome Outcome, amount Money, now time.Time, ttl time.Duration) (Reservation, error) {
	if accountID == "" || id == "" {
		return Reservation{}, fmt.Errorf("%w: account id and reservation id are required", ErrInvalidReservation)
	}
	r := Reservation{AccountID: accountID, ID: id, Status: ReservationHeld, ExpiresAt: now.Add(ttl)}
	switch outcome {
	case OutcomeReserved:
	case OutcomePurchaseReserved:
		r.Purchase, r.Amount = true, amount
	default:
		return Reservation{}, fmt.Errorf("%w: outcome %q writes no reservation", ErrInvalidReservation, outcome)
	}
	return r, nil
}

// Settlement is what confirming a reservation does to the subscription.
type Settlement string

const (
	// SettleAssign: the technician occupies the seat the reservation held,
	// or a seat that is free now.
	SettleAssign Settlement = "assign"
	// SettleBuy: one seat is added to the total and the reservation's
	// amount charged (S-3), and the technician occupies it.
	SettleBuy Settlement = "buy"
	// SettleOverallocate: no seat is free, and the technician occupies one
	// anyway; the overallocation is recorded for someone to resolve.
	SettleOverallocate Settlement = "overallocate"
)

// Settle decides how a technician that identity created or enabled with
// reservation r (found false when seatbilling has no such held
// reservation: unknown, expired and cleaned up, or already used by another
// technician) takes a seat, given the account's occupancy o at now, where o
// counts r among the held reservations while r holds a seat.
//
//   - A live reservation that is not a purchase takes the seat it held.
//   - A purchase reservation buys its seat, expired or not: the caller
//     confirmed the purchase, and the reservation brought the seat of its
//     own, so a seat freed meanwhile stays free for others.
//   - Otherwise (expired, unknown) a free seat is taken when there is one.
//   - With no seat free, the technician occupies one anyway. By now identity
//     has committed the technician (the event is a fact), so refusing the
//     seat would hide a working technician from billing; instead the
//     overallocation is recorded and logged, visibly, for an operator to
//     resolve by buying a seat or disabling someone. S-6 holds for every
//     addition that follows the protocol; this covers only a confirmation
//     that arrives after its reservation expired and its seat was taken.
func Settle(r Reservation, found bool, o Occupancy, now time.Time) Settlement {
	if found && r.Status == ReservationHeld {
		if r.Purchase {
			return SettleBuy
		}
		if r.Live(now) {
			return SettleAssign
		}
	}
	if o.Free() > 0 {
		return SettleAssign
	}
	return SettleOverallocate
}
