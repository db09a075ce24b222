package ports

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/services/audit/app"
	"roster.dev/services/audit/domain"
)

// HTTP serves the audit routes (api.md).
type HTTP struct {
	App  *app.App
	Auth *auth.Authenticator
	Log  *slog.Logger
	// Connect opens the NATS connection the live tail reads the public
	// audit stream with.
	Connect func(name string) (*nats.Conn, error)

	connOnce sync.Once
	conn     *nats.Conn
	connErr  error
}

// Routes mounts the routes: the operator token, or an account token with
// audit:read for its own account.
func (h *HTTP) Routes(r chi.Router) {
	// The checkpoint keys are public: whoever holds an export verifies it
	// with them.
	r.Get("/v1/audit/keys", h.keys)
	r.Group(func(r chi.Router) {
		r.Use(h.Auth.Require("audit:read"))
		r.Get("/v1/accounts/{acc}/audit", h.list)
		r.Get("/v1/accounts/{acc}/audit/verify", h.verify)
		r.Get("/v1/accounts/{acc}/audit/checkpoints", h.checkpoints)
		r.Get("/v1/accounts/{acc}/audit/stream", h.tail)
	})
	r.Group(func(r chi.Router) {
		r.Use(h.Auth.RequireOperator())
		r.Get("/v1/audit/stream", h.tail)
	})
}

// ListResponse is a page of records (api.md, "Lists").
type ListResponse struct {
	Data []domain.Record `json:"data"`
	// NextCursor is null on the last page.
	NextCursor *string `json:"next_cursor"`
}

// list: GET /v1/accounts/{acc}/audit?action=&actor=&target=&since=&until=&limit=&cursor= (A-3).
func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	f, format, p := parseFilter(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	if format != "json" {
		h.export(w, r, f, format)
		return
	}
	page, err := h.App.List(r.Context(), f)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	res := ListResponse{Data: page.Records}
	if page.Next != 0 {
		c := EncodeCursor(page.Next)
		res.NextCursor = &c
	}
	httpx.JSON(w, http.StatusOK, res)
}

// verify: GET /v1/accounts/{acc}/audit/verify.
func (h *HTTP) verify(w http.ResponseWriter, r *http.Request) {
	res, err := h.App.Verify(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func parseFilter(r *http.Request) (app.Filter, string, *problem.Problem) {
	q := r.URL.Query()
	f := app.Filter{
		AccountID: chi.URLParam(r, "acc"),
		Action:    q.Get("action"),
		Actor:     q.Get("actor"),
		Target:    q.Get("target"),
	}
	limit, after, errs := httpx.PageParams(r, cursorPrefix)
	f.Limit = limit
	if after != "" {
		seq, err := strconv.ParseInt(after, 10, 64)
		if err != nil || seq < 1 {
			errs = append(errs, problem.FieldError{Field: "cursor", Detail: "is not a cursor this API returned"})
		}
		f.After = seq
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs = append(errs, problem.FieldError{Field: p.name, Detail: "must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z"})
			}
			*p.dst = t
		}
	}
	format := q.Get("format")
	switch format {
	case "":
		format = "json"
	case "json", "jsonl", "csv":
	default:
		errs = append(errs, problem.FieldError{Field: "format", Detail: "must be json (a page), jsonl or csv (an export)"})
	}
	if len(errs) > 0 {
		return app.Filter{}, "", problem.Invalid(errs...)
	}
	return f, format, nil
}

// cursorPrefix versions the cursor's content, so it can change later
// without old cursors being misread.
const cursorPrefix = "s1:"

// EncodeCursor is the opaque cursor of the page after sequence seq.
func EncodeCursor(seq int64) string {
	return httpx.EncodeCursor(cursorPrefix, strconv.FormatInt(seq, 10))
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(c string) (int64, bool) {
	s, ok := httpx.DecodeCursor(cursorPrefix, c)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil || seq < 1 {
		return 0, false
	}
	return seq, true
}
