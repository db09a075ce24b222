package app

import (
	"context"
	"fmt"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// MaxQuoteSeats bounds POST …/subscription/quote: more seats than anyone
// buys at once, few enough that no price overflows.
const MaxQuoteSeats = 10000

// QuoteSeatsHandler answers the price of adding seats now (S-3).
type QuoteSeatsHandler struct {
	store SubscriptionReader
	now   func() time.Time
}

// Handle returns the prorated price of seats more seats today; errors wrap
// domain.ErrNotFound for an unknown account and domain.ErrInvalidQuantity
// for fewer than one seat.
func (h QuoteSeatsHandler) Handle(ctx context.Context, accountID string, seats int) (domain.Quote, error) {
	if seats < 1 || seats > MaxQuoteSeats {
		return domain.Quote{}, fmt.Errorf("%w: %d (from 1 to %d)", domain.ErrInvalidQuantity, seats, MaxQuoteSeats)
	}
	sub, _, err := h.store.Subscription(ctx, accountID)
	if err != nil {
		return domain.Quote{}, fmt.Errorf("quote seats: %w", err)
	}
	q, err := sub.QuoteSeats(h.now(), seats)
	if err != nil {
		return domain.Quote{}, fmt.Errorf("quote %d seats of %s: %w", seats, accountID, err)
	}
	return q, nil
}
