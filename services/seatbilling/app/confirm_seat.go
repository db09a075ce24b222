package app

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/profile"
	commonv1 "roster.dev/proto/roster/common/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/domain"
)

// ConfirmSeat seats a technician that identity created or enabled with a
// reservation (TechnicianCreated, TechnicianEnabled).
type ConfirmSeat struct {
	AccountID     string
	TechnicianID  string
	ReservationID string
	// OnCreation: identity created the technician (TechnicianCreated).
	// Where the profile seats users on acceptance (S-2, atlan), creation
	// takes no seat: InvitationAccepted does.
	OnCreation bool
}

// SeatConfirmer is what ConfirmSeat needs from storage, within the
// consumer's transaction.
type SeatConfirmer interface {
	SeatLocker
	SeatStatus(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (domain.SeatStatus, bool, error)
	ConfirmReservation(ctx context.Context, tx *sql.Tx, accountID, id, technicianID string, at time.Time) error
	OccupySeat(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time) error
	AddSeat(ctx context.Context, tx *sql.Tx, accountID string, at time.Time) error
	InsertCharge(ctx context.Context, tx *sql.Tx, c domain.Charge) (bool, error)
	InsertOverallocation(ctx context.Context, tx *sql.Tx, accountID, technicianID, reservationID string, o domain.Occupancy, at time.Time) error
}

// ConfirmSeatHandler handles ConfirmSeat.
type ConfirmSeatHandler struct {
	store  SeatConfirmer
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle makes the reservation the technician's occupied seat, within tx
// and under the account's lock, and emits SeatAssigned; a purchase
// reservation also adds one seat to the total and records its charge at
// the price quoted when it was made, emitting SeatPurchased and
// ChargeRecorded (S-3). How a late, unknown or seatless confirmation is
// settled is domain.Settle's doc: the technician is never left without a
// seat, and an overallocation is recorded and logged as an error.
//
// A technician who already occupies a seat changes nothing, so a
// confirmation delivered twice (under two event ids) seats and charges
// once; the charge insert is also unique per reservation.
func (h ConfirmSeatHandler) Handle(ctx context.Context, tx *sql.Tx, cmd ConfirmSeat) error {
	if cmd.AccountID == "" || cmd.TechnicianID == "" {
		return fmt.Errorf("confirm seat: %w: account id and technician id are required", domain.ErrMissingField)
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	log := h.log.With("account_id", cmd.AccountID, "technician_id", cmd.TechnicianID, "reservation_id", cmd.ReservationID)

	// An unknown account is an error, so that the event is retried: the
	// account's AccountCreated may not be applied yet.
	sub, err := h.store.LockSubscription(ctx, tx, cmd.AccountID)
	if err != nil {
		return fmt.Errorf("confirm seat of %s: %w", cmd.TechnicianID, err)
	}
	if cmd.OnCreation {
		prof, err := profile.Get(sub.Profile)
		if err != nil {
			return fmt.Errorf("confirm seat of %s: %w", cmd.TechnicianID, err)
		}
		if prof.SeatBilling.SeatFromAcceptance() {
			log.InfoContext(ctx, "a pending invitee takes no seat until accepting (S-2)")
			return nil
		}
	}
	status, seated, err := h.store.SeatStatus(ctx, tx, cmd.AccountID, cmd.TechnicianID)
	if err != nil {
		return err
	}
	if seated && status == domain.SeatOccupied {
		log.InfoContext(ctx, "technician already occupies a seat; confirmation ignored")
		return nil
	}
	var (
		r     domain.Reservation
		found bool
	)
	if cmd.ReservationID != "" {
		if r, found, err = h.store.Reservation(ctx, tx, cmd.AccountID, cmd.ReservationID); err != nil {
			return err
		}
		if found && r.Status == domain.ReservationConfirmed {
			// Used by another technician (this one holds no seat): identity
			// reused an id. Settle it as having no reservation.
			log.WarnContext(ctx, "reservation already confirmed for another technician", "confirmed_for", r.TechnicianID)
		}
	}
	occ, err := h.store.Occupancy(ctx, tx, sub, now)
	if err != nil {
		return err
	}
	settlement := domain.Settle(r, found, occ, now)

	if found && r.Status == domain.ReservationHeld {
		if err := h.store.ConfirmReservation(ctx, tx, cmd.AccountID, r.ID, cmd.TechnicianID, now); err != nil {
			return err
		}
	}
	if err := h.store.OccupySeat(ctx, tx, cmd.AccountID, cmd.TechnicianID, now); err != nil {
		return err
	}
	var events []eventbus.Event
	switch settlement {
	case domain.SettleBuy:
		charge := domain.SeatPurchase(r, cmd.TechnicianID, now)
		charged, err := h.store.InsertCharge(ctx, tx, charge)
		if err != nil {
			return err
		}
		if !charged {
			// Cannot happen while the reservation was held; kept safe anyway.
			log.WarnContext(ctx, "reservation already charged; no second seat bought")
			break
		}
		if err := h.store.AddSeat(ctx, tx, cmd.AccountID, now); err != nil {
			return err
		}
		events = append(events,
			&seatbillingv1.SeatPurchased{Meta: meta(now), TechnicianId: cmd.TechnicianID, ReservationId: r.ID, SeatsTotal: int32(sub.Seats + 1)},
			&seatbillingv1.ChargeRecorded{
				Meta:         meta(now),
				ChargeId:     charge.ID,
				Amount:       &commonv1.Money{Amount: charge.Amount.Amount, Currency: charge.Amount.Currency},
				Reason:       string(charge.Reason),
				TechnicianId: cmd.TechnicianID,
			})
	case domain.SettleOverallocate:
		// domain.Settle: never lose the technician's seat silently.
		log.ErrorContext(ctx, "no free seat for a confirmed technician: seated anyway, account overallocated",
			"seats_total", occ.Total, "occupied", occ.Occupied+1, "held", occ.Held, "reservation_found", found)
		if err := h.store.InsertOverallocation(ctx, tx, cmd.AccountID, cmd.TechnicianID, cmd.ReservationID, occ, now); err != nil {
			return err
		}
	}
	events = append(events, &seatbillingv1.SeatAssigned{Meta: meta(now), TechnicianId: cmd.TechnicianID, ReservationId: cmd.ReservationID})
	if err := h.events.Emit(ctx, tx, cmd.AccountID, events...); err != nil {
		return fmt.Errorf("confirm seat of %s: emit: %w", cmd.TechnicianID, err)
	}
	return nil
}
