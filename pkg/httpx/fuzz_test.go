package httpx

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzBearerToken: the Authorization header parser of every route returns
// the token trimmed, or "" for anything that is not "Bearer <token>".
func FuzzBearerToken(f *testing.F) {
	for _, h := range []string{"Bearer rst_abc", "bearer  rss_x ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "", "BEARER\trst_y"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		tok := BearerToken(r)
		if tok == "" {
			return
		}
		if !strings.EqualFold(h[:7], "bearer ") || tok != strings.TrimSpace(tok) || !strings.Contains(h, tok) {
			t.Fatalf("%q → %q", h, tok)
		}
	})
}
