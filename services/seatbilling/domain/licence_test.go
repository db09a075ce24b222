package domain_test

import (
	"errors"
	"testing"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// subscription is a subscription of seats seats at unit cents per seat per
// month, anchored on anchor, in the cycle that holds day.
func subscription(t *testing.T, period domain.Period, anchor, day string, seats int, unit int64) domain.Subscription {
	t.Helper()
	s := schedule(t, anchor, period)
	return domain.Subscription{
		AccountID: "acc_1", Schedule: s, UnitPrice: domain.Money{Amount: unit, Currency: "usd"},
		Seats: seats, Cycle: s.CycleAt(date(t, day)),
	}
}

// S-10: at the end of a cycle pending reductions apply, and the renewal
// charge is seats × the unit of one cycle (S-3's unit: the monthly price,
// or 12 × the annual-billing monthly price).
func TestRenew(t *testing.T) {
	tests := []struct {
		name             string
		period           domain.Period
		anchor, day      string
		seats            int
		unit             int64
		removals         int
		wantRemoved      int
		wantSeats        int
		wantAmount       int64
		nextStart, wantE string
	}{
		{"monthly, no reduction: 3 × 18900", domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900, 0, 0, 3, 56700, "2026-12-01", "2026-12-31"},
		{"monthly, one reduction: 2 × 18900", domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900, 1, 1, 2, 37800, "2026-12-01", "2026-12-31"},
		{"monthly, four seats less one", domain.Monthly, "2026-11-01", "2026-11-30", 4, 18900, 1, 1, 3, 56700, "2026-12-01", "2026-12-31"},
		{"monthly across the new year", domain.Monthly, "2026-01-15", "2027-01-10", 5, 13900, 2, 2, 3, 41700, "2027-01-15", "2027-02-14"},
		// The anchor day is kept across a short month (S-3's cycles).
		{"monthly anchor 31st into February", domain.Monthly, "2026-01-31", "2026-02-10", 2, 18900, 0, 0, 2, 37800, "2026-02-28", "2026-03-30"},
		{"annual: 12 × 17900 per seat", domain.Annual, "2026-03-10", "2026-07-01", 3, 17900, 0, 0, 3, 644400, "2027-03-10", "2028-03-09"},
		{"annual, one reduction", domain.Annual, "2026-03-10", "2027-03-09", 3, 17900, 1, 1, 2, 429600, "2027-03-10", "2028-03-09"},
		{"custom price", domain.Monthly, "2026-11-01", "2026-11-23", 10, 9950, 3, 3, 7, 69650, "2026-12-01", "2026-12-31"},
		// Every seat removed: nothing left to charge.
		{"every seat removed", domain.Monthly, "2026-11-01", "2026-11-23", 2, 18900, 2, 2, 0, 0, "2026-12-01", "2026-12-31"},
		// An overallocated account asked to remove more seats than it pays
		// for: never fewer than zero seats.
		{"more removals than seats", domain.Monthly, "2026-11-01", "2026-11-23", 2, 18900, 3, 2, 0, 0, "2026-12-01", "2026-12-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subscription(t, tt.period, tt.anchor, tt.day, tt.seats, tt.unit)
			r, err := sub.Renew(tt.removals)
			if err != nil {
				t.Fatal(err)
			}
			if r.Closed != sub.Cycle {
				t.Errorf("closed %v, want the current cycle %v", r.Closed, sub.Cycle)
			}
			if r.Removed != tt.wantRemoved || r.Seats != tt.wantSeats {
				t.Errorf("removed %d, seats %d; want %d, %d", r.Removed, r.Seats, tt.wantRemoved, tt.wantSeats)
			}
			if r.Amount != (domain.Money{Amount: tt.wantAmount, Currency: "usd"}) {
				t.Errorf("renewal %+v, want %d usd", r.Amount, tt.wantAmount)
			}
			if s, e := domain.FormatDate(r.Next.Start), domain.FormatDate(r.Next.End); s != tt.nextStart || e != tt.wantE {
				t.Errorf("next cycle %s…%s, want %s…%s", s, e, tt.nextStart, tt.wantE)
			}
			if !r.Next.Start.Equal(r.Closed.End.AddDate(0, 0, 1)) {
				t.Errorf("next cycle starts %s, not the day after %s", domain.FormatDate(r.Next.Start), domain.FormatDate(r.Closed.End))
			}
		})
	}
}

