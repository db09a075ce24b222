package httpx

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"roster.dev/pkg/problem"
)

// Page sizes of lists (api.md, "Lists").
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// PageParams reads ?limit= (default 50, 1…500) and ?cursor=, a cursor made
// by EncodeCursor with the same version prefix (e.g. "t1:"); after is what
// the cursor carries. Bad values come back as field errors, so a route can
// report them with its other ones.
func PageParams(r *http.Request, prefix string) (limit int, after string, bad []problem.FieldError) {
	limit = DefaultLimit
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			bad = append(bad, problem.FieldError{Field: "limit", Detail: fmt.Sprintf("must be an integer from 1 to %d", MaxLimit)})
		} else {
			limit = n
		}
	}
	if c := q.Get("cursor"); c != "" {
		a, ok := DecodeCursor(prefix, c)
		if !ok {
			bad = append(bad, problem.FieldError{Field: "cursor", Detail: "is not a cursor this API returned"})
		}
		after = a
	}
	return limit, after, bad
}

// EncodeCursor is an opaque cursor carrying after; the prefix versions its
// content so it can change without old cursors being misread.
func EncodeCursor(prefix, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + after))
}

// DecodeCursor reads a cursor made by EncodeCursor with prefix.
func DecodeCursor(prefix, c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	after, ok := strings.CutPrefix(string(b), prefix)
	if !ok || after == "" {
		return "", false
	}
	return after, true
}
