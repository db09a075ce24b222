package app

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	commonv1 "roster.dev/proto/roster/common/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/domain"
)

// SetAddOn puts an add-on on a subscription, or gives it a new price or
// quantity (S-9; PUT …/subscription/add-ons/{add_on}).
type SetAddOn struct {
	AccountID, AddOnID string
	// Price is per unit per month in minor units; Quantity at least 1.
	Price    int64
	Quantity int
}

// AddOnResult is what SetAddOn did: Created when the add-on was not on the
// subscription, Changed when anything was written.
type AddOnResult struct {
	AddOn            domain.AddOn
	Created, Changed bool
}

// AddOnStore is what the add-on use cases need from storage, within the
// caller's transaction.
type AddOnStore interface {
	LockSubscription(ctx context.Context, tx *sql.Tx, accountID string) (domain.Subscription, error)
	AddOns(ctx context.Context, tx *sql.Tx, accountID string) ([]domain.AddOn, error)
	UpsertAddOn(ctx context.Context, tx *sql.Tx, accountID string, a domain.AddOn, at time.Time) error
	DeleteAddOn(ctx context.Context, tx *sql.Tx, accountID, addOnID string) (bool, error)
}

// SetAddOnHandler handles SetAddOn.
type SetAddOnHandler struct {
	store  AddOnStore
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle sets the add-on within tx (the port's Idempotency-Key
// transaction), under the account's lock, and emits AddOnSet. Setting what
// is already there writes and emits nothing. The add-on is billed at every
// renewal from the end of the current cycle on (CloseCycles); the current
// cycle is neither charged nor refunded. Errors wrap domain.ErrNotFound,
// domain.ErrUnknownAddOn, domain.ErrInvalidAddOnPrice or
// domain.ErrInvalidAddOnQuantity.
func (h SetAddOnHandler) Handle(ctx context.Context, tx *sql.Tx, cmd SetAddOn) (AddOnResult, error) {
	now := h.now().UTC().Truncate(time.Microsecond)
	sub, err := h.store.LockSubscription(ctx, tx, cmd.AccountID)
	if err != nil {
		return AddOnResult{}, fmt.Errorf("set add-on: %w", err)
	}
	a, err := sub.NewAddOn(cmd.AddOnID, cmd.Price, cmd.Quantity)
	if err != nil {
		return AddOnResult{}, fmt.Errorf("set add-on of %s: %w", cmd.AccountID, err)
	}
	current, err := h.store.AddOns(ctx, tx, cmd.AccountID)
	if err != nil {
		return AddOnResult{}, err
	}
	res := AddOnResult{AddOn: a, Created: true, Changed: true}
	for _, c := range current {
		if c.ID == a.ID {
			res.Created = false
			res.Changed = c != a
		}
	}
	if !res.Changed {
		return res, nil
	}
	if err := h.store.UpsertAddOn(ctx, tx, cmd.AccountID, a, now); err != nil {
		return AddOnResult{}, err
	}
	err = h.events.Emit(ctx, tx, cmd.AccountID, &seatbillingv1.AddOnSet{
		Meta: meta(now), AddOnId: a.ID, Name: a.Name,
		Price:    &commonv1.Money{Amount: a.Price.Amount, Currency: a.Price.Currency},
		Quantity: int32(a.Quantity),
	})
	if err != nil {
		return AddOnResult{}, fmt.Errorf("set add-on %s of %s: emit: %w", a.ID, cmd.AccountID, err)
	}
	h.log.InfoContext(ctx, "add-on set", "account_id", cmd.AccountID, "add_on", a.ID, "price", a.Price.Amount, "quantity", a.Quantity)
	return res, nil
}

// RemoveAddOnHandler takes an add-on off a subscription (S-9; DELETE
// …/subscription/add-ons/{add_on}).
type RemoveAddOnHandler struct {
	store  AddOnStore
	events Emitter
	log    *slog.Logger
	now    func() time.Time
}

// Handle removes the add-on within tx, under the account's lock, and emits
// AddOnRemoved: renewals no longer charge it; what was charged stays.
// Errors wrap domain.ErrNotFound, domain.ErrUnknownAddOn, or
// domain.ErrAddOnNotOnSubscription when it is not there.
func (h RemoveAddOnHandler) Handle(ctx context.Context, tx *sql.Tx, accountID, addOnID string) error {
	now := h.now().UTC().Truncate(time.Microsecond)
	if _, err := h.store.LockSubscription(ctx, tx, accountID); err != nil {
		return fmt.Errorf("remove add-on: %w", err)
	}
	if _, ok := domain.AddOnName(addOnID); !ok {
		return fmt.Errorf("remove add-on of %s: %w: %q", accountID, domain.ErrUnknownAddOn, addOnID)
	}
	removed, err := h.store.DeleteAddOn(ctx, tx, accountID, addOnID)
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("remove add-on of %s: %w: %s", accountID, domain.ErrAddOnNotOnSubscription, addOnID)
	}
	if err := h.events.Emit(ctx, tx, accountID, &seatbillingv1.AddOnRemoved{Meta: meta(now), AddOnId: addOnID}); err != nil {
		return fmt.Errorf("remove add-on %s of %s: emit: %w", addOnID, accountID, err)
	}
	h.log.InfoContext(ctx, "add-on removed", "account_id", accountID, "add_on", addOnID)
	return nil
}
