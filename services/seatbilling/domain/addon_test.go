package domain_test

import (
	"errors"
	"math"
	"testing"

	"roster.dev/services/seatbilling/domain"
)

// S-9: add-ons are billed apart from seats, each with its own price on
// the subscription; a cycle of one costs its monthly price × quantity,
// × 12 for annual billing (S-3's unit).
func TestAddOnCycleAmount(t *testing.T) {
	tests := []struct {
		name     string
		period   domain.Period
		id       string
		price    int64
		quantity int
		want     int64
	}{
		{"monthly AI Copilot", domain.Monthly, "ai_copilot", 2500, 1, 2500},
		{"monthly Network Discovery × 3", domain.Monthly, "network_discovery", 9900, 3, 29700},
		{"annual AI Copilot: 12 months", domain.Annual, "ai_copilot", 2500, 1, 30000},
		{"annual Network Discovery × 2", domain.Annual, "network_discovery", 4150, 2, 99600},
		{"included at no charge", domain.Monthly, "ai_copilot", 0, 5, 0},
		{"largest price and quantity fit", domain.Annual, "ai_copilot", domain.MaxAddOnPrice, domain.MaxAddOnQuantity, 12 * domain.MaxAddOnPrice * domain.MaxAddOnQuantity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subscription(t, tt.period, "2026-11-01", "2026-11-23", 3, 18900)
			a, err := sub.NewAddOn(tt.id, tt.price, tt.quantity)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sub.AddOnCycleAmount(a)
			if err != nil || got != (domain.Money{Amount: tt.want, Currency: "usd"}) {
				t.Fatalf("AddOnCycleAmount = %+v, %v; want %d usd", got, err, tt.want)
			}
		})
	}
	sub := subscription(t, domain.Annual, "2026-11-01", "2026-11-23", 3, 18900)
	huge := domain.AddOn{ID: "ai_copilot", Price: domain.Money{Amount: math.MaxInt64 / 10, Currency: "usd"}, Quantity: 1}
	if _, err := sub.AddOnCycleAmount(huge); !errors.Is(err, domain.ErrAmountOverflow) {
		t.Errorf("overflow: %v", err)
	}
}

func TestNewAddOn(t *testing.T) {
	sub := subscription(t, domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900)
	tests := []struct {
		name     string
		id       string
		price    int64
		quantity int
		err      error
		wantName string
	}{
		{"AI Copilot", "ai_copilot", 2500, 1, nil, "AI Copilot"},
		{"Network Discovery", "network_discovery", 9900, 2, nil, "Network Discovery"},
		{"unknown", "remote_access", 100, 1, domain.ErrUnknownAddOn, ""},
		{"negative price", "ai_copilot", -1, 1, domain.ErrInvalidAddOnPrice, ""},
		{"price too large", "ai_copilot", domain.MaxAddOnPrice + 1, 1, domain.ErrInvalidAddOnPrice, ""},
		{"no quantity", "ai_copilot", 100, 0, domain.ErrInvalidAddOnQuantity, ""},
		{"quantity too large", "ai_copilot", 100, domain.MaxAddOnQuantity + 1, domain.ErrInvalidAddOnQuantity, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := sub.NewAddOn(tt.id, tt.price, tt.quantity)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && (a.Name != tt.wantName || a.Price != (domain.Money{Amount: tt.price, Currency: "usd"}) || a.Quantity != tt.quantity) {
				t.Errorf("add-on = %+v", a)
			}
		})
	}
}

// Charge ids derive from their cause: the same cause gives the same id
// (a redelivery, a replay), different causes different ids.
func TestChargeID(t *testing.T) {
	a := domain.ChargeID("acc_1", "seat_purchase", "res_1")
	if a != domain.ChargeID("acc_1", "seat_purchase", "res_1") {
		t.Fatal("the same cause gave two ids")
	}
	if len(a) != len("chg_")+32 || a[:4] != "chg_" {
		t.Fatalf("id %q, want chg_ and 32 hex digits", a)
	}
	others := []string{
		domain.ChargeID("acc_2", "seat_purchase", "res_1"),
		domain.ChargeID("acc_1", "seat_purchase", "res_2"),
		domain.ChargeID("acc_1", "renewal", "res_1"),
		// The parts are separated: "a", "bc" is not "ab", "c".
		domain.ChargeID("acc_1", "seat_purchas", "eres_1"),
	}
	for _, o := range others {
		if o == a {
			t.Errorf("another cause gave the same id %s", a)
		}
	}
}
