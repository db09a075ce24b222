package app

import (
	"context"
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
	// AddOns are billed apart from seats (S-9); none yet.
	AddOns []AddOn
}

// AddOn is an add-on on the subscription (S-9).
type AddOn struct {
	ID    string
	Name  string
	Price domain.Money
}

// GetSubscriptionHandler answers the subscription of an account.
type GetSubscriptionHandler struct {
	store SubscriptionReader
}

// Handle returns the account's subscription, or an error wrapping
// domain.ErrNotFound.
func (h GetSubscriptionHandler) Handle(ctx context.Context, accountID string) (SubscriptionView, error) {
	sub, seats, err := h.store.Subscription(ctx, accountID)
	if err != nil {
		return SubscriptionView{}, fmt.Errorf("get subscription: %w", err)
	}
	return SubscriptionView{
		Subscription:      sub,
		Seats:             domain.UsageOf(sub.Seats, seats.Occupied, seats.Leaving),
		PendingReductions: seats.Pending,
		AddOns:            []AddOn{},
	}, nil
}
