package httpx

import (
	"net/http/httptest"
	"testing"
)

func TestPageParams(t *testing.T) {
	cases := []struct {
		query string
		limit int
		after string
		bad   []string
	}{
		{"", 50, "", nil},
		{"limit=500", 500, "", nil},
		{"limit=0", 50, "", []string{"limit"}},
		{"limit=501&cursor=nope", 50, "", []string{"limit", "cursor"}},
		{"cursor=" + EncodeCursor("t1:", "tech_9"), 50, "tech_9", nil},
		{"cursor=" + EncodeCursor("c1:", "tech_9"), 50, "", []string{"cursor"}}, // another list's cursor
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			limit, after, bad := PageParams(httptest.NewRequest("GET", "/x?"+c.query, nil), "t1:")
			if limit != c.limit || after != c.after || len(bad) != len(c.bad) {
				t.Fatalf("got %d %q %v", limit, after, bad)
			}
			for i := range bad {
				if bad[i].Field != c.bad[i] {
					t.Fatalf("bad fields %v, want %v", bad, c.bad)
				}
			}
		})
	}
}
