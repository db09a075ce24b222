package roster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"roster.dev/pkg/svc"
	"roster.dev/pkg/svc/svctest"
	"roster.dev/services/seatbilling"
)

// startHostWithScheduler runs the four services in-process on clock, as
// startHostAt does, and hands back seatbilling: its cycle-end scheduler
// polls every 20 ms, and the test can run it itself (RunDue).
func startHostWithScheduler(t *testing.T, db string, clock *testClock) (*svc.Host, *seatbilling.Service) {
	t.Helper()
	services := Services()
	var billing *seatbilling.Service
	for _, s := range services {
		if b, ok := s.(*seatbilling.Service); ok {
			billing = b
		}
	}
	if billing == nil {
		t.Fatal("Services() holds no seatbilling")
	}
	billing.CyclePoll = 20 * time.Millisecond
	h, err := svc.Start(context.Background(), svc.Config{
		DataDir: t.TempDir(), HTTP: "127.0.0.1:0", NATSListen: "off", DB: db, OperatorToken: operator, Now: clock.Now,
	}, services...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	select {
	case <-h.Ready():
	case err := <-h.Errors():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
	return h, billing
}

// flows.md "Licence removal and cycle end", S-5, S-10, I-9, I-7, L-7
// through HTTP with the all-in-one server, on SQLite and PostgreSQL: the
// removal is scheduled for the cycle's last day; the technician keeps
// access and the seat (a newcomer buys one) until the cycle ends; then the
// scheduler drops the seat, charges the renewal for the seats left and
// identity disables the technician as the system; a second run changes
// nothing.
func TestLicenceRemovalAtCycleEnd(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()} // 2026-11-23, cycle 2026-11-01 … 2026-11-30
		h, billing := startHostWithScheduler(t, db, clock)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 3) // 18900 a seat a month
		base := "/v1/accounts/" + acc.id
		tess := addTechnician(t, c, acc, "tess@acme.test")
		uma := addTechnician(t, c, acc, "uma@acme.test")
		awaitSeats(t, c, acc, 3) // every seat taken, confirmed before the clock moves on

		// Tess can log in (a temporary password set by the admin).
		const password = "temporary passphrase 7"
		if code, p := c.do("POST", base+"/technicians/"+tess+"/password", acc.token, map[string]any{"password": password}); code != 204 {
			t.Fatalf("set password: %d %v", code, p)
		}
		if code, s := login(c, acc.id, "tess@acme.test", password); code != 200 {
			t.Fatalf("login: %d %v", code, s)
		}

		// S-5: the seat goes at the end of the cycle.
		route := base + "/technicians/" + tess + "/licence-removal"
		code, got := c.do("POST", route, acc.token, nil, "Idempotency-Key", "remove-tess")
		if code != 200 || got["id"] != tess || got["licence_removal_date"] != "2026-11-30" || got["status"] != "active" {
			t.Fatalf("licence removal: %d %v", code, got)
		}
		// Retried with its key: the stored answer; asked again without
		// one: the same date, nothing new.
		code, hdr, _ := svctest.Do(t, "POST", h.URL()+route, acc.token, nil, "Idempotency-Key", "remove-tess")
		if code != 200 || hdr.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retried: %d %v", code, hdr)
		}
		if code, again := c.do("POST", route, acc.token, map[string]any{}); code != 200 || again["licence_removal_date"] != "2026-11-30" {
			t.Fatalf("asked again: %d %v", code, again)
		}
		_, sub := c.do("GET", base+"/subscription", acc.token, nil)
		if seats := sub["seats"].(map[string]any); sub["pending_reductions"] != 1.0 || seats["total"] != 3.0 || seats["used"] != 3.0 || seats["available"] != 0.0 {
			t.Fatalf("subscription with a removal pending: %v", sub)
		}

		// The pending seat is not free for reuse: a newcomer needs a
		// purchase (402), and both seats are charged.
		code, p := c.do("POST", base+"/technicians", acc.token, technician("vera@acme.test", ""))
		if code != 402 || problemType(p) != problems+"seat-purchase-required" {
			t.Fatalf("newcomer while the seat is pending: %d %v", code, p)
		}
		newcomer := technician("vera@acme.test", "")
		newcomer["confirm_seat_purchase"] = true
		if code, p := c.do("POST", base+"/technicians", acc.token, newcomer); code != 201 {
			t.Fatalf("newcomer with a purchase: %d %v", code, p)
		}
		awaitSeats(t, c, acc, 4)

		// I-9: the last admin cannot have their licence removed.
		code, p = c.do("POST", base+"/technicians/"+acc.adminID+"/licence-removal", acc.token, nil)
		if code != 409 || problemType(p) != problems+"last-admin" {
			t.Fatalf("last admin: %d %v", code, p)
		}
		// A disabled technician holds no seat to remove (S-4, S-5).
		if code, p := c.do("POST", base+"/technicians/"+uma+"/disable", acc.token, nil); code != 200 {
			t.Fatalf("disable: %d %v", code, p)
		}
		code, p = c.do("POST", base+"/technicians/"+uma+"/licence-removal", acc.token, nil)
		if code != 409 || problemType(p) != problems+"not-occupying-seat" {
			t.Fatalf("disabled technician: %d %v", code, p)
		}
		// L-7: another account's token sees nothing.
		other := createAccount(t, c, "roster", "pro", 2)
		if code, p := c.do("POST", route, other.token, nil); code != 404 {
			t.Fatalf("another account's token: %d %v", code, p)
		}

		// Until the cycle ends Tess keeps access.
		clock.Advance(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC).Sub(clock.Now()))
		if n, err := billing.RunDue(context.Background()); err != nil || n != 0 {
			t.Fatalf("closed %d cycles on the cycle's last day: %v", n, err)
		}
		if code, s := login(c, acc.id, "tess@acme.test", password); code != 200 {
			t.Fatalf("login on the last day: %d %v", code, s)
		}
		if _, got := c.do("GET", base+"/technicians/"+tess, acc.token, nil); got["status"] != "active" {
			t.Fatalf("on the last day: %v", got)
		}

		// The cycle ends; the scheduler's poll closes it.
		clock.Advance(time.Date(2026, 12, 1, 0, 0, 30, 0, time.UTC).Sub(clock.Now()))
		svctest.EventuallySeen(t, "Tess disabled at cycle end", func() bool {
			_, got = c.do("GET", base+"/technicians/"+tess, acc.token, nil)
			return got["status"] == "disabled"
		}, func() string { return fmt.Sprint(got) })
		if got["licence_removal_date"] != nil {
			t.Errorf("licence_removal_date after the removal: %v", got["licence_removal_date"])
		}
		// I-7: she cannot log in any more.
		if code, p := login(c, acc.id, "tess@acme.test", password); code != 401 || problemType(p) != problems+"invalid-credentials" {
			t.Fatalf("login after the cycle end: %d %v", code, p)
		}
		// rolepolicy denies her every check.
		svctest.Eventually(t, "rolepolicy to deny Tess", func() bool {
			_, r := c.do("GET", base+"/technicians/"+tess+"/role", acc.token, nil)
			return r["denied"] == true
		})
		// Disabled by the system, audited as such.
		var disabled map[string]any
		svctest.Eventually(t, "technician.disabled audited", func() bool {
			_, a := c.do("GET", base+"/audit?action=technician.disabled&target="+tess, acc.token, nil)
			d, _ := a["data"].([]any)
			if len(d) == 1 {
				disabled = d[0].(map[string]any)
			}
			return len(d) == 1
		})
		if actor := disabled["actor"].(map[string]any); actor["type"] != "system" {
			t.Fatalf("technician.disabled by %v, want the system", actor)
		}
		if data := disabled["data"].(map[string]any); data["reason"] != "licence_removed" {
			t.Fatalf("technician.disabled data %v, want reason licence_removed", data)
		}

		// S-10: four seats less Tess's: 3 × 18900 renewed for December.
		_, sub = c.do("GET", base+"/subscription", acc.token, nil)
		seats := sub["seats"].(map[string]any)
		if seats["total"] != 3.0 || seats["used"] != 2.0 || sub["pending_reductions"] != 0.0 ||
			sub["cycle_start"] != "2026-12-01" || sub["cycle_end"] != "2026-12-31" {
			t.Fatalf("subscription after the cycle end: %v", sub)
		}
		wantCharges := func(what string) {
			t.Helper()
			_, ch := c.do("GET", base+"/charges", acc.token, nil)
			d, _ := ch["data"].([]any)
			if len(d) != 2 {
				t.Fatalf("%s: charges %v, want the purchase and one renewal", what, ch)
			}
			purchase, renewal := d[0].(map[string]any), d[1].(map[string]any)
			if purchase["reason"] != "seat_purchase" || purchase["amount"] != 5040.0 {
				t.Fatalf("%s: purchase %v", what, purchase)
			}
			if renewal["reason"] != "renewal" || renewal["amount"] != 3.0*18900 || renewal["currency"] != "usd" ||
				renewal["technician_id"] != nil || renewal["created_at"] != "2026-12-01T00:00:30Z" {
				t.Fatalf("%s: renewal %v", what, renewal)
			}
		}
		wantCharges("after the cycle end")

		// Running the scheduler again changes nothing.
		for range 2 {
			if n, err := billing.RunDue(context.Background()); err != nil || n != 0 {
				t.Fatalf("a second run closed %d cycles: %v", n, err)
			}
		}
		wantCharges("after running again")
		_, again := c.do("GET", base+"/subscription", acc.token, nil)
		if again["seats"].(map[string]any)["total"] != 3.0 || again["cycle_end"] != "2026-12-31" {
			t.Fatalf("subscription after running again: %v", again)
		}
		// The audit record is asynchronous by contract, and audit consumes
		// seatbilling's stream (licence.expired) apart from identity's.
		for _, action := range []string{"licence_removal.scheduled", "licence.expired", "technician.disabled"} {
			var a map[string]any
			svctest.EventuallySeen(t, action+" audited once", func() bool {
				_, a = c.do("GET", base+"/audit?action="+action+"&target="+tess, acc.token, nil)
				return count(a) == 1
			}, func() string { return fmt.Sprint(a) })
		}
	})
}

