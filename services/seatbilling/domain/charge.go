package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

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
	// ID is chg_… (api.md), derived from what caused the charge (ChargeID).
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
	// AddOnID is the add-on an add_on charge bills (S-9); empty otherwise.
	AddOnID   string
	CreatedAt time.Time
}

// ChargeID is the id of the charge that the cause parts name: chg_ and 32
// hex digits of SHA-256 over the account and the parts. Ids are derived,
// never minted from a random source or a clock, so that applying the same
// cause again — a redelivery, or the service's inputs replayed into an
// empty database — yields the same ledger, ids included:
//   - a seat purchase: its reservation (one charge per reservation, S-3);
//   - a renewal: the cycle it closed (one per cycle, S-10);
//   - an add-on: the add-on and the cycle it closed (S-9).
func ChargeID(accountID string, parts ...string) string {
	sum := sha256.Sum256([]byte(accountID + "\x00" + strings.Join(parts, "\x00")))
	return "chg_" + hex.EncodeToString(sum[:16])
}

// SeatPurchase is the charge of confirming purchase reservation r for
// technicianID (S-3): the amount quoted when r was made.
func SeatPurchase(r Reservation, technicianID string, at time.Time) Charge {
	return Charge{
		ID: ChargeID(r.AccountID, string(ChargeSeatPurchase), r.ID), AccountID: r.AccountID,
		Amount: r.Amount, Reason: ChargeSeatPurchase,
		TechnicianID: technicianID, ReservationID: r.ID, CreatedAt: at,
	}
}

// RenewalCharge is the ledger line of renewal r (S-10): seats × unit for
// the cycle that starts, of no technician and no reservation.
func RenewalCharge(accountID string, r Renewal, at time.Time) Charge {
	return Charge{
		ID: ChargeID(accountID, string(ChargeRenewal), FormatDate(r.Closed.Start)), AccountID: accountID,
		Amount: r.Amount, Reason: ChargeRenewal, CreatedAt: at,
	}
}

// AddOnRenewalCharge is the ledger line of add-on a at renewal r (S-9):
// the add-on's price of one cycle (Subscription.AddOnCycleAmount) for the
// cycle that starts.
func AddOnRenewalCharge(accountID string, a AddOn, amount Money, r Renewal, at time.Time) Charge {
	return Charge{
		ID: ChargeID(accountID, string(ChargeAddOn), a.ID, FormatDate(r.Closed.Start)), AccountID: accountID,
		Amount: amount, Reason: ChargeAddOn, AddOnID: a.ID, CreatedAt: at,
	}
}
