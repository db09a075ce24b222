package domain

import "time"

// ChargeReason says why a charge was recorded (api.md Charge.reason).
type ChargeReason string

const (
	// ChargeSeatPurchase: a seat bought mid-cycle, prorated (S-3).
	ChargeSeatPurchase ChargeReason = "seat_purchase"
	// ChargeRenewal: seats × unit at the end of a cycle (S-10).
	ChargeRenewal ChargeReason = "renewal"
	// ChargeAddOn: an add-on billed apart from seats (S-9).
	ChargeAddOn ChargeReason = "add_on"
)

// Charge is one line of an account's charges ledger.
type Charge struct {
	// ID is chg_… (api.md).
	ID        string
	AccountID string
	Amount    Money
	Reason    ChargeReason
	// TechnicianID is the technician a seat purchase seated; empty for
	// charges that belong to no technician.
	TechnicianID string
	// ReservationID is the reservation a seat purchase confirmed: one
	// charge per reservation, whatever is redelivered.
	ReservationID string
	CreatedAt     time.Time
}

// SeatPurchase is the charge of confirming purchase reservation r for
// technicianID (S-3): the amount quoted when r was made.
func SeatPurchase(id string, r Reservation, technicianID string, at time.Time) Charge {
	return Charge{
		ID: id, AccountID: r.AccountID, Amount: r.Amount, Reason: ChargeSeatPurchase,
		TechnicianID: technicianID, ReservationID: r.ID, CreatedAt: at,
	}
}

// RenewalCharge is the ledger line of renewal r (S-10): seats × unit for
// the cycle that starts, of no technician and no reservation.
func RenewalCharge(id, accountID string, r Renewal, at time.Time) Charge {
	return Charge{ID: id, AccountID: accountID, Amount: r.Amount, Reason: ChargeRenewal, CreatedAt: at}
}