// I-9 over S-5: a removal may not take the account's last admin who stays
// (409 at scheduling); and when admins change after scheduling (the other
// admin disabled), the cycle end still drops the seat but identity keeps
// the last active admin enabled.
func TestLicenceExpiryKeepsTheLastAdmin(t *testing.T) {
	t.Parallel()
	svctest.EachBackend(t, func(t *testing.T, db string) {
		clock := &testClock{now: fixedClock()}
		h, _ := startHostWithScheduler(t, db, clock)
		c := client{t, h.URL()}
		acc := createAccount(t, c, "roster", "growth", 3)
		base := "/v1/accounts/" + acc.id

		// Bea, a second admin: roster applies the requested role at her
		// first login.
		code, bea := c.do("POST", base+"/technicians", acc.token, technician("bea@acme.test", "Admin"))
		if code != 201 {
			t.Fatalf("add: %d %v", code, bea)
		}
		beaID := bea["id"].(string)
		awaitSeats(t, c, acc, 2)
		const password = "temporary passphrase 7"
		if code, p := c.do("POST", base+"/technicians/"+beaID+"/password", acc.token, map[string]any{"password": password}); code != 204 {
			t.Fatalf("set password: %d %v", code, p)
		}
		if code, s := login(c, acc.id, "bea@acme.test", password); code != 200 {
			t.Fatalf("login: %d %v", code, s)
		}
		svctest.Eventually(t, "Bea an admin", func() bool {
			_, got := c.do("GET", base+"/technicians/"+beaID, acc.token, nil)
			return got["role"] == "Admin"
		})

		// Bea's licence goes at cycle end; then the first admin is the last
		// one who stays, and cannot go too.
		if code, p := c.do("POST", base+"/technicians/"+beaID+"/licence-removal", acc.token, nil); code != 200 {
			t.Fatalf("Bea's licence removal: %d %v", code, p)
		}
		code, p := c.do("POST", base+"/technicians/"+acc.adminID+"/licence-removal", acc.token, nil)
		if code != 409 || problemType(p) != problems+"last-admin" {
			t.Fatalf("the admin who would stay alone: %d %v", code, p)
		}
		// Disabling the first admin is allowed (Bea is an active admin):
		// now Bea will be the last one at cycle end.
		if code, p := c.do("POST", base+"/technicians/"+acc.adminID+"/disable", acc.token, nil); code != 200 {
			t.Fatalf("disable the first admin: %d %v", code, p)
		}

		clock.Advance(time.Date(2026, 12, 1, 0, 0, 30, 0, time.UTC).Sub(clock.Now()))
		var got map[string]any
		svctest.EventuallySeen(t, "identity to apply LicenceExpired", func() bool {
			_, got = c.do("GET", base+"/technicians/"+beaID, acc.token, nil)
			return got["licence_removal_date"] == nil
		}, func() string { return fmt.Sprint(got) })
		if got["status"] != "active" {
			t.Fatalf("the last admin after the cycle end: %v", got)
		}
		if code, s := login(c, acc.id, "bea@acme.test", password); code != 200 {
			t.Fatalf("the last admin's login: %d %v", code, s)
		}
		// seatbilling dropped the seat all the same.
		_, sub := c.do("GET", base+"/subscription", acc.token, nil)
		if seats := sub["seats"].(map[string]any); seats["total"] != 2.0 || sub["pending_reductions"] != 0.0 {
			t.Fatalf("subscription: %v", sub)
		}
	})
}
