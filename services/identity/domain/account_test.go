package domain

import (
	"testing"
	"time"
)

func TestNewAccountValidate(t *testing.T) {
	today := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	price := int64(15000)
	valid := func() NewAccount {
		return NewAccount{Name: "Acme", Profile: "atera-msp", Plan: "growth", BillingPeriod: "monthly", Seats: 3,
			Admin: Person{Email: "ada@acme.test", FirstName: "Ada", LastName: "Lovelace"}}
	}
	cases := []struct {
		name   string
		edit   func(*NewAccount)
		fields []string
	}{
		{"valid", func(*NewAccount) {}, nil},
		{"unknown profile", func(n *NewAccount) { n.Profile = "nope" }, []string{"profile"}},
		{"plan the profile lacks", func(n *NewAccount) { n.Plan = "master" }, []string{"plan"}},
		{"custom plan needs a price", func(n *NewAccount) { n.Plan = "superpower" }, []string{"price_per_seat"}},
		{"custom plan with price", func(n *NewAccount) { n.Plan = "superpower"; n.PricePerSeat = &price }, nil},
		{"list price plan refuses a price", func(n *NewAccount) { n.PricePerSeat = &price }, []string{"price_per_seat"}},
		{"bad period", func(n *NewAccount) { n.BillingPeriod = "weekly" }, []string{"billing_period"}},
		{"no seats", func(n *NewAccount) { n.Seats = 0 }, []string{"seats"}},
		{"bad anchor", func(n *NewAccount) { n.BillingAnchor = "23/11/2026" }, []string{"billing_anchor"}},
		{"bad admin", func(n *NewAccount) { n.Admin = Person{Email: "not-an-email"} },
			[]string{"admin.email", "admin.first_name", "admin.last_name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := valid()
			c.edit(&n)
			p := n.Validate(today)
			var got []string
			if p != nil {
				for _, e := range p.Errors {
					got = append(got, e.Field)
				}
			}
			if len(got) != len(c.fields) {
				t.Fatalf("bad fields %v, want %v", got, c.fields)
			}
			for i := range got {
				if got[i] != c.fields[i] {
					t.Fatalf("bad fields %v, want %v", got, c.fields)
				}
			}
			if p == nil && n.BillingAnchor != "2026-11-23" && c.name == "valid" {
				t.Fatalf("anchor defaulted to %q", n.BillingAnchor)
			}
		})
	}
}

// I-2: emails compare trimmed and case-insensitively.
func TestEmailKey(t *testing.T) {
	if EmailKey("  Ada@Acme.TEST ") != "ada@acme.test" {
		t.Fatal(EmailKey("  Ada@Acme.TEST "))
	}
}
