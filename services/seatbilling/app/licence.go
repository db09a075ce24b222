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

// ScheduleLicenceRemoval asks to remove a technician's seat at the end of
// the current cycle (S-5; identity's POST …/licence-removal).
type ScheduleLicenceRemoval struct {
	AccountID    string
	TechnicianID string
}

// LicenceRemovalResult is ScheduleLicenceRemoval's answer; RemovalDate (the
// cycle's last day) is set unless the technician occupies no seat.
type LicenceRemovalResult struct {
	Outcome     domain.RemovalOutcome
	RemovalDate time.Time
}

// LicenceRemovalStore is what ScheduleLicenceRemoval needs from storage.
type LicenceRemovalStore interface {
	Tx
	LockSubscription(ctx context.Context, tx *sql.Tx, accountID string) (domain.Subscription, error)
	Seat(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (domain.Seat, bool, error)
	MarkRemoval(ctx context.Context, tx *sql.Tx, accountID, technicianID string, date, at time.Time) error
}

// ScheduleLicenceRemovalHandler handles ScheduleLicenceRemoval.
type ScheduleLicenceRemovalHandler struct {
	store  LicenceRemovalStore
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle marks the technician's occupied seat for removal at the end of
// the cycle that holds today and emits LicenceRemovalScheduled, in one
// transaction under the account's lock (domain.Subscription.ScheduleRemoval).
// The seat stays occupied, so it is not free for reuse and the technician
// keeps access until the cycle ends (S-5). Asked again, it answers
// already_scheduled with the same date and writes nothing. It returns an
// error wrapping domain.ErrNotFound for an unknown account and
// domain.ErrMissingField for a request without ids.
func (h ScheduleLicenceRemovalHandler) Handle(ctx context.Context, cmd ScheduleLicenceRemoval) (LicenceRemovalResult, error) {
	if cmd.AccountID == "" || cmd.TechnicianID == "" {
		return LicenceRemovalResult{}, fmt.Errorf("schedule a licence removal: %w: account_id and technician_id are required", domain.ErrMissingField)
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	var res LicenceRemovalResult
	err := h.store.InTx(ctx, func(tx *sql.Tx) error {
		sub, err := h.store.LockSubscription(ctx, tx, cmd.AccountID)
		if err != nil {
			return err
		}
		seat, found, err := h.store.Seat(ctx, tx, cmd.AccountID, cmd.TechnicianID)
		if err != nil {
			return err
		}
		res.Outcome, res.RemovalDate = sub.ScheduleRemoval(seat, found, now)
		if res.Outcome != domain.RemovalScheduled {
			return nil
		}
		if err := h.store.MarkRemoval(ctx, tx, cmd.AccountID, cmd.TechnicianID, res.RemovalDate, now); err != nil {
			return err
		}
		return h.events.Emit(ctx, tx, cmd.AccountID, &seatbillingv1.LicenceRemovalScheduled{
			Meta: meta(now), TechnicianId: cmd.TechnicianID, RemovalDate: domain.FormatDate(res.RemovalDate),
		})
	})
	if err != nil {
		return LicenceRemovalResult{}, fmt.Errorf("schedule the licence removal of %s in %s: %w", cmd.TechnicianID, cmd.AccountID, err)
	}
	h.log.DebugContext(ctx, "licence removal", "account_id", cmd.AccountID, "technician_id", cmd.TechnicianID, "outcome", res.Outcome)
	return res, nil
}