func TestRenewRefuses(t *testing.T) {
	sub := subscription(t, domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900)
	if _, err := sub.Renew(-1); !errors.Is(err, domain.ErrInvalidQuantity) {
		t.Errorf("negative removals: %v", err)
	}
	huge := subscription(t, domain.Annual, "2026-11-01", "2026-11-23", 3, 1<<60)
	if _, err := huge.Renew(0); !errors.Is(err, domain.ErrAmountOverflow) {
		t.Errorf("overflow: %v", err)
	}
}

func TestRenewalCharge(t *testing.T) {
	sub := subscription(t, domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900)
	r, err := sub.Renew(1)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC)
	got := domain.RenewalCharge("acc_1", r, at)
	// The id derives from the account and the closed cycle (2026-11-01).
	want := domain.Charge{
		ID: domain.ChargeID("acc_1", "renewal", "2026-11-01"), AccountID: "acc_1",
		Amount: domain.Money{Amount: 37800, Currency: "usd"}, Reason: domain.ChargeRenewal, CreatedAt: at,
	}
	if got != want {
		t.Errorf("RenewalCharge = %+v, want %+v", got, want)
	}
}

// The scheduler's "due": a cycle is over once its last day has passed, in
// UTC.
func TestCycleEnded(t *testing.T) {
	sub := subscription(t, domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900)
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"inside the cycle", time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), false},
		{"the last day, last second", time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), false},
		{"the next day at midnight", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{"a month later", time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), true},
		// 2026-12-01 08:00 in Tokyo is still 2026-11-30 in UTC.
		{"the UTC date decides", time.Date(2026, 12, 1, 8, 0, 0, 0, time.FixedZone("JST", 9*3600)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sub.CycleEnded(tt.at); got != tt.want {
				t.Errorf("CycleEnded(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

// S-5: reducing the licence count removes a named technician's seat at the
// end of the cycle; plain disabling never does.
func TestScheduleRemoval(t *testing.T) {
	sub := subscription(t, domain.Monthly, "2026-11-01", "2026-11-23", 3, 18900)
	occupied := domain.Seat{AccountID: "acc_1", TechnicianID: "tech_1", Status: domain.SeatOccupied}
	released := domain.Seat{AccountID: "acc_1", TechnicianID: "tech_1", Status: domain.SeatReleased}
	pending := occupied
	pending.RemovalDate = date(t, "2026-11-30")
	pendingReleased := released
	pendingReleased.RemovalDate = date(t, "2026-11-30")
	tests := []struct {
		name  string
		seat  domain.Seat
		found bool
		day   string
		want  domain.RemovalOutcome
		date  string
	}{
		{"an occupied seat goes at the end of this cycle", occupied, true, "2026-11-23", domain.RemovalScheduled, "2026-11-30"},
		{"on the cycle's last day", occupied, true, "2026-11-30", domain.RemovalScheduled, "2026-11-30"},
		// The stored cycle ended but the scheduler has not closed it yet:
		// the removal goes at the end of the running cycle, not in the past.
		{"after the stored cycle ended", occupied, true, "2026-12-01", domain.RemovalScheduled, "2026-12-31"},
		{"asked again keeps its date", pending, true, "2026-11-25", domain.RemovalAlreadyScheduled, "2026-11-30"},
		{"disabled after scheduling: still pending", pendingReleased, true, "2026-11-25", domain.RemovalAlreadyScheduled, "2026-11-30"},
		{"a released seat (disabled) has nothing to remove", released, true, "2026-11-23", domain.RemovalNotOccupying, ""},
		{"no seat (not confirmed yet)", domain.Seat{}, false, "2026-11-23", domain.RemovalNotOccupying, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, on := sub.ScheduleRemoval(tt.seat, tt.found, date(t, tt.day).Add(10*time.Hour))
			if got != tt.want {
				t.Fatalf("outcome %s, want %s", got, tt.want)
			}
			if tt.date == "" && !on.IsZero() || tt.date != "" && domain.FormatDate(on) != tt.date {
				t.Errorf("removal date %s, want %q", domain.FormatDate(on), tt.date)
			}
		})
	}
}
