package app

import (
	"context"
	"fmt"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// SeatHolderReader lists the technicians occupying an account's seats,
// with their logins.
type SeatHolderReader interface {
	SubscriptionReader
	SeatHolders(ctx context.Context, accountID string) ([]domain.SeatHolder, error)
}

// UnusedSeatsHandler answers S-7's unused-seat report.
type UnusedSeatsHandler struct {
	store SeatHolderReader
	now   func() time.Time
}

// Handle reports, as of the clock's now, the account's seats held by
// active technicians with no login in inactiveDays days and by invited
// ones who never logged in (domain.Subscription.UnusedSeats). Errors wrap
// domain.ErrNotFound and domain.ErrInvalidInactiveDays.
func (h UnusedSeatsHandler) Handle(ctx context.Context, accountID string, inactiveDays int) (domain.UnusedReport, error) {
	sub, _, err := h.store.Subscription(ctx, accountID)
	if err != nil {
		return domain.UnusedReport{}, fmt.Errorf("unused seats: %w", err)
	}
	holders, err := h.store.SeatHolders(ctx, accountID)
	if err != nil {
		return domain.UnusedReport{}, err
	}
	r, err := sub.UnusedSeats(holders, h.now().UTC().Truncate(time.Microsecond), inactiveDays)
	if err != nil {
		return domain.UnusedReport{}, fmt.Errorf("unused seats of %s: %w", accountID, err)
	}
	return r, nil
}
