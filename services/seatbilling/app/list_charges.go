package app

import (
	"context"
	"fmt"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// Limits of list pages (api.md, "Lists").
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// ListCharges asks for a page of an account's charges ledger, oldest first.
type ListCharges struct {
	AccountID string
	Limit     int
	// After is where the previous page ended; zero for the first page.
	After ChargeKey
}

// ChargeKey is a charge's place in the ledger: by time, then id.
type ChargeKey struct {
	CreatedAt time.Time
	ID        string
}

// ChargesPage is one page; Next is zero on the last page.
type ChargesPage struct {
	Charges []domain.Charge
	Next    ChargeKey
}

// ChargeReader reads the charges ledger.
type ChargeReader interface {
	HasSubscription(ctx context.Context, accountID string) (bool, error)
	Charges(ctx context.Context, accountID string, afterAt time.Time, afterID string, limit int) ([]domain.Charge, error)
}

// ListChargesHandler handles ListCharges.
type ListChargesHandler struct {
	store ChargeReader
}

// Handle returns one page of charges in ledger order (created_at, id):
// charges recorded later land on later pages, so paging to the end misses
// none. An unknown account is domain.ErrNotFound.
func (h ListChargesHandler) Handle(ctx context.Context, q ListCharges) (ChargesPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	ok, err := h.store.HasSubscription(ctx, q.AccountID)
	if err != nil {
		return ChargesPage{}, err
	}
	if !ok {
		return ChargesPage{}, fmt.Errorf("account %s: %w", q.AccountID, domain.ErrNotFound)
	}
	charges, err := h.store.Charges(ctx, q.AccountID, q.After.CreatedAt, q.After.ID, limit+1)
	if err != nil {
		return ChargesPage{}, err
	}
	page := ChargesPage{Charges: charges}
	if len(charges) > limit {
		page.Charges = charges[:limit]
		last := page.Charges[limit-1]
		page.Next = ChargeKey{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}
