package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/domain"
)

// ReleaseReasonDisabled is SeatReleased's reason when the technician was
// disabled (S-4).
const ReleaseReasonDisabled = "disabled"

// ReleaseSeat frees the seat of a technician that identity disabled
// (TechnicianDisabled).
type ReleaseSeat struct {
	AccountID    string
	TechnicianID string
}

// SeatReleaser is what ReleaseSeat needs from storage, within the
// consumer's transaction.
type SeatReleaser interface {
	LockSubscription(ctx context.Context, tx *sql.Tx, accountID string) (domain.Subscription, error)
	ReleaseSeat(ctx context.Context, tx *sql.Tx, accountID, technicianID string, at time.Time) (bool, error)
	SeatStatus(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (domain.SeatStatus, bool, error)
}

// ErrSeatNotYetAssigned: the technician disabled has never had a seat here,
// because the TechnicianCreated that seats it has not been applied yet. The
// event is retried until it has: applied now, it would change nothing, and
// the seat taken afterwards would stay with a disabled technician.
var ErrSeatNotYetAssigned = errors.New("no seat assigned yet")

// ReleaseSeatHandler handles ReleaseSeat.
type ReleaseSeatHandler struct {
	store  SeatReleaser
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle frees the technician's seat for reuse in the same cycle at no
// charge (S-4) and emits SeatReleased, within tx and under the account's
// lock. The total is unchanged: disabling never reduces the licence count
// (S-5). A technician whose seat is already released changes nothing; one
// with no seat yet is ErrSeatNotYetAssigned (retried).
func (h ReleaseSeatHandler) Handle(ctx context.Context, tx *sql.Tx, cmd ReleaseSeat) error {
	if cmd.AccountID == "" || cmd.TechnicianID == "" {
		return fmt.Errorf("release seat: %w: account id and technician id are required", domain.ErrMissingField)
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	if _, err := h.store.LockSubscription(ctx, tx, cmd.AccountID); err != nil {
		return fmt.Errorf("release seat of %s: %w", cmd.TechnicianID, err)
	}
	released, err := h.store.ReleaseSeat(ctx, tx, cmd.AccountID, cmd.TechnicianID, now)
	if err != nil {
		return err
	}
	if !released {
		// A crash reorders: after a consumer is killed holding
		// TechnicianCreated unacked, JetStream redelivers it only after
		// AckWait, while TechnicianDisabled reaches the restarted consumer
		// at once (found by the crash-consistency harness, issue 11).
		if _, found, err := h.store.SeatStatus(ctx, tx, cmd.AccountID, cmd.TechnicianID); err != nil {
			return err
		} else if !found {
			return fmt.Errorf("release seat of %s: %w; waiting for its TechnicianCreated", cmd.TechnicianID, ErrSeatNotYetAssigned)
		}
		h.log.InfoContext(ctx, "technician occupies no seat; nothing to release", "account_id", cmd.AccountID, "technician_id", cmd.TechnicianID)
		return nil
	}
	err = h.events.Emit(ctx, tx, cmd.AccountID, &seatbillingv1.SeatReleased{Meta: meta(now), TechnicianId: cmd.TechnicianID, Reason: ReleaseReasonDisabled})
	if err != nil {
		return fmt.Errorf("release seat of %s: emit: %w", cmd.TechnicianID, err)
	}
	return nil
}
