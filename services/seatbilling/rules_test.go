package seatbilling_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"roster.dev/pkg/svc/svctest"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	seatbillingv1 "roster.dev/proto/roster/seatbilling/v1"
	"roster.dev/services/seatbilling/ports"
)

// ruleCase is one plan of one profile, billed monthly or annually, on a
// day chosen for its calendar (a month end, a leap year), with what every
// S rule must give there.
type ruleCase struct {
	name                  string
	profile, plan, period string
	price                 int64 // the account's price per seat, custom plans only
	anchor                string
	now                   time.Time
	// S-1: the unit price per seat per month.
	unit int64
	// S-3: the cycle that holds now, and one seat bought now.
	cycleStart, cycleEnd string
	amount               int64
	daysLeft, cycleDays  int32
	// S-10: the cycle after it.
	nextStart, nextEnd string
	// S-8: csv_import_end_users, sso, scim_technicians.
	csv, sso, scim bool
}

// cycleUnit is S-3's unit of one cycle: the monthly price, or 12 × the
// annual-billing monthly price.
func (c ruleCase) cycleUnit() int64 {
	if c.period == "annual" {
		return 12 * c.unit
	}
	return c.unit
}

// closeAt is a few seconds into the next cycle: when the scheduler closes
// the current one.
func (c ruleCase) closeAt(t *testing.T) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, c.nextStart)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(5 * time.Second)
}

var ruleCases = []ruleCase{
	{
		name:    "atera-it expert monthly, anchor on the 31st, cycle from 29 February of a leap year",
		profile: "atera-it", plan: "expert", period: "monthly", anchor: "2028-01-31",
		now:  time.Date(2028, 3, 15, 10, 0, 0, 0, time.UTC),
		unit: 22900, cycleStart: "2028-02-29", cycleEnd: "2028-03-30",
		// 22900 × 16 / 31 = 11819.35
		amount: 11819, daysLeft: 16, cycleDays: 31,
		nextStart: "2028-03-31", nextEnd: "2028-04-29",
		csv: true,
	},
	{
		name:    "atera-it master annual, a cycle spanning 29 February (366 days)",
		profile: "atera-it", plan: "master", period: "annual", anchor: "2027-03-01",
		now:  time.Date(2027, 11, 23, 10, 0, 0, 0, time.UTC),
		unit: 21900, cycleStart: "2027-03-01", cycleEnd: "2028-02-29",
		// 12 × 21900 × 99 / 366 = 71085.25
		amount: 71085, daysLeft: 99, cycleDays: 366,
		nextStart: "2028-03-01", nextEnd: "2029-02-28",
		csv: true,
	},
	{
		name:    "atera-msp growth monthly, the issue's example: the 11th of a 30-day month",
		profile: "atera-msp", plan: "growth", period: "monthly", anchor: "2026-11-01",
		now:  time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC),
		unit: 18900, cycleStart: "2026-11-01", cycleEnd: "2026-11-30",
		// 18900 × 20 / 30 = 12600
		amount: 12600, daysLeft: 20, cycleDays: 30,
		nextStart: "2026-12-01", nextEnd: "2026-12-31",
		csv: true,
	},
	{
		name:    "atera-msp superpower annual at the account's price, anchor 29 February",
		profile: "atera-msp", plan: "superpower", period: "annual", price: 31500, anchor: "2024-02-29",
		now:  time.Date(2026, 5, 10, 10, 0, 0, 0, time.UTC),
		unit: 31500, cycleStart: "2026-02-28", cycleEnd: "2027-02-27",
		// 12 × 31500 × 294 / 365 = 304471.23
		amount: 304471, daysLeft: 294, cycleDays: 365,
		// Back to the leap day's year: 2027-02-28 … 2028-02-28, 366 days.
		nextStart: "2027-02-28", nextEnd: "2028-02-28",
		csv: true, sso: true,
	},
	{
		name:    "roster pro monthly, anchor on the 30th after a common February",
		profile: "roster", plan: "pro", period: "monthly", anchor: "2026-01-30",
		now:  time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC),
		unit: 13900, cycleStart: "2026-02-28", cycleEnd: "2026-03-29",
		// 13900 × 10 / 30 = 4633.33
		amount: 4633, daysLeft: 10, cycleDays: 30,
		nextStart: "2026-03-30", nextEnd: "2026-04-29",
		csv: true, sso: true, scim: true,
	},
	{
		name:    "roster power annual, bought on the cycle's last day at the year end",
		profile: "roster", plan: "power", period: "annual", anchor: "2025-12-31",
		now:  time.Date(2026, 12, 30, 10, 0, 0, 0, time.UTC),
		unit: 20900, cycleStart: "2025-12-31", cycleEnd: "2026-12-30",
		// 12 × 20900 × 1 / 365 = 687.12
		amount: 687, daysLeft: 1, cycleDays: 365,
		nextStart: "2026-12-31", nextEnd: "2027-12-30",
		csv: true, sso: true, scim: true,
	},
}

