package ports

import (
	"net/url"
	"testing"
	"time"
)

// FuzzTimeParam: the last-active filters (inactive_since, active_since)
// read an RFC 3339 time or a date, in UTC, or name the field; never both,
// never a panic.
func FuzzTimeParam(f *testing.F) {
	for _, s := range []string{"", "2026-11-23", "2026-11-23T12:00:00Z", "2026-11-23T12:00:00.5+02:00", "yesterday", "2026-13-01", "2026-11-23T25:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, bad := timeParam(url.Values{"inactive_since": {s}}, "inactive_since")
		switch {
		case s == "":
			if got != nil || bad != nil {
				t.Fatalf("empty: %v %v", got, bad)
			}
		case got == nil && len(bad) != 1, got != nil && bad != nil:
			t.Fatalf("%q: %v %v", s, got, bad)
		case got != nil && got.Location() != time.UTC:
			t.Fatalf("%q: not UTC: %v", s, got)
		case bad != nil && bad[0].Field != "inactive_since":
			t.Fatalf("%q: names %s", s, bad[0].Field)
		}
	})
}
