package domain

import (
	"testing"

	"roster.dev/pkg/profile"
)

// I-1: required fields differ by profile.
func TestNewTechnicianRequiredFields(t *testing.T) {
	atera, _ := profile.Get("atera-msp")
	roster, _ := profile.Get("roster")
	cases := []struct {
		name   string
		prof   profile.Identity
		req    NewTechnician
		fields []string
	}{
		{"atera needs a role", atera.Identity, NewTechnician{Email: "a@x.test", FirstName: "A", LastName: "B"}, []string{"role"}},
		{"roster role optional", roster.Identity, NewTechnician{Email: "a@x.test", FirstName: "A", LastName: "B"}, nil},
		{"names required", roster.Identity, NewTechnician{Email: "a@x.test"}, []string{"first_name", "last_name"}},
		{"I-2 malformed email", roster.Identity, NewTechnician{Email: "nope", FirstName: "A", LastName: "B"}, []string{"email"}},
		{"email trimmed", roster.Identity, NewTechnician{Email: "  a@x.test ", FirstName: "A", LastName: "B"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.req.Validate(c.prof)
			var got []string
			if p != nil {
				for _, e := range p.Errors {
					got = append(got, e.Field)
				}
			}
			if len(got) != len(c.fields) {
				t.Fatalf("fields %v, want %v", got, c.fields)
			}
			for i := range got {
				if got[i] != c.fields[i] {
					t.Fatalf("fields %v, want %v", got, c.fields)
				}
			}
		})
	}
}

// I-3: the email changes only while disabled.
func TestPatchEmailOnlyWhileDisabled(t *testing.T) {
	email := "new@x.test"
	tech := Technician{Email: "old@x.test", Status: StatusActive, FirstName: "A", LastName: "B"}
	if _, p := (Patch{Email: &email}).Apply(&tech); p == nil || p.Type != "https://roster.dev/problems/email-change-requires-disabled" {
		t.Fatalf("active technician's email changed: %v", p)
	}
	tech.Status = StatusDisabled
	changes, p := (Patch{Email: &email}).Apply(&tech)
	if p != nil || len(changes) != 1 || changes[0] != (Change{"email", "old@x.test", "new@x.test"}) || tech.Email != email {
		t.Fatalf("disabled technician: %v %v", changes, p)
	}
	same := "  OLD@x.test"
	tech2 := Technician{Email: "old@x.test", Status: StatusActive}
	if changes, p := (Patch{Email: &same}).Apply(&tech2); p != nil || len(changes) != 0 {
		t.Fatalf("same email (I-2 compare) is no change: %v %v", changes, p)
	}
}

func TestEmailConflict(t *testing.T) {
	if EmailConflict("a@x", StatusDisabled).Type != "https://roster.dev/problems/email-reserved" ||
		EmailConflict("a@x", StatusInvited).Type != "https://roster.dev/problems/email-in-use" {
		t.Fatal("wrong problem types")
	}
}
