package seatbilling_test

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/svc/svctest"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/seatbilling/ports"
)

func loggedIn(technicianID string, at time.Time) *identityv1.TechnicianLoggedIn {
	return &identityv1.TechnicianLoggedIn{TechnicianId: technicianID, Method: "password", LoggedInAt: timestamppb.New(at)}
}

func firstLogin(technicianID string, at time.Time) *identityv1.FirstLogin {
	return &identityv1.FirstLogin{TechnicianId: technicianID, Method: "invitation", LoggedInAt: timestamppb.New(at)}
}

// S-7, I-11: GET …/seats/unused lists, by the injected clock, the seats of
// active technicians with no login in inactive_days (default 30) and of
// invited ones who never logged in, each at the monthly unit price, with
// the total. Login times come from FirstLogin and TechnicianLoggedIn, in
// whatever order they arrive.
func TestUnusedSeatsReport(t *testing.T) {
	svctest.EachBackend(t, func(t *testing.T, dbURL string) {
		w := newBillingWorld(t, dbURL, seatTestNow, nil)
		const acc = "acc_unused"
		now := seatTestNow
		day := 24 * time.Hour
		w.openAccount(t, acc, 5) // atera-msp growth monthly: 18900
		for _, tech := range []string{"tech_a", "tech_b", "tech_c", "tech_d"} {
			w.addTechnician(t, acc, tech, false)
		}
		w.publish(t, acc,
			firstLogin("tech_a", now.Add(-40*day)), loggedIn("tech_a", now.Add(-40*day)),
			firstLogin("tech_b", now.Add(-2*day)), loggedIn("tech_b", now.Add(-2*day)),
			// A later login first, then an older one delivered late: the
			// latest stays.
			loggedIn("tech_b", now.Add(-time.Hour)), loggedIn("tech_b", now.Add(-50*day)),
			firstLogin("tech_d", now.Add(-90*day)), loggedIn("tech_d", now.Add(-31*day)),
		)
		w.settle(t)

		admin := "tech_admin_" + acc
		at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
		usd := ports.Money{Amount: 18900, Currency: "usd"}
		got := w.unused(t, acc, "")
		want := ports.UnusedSeats{
			InactiveDays: 30, Cutoff: now.Add(-30 * day),
			Data: []ports.UnusedSeat{
				{TechnicianID: admin, Status: "invited", Reason: "never_logged_in", SeatSince: seatTestNow, MonthlyCost: usd},
				{TechnicianID: "tech_c", Status: "invited", Reason: "never_logged_in", SeatSince: seatTestNow, MonthlyCost: usd},
				{TechnicianID: "tech_a", Status: "active", Reason: "inactive", SeatSince: seatTestNow, LastLoginAt: at(40 * day), MonthlyCost: usd},
				{TechnicianID: "tech_d", Status: "active", Reason: "inactive", SeatSince: seatTestNow, LastLoginAt: at(31 * day), MonthlyCost: usd},
			},
			TotalMonthlyCost: ports.Money{Amount: 4 * 18900, Currency: "usd"},
		}
		if !unusedEqual(got, want) {
			t.Fatalf("GET unused =\n%+v\nwant\n%+v", got, want)
		}
		// The window: 35 days leaves tech_d out, 40 days tech_a too (a login
		// exactly 40 days ago is within it).
		if got := w.unused(t, acc, "?inactive_days=35"); len(got.Data) != 3 || got.TotalMonthlyCost.Amount != 3*18900 {
			t.Errorf("35 days: %+v", got)
		}
		if got := w.unused(t, acc, "?inactive_days=40"); len(got.Data) != 2 || got.Data[1].TechnicianID != "tech_c" {
			t.Errorf("40 days: %+v", got)
		}
		// The injected clock decides: ten days on, tech_b is idle at 10 days.
		w.clock.Advance(10 * day)
		if got := w.unused(t, acc, "?inactive_days=10"); len(got.Data) != 5 || got.Data[4].TechnicianID != "tech_b" {
			t.Errorf("ten days later: %+v", got)
		}
		// A disabled technician holds no seat; a seat pending removal is
		// leaving anyway (S-5): neither is listed.
		w.publish(t, acc, &identityv1.TechnicianDisabled{TechnicianId: "tech_c"})
		w.settle(t)
		wantRemoval(t, "tech_a", w.scheduleRemoval(t, acc, "tech_a"), removalScheduled, "2026-12-31")
		got = w.unused(t, acc, "")
		if len(got.Data) != 2 || got.Data[0].TechnicianID != admin || got.Data[1].TechnicianID != "tech_d" {
			t.Errorf("after disabling tech_c and removing tech_a's seat: %+v", got)
		}

		for _, q := range []string{"?inactive_days=0", "?inactive_days=-3", "?inactive_days=3651", "?inactive_days=x", "?inactive_days="} {
			status, _, body := svctest.Get(t, w.url+"/v1/accounts/"+acc+"/seats/unused"+q, billingOperator)
			if q == "?inactive_days=" {
				if status != http.StatusOK { // empty means the default
					t.Errorf("GET unused%s = %d %s", q, status, body)
				}
				continue
			}
			p := decodeProblem(t, body)
			if status != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Field != "inactive_days" {
				t.Errorf("GET unused%s = %d %s, want 422 naming inactive_days", q, status, body)
			}
		}
		if status, _, body := svctest.Get(t, w.url+"/v1/accounts/acc_nobody/seats/unused", billingOperator); status != http.StatusNotFound {
			t.Errorf("unknown account: %d %s", status, body)
		}
	})
}

// S-7 under annual billing: a seat costs the annual-billing monthly price.
func TestUnusedSeatsAnnualCost(t *testing.T) {
	w := newBillingWorld(t, "", seatTestNow, nil)
	w.openAt(t, "acc_unused_annual", "atera-it", "master", "annual", 0, "2026-03-01", 2)
	got := w.unused(t, "acc_unused_annual", "?inactive_days=7")
	if len(got.Data) != 1 || got.Data[0].MonthlyCost != (ports.Money{Amount: 21900, Currency: "usd"}) ||
		got.TotalMonthlyCost != (ports.Money{Amount: 21900, Currency: "usd"}) || got.InactiveDays != 7 {
		t.Fatalf("annual report: %+v", got)
	}
}

func unusedEqual(a, b ports.UnusedSeats) bool {
	if a.InactiveDays != b.InactiveDays || !a.Cutoff.Equal(b.Cutoff) || a.TotalMonthlyCost != b.TotalMonthlyCost || len(a.Data) != len(b.Data) {
		return false
	}
	for i := range a.Data {
		x, y := a.Data[i], b.Data[i]
		if x.TechnicianID != y.TechnicianID || x.Status != y.Status || x.Reason != y.Reason || !x.SeatSince.Equal(y.SeatSince) ||
			x.MonthlyCost != y.MonthlyCost || (x.LastLoginAt == nil) != (y.LastLoginAt == nil) ||
			(x.LastLoginAt != nil && !x.LastLoginAt.Equal(*y.LastLoginAt)) {
			return false
		}
	}
	return true
}
