package app

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"roster.dev/pkg/profile"
	commonv1 "roster.dev/proto/roster/common/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/domain"
)

// OpenSubscription opens a new account's subscription (identity's
// AccountCreated).
type OpenSubscription struct {
	AccountID     string
	Profile       string
	Plan          string
	BillingPeriod string
	Seats         int
	// PricePerSeat is set for custom plans (S-1).
	PricePerSeat      domain.Money
	BillingAnchor     string
	AdminTechnicianID string
	// CreatedAt is when the account was created; the current cycle is the
	// one holding that day. Zero means now.
	CreatedAt time.Time
}

// SubscriptionWriter stores what OpenSubscription creates, within tx.
// Each insert reports false, changing nothing, when the row exists.
type SubscriptionWriter interface {
	InsertSubscription(ctx context.Context, tx *sql.Tx, sub domain.Subscription, at time.Time) (bool, error)
	InsertSeat(ctx context.Context, tx *sql.Tx, seat domain.Seat, at time.Time) (bool, error)
}

// OpenSubscriptionHandler handles OpenSubscription.
type OpenSubscriptionHandler struct {
	store  SubscriptionWriter
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle opens the subscription, seats the first admin, and emits
// SubscriptionCreated and SeatAssigned, all within tx. An account that
// already has a subscription is left as it is: the inbox drops a redelivered
// event, and this covers the same account announced by another event.
func (h OpenSubscriptionHandler) Handle(ctx context.Context, tx *sql.Tx, cmd OpenSubscription) error {
	prof, err := profile.Get(cmd.Profile)
	if err != nil {
		return fmt.Errorf("open subscription of %s: %w: %w", cmd.AccountID, domain.ErrInvalidSubscription, err)
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	createdAt := cmd.CreatedAt
	if createdAt.IsZero() {
		createdAt = now
	}
	sub, adminSeat, err := domain.Open(domain.Opening{
		AccountID:         cmd.AccountID,
		Profile:           prof.ID,
		Plans:             prof.SeatBilling.Plans,
		Currency:          prof.Currency,
		Plan:              cmd.Plan,
		Period:            cmd.BillingPeriod,
		Seats:             cmd.Seats,
		AccountPrice:      cmd.PricePerSeat,
		Anchor:            cmd.BillingAnchor,
		AdminTechnicianID: cmd.AdminTechnicianID,
		On:                createdAt,
	})
	if err != nil {
		return fmt.Errorf("open subscription of %s: %w", cmd.AccountID, err)
	}

	created, err := h.store.InsertSubscription(ctx, tx, sub, now)
	if err != nil {
		return fmt.Errorf("open subscription: %w", err)
	}
	if !created {
		h.log.InfoContext(ctx, "subscription already open; AccountCreated ignored", "account_id", cmd.AccountID)
		return nil
	}
	if _, err := h.store.InsertSeat(ctx, tx, adminSeat, now); err != nil {
		return fmt.Errorf("open subscription: seat the first admin: %w", err)
	}
	err = h.events.Emit(ctx, tx, sub.AccountID,
		&seatbillingv1.SubscriptionCreated{
			Meta:          meta(now),
			Plan:          sub.Plan,
			BillingPeriod: string(sub.Schedule.Period()),
			Seats:         int32(sub.Seats),
			UnitPrice:     &commonv1.Money{Amount: sub.UnitPrice.Amount, Currency: sub.UnitPrice.Currency},
			CycleStart:    domain.FormatDate(sub.Cycle.Start),
			CycleEnd:      domain.FormatDate(sub.Cycle.End),
		},
		// S-2: the first admin occupies one of the initial seats; no
		// reservation precedes it.
		&seatbillingv1.SeatAssigned{Meta: meta(now), TechnicianId: adminSeat.TechnicianID},
	)
	if err != nil {
		return fmt.Errorf("open subscription of %s: emit: %w", sub.AccountID, err)
	}
	return nil
}
