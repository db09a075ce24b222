package app

import (
	"context"
	"database/sql"
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
}

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
// (S-5). A technician who occupies no seat changes nothing.
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
		h.log.InfoContext(ctx, "technician occupies no seat; nothing to release", "account_id", cmd.AccountID, "technician_id", cmd.TechnicianID)
		return nil
	}
	err = h.events.Emit(ctx, tx, cmd.AccountID, &seatbillingv1.SeatReleased{Meta: meta(now), TechnicianId: cmd.TechnicianID, Reason: ReleaseReasonDisabled})
	if err != nil {
		return fmt.Errorf("release seat of %s: emit: %w", cmd.TechnicianID, err)
	}
	return nil
}
