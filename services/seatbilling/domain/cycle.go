// Package domain holds seat billing's rules (rules.md S-*): plans and unit
// prices, billing cycles, subscriptions and seats. Pure Go: no I/O, no SQL,
// no NATS.
package domain

import (
	"fmt"
	"time"
)

// DateLayout is how dates without time are written (api.md): YYYY-MM-DD.
const DateLayout = time.DateOnly

// ParseDate reads a YYYY-MM-DD date as midnight UTC.
func ParseDate(s string) (time.Time, error) {
	d, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not a YYYY-MM-DD date", ErrInvalidDate, s)
	}
	return d, nil
}

// FormatDate writes d as YYYY-MM-DD.
func FormatDate(d time.Time) string { return d.UTC().Format(DateLayout) }

// Day is the UTC date of t, at midnight UTC. Billing dates are UTC (api.md).
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Period is how often a subscription is billed.
type Period string

const (
	Monthly Period = "monthly"
	Annual  Period = "annual"
)

// ParsePeriod accepts "monthly" and "annual".
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case Monthly, Annual:
		return p, nil
	}
	return "", fmt.Errorf("%w: %q (want monthly or annual)", ErrInvalidPeriod, s)
}

// Cycle is one billing cycle, Start and End both included.
type Cycle struct {
	Start, End time.Time
}

// Days counts the days of the cycle, both ends included (the "days in the
// cycle" of S-3).
func (c Cycle) Days() int { return int(c.End.Sub(c.Start).Hours()/24) + 1 }

// Contains reports whether day falls in the cycle.
func (c Cycle) Contains(day time.Time) bool {
	day = Day(day)
	return !day.Before(c.Start) && !day.After(c.End)
}

// Schedule places a subscription's cycles: they count from the anchor
// (api.md billing_anchor).
//
// S-3: a monthly cycle is the calendar month that the anchor's day of month
// defines: it starts on that day, or on the month's last day when the month
// is shorter (anchor 31 → Feb 28, Apr 30), and ends the day before the next
// cycle starts. The anchor day is never lost: after Feb 28 comes Mar 31.
// An annual cycle is one year from the anchor, with the same clamping for an
// anchor on Feb 29.
type Schedule struct {
	anchor time.Time
	period Period
}

// NewSchedule returns the schedule of cycles counted from anchor.
func NewSchedule(anchor time.Time, period Period) (Schedule, error) {
	if _, err := ParsePeriod(string(period)); err != nil {
		return Schedule{}, err
	}
	if anchor.IsZero() {
		return Schedule{}, fmt.Errorf("%w: the billing anchor is missing", ErrInvalidDate)
	}
	return Schedule{anchor: Day(anchor), period: period}, nil
}

// Anchor is the date the cycles count from.
func (s Schedule) Anchor() time.Time { return s.anchor }

// Period is how often the subscription is billed.
func (s Schedule) Period() Period { return s.period }

// CycleAt returns the cycle that holds day. A day before the anchor falls
// in the first cycle, which starts at the anchor: nothing is billed before
// the cycles start.
func (s Schedule) CycleAt(day time.Time) Cycle {
	day = Day(day)
	if day.Before(s.anchor) {
		day = s.anchor
	}
	if s.period == Annual {
		return s.annualCycle(day)
	}
	return s.monthlyCycle(day)
}

func (s Schedule) monthlyCycle(day time.Time) Cycle {
	y, m, _ := day.Date()
	start := s.startIn(y, m)
	if day.Before(start) {
		y, m = addMonths(y, m, -1)
		start = s.startIn(y, m)
	}
	ny, nm := addMonths(y, m, 1)
	return Cycle{Start: start, End: s.startIn(ny, nm).AddDate(0, 0, -1)}
}

func (s Schedule) annualCycle(day time.Time) Cycle {
	y, m := day.Year(), s.anchor.Month()
	start := s.startIn(y, m)
	if day.Before(start) {
		y--
		start = s.startIn(y, m)
	}
	return Cycle{Start: start, End: s.startIn(y+1, m).AddDate(0, 0, -1)}
}

// startIn is the day a cycle starts in month m of year y: the anchor's day
// of month, clamped to the month's length.
func (s Schedule) startIn(y int, m time.Month) time.Time {
	return time.Date(y, m, min(s.anchor.Day(), daysIn(y, m)), 0, 0, 0, 0, time.UTC)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func addMonths(y int, m time.Month, n int) (int, time.Month) {
	t := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return t.Year(), t.Month()
}
