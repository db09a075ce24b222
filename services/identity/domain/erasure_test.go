package domain

import (
	"testing"
	"time"
)

// I-3 (roster): erasure after the retention period.
func TestErase(t *testing.T) {
	disabled := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		status    string
		retention int
		now       time.Time
		problem   string
	}{
		{"not offered (atera)", StatusDisabled, 0, disabled.AddDate(1, 0, 0), "erasure-not-offered"},
		{"active", StatusActive, 30, disabled.AddDate(0, 2, 0), "not-disabled"},
		{"too early", StatusDisabled, 30, disabled.AddDate(0, 0, 29), "retention-not-over"},
		{"after retention", StatusDisabled, 30, disabled.AddDate(0, 0, 30), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tech := Technician{ID: "tech_1", Email: "a@x.test", FirstName: "A", LastName: "B", Phone: "1", Status: c.status, DisabledAt: &disabled}
			p := Erase(&tech, c.retention, c.now)
			switch {
			case c.problem == "" && p != nil:
				t.Fatalf("refused: %v", p)
			case c.problem != "" && (p == nil || p.Type != "https://roster.dev/problems/"+c.problem):
				t.Fatalf("got %v, want %s", p, c.problem)
			case c.problem == "":
				if tech.Email == "a@x.test" || tech.Phone != "" || tech.FirstName == "A" || !tech.Erased {
					t.Fatalf("personal data kept: %+v", tech)
				}
				if tech.Email != Pseudonym("tech_1")+"@erased.invalid" {
					t.Fatalf("pseudonym not stable: %s", tech.Email)
				}
			}
		})
	}
}
