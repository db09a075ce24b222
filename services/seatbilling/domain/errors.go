package domain

import (
	"errors"
	"fmt"
)

// Errors of the seat-billing rules. ports/ maps them to problems.
var (
	// ErrNotFound: the account has no subscription.
	ErrNotFound = errors.New("subscription not found")

	// ErrInvalidSubscription is wrapped by every reason a subscription
	// cannot be opened as asked, so callers can test for any of them.
	ErrInvalidSubscription = errors.New("invalid subscription")

	ErrInvalidDate         = fmt.Errorf("%w: invalid date", ErrInvalidSubscription)
	ErrInvalidPeriod       = fmt.Errorf("%w: invalid billing period", ErrInvalidSubscription)
	ErrUnknownPlan         = fmt.Errorf("%w: unknown plan", ErrInvalidSubscription)
	ErrCustomPriceRequired = fmt.Errorf("%w: a custom plan needs a price per seat", ErrInvalidSubscription)
	ErrCurrency            = fmt.Errorf("%w: currency not billed by this profile", ErrInvalidSubscription)
	ErrNoPrice             = fmt.Errorf("%w: the plan has no price for this billing period", ErrInvalidSubscription)
	ErrInvalidSeats        = fmt.Errorf("%w: invalid seat count", ErrInvalidSubscription)
	ErrMissingField        = fmt.Errorf("%w: missing field", ErrInvalidSubscription)

	// ErrInvalidQuantity: a seat count to quote or buy below one.
	ErrInvalidQuantity = errors.New("invalid seat quantity")
	// ErrAmountOverflow: a price too large to compute in int64 cents.
	ErrAmountOverflow = errors.New("amount out of range")
	// ErrOutsideCycle: a day that the given cycle does not hold.
	ErrOutsideCycle = errors.New("day outside the cycle")
	// ErrInvalidReservation: a reservation request without an account or a
	// reservation id.
	ErrInvalidReservation = errors.New("invalid reservation request")
)
