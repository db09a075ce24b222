package app

import (
	"testing"
	"time"
)

// H-1, issue 18: events of one employee are ordered by the time the HRIS
// stamped them and, for the same time, by the order their deliveries
// arrived in (delivery ids grow with it) — not by the time alone, which
// made a hire retried after a crash look older than itself.
func TestDeliveryOrderPerEmployee(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	emp := HRISEmployee{AttributesAt: at, AttributesDelivery: "dlv_01a2"}
	for _, c := range []struct {
		what  string
		d     Delivery
		newer bool
	}{
		{"stamped later", Delivery{ID: "dlv_01a1", OccurredAt: at.Add(time.Second)}, true},
		{"stamped earlier", Delivery{ID: "dlv_01a3", OccurredAt: at.Add(-time.Second)}, false},
		{"same time, arrived later", Delivery{ID: "dlv_01a3", OccurredAt: at}, true},
		{"same time, arrived earlier", Delivery{ID: "dlv_01a1", OccurredAt: at}, false},
		{"the same delivery", Delivery{ID: "dlv_01a2", OccurredAt: at}, false},
	} {
		if got := c.d.newerThan(emp); got != c.newer {
			t.Errorf("%s: newer %v, want %v", c.what, got, c.newer)
		}
	}
}
