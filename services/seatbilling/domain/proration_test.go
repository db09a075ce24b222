package domain_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"roster.dev/pkg/profile"
	"roster.dev/services/seatbilling/domain"
)

// openedSubscription opens a subscription from the profile data shipped in
// the binary; price is the account's price of a custom plan (0 otherwise).
func openedSubscription(t *testing.T, profileID, plan, period, anchor string, price int64) domain.Subscription {
	t.Helper()
	p, err := profile.Get(profileID)
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err := domain.Open(domain.Opening{
		AccountID: "acc_1", Profile: p.ID, Plans: p.SeatBilling.Plans, Currency: p.Currency,
		Plan: plan, Period: period, Seats: 2, AccountPrice: domain.Money{Amount: price},
		Anchor: anchor, AdminTechnicianID: "tech_admin", On: parseDay(t, anchor),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func parseDay(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := domain.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// S-3: amount = unit of one cycle × days left (today counted) / days in the
// cycle, rounded half away from zero to the cent; monthly unit = monthly
// price, annual unit = 12 × the annual-billing monthly price.
func TestQuoteSeats(t *testing.T) {
	tests := []struct {
		name                  string
		profile, plan, period string
		price                 int64 // custom plans only
		anchor                string
		today                 time.Time
		seats                 int
		amount                int64
		daysLeft, cycleDays   int
		cycleEnd              string
	}{
		{
			name:    "growth monthly, 8 of 30 days left: 18900 × 8 / 30",
			profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-11-01",
			today: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), seats: 1,
			amount: 5040, daysLeft: 8, cycleDays: 30, cycleEnd: "2026-11-30",
		},
		{
			name:    "the first day of the cycle pays the whole cycle",
			profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-11-01",
			today: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), seats: 1,
			amount: 18900, daysLeft: 30, cycleDays: 30, cycleEnd: "2026-11-30",
		},
		{
			name:    "the last day of the cycle counts as one day",
			profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-11-01",
			today: time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), seats: 1,
			amount: 630, daysLeft: 1, cycleDays: 30, cycleEnd: "2026-11-30",
		},
		{
			name:    "rounds down below half: 13900 / 31 = 448.39",
			profile: "atera-msp", plan: "pro", period: "monthly", anchor: "2026-01-01",
			today: time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC), seats: 1,
			amount: 448, daysLeft: 1, cycleDays: 31, cycleEnd: "2026-01-31",
		},
		{
			name:    "rounds up above half: 13900 × 2 / 31 = 896.77",
			profile: "atera-msp", plan: "pro", period: "monthly", anchor: "2026-01-01",
			today: time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC), seats: 1,
			amount: 897, daysLeft: 2, cycleDays: 31, cycleEnd: "2026-01-31",
		},
		{
			name:    "an exact half cent rounds away from zero: 12345 / 30 = 411.5",
			profile: "atera-msp", plan: "superpower", period: "monthly", price: 12345, anchor: "2026-11-01",
			today: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), seats: 1,
			amount: 412, daysLeft: 1, cycleDays: 30, cycleEnd: "2026-11-30",
		},
		{
			name:    "several seats: each seat rounded, then multiplied (3 × 412, not 1234.5)",
			profile: "atera-msp", plan: "superpower", period: "monthly", price: 12345, anchor: "2026-11-01",
			today: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), seats: 3,
			amount: 1236, daysLeft: 1, cycleDays: 30, cycleEnd: "2026-11-30",
		},
		{
			name:    "several seats at growth: 2 × 5040",
			profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-11-01",
			today: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), seats: 2,
			amount: 10080, daysLeft: 8, cycleDays: 30, cycleEnd: "2026-11-30",
		},
		{
			name:    "anchor 31st: the Feb 28 – Mar 30 cycle has 31 days, 18900 × 30 / 31 = 18290.32",
			profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-01-31",
			today: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), seats: 1,
			amount: 18290, daysLeft: 30, cycleDays: 31, cycleEnd: "2026-03-30",
		},
		{
			name:    "February cycle of 28 days: 16900 × 14 / 28",
			profile: "atera-it", plan: "professional", period: "monthly", anchor: "2026-02-01",
			today: time.Date(2026, 2, 15, 9, 0, 0, 0, time.UTC), seats: 1,
			amount: 8450, daysLeft: 14, cycleDays: 28, cycleEnd: "2026-02-28",
		},
		{
			name:    "annual: 12 × 17900 × 107 / 365 = 62968.77",
			profile: "atera-msp", plan: "growth", period: "annual", anchor: "2026-03-10",
			today: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), seats: 1,
			amount: 62969, daysLeft: 107, cycleDays: 365, cycleEnd: "2027-03-09",
		},
		{
			name:    "annual, leap cycle of 366 days, first day: the whole year, 12 × 17900",
			profile: "atera-msp", plan: "growth", period: "annual", anchor: "2027-03-10",
			today: time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC), seats: 1,
			amount: 214800, daysLeft: 366, cycleDays: 366, cycleEnd: "2028-03-09",
		},
		{
			name:    "annual, custom price: 12 × 15500 × 1 / 365 = 509.59",
			profile: "atera-msp", plan: "superpower", period: "annual", price: 15500, anchor: "2026-03-10",
			today: time.Date(2027, 3, 9, 10, 0, 0, 0, time.UTC), seats: 1,
			amount: 510, daysLeft: 1, cycleDays: 365, cycleEnd: "2027-03-09",
		},
		{
			name:    "before the anchor the whole first cycle is paid",
			profile: "roster", plan: "pro", period: "monthly", anchor: "2026-12-01",
			today: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), seats: 1,
			amount: 13900, daysLeft: 31, cycleDays: 31, cycleEnd: "2026-12-31",
		},
		{
			name:    "the day is UTC: 23:30 at UTC-5 on Nov 22 is Nov 23",
			profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-11-01",
			today: time.Date(2026, 11, 22, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)), seats: 1,
			amount: 5040, daysLeft: 8, cycleDays: 30, cycleEnd: "2026-11-30",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := openedSubscription(t, tt.profile, tt.plan, tt.period, tt.anchor, tt.price)
			got, err := sub.QuoteSeats(tt.today, tt.seats)
			if err != nil {
				t.Fatal(err)
			}
			want := domain.Quote{
				Amount:   domain.Money{Amount: tt.amount, Currency: "usd"},
				DaysLeft: tt.daysLeft, CycleDays: tt.cycleDays, CycleEnd: parseDay(t, tt.cycleEnd),
			}
			if got != want {
				t.Errorf("QuoteSeats(%s, %d)\n got %+v\nwant %+v", tt.today, tt.seats, got, want)
			}
		})
	}
}