// Every S rule for atera-it, atera-msp and roster, monthly and annual, on
// month ends and leap years, through the service's ports: identity's
// events, ReserveSeat and ScheduleLicenceRemoval over request-reply, the
// HTTP routes and the cycle-end scheduler. The seed's two cycle scenarios
// are named subtests of every case: "disable then add → no charge" and
// "reduce licence then add in the same cycle → both charged".
func TestRulesByProfile(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		for _, c := range ruleCases {
			t.Run(c.name, func(t *testing.T) {
				w := newBillingWorld(t, freshDB(t, dbURL), c.now, nil)
				basic, reuse, reduce := "acc_basic", "acc_reuse", "acc_reduce"
				for _, acc := range []string{basic, reuse, reduce} {
					w.openAt(t, acc, c.profile, c.plan, c.period, c.price, c.anchor, 2)
				}
				quote := &seatbillingv1.Quote{
					Amount:   &commonv1.Money{Amount: c.amount, Currency: "usd"},
					DaysLeft: c.daysLeft, CycleDays: c.cycleDays, CycleEnd: c.cycleEnd,
				}
				t.Run("S-1 the plan's price, S-2 a seat from creation", func(t *testing.T) {
					sub := w.subscription(t, basic)
					if sub.UnitPrice != (ports.Money{Amount: c.unit, Currency: "usd"}) || sub.BillingPeriod != c.period ||
						sub.CycleStart != c.cycleStart || sub.CycleEnd != c.cycleEnd {
						t.Fatalf("subscription %+v", sub)
					}
					// The first admin holds a seat (invited); one more technician
					// takes the other from creation, before any login.
					if sub.Seats != (ports.Seats{Total: 2, Used: 1, Available: 1}) {
						t.Fatalf("seats %+v", sub.Seats)
					}
					wantOutcome(t, "tech_1", w.addTechnician(t, basic, "tech_1", false), reserved)
					w.waitSeats(t, basic, ports.Seats{Total: 2, Used: 2, Available: 0})
				})
				t.Run("S-3 prorated purchase, S-6 charged only once confirmed", func(t *testing.T) {
					rep := w.reserve(t, basic, "res_tech_2", false)
					wantOutcome(t, "no seat, unconfirmed", rep, quoted)
					if !proto.Equal(rep.GetQuote(), quote) {
						t.Fatalf("quote %v, want %v", rep.GetQuote(), quote)
					}
					status, body := w.post(t, "/v1/accounts/"+basic+"/subscription/quote", billingOperator, []byte(`{"seats": 2}`))
					want := fmt.Sprintf(`{"amount": %d, "currency": "usd", "days_left": %d, "cycle_days": %d, "cycle_end": %q}`,
						2*c.amount, c.daysLeft, c.cycleDays, c.cycleEnd)
					if status != 200 || !jsonEqual(t, body, want) {
						t.Fatalf("POST quote 2 seats = %d %s, want %s", status, body, want)
					}
					wantOutcome(t, "confirmed", w.reserve(t, basic, "res_tech_2", true), purchaseReserved)
					w.settle(t)
					if l := w.charges(t, basic, ""); len(l.Data) != 0 {
						t.Fatalf("charged before the technician exists: %+v", l.Data)
					}
					w.publish(t, basic, technicianCreated("tech_2", "res_tech_2"))
					w.settle(t)
					w.waitSeats(t, basic, ports.Seats{Total: 3, Used: 3, Available: 0})
					l := w.charges(t, basic, "").Data
					if len(l) != 1 || l[0].Amount != c.amount || l[0].Reason != "seat_purchase" || *l[0].TechnicianID != "tech_2" {
						t.Fatalf("charges %+v, want one seat_purchase of %d", l, c.amount)
					}
				})
				t.Run("disable then add → no charge", func(t *testing.T) {
					// S-4: the seat a disabled technician frees is taken by the
					// replacement at no charge; the licence count is unchanged.
					w.addTechnician(t, reuse, "tech_leaver", false)
					w.waitSeats(t, reuse, ports.Seats{Total: 2, Used: 2, Available: 0})
					w.publish(t, reuse, &identityv1.TechnicianDisabled{TechnicianId: "tech_leaver", Reason: "disabled"})
					w.settle(t)
					w.waitSeats(t, reuse, ports.Seats{Total: 2, Used: 1, Available: 1})
					wantOutcome(t, "replacement", w.addTechnician(t, reuse, "tech_replacement", false), reserved)
					w.waitSeats(t, reuse, ports.Seats{Total: 2, Used: 2, Available: 0})
					if l := w.charges(t, reuse, ""); len(l.Data) != 0 {
						t.Fatalf("the replacement was charged: %+v", l.Data)
					}
				})
				t.Run("reduce licence then add in the same cycle → both charged", func(t *testing.T) {
					// S-5: the removed seat stays taken until the cycle ends, so
					// the newcomer buys a seat (charged now) while the leaving
					// one is paid to the end of the cycle.
					w.addTechnician(t, reduce, "tech_leaving", false)
					wantRemoval(t, "tech_leaving", w.scheduleRemoval(t, reduce, "tech_leaving"), removalScheduled, c.cycleEnd)
					sub := w.subscription(t, reduce)
					if sub.Seats != (ports.Seats{Total: 2, Used: 2, Available: 0}) || sub.PendingReductions != 1 {
						t.Fatalf("after the reduction: %+v", sub)
					}
					wantOutcome(t, "newcomer unconfirmed", w.reserve(t, reduce, "res_tech_newcomer", false), quoted)
					wantOutcome(t, "newcomer", w.addTechnician(t, reduce, "tech_newcomer", true), purchaseReserved)
					w.waitSeats(t, reduce, ports.Seats{Total: 3, Used: 3, Available: 0})
					l := w.charges(t, reduce, "").Data
					if len(l) != 1 || l[0].Amount != c.amount || *l[0].TechnicianID != "tech_newcomer" {
						t.Fatalf("charges %+v, want the newcomer's purchase of %d", l, c.amount)
					}
				})
				t.Run("S-7 usage and unused seats", func(t *testing.T) {
					sub := w.subscription(t, basic)
					if sub.Seats != (ports.Seats{Total: 3, Used: 3, Available: 0}) || sub.PendingReductions != 0 {
						t.Fatalf("usage %+v", sub)
					}
					// Nobody logged in: the three seat holders are invited.
					u := w.unused(t, basic, "")
					if len(u.Data) != 3 || u.TotalMonthlyCost != (ports.Money{Amount: 3 * c.unit, Currency: "usd"}) {
						t.Fatalf("unused seats %+v", u)
					}
				})
				t.Run("S-8 plan gates", func(t *testing.T) {
					got := w.features(t, basic)
					want := map[string]bool{"csv_import_end_users": c.csv, "sso": c.sso, "scim_technicians": c.scim}
					for f, enabled := range want {
						if got[f].Enabled != enabled || w.featureEnabled(t, basic, f).GetEnabled() != enabled {
							t.Errorf("%s: %+v, want %v", f, got[f], enabled)
						}
					}
				})
				t.Run("S-9 add-on priced on the subscription", func(t *testing.T) {
					w.setAddOn(t, basic, "ai_copilot", 2500, 2, http.StatusCreated)
				})
				t.Run("S-10 cycle end: removals apply, renewals and add-ons charged", func(t *testing.T) {
					// The day before the end nothing is due.
					w.clock.Set(c.closeAt(t).Add(-24 * time.Hour))
					if n := w.runDue(t); n != 0 {
						t.Fatalf("closed %d cycles on the last day", n)
					}
					w.clock.Set(c.closeAt(t))
					if n := w.runDue(t); n != 3 {
						t.Fatalf("closed %d cycles, want the three accounts'", n)
					}
					months := int64(1)
					if c.period == "annual" {
						months = 12
					}
					for _, tt := range []struct {
						acc         string
						seats       int
						used        int
						charges     map[string]int64
						wantExpired bool
					}{
						{basic, 3, 3, map[string]int64{"seat_purchase": c.amount, "renewal": 3 * c.cycleUnit(), "add_on": 2 * 2500 * months}, false},
						{reuse, 2, 2, map[string]int64{"renewal": 2 * c.cycleUnit()}, false},
						// Three seats less the removed one: two renewed.
						{reduce, 2, 2, map[string]int64{"seat_purchase": c.amount, "renewal": 2 * c.cycleUnit()}, true},
					} {
						sub := w.subscription(t, tt.acc)
						if sub.CycleStart != c.nextStart || sub.CycleEnd != c.nextEnd || sub.Seats.Total != tt.seats ||
							sub.Seats.Used != tt.used || sub.PendingReductions != 0 {
							t.Errorf("%s after the cycle end: %+v", tt.acc, sub)
						}
						got := map[string]int64{}
						for _, ch := range w.charges(t, tt.acc, "").Data {
							got[ch.Reason] += ch.Amount
						}
						if fmt.Sprint(got) != fmt.Sprint(tt.charges) {
							t.Errorf("%s charges %v, want %v", tt.acc, got, tt.charges)
						}
						w.settle(t)
						if n := w.emitted(t, tt.acc)["licence_expired"]; (n == 1) != tt.wantExpired {
							t.Errorf("%s: %d LicenceExpired", tt.acc, n)
						}
					}
				})
			})
		}
	})
}
