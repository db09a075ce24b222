package app

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/eventbus"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/domain"
)

// reservationRetention is how long an expired, unconfirmed reservation is
// kept before ReserveSeat deletes it: long enough for a confirmation held
// up in the bus (retries, a restart) to still find whether it was a
// purchase and at what price.
const reservationRetention = 7 * 24 * time.Hour

// ReserveSeat asks for a seat before identity creates or enables a
// technician (flows.md, "Add a technician").
type ReserveSeat struct {
	AccountID string
	// ReservationID is chosen by identity, unique; asking again with the
	// same id answers the same.
	ReservationID   string
	ConfirmPurchase bool
}

// ReserveSeatResult is ReserveSeat's answer; Quote is set for
// domain.OutcomeQuote.
type ReserveSeatResult struct {
	Outcome domain.Outcome
	Quote   domain.Quote
}

// Tx runs a function in one transaction (the service's store.DB).
type Tx interface {
	InTx(ctx context.Context, fn func(*sql.Tx) error) error
}

// SeatLocker reads an account's subscription and seats under the
// account's lock (S-6), within tx.
type SeatLocker interface {
	// LockSubscription returns domain.ErrNotFound for an unknown account.
	LockSubscription(ctx context.Context, tx *sql.Tx, accountID string) (domain.Subscription, error)
	Occupancy(ctx context.Context, tx *sql.Tx, sub domain.Subscription, now time.Time) (domain.Occupancy, error)
	Reservation(ctx context.Context, tx *sql.Tx, accountID, id string) (domain.Reservation, bool, error)
}

// ReservationStore is what ReserveSeat needs from storage.
type ReservationStore interface {
	Tx
	SeatLocker
	SaveReservation(ctx context.Context, tx *sql.Tx, r domain.Reservation, correlationID string, at time.Time) error
	PurgeReservations(ctx context.Context, tx *sql.Tx, accountID string, before time.Time) error
}

// ReserveSeatHandler handles ReserveSeat.
type ReserveSeatHandler struct {
	store  ReservationStore
	events Emitter
	log    *slog.Logger
	now    func() time.Time
	ttl    time.Duration
}

// Handle decides and records a reservation in one transaction, under the
// account's lock, so that concurrent requests never hold more seats than
// are free (S-6):
//   - a reservation already made with this id (held and not expired, or
//     confirmed) answers what it answered then, writing nothing;
//   - a free seat is held until now + TTL → reserved, SeatReserved;
//   - no free seat and no confirmation → the quote of one seat now (S-3),
//     nothing written;
//   - no free seat and a confirmation → a purchase reservation carrying
//     the prorated price, charged only when confirmed → purchase_reserved,
//     SeatReserved{purchase}.
//
// An expired reservation asked for again is decided afresh, as if new.
// It returns an error wrapping domain.ErrNotFound for an unknown account
// and domain.ErrInvalidReservation for a request without ids.
func (h ReserveSeatHandler) Handle(ctx context.Context, cmd ReserveSeat) (ReserveSeatResult, error) {
	if cmd.AccountID == "" || cmd.ReservationID == "" {
		return ReserveSeatResult{}, fmt.Errorf("reserve a seat: %w: account_id and reservation_id are required", domain.ErrInvalidReservation)
	}
	now := h.now().UTC().Truncate(time.Microsecond) // store.Time's precision
	var res ReserveSeatResult
	err := h.store.InTx(ctx, func(tx *sql.Tx) error {
		res = ReserveSeatResult{}
		sub, err := h.store.LockSubscription(ctx, tx, cmd.AccountID)
		if err != nil {
			return err
		}
		prev, found, err := h.store.Reservation(ctx, tx, cmd.AccountID, cmd.ReservationID)
		if err != nil {
			return err
		}
		if found && (prev.Status == domain.ReservationConfirmed || prev.Live(now)) {
			res.Outcome = prev.Outcome()
			return nil
		}
		occ, err := h.store.Occupancy(ctx, tx, sub, now)
		if err != nil {
			return err
		}
		res.Outcome = domain.Reserve(occ, cmd.ConfirmPurchase)
		var price domain.Money
		if res.Outcome != domain.OutcomeReserved {
			q, err := sub.QuoteSeats(now, 1)
			if err != nil {
				return err
			}
			if res.Outcome == domain.OutcomeQuote {
				res.Quote = q
				return nil // S-3: refused with a quote; nothing written
			}
			price = q.Amount
		}
		r, err := domain.NewReservation(cmd.AccountID, cmd.ReservationID, res.Outcome, price, now, h.ttl)
		if err != nil {
			return err
		}
		if err := h.store.PurgeReservations(ctx, tx, cmd.AccountID, now.Add(-reservationRetention)); err != nil {
			return err
		}
		if err := h.store.SaveReservation(ctx, tx, r, eventbus.CorrelationID(ctx), now); err != nil {
			return err
		}
		return h.events.Emit(ctx, tx, cmd.AccountID, &seatbillingv1.SeatReserved{
			Meta:          meta(now),
			ReservationId: r.ID,
			Purchase:      r.Purchase,
			ExpiresAt:     timestamppb.New(r.ExpiresAt),
		})
	})
	if err != nil {
		return ReserveSeatResult{}, fmt.Errorf("reserve seat %s of %s: %w", cmd.ReservationID, cmd.AccountID, err)
	}
	h.log.DebugContext(ctx, "seat reservation", "account_id", cmd.AccountID, "reservation_id", cmd.ReservationID, "outcome", res.Outcome)
	return res, nil
}
