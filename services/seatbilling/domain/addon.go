package domain

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Errors of add-ons (S-9).
var (
	// ErrUnknownAddOn: no add-on of that id exists.
	ErrUnknownAddOn = errors.New("unknown add-on")
	// ErrAddOnNotOnSubscription: the subscription has no such add-on.
	ErrAddOnNotOnSubscription = errors.New("add-on not on the subscription")
	// ErrInvalidAddOnPrice, ErrInvalidAddOnQuantity: out of range.
	ErrInvalidAddOnPrice    = errors.New("invalid add-on price")
	ErrInvalidAddOnQuantity = errors.New("invalid add-on quantity")
)

// Bounds of an add-on (S-9): high enough for any real price, low enough
// that 12 × price × quantity never overflows int64 cents.
const (
	MaxAddOnPrice    = 1_000_000_000_000 // 10 billion per unit per month
	MaxAddOnQuantity = 10_000
)

// addOnNames is S-9's catalog: the add-ons billed apart from seats. Prices
// are not here: each subscription carries its own.
var addOnNames = map[string]string{
	"ai_copilot":        "AI Copilot",
	"network_discovery": "Network Discovery",
}

// AddOnIDs lists the add-ons a subscription can carry, sorted.
func AddOnIDs() []string {
	ids := make([]string, 0, len(addOnNames))
	for id := range addOnNames {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// AddOn is an add-on on a subscription (S-9): billed apart from seats, at
// Price per unit per month for Quantity units.
type AddOn struct {
	ID, Name string
	// Price is per unit per month, in the subscription's currency.
	Price    Money
	Quantity int
}

// NewAddOn validates an add-on set on subscription s: a known id, a price
// from 0 to MaxAddOnPrice minor units per unit per month (0: included at
// no charge), a quantity from 1 to MaxAddOnQuantity. The currency is the
// subscription's.
func (s Subscription) NewAddOn(id string, price int64, quantity int) (AddOn, error) {
	name, ok := addOnNames[id]
	if !ok {
		return AddOn{}, fmt.Errorf("%w: %q (known: %s)", ErrUnknownAddOn, id, strings.Join(AddOnIDs(), ", "))
	}
	if price < 0 || price > MaxAddOnPrice {
		return AddOn{}, fmt.Errorf("%w: %d (from 0 to %d minor units per month)", ErrInvalidAddOnPrice, price, int64(MaxAddOnPrice))
	}
	if quantity < 1 || quantity > MaxAddOnQuantity {
		return AddOn{}, fmt.Errorf("%w: %d (from 1 to %d)", ErrInvalidAddOnQuantity, quantity, MaxAddOnQuantity)
	}
	return AddOn{ID: id, Name: name, Price: Money{Amount: price, Currency: s.UnitPrice.Currency}, Quantity: quantity}, nil
}

// AddOnName is the display name of a known add-on.
func AddOnName(id string) (string, bool) {
	name, ok := addOnNames[id]
	return name, ok
}

// AddOnCycleAmount is what add-on a costs for one whole cycle of s (S-9,
// priced like seats per S-3's unit): price × quantity for a monthly cycle,
// 12 × that for an annual one.
func (s Subscription) AddOnCycleAmount(a AddOn) (Money, error) {
	months := int64(1)
	if s.Schedule.Period() == Annual {
		months = 12
	}
	q := int64(a.Quantity)
	if a.Price.Amount < 0 || q < 0 || (q > 0 && a.Price.Amount > math.MaxInt64/q/months) {
		return Money{}, fmt.Errorf("%w: %d × %d × %d months", ErrAmountOverflow, a.Price.Amount, q, months)
	}
	return Money{Amount: a.Price.Amount * q * months, Currency: a.Price.Currency}, nil
}
