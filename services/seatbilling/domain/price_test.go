package domain_test

import (
	"errors"
	"testing"

	"roster.dev/pkg/profile"
	"roster.dev/services/seatbilling/domain"
)

func plans(t *testing.T, profileID string) (map[string]profile.Plan, string) {
	t.Helper()
	p, err := profile.Get(profileID)
	if err != nil {
		t.Fatal(err)
	}
	return p.SeatBilling.Plans, p.Currency
}

// S-1, to the cent, against the profile data shipped in the binary.
func TestUnitPriceFromTheProfiles(t *testing.T) {
	usd := func(cents int64) domain.Money { return domain.Money{Amount: cents, Currency: "usd"} }
	tests := []struct {
		profile, plan string
		period        domain.Period
		want          domain.Money
	}{
		{"atera-it", "professional", domain.Annual, usd(14900)},
		{"atera-it", "professional", domain.Monthly, usd(16900)},
		{"atera-it", "expert", domain.Annual, usd(18900)},
		{"atera-it", "expert", domain.Monthly, usd(22900)},
		{"atera-it", "master", domain.Annual, usd(21900)},
		{"atera-it", "master", domain.Monthly, usd(26900)},
		{"atera-msp", "pro", domain.Annual, usd(12900)},
		{"atera-msp", "pro", domain.Monthly, usd(13900)},
		{"atera-msp", "growth", domain.Annual, usd(17900)},
		{"atera-msp", "growth", domain.Monthly, usd(18900)},
		{"atera-msp", "power", domain.Annual, usd(20900)},
		{"atera-msp", "power", domain.Monthly, usd(24900)},
		// roster: the atera-msp price table.
		{"roster", "pro", domain.Annual, usd(12900)},
		{"roster", "growth", domain.Monthly, usd(18900)},
		{"roster", "power", domain.Monthly, usd(24900)},
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.plan+"/"+string(tt.period), func(t *testing.T) {
			ps, currency := plans(t, tt.profile)
			// An account price on a priced plan does not replace the table
			// (AccountCreated carries one for custom plans only).
			got, err := domain.UnitPrice(ps[tt.plan], tt.period, domain.Money{Amount: 1, Currency: "usd"}, currency)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("UnitPrice = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// S-1: custom plans take the price per seat from the account.
func TestUnitPriceOfCustomPlans(t *testing.T) {
	tests := []struct {
		name         string
		profile      string
		plan         string
		period       domain.Period
		accountPrice domain.Money
		want         domain.Money
		err          error
	}{
		{"atera-msp superpower", "atera-msp", "superpower", domain.Monthly, domain.Money{Amount: 31500, Currency: "usd"}, domain.Money{Amount: 31500, Currency: "usd"}, nil},
		{"atera-it enterprise annual", "atera-it", "enterprise", domain.Annual, domain.Money{Amount: 25000, Currency: "usd"}, domain.Money{Amount: 25000, Currency: "usd"}, nil},
		{"currency left out is the profile's", "roster", "superpower", domain.Monthly, domain.Money{Amount: 999}, domain.Money{Amount: 999, Currency: "usd"}, nil},
		{"currency compared case-insensitively", "roster", "superpower", domain.Monthly, domain.Money{Amount: 999, Currency: "USD"}, domain.Money{Amount: 999, Currency: "usd"}, nil},
		{"no price", "atera-msp", "superpower", domain.Monthly, domain.Money{}, domain.Money{}, domain.ErrCustomPriceRequired},
		{"negative price", "atera-msp", "superpower", domain.Monthly, domain.Money{Amount: -1, Currency: "usd"}, domain.Money{}, domain.ErrCustomPriceRequired},
		{"other currency", "atera-msp", "superpower", domain.Monthly, domain.Money{Amount: 100, Currency: "eur"}, domain.Money{}, domain.ErrCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, currency := plans(t, tt.profile)
			got, err := domain.UnitPrice(ps[tt.plan], tt.period, tt.accountPrice, currency)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("UnitPrice = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUnitPriceRefusesMissingPrices(t *testing.T) {
	if _, err := domain.UnitPrice(profile.Plan{Name: "Half", Monthly: 100}, domain.Annual, domain.Money{}, "usd"); !errors.Is(err, domain.ErrNoPrice) {
		t.Fatalf("err = %v, want ErrNoPrice", err)
	}
	if _, err := domain.UnitPrice(profile.Plan{Name: "P", Monthly: 100}, "weekly", domain.Money{}, "usd"); !errors.Is(err, domain.ErrInvalidPeriod) {
		t.Fatalf("err = %v, want ErrInvalidPeriod", err)
	}
}
