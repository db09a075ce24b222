package domain_test

import (
	"errors"
	"testing"
	"time"

	"roster.dev/services/seatbilling/domain"
)

func date(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := domain.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func schedule(t *testing.T, anchor string, p domain.Period) domain.Schedule {
	t.Helper()
	s, err := domain.NewSchedule(date(t, anchor), p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// S-3: the cycle that holds a day.
func TestCycleAt(t *testing.T) {
	tests := []struct {
		name       string
		period     domain.Period
		anchor     string
		day        string
		start, end string
		days       int
	}{
		// Monthly: the calendar month that the anchor's day defines.
		{"monthly on the anchor day", domain.Monthly, "2026-01-15", "2026-03-15", "2026-03-15", "2026-04-14", 31},
		{"monthly the day before the anchor day", domain.Monthly, "2026-01-15", "2026-03-14", "2026-02-15", "2026-03-14", 28},
		{"monthly anchor on the 1st is the calendar month", domain.Monthly, "2026-01-01", "2026-03-31", "2026-03-01", "2026-03-31", 31},
		{"monthly across the new year", domain.Monthly, "2026-01-20", "2027-01-05", "2026-12-20", "2027-01-19", 31},
		{"monthly anchor 31st, early February", domain.Monthly, "2026-01-31", "2026-02-10", "2026-01-31", "2026-02-27", 28},
		{"monthly anchor 31st clamps to Feb 28", domain.Monthly, "2026-01-31", "2026-02-28", "2026-02-28", "2026-03-30", 31},
		{"monthly anchor 31st comes back to Mar 31", domain.Monthly, "2026-01-31", "2026-03-31", "2026-03-31", "2026-04-29", 30},
		{"monthly anchor 31st clamps to Apr 30", domain.Monthly, "2026-01-31", "2026-04-30", "2026-04-30", "2026-05-30", 31},
		{"monthly anchor 31st in December", domain.Monthly, "2026-01-31", "2026-12-31", "2026-12-31", "2027-01-30", 31},
		{"monthly anchor 30th in February", domain.Monthly, "2026-01-30", "2026-02-28", "2026-02-28", "2026-03-29", 30},
		{"monthly anchor 29th in a common year's February", domain.Monthly, "2026-01-29", "2026-02-28", "2026-02-28", "2026-03-28", 29},
		{"monthly leap year: Feb 29 starts the cycle", domain.Monthly, "2028-01-31", "2028-02-29", "2028-02-29", "2028-03-30", 31},
		{"monthly leap year: Feb 28 is still January's cycle", domain.Monthly, "2028-01-31", "2028-02-28", "2028-01-31", "2028-02-28", 29},
		{"monthly leap year: anchor 29th is not clamped", domain.Monthly, "2027-12-29", "2028-02-29", "2028-02-29", "2028-03-28", 29},
		{"monthly day before the anchor is the first cycle", domain.Monthly, "2026-05-20", "2026-05-01", "2026-05-20", "2026-06-19", 31},
		// Annual: one year from the anchor.
		{"annual on the anchor", domain.Annual, "2026-03-10", "2026-03-10", "2026-03-10", "2027-03-09", 365},
		{"annual last day", domain.Annual, "2026-03-10", "2027-03-09", "2026-03-10", "2027-03-09", 365},
		{"annual second year", domain.Annual, "2026-03-10", "2027-03-10", "2027-03-10", "2028-03-09", 366},
		{"annual anchor long ago", domain.Annual, "2019-07-01", "2026-06-30", "2025-07-01", "2026-06-30", 365},
		{"annual anchor Feb 29, common year", domain.Annual, "2024-02-29", "2025-02-27", "2024-02-29", "2025-02-27", 365},
		{"annual anchor Feb 29 clamps to Feb 28", domain.Annual, "2024-02-29", "2025-02-28", "2025-02-28", "2026-02-27", 365},
		{"annual anchor Feb 29 back in a leap year", domain.Annual, "2024-02-29", "2028-02-29", "2028-02-29", "2029-02-27", 365},
		{"annual anchor Feb 29, Feb 28 of a leap year", domain.Annual, "2024-02-29", "2028-02-28", "2027-02-28", "2028-02-28", 366},
		{"annual anchor Dec 31", domain.Annual, "2025-12-31", "2026-12-30", "2025-12-31", "2026-12-30", 365},
		{"annual day before the anchor is the first cycle", domain.Annual, "2026-09-01", "2026-01-01", "2026-09-01", "2027-08-31", 365},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := schedule(t, tt.anchor, tt.period).CycleAt(date(t, tt.day))
			want := domain.Cycle{Start: date(t, tt.start), End: date(t, tt.end)}
			if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
				t.Fatalf("CycleAt(%s) = %s..%s, want %s..%s", tt.day,
					domain.FormatDate(got.Start), domain.FormatDate(got.End), tt.start, tt.end)
			}
			if got.Days() != tt.days {
				t.Errorf("Days() = %d, want %d", got.Days(), tt.days)
			}
		})
	}
}

