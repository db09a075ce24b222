package app

import (
	"context"
	"database/sql"
	"fmt"

	"roster.dev/services/seatbilling/domain"
)

// SubscriptionReader reads a subscription with how its seats are taken;
// domain.ErrNotFound when the account has none.
type SubscriptionReader interface {
	Subscription(ctx context.Context, accountID string) (domain.Subscription, domain.SeatCount, error)
}

// SubscriptionView is the subscription as S-7 reports it.
type SubscriptionView struct {
	Subscription domain.Subscription
	Seats        domain.Usage
	// PendingReductions counts seats to remove at cycle end (S-5).
	PendingReductions int
	// AddOns are billed apart from seats (S-9), by id.
	AddOns []domain.AddOn
	// SeatsByRole counts the occupied seats of each of the profile's
	// separate seat roles (S-2, atlan: Guest); nil when it has none. They
	// are among Seats.Used: shown apart, paid alike.
	SeatsByRole map[string]int
}

// SubscriptionViewReader reads what GET subscription shows.
type SubscriptionViewReader interface {
	SubscriptionReader
	// AddOns reads the account's add-ons; tx nil reads outside a transaction.
	AddOns(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.AddOn, error)
	SeatRoleStore
}

// GetSubscriptionHandler answers the subscription of an account.
type GetSubscriptionHandler struct {
	store SubscriptionViewReader
}

// Handle returns the account's subscription, or an error wrapping
// domain.ErrNotFound.
func (h GetSubscriptionHandler) Handle(ctx context.Context, accountID string) (SubscriptionView, error) {
	sub, seats, err := h.store.Subscription(ctx, accountID)
	if err != nil {
		return SubscriptionView{}, fmt.Errorf("get subscription: %w", err)
	}
	addOns, err := h.store.AddOns(ctx, nil, accountID)
	if err != nil {
		return SubscriptionView{}, err
	}
	byRole, err := separateSeats(ctx, h.store, sub)
	if err != nil {
		return SubscriptionView{}, err
	}
	return SubscriptionView{
		SeatsByRole:       byRole,
		Subscription:      sub,
		Seats:             domain.UsageOf(sub.Seats, seats.Occupied, seats.Leaving),
		PendingReductions: seats.Pending,
		AddOns:            addOns,
	}, nil
}
