package roster

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// run executes the roster command line in-process and returns its output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String() + errOut.String(), err
}

// The admin commands drive the public HTTP API: accounts create, tech
// add|ls|show|disable|enable, endusers, with tables or --json.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	h, _ := startHostAt(t, t.TempDir(), "", fixedClock)
	srv := "--server=" + h.URL()
	op := "--token=" + operator

	out, err := run(t, "accounts", "create", srv, op, "--name=Acme", "--profile=roster", "--plan=pro", "--seats=2",
		"--billing-anchor=2026-11-01", "--admin-email=ada@acme.test", "--admin-first-name=Ada", "--admin-last-name=Admin")
	if err != nil {
		t.Fatalf("accounts create: %v\n%s", err, out)
	}
	acc := regexp.MustCompile(`account (acc_\w+)`).FindStringSubmatch(out)
	tok := regexp.MustCompile(`API token \(shown once\): (\S+)`).FindStringSubmatch(out)
	if acc == nil || tok == nil {
		t.Fatalf("no account or token in:\n%s", out)
	}
	as := []string{srv, "--token=" + tok[1], "--account=" + acc[1]}

	out, err = run(t, append([]string{"tech", "add", "--email=tess@acme.test", "--first-name=Tess", "--last-name=Tech", "--role=Billing"}, as...)...)
	if err != nil || !strings.Contains(out, "tess@acme.test") || !strings.Contains(out, "invited") || !strings.Contains(out, "Billing") {
		t.Fatalf("tech add: %v\n%s", err, out)
	}
	// No seat left: the 402 names the quote and how to confirm.
	out, err = run(t, append([]string{"tech", "add", "--email=third@acme.test", "--first-name=T", "--last-name=T"}, as...)...)
	if err == nil || !strings.Contains(err.Error(), "402") || !strings.Contains(err.Error(), "--confirm-seat-purchase") {
		t.Fatalf("tech add without seat: %v\n%s", err, out)
	}
	out, err = run(t, append([]string{"tech", "ls", "--json"}, as...)...)
	if err != nil {
		t.Fatalf("tech ls: %v\n%s", err, out)
	}
	var page struct {
		Data []struct{ ID, Email, Status string }
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Data) != 2 {
		t.Fatalf("tech ls --json: %v\n%s", err, out)
	}
	var tess string
	for _, d := range page.Data {
		if d.Email == "tess@acme.test" {
			tess = d.ID
		}
	}
	out, err = run(t, append([]string{"tech", "disable", tess}, as...)...)
	if err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("tech disable: %v\n%s", err, out)
	}
	out, err = run(t, append([]string{"tech", "ls", "--hide-disabled"}, as...)...)
	if err != nil || strings.Contains(out, "tess@acme.test") || !strings.Contains(out, "ada@acme.test") {
		t.Fatalf("tech ls --hide-disabled: %v\n%s", err, out)
	}
	out, err = run(t, append([]string{"tech", "show", tess}, as...)...)
	if err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("tech show: %v\n%s", err, out)
	}
	// Errors name the problem.
	if _, err = run(t, append([]string{"tech", "show", "tech_nope"}, as...)...); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("tech show unknown: %v", err)
	}
	if _, err = run(t, "tech", "ls", srv, "--account="+acc[1]); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("no token: %v", err)
	}
}
