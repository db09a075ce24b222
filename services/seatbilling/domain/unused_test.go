package domain_test

import (
	"errors"
	"testing"
	"time"

	"roster.dev/services/seatbilling/domain"
)

// S-7: the unused-seat report lists active technicians with no login in N
// days and invited ones who never logged in, each at the monthly unit
// price (the annual-billing monthly price for annual billing), with the
// total; seats pending removal (S-5) are left out.
func TestUnusedSeats(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	day := 24 * time.Hour
	holders := []domain.SeatHolder{
		{TechnicianID: "tech_fresh", Since: ago(90 * day), FirstLoginAt: ago(80 * day), LastLoginAt: ago(time.Hour)},
		{TechnicianID: "tech_idle", Since: ago(90 * day), FirstLoginAt: ago(80 * day), LastLoginAt: ago(45 * day)},
		{TechnicianID: "tech_edge", Since: ago(90 * day), FirstLoginAt: ago(80 * day), LastLoginAt: ago(30 * day)},
		{TechnicianID: "tech_older", Since: ago(90 * day), FirstLoginAt: ago(80 * day), LastLoginAt: ago(60 * day)},
		{TechnicianID: "tech_invited", Since: ago(2 * day)},
		{TechnicianID: "tech_leaving", Since: ago(90 * day)},
		// Logged in (TechnicianLoggedIn) before its FirstLogin was applied.
		{TechnicianID: "tech_no_first", Since: ago(90 * day), LastLoginAt: ago(31 * day)},
	}
	holders[5].RemovalPending = true
	tests := []struct {
		name   string
		period domain.Period
		unit   int64
		days   int
		want   []string // technician: reason
		total  int64
	}{
		{"30 days, monthly growth", domain.Monthly, 18900, 30,
			[]string{"tech_invited:never_logged_in", "tech_older:inactive", "tech_idle:inactive", "tech_no_first:inactive"}, 4 * 18900},
		// Exactly N days ago is not before the cutoff: still in use.
		{"29 days catches the edge", domain.Monthly, 18900, 29,
			[]string{"tech_invited:never_logged_in", "tech_older:inactive", "tech_idle:inactive", "tech_no_first:inactive", "tech_edge:inactive"}, 5 * 18900},
		{"50 days, annual at the annual-billing monthly price", domain.Annual, 17900, 50,
			[]string{"tech_invited:never_logged_in", "tech_older:inactive"}, 2 * 17900},
		{"one day", domain.Monthly, 13900, 1,
			[]string{"tech_invited:never_logged_in", "tech_older:inactive", "tech_idle:inactive", "tech_no_first:inactive", "tech_edge:inactive"}, 5 * 13900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := subscription(t, tt.period, "2026-11-01", "2026-11-23", 10, tt.unit)
			r, err := sub.UnusedSeats(holders, now, tt.days)
			if err != nil {
				t.Fatal(err)
			}
			if r.InactiveDays != tt.days || !r.Cutoff.Equal(now.Add(-time.Duration(tt.days)*day)) {
				t.Errorf("window %d days to %s", r.InactiveDays, r.Cutoff)
			}
			var got []string
			for _, s := range r.Seats {
				got = append(got, s.TechnicianID+":"+s.Reason)
				if s.MonthlyCost != (domain.Money{Amount: tt.unit, Currency: "usd"}) {
					t.Errorf("%s costs %+v, want %d", s.TechnicianID, s.MonthlyCost, tt.unit)
				}
				wantStatus := "active"
				if s.Reason == domain.UnusedNeverLoggedIn {
					wantStatus = "invited"
				}
				if s.Status != wantStatus {
					t.Errorf("%s status %s, want %s", s.TechnicianID, s.Status, wantStatus)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("unused %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("unused %v, want %v (the most idle first)", got, tt.want)
				}
			}
			if r.Total != (domain.Money{Amount: tt.total, Currency: "usd"}) {
				t.Errorf("total %+v, want %d", r.Total, tt.total)
			}
		})
	}
	sub := subscription(t, domain.Monthly, "2026-11-01", "2026-11-23", 10, 18900)
	for _, days := range []int{0, -1, domain.MaxInactiveDays + 1} {
		if _, err := sub.UnusedSeats(holders, now, days); !errors.Is(err, domain.ErrInvalidInactiveDays) {
			t.Errorf("%d days: %v", days, err)
		}
	}
	empty, err := sub.UnusedSeats(nil, now, 30)
	if err != nil || len(empty.Seats) != 0 || empty.Seats == nil || empty.Total != (domain.Money{Currency: "usd"}) {
		t.Errorf("no seat holders: %+v, %v", empty, err)
	}
}