// The time of day and the time zone do not move a cycle: billing dates are
// UTC.
func TestCycleAtUsesTheUTCDate(t *testing.T) {
	s := schedule(t, "2026-01-15", domain.Monthly)
	tokyo := time.FixedZone("JST", 9*3600)
	// 2026-02-15 08:00 in Tokyo is still 2026-02-14 in UTC.
	got := s.CycleAt(time.Date(2026, 2, 15, 8, 0, 0, 0, tokyo))
	if domain.FormatDate(got.Start) != "2026-01-15" {
		t.Fatalf("cycle starts %s, want 2026-01-15", domain.FormatDate(got.Start))
	}
}

// Over five years and every anchor day, the cycles tile the calendar: each
// day is in exactly one cycle, each cycle starts the day after the previous
// one ends, and on the anchor's day of month clamped to the month's length.
func TestCyclesTileTheCalendar(t *testing.T) {
	for _, period := range []domain.Period{domain.Monthly, domain.Annual} {
		for anchorDay := 1; anchorDay <= 31; anchorDay++ {
			anchor := time.Date(2024, time.January, anchorDay, 0, 0, 0, 0, time.UTC)
			if period == domain.Annual && anchorDay == 29 {
				anchor = time.Date(2024, time.February, 29, 0, 0, 0, 0, time.UTC)
			}
			s, err := domain.NewSchedule(anchor, period)
			if err != nil {
				t.Fatal(err)
			}
			prev := s.CycleAt(anchor)
			if !prev.Start.Equal(anchor) {
				t.Fatalf("%s anchor %s: first cycle starts %s", period, domain.FormatDate(anchor), domain.FormatDate(prev.Start))
			}
			for day := anchor; day.Year() < 2029; day = day.AddDate(0, 0, 1) {
				c := s.CycleAt(day)
				if !c.Contains(day) {
					t.Fatalf("%s anchor %s: cycle %s..%s does not hold %s", period, domain.FormatDate(anchor),
						domain.FormatDate(c.Start), domain.FormatDate(c.End), domain.FormatDate(day))
				}
				if c == prev {
					continue
				}
				if !c.Start.Equal(prev.End.AddDate(0, 0, 1)) {
					t.Fatalf("%s anchor %s: cycle %s follows one ending %s", period, domain.FormatDate(anchor),
						domain.FormatDate(c.Start), domain.FormatDate(prev.End))
				}
				if period == domain.Annual && c.Start.Month() != anchor.Month() {
					t.Fatalf("annual anchor %s: cycle starts in %s", domain.FormatDate(anchor), c.Start.Month())
				}
				monthDays := time.Date(c.Start.Year(), c.Start.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
				if want := min(anchor.Day(), monthDays); c.Start.Day() != want {
					t.Fatalf("%s anchor %s: cycle starts %s, want day %d", period, domain.FormatDate(anchor),
						domain.FormatDate(c.Start), want)
				}
				prev = c
			}
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		err  error
		run  func() error
	}{
		{"period monthly", nil, func() error { _, err := domain.ParsePeriod("monthly"); return err }},
		{"period annual", nil, func() error { _, err := domain.ParsePeriod("annual"); return err }},
		{"period yearly", domain.ErrInvalidPeriod, func() error { _, err := domain.ParsePeriod("yearly"); return err }},
		{"period empty", domain.ErrInvalidPeriod, func() error { _, err := domain.ParsePeriod(""); return err }},
		{"date", nil, func() error { _, err := domain.ParseDate("2028-02-29"); return err }},
		{"date not in a common year", domain.ErrInvalidDate, func() error { _, err := domain.ParseDate("2026-02-29"); return err }},
		{"date with time", domain.ErrInvalidDate, func() error { _, err := domain.ParseDate("2026-02-01T00:00:00Z"); return err }},
		{"schedule without anchor", domain.ErrInvalidDate, func() error { _, err := domain.NewSchedule(time.Time{}, domain.Monthly); return err }},
		{"schedule with bad period", domain.ErrInvalidPeriod, func() error { _, err := domain.NewSchedule(time.Now(), "weekly"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil && !errors.Is(err, domain.ErrInvalidSubscription) {
				t.Fatalf("%v does not wrap ErrInvalidSubscription", err)
			}
		})
	}
}
