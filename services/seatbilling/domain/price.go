package domain

import (
	"fmt"
	"strings"

	"roster.dev/pkg/profile"
)

// Money is an amount in minor units (cents) with its ISO 4217 currency in
// lower case, as the API shows it: {18900, "usd"} is 189.00 USD.
type Money struct {
	Amount   int64
	Currency string
}

// UnitPrice is the price of one seat per month (S-1) under plan, billed
// every period, in the profile's currency:
//   - a priced plan takes its table price: Monthly for monthly billing,
//     AnnualMonthly for annual billing;
//   - a custom plan takes the price set on the account (accountPrice), which
//     must be positive and in the profile's currency (an empty currency
//     means the profile's).
//
// The price is per month in both periods; S-3 multiplies it by 12 for the
// one-year unit of an annual cycle.
func UnitPrice(plan profile.Plan, period Period, accountPrice Money, currency string) (Money, error) {
	currency = strings.ToLower(currency)
	if plan.Custom {
		// S-1: "Custom" means the price per seat is set on the subscription.
		if accountPrice.Amount <= 0 {
			return Money{}, fmt.Errorf("%w: plan %s", ErrCustomPriceRequired, plan.Name)
		}
		if c := strings.ToLower(accountPrice.Currency); c != "" && c != currency {
			return Money{}, fmt.Errorf("%w: %q (this profile bills in %q)", ErrCurrency, accountPrice.Currency, currency)
		}
		return Money{Amount: accountPrice.Amount, Currency: currency}, nil
	}
	var amount int64
	switch period {
	case Monthly:
		amount = plan.Monthly
	case Annual:
		amount = plan.AnnualMonthly
	default:
		return Money{}, fmt.Errorf("%w: %q", ErrInvalidPeriod, period)
	}
	if amount <= 0 {
		return Money{}, fmt.Errorf("%w: plan %s, %s", ErrNoPrice, plan.Name, period)
	}
	return Money{Amount: amount, Currency: currency}, nil
}