func TestQuoteSeatsRefuses(t *testing.T) {
	today := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	sub := openedSubscription(t, "atera-msp", "growth", "monthly", "2026-11-01", 0)
	for _, seats := range []int{0, -1} {
		if _, err := sub.QuoteSeats(today, seats); !errors.Is(err, domain.ErrInvalidQuantity) {
			t.Errorf("QuoteSeats(%d seats) = %v, want ErrInvalidQuantity", seats, err)
		}
	}
	huge := openedSubscription(t, "atera-msp", "superpower", "annual", "2026-11-01", math.MaxInt64/10)
	if _, err := huge.QuoteSeats(today, 1); !errors.Is(err, domain.ErrAmountOverflow) {
		t.Errorf("12 × MaxInt64/10 = %v, want ErrAmountOverflow", err)
	}
	big := openedSubscription(t, "atera-msp", "superpower", "monthly", "2026-11-01", math.MaxInt64/4)
	if _, err := big.QuoteSeats(today, 1); !errors.Is(err, domain.ErrAmountOverflow) {
		t.Errorf("MaxInt64/4 × 8 days = %v, want ErrAmountOverflow", err)
	}
	if _, err := sub.QuoteSeats(today, math.MaxInt64/5040+1); !errors.Is(err, domain.ErrAmountOverflow) {
		t.Errorf("MaxInt64/5040+1 seats × 5040 = %v, want ErrAmountOverflow", err)
	}
}

func TestProrateOutsideTheCycle(t *testing.T) {
	c := domain.Cycle{Start: parseDay(t, "2026-11-01"), End: parseDay(t, "2026-11-30")}
	unit := domain.Money{Amount: 18900, Currency: "usd"}
	for _, day := range []string{"2026-10-31", "2026-12-01"} {
		if _, err := domain.Prorate(unit, c, parseDay(t, day)); !errors.Is(err, domain.ErrOutsideCycle) {
			t.Errorf("Prorate on %s = %v, want ErrOutsideCycle", day, err)
		}
	}
}

// S-3: "rounded half away from zero to the cent".
func TestRoundDiv(t *testing.T) {
	tests := []struct {
		name string
		n, d int64
		want int64
	}{
		{"exact", 151200, 30, 5040},
		{"zero", 0, 30, 0},
		{"below half rounds toward zero", 14, 30, 0},
		{"exact half rounds up", 15, 30, 1},
		{"above half rounds up", 16, 30, 1},
		{"one and a half rounds up", 45, 30, 2},
		{"negative below half rounds toward zero", -14, 30, 0},
		{"negative exact half rounds down", -15, 30, -1},
		{"negative one and a half rounds down", -45, 30, -2},
		{"odd divisor never halves", 13900, 31, 448},
		{"divisor one", 7, 1, 7},
		{"largest int64, half", math.MaxInt64, 2, math.MaxInt64/2 + 1},
		{"smallest int64, half", math.MinInt64 + 1, 2, math.MinInt64 / 2},
		{"largest int64, no half", math.MaxInt64, math.MaxInt64, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.RoundDiv(tt.n, tt.d); got != tt.want {
				t.Errorf("RoundDiv(%d, %d) = %d, want %d", tt.n, tt.d, got, tt.want)
			}
		})
	}
}
