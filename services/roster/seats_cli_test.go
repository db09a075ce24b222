package roster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"roster.dev/pkg/svc/svctest"
)

// runSeats executes the roster command line with the seat-billing
// commands, whether cli.go registers them yet or not.
func runSeats(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	if c, _, err := cmd.Find([]string{"charges"}); err != nil || c == cmd {
		cmd.AddCommand(seatsCommands(&out)...)
	}
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String() + errOut.String(), err
}

// api.md "CLI": roster seats (usage, cycle, pending reductions, add-ons),
// roster seats quote N, roster seats unused [--inactive-days N] and roster
// charges drive the HTTP API, with tables or --json; S-3, S-5, S-7, S-9.
func TestSeatsCommands(t *testing.T) {
	clock := &testClock{now: fixedClock()} // 2026-11-23: 8 of November's 30 days left
	h, _ := startHostAt(t, t.TempDir(), "", clock.Now)
	srv := "--server=" + h.URL()
	out, err := run(t, "accounts", "create", srv, "--token="+operator, "--name=Acme", "--profile=roster", "--plan=growth",
		"--seats=2", "--billing-anchor=2026-11-01", "--admin-email=ada@acme.test", "--admin-first-name=Ada", "--admin-last-name=Admin")
	if err != nil {
		t.Fatalf("accounts create: %v\n%s", err, out)
	}
	acc := regexp.MustCompile(`account (acc_\w+)`).FindStringSubmatch(out)
	tok := regexp.MustCompile(`API token \(shown once\): (\S+)`).FindStringSubmatch(out)
	if acc == nil || tok == nil {
		t.Fatalf("no account or token in:\n%s", out)
	}
	as := []string{srv, "--token=" + tok[1], "--account=" + acc[1]}
	c := client{t, h.URL()}
	a := account{id: acc[1], token: tok[1]}
	svctest.Eventually(t, "the subscription", func() bool {
		code, _ := c.do("GET", "/v1/accounts/"+a.id+"/subscription", a.token, nil)
		return code == 200
	})
	tess := addTechnician(t, c, a, "tess@acme.test")
	awaitSeats(t, c, a, 2)

	// roster seats: usage, cycle, pending reductions.
	if code, p := c.do("POST", "/v1/accounts/"+a.id+"/technicians/"+tess+"/licence-removal", a.token, nil); code != 200 {
		t.Fatalf("licence removal: %d %v", code, p)
	}
	if code, _, b := svctest.Do(t, "PUT", h.URL()+"/v1/accounts/"+a.id+"/subscription/add-ons/ai_copilot", a.token,
		map[string]any{"price": 2500, "quantity": 2}); code != 201 {
		t.Fatalf("PUT add-on: %d %s", code, b)
	}
	out, err = runSeats(t, append([]string{"seats"}, as...)...)
	for _, want := range []string{"growth (monthly)", "189.00 USD per seat per month", "2 total, 2 used, 0 available",
		"2026-11-01 … 2026-11-30", "pending reductions  1", "AI Copilot (ai_copilot): 25.00 USD × 2 per month"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("roster seats: %v, lacks %q:\n%s", err, want, out)
		}
	}
	out, err = runSeats(t, append([]string{"seats", "--json"}, as...)...)
	var sub struct {
		Seats             struct{ Total, Used int }
		PendingReductions int `json:"pending_reductions"`
	}
	if err != nil || json.Unmarshal([]byte(out), &sub) != nil || sub.Seats.Total != 2 || sub.PendingReductions != 1 {
		t.Fatalf("roster seats --json: %v\n%s", err, out)
	}

	// roster seats quote N: 2 × 18900 × 8 / 30.
	out, err = runSeats(t, append([]string{"seats", "quote", "2"}, as...)...)
	if err != nil || !strings.Contains(out, "2 seat(s) now: 100.80 USD (8 of 30 days left; the cycle ends 2026-11-30)") {
		t.Fatalf("roster seats quote 2: %v\n%s", err, out)
	}
	if _, err := runSeats(t, append([]string{"seats", "quote", "0"}, as...)...); err == nil || !strings.Contains(err.Error(), "422") ||
		!strings.Contains(err.Error(), "seats") {
		t.Fatalf("roster seats quote 0: %v", err)
	}
	if _, err := runSeats(t, append([]string{"seats", "quote", "two"}, as...)...); err == nil {
		t.Fatal("roster seats quote two: no error")
	}

	// A purchase (the removed seat is not free for reuse, S-5), then
	// roster charges.
	if out, err := run(t, append([]string{"tech", "add", "--email=uma@acme.test", "--first-name=Uma", "--last-name=U", "--confirm-seat-purchase"}, as...)...); err != nil {
		t.Fatalf("tech add: %v\n%s", err, out)
	}
	awaitSeats(t, c, a, 3)
	var charges string
	svctest.EventuallySeen(t, "the purchase in roster charges", func() bool {
		charges, err = runSeats(t, append([]string{"charges"}, as...)...)
		return err == nil && strings.Contains(charges, "seat_purchase")
	}, func() string { return fmt.Sprint(err, charges) })
	for _, want := range []string{"ID", "REASON", "seat_purchase", "50.40 USD", "2026-11-23T12:00:00Z", "1 charge(s), 50.40 USD in all"} {
		if !strings.Contains(charges, want) {
			t.Fatalf("roster charges lacks %q:\n%s", want, charges)
		}
	}
	out, err = runSeats(t, append([]string{"charges", "--json"}, as...)...)
	var ledger struct {
		Data []struct {
			ID, Reason string
			Amount     int64
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &ledger) != nil || len(ledger.Data) != 1 || ledger.Data[0].Amount != 5040 {
		t.Fatalf("roster charges --json: %v\n%s", err, out)
	}

	// roster seats unused: nobody logged in; Tess's seat leaves at cycle end
	// and is not listed.
	out, err = runSeats(t, append([]string{"seats", "unused"}, as...)...)
	if err != nil || !strings.Contains(out, "never_logged_in") || strings.Contains(out, tess) ||
		!strings.Contains(out, "2 unused seat(s) (no login since 2026-10-24T12:00:00Z): 378.00 USD per month") {
		t.Fatalf("roster seats unused: %v\n%s", err, out)
	}
	out, err = runSeats(t, append([]string{"seats", "unused", "--inactive-days=7", "--json"}, as...)...)
	var unused struct {
		InactiveDays int `json:"inactive_days"`
		Data         []any
	}
	if err != nil || json.Unmarshal([]byte(out), &unused) != nil || unused.InactiveDays != 7 || len(unused.Data) != 2 {
		t.Fatalf("roster seats unused --json: %v\n%s", err, out)
	}
	if _, err := runSeats(t, append([]string{"seats", "unused", "--inactive-days=0"}, as...)...); err == nil || !strings.Contains(err.Error(), "inactive_days") {
		t.Fatalf("--inactive-days=0: %v", err)
	}

	// ROSTER_ACCOUNT stands in for --account; without either it is an error.
	t.Setenv("ROSTER_ACCOUNT", a.id)
	if out, err := runSeats(t, "seats", srv, "--token="+a.token); err != nil || !strings.Contains(out, "3 total") {
		t.Fatalf("with ROSTER_ACCOUNT: %v\n%s", err, out)
	}
	t.Setenv("ROSTER_ACCOUNT", "")
	if _, err := runSeats(t, "charges", srv, "--token="+a.token); err == nil || !strings.Contains(err.Error(), "--account") {
		t.Fatalf("no account: %v", err)
	}
}
