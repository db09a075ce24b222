package domain_test

import (
	"errors"
	"testing"
	"time"

	"roster.dev/services/seatbilling/domain"
)

func opening(t *testing.T) domain.Opening {
	t.Helper()
	ps, currency := plans(t, "atera-msp")
	return domain.Opening{
		AccountID:         "acc_1",
		Profile:           "atera-msp",
		Plans:             ps,
		Currency:          currency,
		Plan:              "growth",
		Period:            "monthly",
		Seats:             5,
		Anchor:            "2026-01-31",
		AdminTechnicianID: "tech_admin",
		On:                time.Date(2026, 3, 15, 22, 30, 0, 0, time.UTC),
	}
}

func TestOpen(t *testing.T) {
	sub, seat, err := domain.Open(opening(t))
	if err != nil {
		t.Fatal(err)
	}
	if sub.AccountID != "acc_1" || sub.Profile != "atera-msp" || sub.Plan != "growth" || sub.Seats != 5 {
		t.Errorf("subscription = %+v", sub)
	}
	if sub.UnitPrice != (domain.Money{Amount: 18900, Currency: "usd"}) {
		t.Errorf("unit price = %+v, want 18900 usd (S-1)", sub.UnitPrice)
	}
	if sub.Schedule.Period() != domain.Monthly || domain.FormatDate(sub.Schedule.Anchor()) != "2026-01-31" {
		t.Errorf("schedule = %s from %s", sub.Schedule.Period(), domain.FormatDate(sub.Schedule.Anchor()))
	}
	// The current cycle holds the day the account was created.
	if s, e := domain.FormatDate(sub.Cycle.Start), domain.FormatDate(sub.Cycle.End); s != "2026-02-28" || e != "2026-03-30" {
		t.Errorf("cycle = %s..%s, want 2026-02-28..2026-03-30", s, e)
	}
	if seat != (domain.Seat{AccountID: "acc_1", TechnicianID: "tech_admin", Status: domain.SeatOccupied}) {
		t.Errorf("admin seat = %+v", seat)
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(*domain.Opening)
		err    error
	}{
		{"no account", func(o *domain.Opening) { o.AccountID = "" }, domain.ErrMissingField},
		{"no admin", func(o *domain.Opening) { o.AdminTechnicianID = "" }, domain.ErrMissingField},
		{"unknown plan", func(o *domain.Opening) { o.Plan = "expert" }, domain.ErrUnknownPlan},
		{"unknown period", func(o *domain.Opening) { o.Period = "weekly" }, domain.ErrInvalidPeriod},
		{"bad anchor", func(o *domain.Opening) { o.Anchor = "31/01/2026" }, domain.ErrInvalidDate},
		{"no anchor", func(o *domain.Opening) { o.Anchor = "" }, domain.ErrInvalidDate},
		{"custom plan without a price", func(o *domain.Opening) { o.Plan = "superpower" }, domain.ErrCustomPriceRequired},
		// S-6: the first admin occupies a seat.
		{"no seat for the admin", func(o *domain.Opening) { o.Seats = 0 }, domain.ErrInvalidSeats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opening(t)
			tt.change(&o)
			_, _, err := domain.Open(o)
			if !errors.Is(err, tt.err) || !errors.Is(err, domain.ErrInvalidSubscription) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestUsageOf(t *testing.T) {
	tests := []struct {
		name                 string
		total, used, leaving int
		want                 domain.Usage
	}{
		{"seats free", 5, 1, 0, domain.Usage{Total: 5, Used: 1, Available: 4}},
		{"every seat used", 1, 1, 0, domain.Usage{Total: 1, Used: 1, Available: 0}},
		{"overallocated", 2, 3, 0, domain.Usage{Total: 2, Used: 3, Available: 0}},
		// S-5: a seat pending removal whose technician was disabled is
		// neither used nor available.
		{"a released seat pending removal is not available", 3, 1, 1, domain.Usage{Total: 3, Used: 1, Available: 1}},
		{"every free seat leaving", 3, 2, 1, domain.Usage{Total: 3, Used: 2, Available: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.UsageOf(tt.total, tt.used, tt.leaving); got != tt.want {
				t.Errorf("UsageOf(%d, %d, %d) = %+v, want %+v", tt.total, tt.used, tt.leaving, got, tt.want)
			}
		})
	}
}
