package domain

import (
	"fmt"
	"math"
	"time"
)

// Quote is the price of buying seats now (S-3), as the 402 answer and
// POST …/subscription/quote show it.
type Quote struct {
	// Amount is what buying the seats now costs, prorated to the cycle.
	Amount Money
	// DaysLeft counts the days from today to the cycle's end, both
	// included; CycleDays the days of the whole cycle.
	DaysLeft, CycleDays int
	// CycleEnd is the cycle's last day, included.
	CycleEnd time.Time
}

// CycleUnit is the price of one seat for one whole cycle (S-3): the
// monthly price for monthly billing, 12 × the annual-billing monthly price
// for annual billing.
func (s Subscription) CycleUnit() (Money, error) {
	switch s.Schedule.Period() {
	case Monthly:
		return s.UnitPrice, nil
	case Annual:
		if s.UnitPrice.Amount > math.MaxInt64/12 {
			return Money{}, fmt.Errorf("%w: 12 × %d", ErrAmountOverflow, s.UnitPrice.Amount)
		}
		return Money{Amount: 12 * s.UnitPrice.Amount, Currency: s.UnitPrice.Currency}, nil
	}
	return Money{}, fmt.Errorf("%w: %q", ErrInvalidPeriod, s.Schedule.Period())
}

// QuoteSeats is the price of buying that many more seats on day today, in the
// cycle that holds today (S-3). Each seat is prorated and rounded on its
// own, then multiplied: the quote for N seats is what N purchases one by
// one are charged, cent for cent.
func (s Subscription) QuoteSeats(today time.Time, seats int) (Quote, error) {
	if seats < 1 {
		return Quote{}, fmt.Errorf("%w: %d (at least 1)", ErrInvalidQuantity, seats)
	}
	unit, err := s.CycleUnit()
	if err != nil {
		return Quote{}, err
	}
	c := s.Schedule.CycleAt(today)
	// Before the anchor the first cycle has not started: a seat bought then
	// pays the whole first cycle.
	day := Day(today)
	if day.Before(c.Start) {
		day = c.Start
	}
	q, err := Prorate(unit, c, day)
	if err != nil {
		return Quote{}, err
	}
	if q.Amount.Amount > math.MaxInt64/int64(seats) {
		return Quote{}, fmt.Errorf("%w: %d seats × %d", ErrAmountOverflow, seats, q.Amount.Amount)
	}
	q.Amount.Amount *= int64(seats)
	return q, nil
}

// Prorate is S-3's price of one seat bought on day today in cycle c, whose
// whole-cycle price is unit:
//
//	amount = unit × days left in the cycle (today counted) / days in the cycle
//
// rounded half away from zero to the cent, in integers only. A day outside
// the cycle is an error: the caller picks the cycle that holds today.
func Prorate(unit Money, c Cycle, today time.Time) (Quote, error) {
	today = Day(today)
	if !c.Contains(today) {
		return Quote{}, fmt.Errorf("%w: %s is outside the cycle %s…%s", ErrOutsideCycle, FormatDate(today), FormatDate(c.Start), FormatDate(c.End))
	}
	cycleDays := c.Days()
	daysLeft := int(c.End.Sub(today).Hours()/24) + 1
	if unit.Amount > math.MaxInt64/int64(daysLeft) || unit.Amount < math.MinInt64/int64(daysLeft) {
		return Quote{}, fmt.Errorf("%w: %d × %d days", ErrAmountOverflow, unit.Amount, daysLeft)
	}
	return Quote{
		Amount:    Money{Amount: RoundDiv(unit.Amount*int64(daysLeft), int64(cycleDays)), Currency: unit.Currency},
		DaysLeft:  daysLeft,
		CycleDays: cycleDays,
		CycleEnd:  c.End,
	}, nil
}

// RoundDiv is n / d rounded half away from zero (S-3: 0.5 cent up, -0.5
// cent down). d must be positive.
func RoundDiv(n, d int64) int64 {
	if d <= 0 {
		panic("domain: RoundDiv by a non-positive divisor")
	}
	q, r := n/d, n%d // Go truncates toward zero: r has n's sign
	if r < 0 {
		r = -r
	}
	// r ≥ d - r  ⇔  the remainder is at least half of d; written without
	// 2*r, which could overflow.
	if r >= d-r {
		if n < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}
