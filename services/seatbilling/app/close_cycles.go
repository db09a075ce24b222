package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"roster.dev/pkg/eventbus"
	commonv1 "roster.dev/proto/roster/common/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/domain"
)

// ReleaseReasonLicenceRemoved is SeatReleased's reason when a seat left the
// subscription at cycle end (S-5).
const ReleaseReasonLicenceRemoved = "licence_removed"

// CycleStore is what CloseCycles needs from storage.
type CycleStore interface {
	Tx
	LockSubscription(ctx context.Context, tx *sql.Tx, accountID string) (domain.Subscription, error)
	DueSubscriptions(ctx context.Context, today time.Time) ([]string, error)
	DueRemovals(ctx context.Context, tx *sql.Tx, accountID string, through time.Time) ([]domain.Seat, error)
	RemoveSeat(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time) error
	InsertRenewal(ctx context.Context, tx *sql.Tx, accountID string, r domain.Renewal, chargeID string, at time.Time) (bool, error)
	Renew(ctx context.Context, tx *sql.Tx, accountID string, r domain.Renewal, at time.Time) error
	InsertCharge(ctx context.Context, tx *sql.Tx, c domain.Charge) (bool, error)
	AddOns(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.AddOn, error)
}

// CloseCyclesHandler is the cycle-end scheduler's work (S-5, S-10).
type CloseCyclesHandler struct {
	store  CycleStore
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle closes every subscription's cycle that ended before today (the
// clock's UTC date) and returns how many cycles it closed. Each cycle is
// closed in one transaction under the account's lock (closeCycle); an
// account behind by several cycles (the service was down) has them closed
// one by one, each renewed and charged. One account's failure does not
// stop the others: the errors are returned together, and the next run
// tries again.
func (h CloseCyclesHandler) Handle(ctx context.Context) (int, error) {
	now := h.now().UTC().Truncate(time.Microsecond)
	due, err := h.store.DueSubscriptions(ctx, now)
	if err != nil {
		return 0, err
	}
	closed := 0
	var errs []error
	for _, accountID := range due {
		for {
			if err := ctx.Err(); err != nil {
				return closed, err
			}
			done, err := h.closeCycle(ctx, accountID, now)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if !done {
				break
			}
			closed++
		}
	}
	return closed, errors.Join(errs...)
}

// closeCycle closes the account's stored cycle if it ended before now's
// date, in one transaction under the account's lock, and reports whether
// it did:
//   - the seats pending removal at its end leave the subscription (S-5):
//     each is released (SeatReleased, reason licence_removed, when its
//     technician still occupied it) and LicenceExpired asks identity to
//     disable the technician;
//   - the seats left are charged for the next cycle, seats × the unit of
//     one cycle (S-10; ChargeRecorded, reason renewal);
//   - each add-on on the subscription is charged for the next cycle, its
//     price of one cycle (S-9; ChargeRecorded, reason add_on);
//   - the stored cycle and seat total move to the next cycle, and the
//     closed cycle is recorded in cycle_renewals; CycleClosed, first of the
//     transaction's events, announces it.
//
// Charge ids derive from the account, the closed cycle and the add-on
// (domain.ChargeID), and every row and event takes now as its time.
//
// Run again for the same cycle, it finds the stored cycle already moved on
// and does nothing: the lock and the re-read make concurrent schedulers
// (replicas) close each cycle once.
func (h CloseCyclesHandler) closeCycle(ctx context.Context, accountID string, now time.Time) (bool, error) {
	// Everything one closing emits shares a correlation id, and identity's
	// TechnicianDisabled inherits it; the actor is system (eventbus.ActorFrom).
	ctx = eventbus.WithCorrelation(ctx, eventbus.NewID())
	var r domain.Renewal
	var addOnCharges []domain.Charge
	done := false
	err := h.store.InTx(ctx, func(tx *sql.Tx) error {
		done, addOnCharges = false, nil
		sub, err := h.store.LockSubscription(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if !sub.CycleEnded(now) {
			return nil // closed meanwhile by another run
		}
		removals, err := h.store.DueRemovals(ctx, tx, accountID, sub.Cycle.End)
		if err != nil {
			return err
		}
		if r, err = sub.Renew(len(removals)); err != nil {
			return err
		}
		addOns, err := h.store.AddOns(ctx, tx, accountID)
		if err != nil {
			return err
		}
		for _, a := range addOns {
			amount, err := sub.AddOnCycleAmount(a)
			if err != nil {
				return fmt.Errorf("add-on %s: %w", a.ID, err)
			}
			if amount.Amount > 0 {
				addOnCharges = append(addOnCharges, domain.AddOnRenewalCharge(accountID, a, amount, r, now))
			}
		}
		var charge domain.Charge
		if r.Amount.Amount > 0 {
			charge = domain.RenewalCharge(accountID, r, now)
		}
		recorded, err := h.store.InsertRenewal(ctx, tx, accountID, r, charge.ID, now)
		if err != nil {
			return err
		}
		if !recorded {
			// The stored cycle says open, the ledger of closed cycles says
			// closed: never charge twice; leave it for someone to look at.
			return fmt.Errorf("cycle %s…%s of %s is recorded as closed but still stored as current",
				domain.FormatDate(r.Closed.Start), domain.FormatDate(r.Closed.End), accountID)
		}
		events := []eventbus.Event{&seatbillingv1.CycleClosed{
			Meta:        meta(now),
			ClosedStart: domain.FormatDate(r.Closed.Start), ClosedEnd: domain.FormatDate(r.Closed.End),
			NextStart: domain.FormatDate(r.Next.Start), NextEnd: domain.FormatDate(r.Next.End),
			SeatsRemoved: int32(r.Removed), Seats: int32(r.Seats),
		}}
		for _, seat := range removals {
			if err := h.store.RemoveSeat(ctx, tx, accountID, seat.TechnicianID, now); err != nil {
				return err
			}
			// A technician disabled while the removal was pending released
			// the seat then (S-4's SeatReleased); the count drops anyway.
			if seat.Status == domain.SeatOccupied {
				events = append(events, &seatbillingv1.SeatReleased{Meta: meta(now), TechnicianId: seat.TechnicianID, Reason: ReleaseReasonLicenceRemoved})
			}
			events = append(events, &seatbillingv1.LicenceExpired{Meta: meta(now), TechnicianId: seat.TechnicianID})
		}
		if err := h.store.Renew(ctx, tx, accountID, r, now); err != nil {
			return err
		}
		charges := addOnCharges
		if charge.ID != "" {
			charges = append([]domain.Charge{charge}, addOnCharges...)
		}
		for _, c := range charges {
			if _, err := h.store.InsertCharge(ctx, tx, c); err != nil {
				return err
			}
			events = append(events, &seatbillingv1.ChargeRecorded{
				Meta:     meta(now),
				ChargeId: c.ID,
				Amount:   &commonv1.Money{Amount: c.Amount.Amount, Currency: c.Amount.Currency},
				Reason:   string(c.Reason),
			})
		}
		done = true
		return h.events.Emit(ctx, tx, accountID, events...)
	})
	if err != nil {
		return false, fmt.Errorf("close the cycle of %s: %w", accountID, err)
	}
	if done {
		h.log.InfoContext(ctx, "cycle closed", "account_id", accountID,
			"cycle_end", domain.FormatDate(r.Closed.End), "seats_removed", r.Removed, "seats", r.Seats,
			"renewal", r.Amount.Amount, "add_on_charges", len(addOnCharges))
	}
	return done, nil
}
