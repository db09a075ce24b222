package profile

import "testing"

// S-1: the price tables, per seat per month in cents (annual / monthly).
func TestPlanPrices(t *testing.T) {
	cases := []struct {
		profile, plan   string
		annual, monthly int64
		custom          bool
	}{
		{"atera-it", "professional", 14900, 16900, false},
		{"atera-it", "expert", 18900, 22900, false},
		{"atera-it", "master", 21900, 26900, false},
		{"atera-it", "enterprise", 0, 0, true},
		{"atera-msp", "pro", 12900, 13900, false},
		{"atera-msp", "growth", 17900, 18900, false},
		{"atera-msp", "power", 20900, 24900, false},
		{"atera-msp", "superpower", 0, 0, true},
		{"roster", "pro", 12900, 13900, false},
		{"atlan", "starter", 0, 0, true},
		{"atlan", "premier", 0, 0, true},
		{"atlan", "enterprise", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.profile+"/"+c.plan, func(t *testing.T) {
			p, err := Get(c.profile)
			if err != nil {
				t.Fatal(err)
			}
			pl, ok := p.SeatBilling.Plans[c.plan]
			if !ok {
				t.Fatalf("no plan %s", c.plan)
			}
			if pl.AnnualMonthly != c.annual || pl.Monthly != c.monthly || pl.Custom != c.custom {
				t.Fatalf("got %+v", pl)
			}
		})
	}
}

// built-in roles per profile.
func TestBuiltInRoles(t *testing.T) {
	want := map[string][]string{
		"atera-it":  {"Admin", "Beginner"},
		"atera-msp": {"Admin", "Beginner"},
		"roster":    {"Admin", "Beginner", "Billing", "Account manager"},
		"atlan":     {"Admin", "Member", "Guest"},
	}
	for id, names := range want {
		p, err := Get(id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range p.RolePolicy.BuiltInRoles {
			got = append(got, r.Name)
		}
		if len(got) != len(names) {
			t.Fatalf("%s: built-in roles %v, want %v", id, got, names)
		}
		for i := range names {
			if got[i] != names[i] {
				t.Fatalf("%s: built-in roles %v, want %v", id, got, names)
			}
		}
	}
	if _, err := Get("nope"); err == nil {
		t.Fatal("unknown profile accepted")
	}
}
