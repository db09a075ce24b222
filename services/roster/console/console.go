// Package console is Roster's web console (issue 12): Go html/template
// pages, htmx for partial updates, every asset embedded (no CDN, works with
// no internet). It is a client of the public HTTP API only — each page
// calls /v1/... over HTTP with the signed-in technician's session token —
// and holds no state of its own.
//
// Authentication: the console's login handler calls POST /v1/auth/login and
// keeps the session token in an HttpOnly, SameSite=Strict cookie (Secure
// when the request came over HTTPS); the token never appears in a URL, a
// page or a log line. Every state-changing request (POST) must carry an
// Origin (or Referer) of this very host: together with SameSite=Strict that
// refuses cross-site request forgery.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Config of the console.
type Config struct {
	// API is the base URL of Roster's public HTTP API (the host's own URL).
	API string
	// Client calls the API (default: a client with a 30 s timeout; the live
	// audit tail uses one without a timeout).
	Client *http.Client
	Log    *slog.Logger
	// Pages are more pages, mounted and shown in the menu after the
	// built-in ones: the hook for the pages of later features.
	//
	// TODO(issue 7, merged after this console was built): "Security" —
	// TOTP enrolment (POST /v1/auth/totp/enroll, /confirm), own sessions
	// (GET/DELETE /v1/auth/sessions), the security policy (GET/PUT
	// …/security-policy), SSO configuration and the sign-in button, API
	// tokens. The login's second-factor step, logout and the reset pages
	// are done (login.go).
	// Issue 8's pages (merged after the console began) are done: CSV
	// import with progress (imports.go), HRIS deliveries, re-drive,
	// mapping editor and secret (directory.go). TODO: a SCIM token page
	// (an API token with the scim scope) belongs with the API tokens page
	// of issue 7 above. Issue 9's pages for layered accounts (users,
	// invitations, personas, purposes, base roles, guest seats) are done
	// (atlan.go).
	Pages []Page
}

// Page is one more console page.
type Page struct {
	// Path is the menu link and the page's route prefix, e.g. "/security".
	Path, Title string
	// Mount adds the page's routes; they run behind the session check
	// (Session(r) is the signed-in technician).
	Mount func(r chi.Router, c *Console)
}

// Console serves the pages.
type Console struct {
	cfg    Config
	client *http.Client
	stream *http.Client
	log    *slog.Logger
	pages  map[string]*template.Template
	nav    []navItem
}

type navItem struct{ Path, Title string }

// New parses the templates.
func New(cfg Config) (*Console, error) {
	if cfg.API == "" {
		return nil, errors.New("console: the API base URL is required")
	}
	c := &Console{cfg: cfg, client: cfg.Client, stream: &http.Client{}, log: cfg.Log}
	if c.client == nil {
		c.client = &http.Client{Timeout: 30 * time.Second}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.nav = []navItem{{"/technicians", "Technicians"}, {"/roles", "Roles"}, {"/subscription", "Subscription"}, {"/audit", "Audit log"}, {"/imports", "Imports"}, {"/directory", "Directory sync"}}
	for _, p := range cfg.Pages {
		c.nav = append(c.nav, navItem{p.Path, p.Title})
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return c, nil
}

// Mount is svc.Config.Routes for `roster serve`: the console at / on the
// host's router, reaching the API at self.
func Mount(r chi.Router, self string) error {
	c, err := New(Config{API: self})
	if err != nil {
		return err
	}
	c.Routes(r)
	return nil
}

// Routes mounts the console. It owns /, /login, /logout, /set-password,
// /reset-password, /forgot-password, /assets/ and the pages' paths
// (/technicians, /roles, /subscription, /audit, /imports, /directory, and
// on layered accounts /users, /invitations, /personas, /purposes); the API
// keeps /v1/, /healthz, /readyz and /metrics.
func (c *Console) Routes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(secureHeaders, sameOrigin)
		r.Handle("/assets/*", http.StripPrefix("/", http.FileServerFS(assetFS)))
		r.Get("/", c.home)
		r.Get("/login", c.loginPage)
		r.Post("/login", c.login)
		r.Post("/logout", c.logout)
		r.Get("/set-password", c.setPasswordPage)
		r.Post("/set-password", c.setPassword)
		r.Get("/reset-password", c.setPasswordPage)
		r.Post("/reset-password", c.setPassword)
		r.Get("/forgot-password", c.forgotPage)
		r.Post("/forgot-password", c.forgot)
		r.Group(func(r chi.Router) {
			r.Use(c.requireSession)
			c.technicianRoutes(r)
			c.roleRoutes(r)
			c.subscriptionRoutes(r)
			c.auditRoutes(r)
			c.importRoutes(r)
			c.directoryRoutes(r)
			c.atlanRoutes(r)
			for _, p := range c.cfg.Pages {
				p.Mount(r, c)
			}
		})
	})
}

// secureHeaders: no framing, no sniffing, scripts only from the console's
// own embedded assets, and the referrer only to this same origin (the
// set-password link's token never leaves for another site; "no-referrer"
// would make browsers send Origin: null on the console's own forms).
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a POST whose Origin (or, without one, Referer) is not
// this host: with the SameSite=Strict cookie, the console's CSRF defence.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		from := r.Header.Get("Origin")
		if from == "" || from == "null" {
			from = r.Header.Get("Referer")
		}
		u, err := url.Parse(from)
		if from == "" || err != nil || u.Host != r.Host {
			http.Error(w, "cross-site request refused: the Origin is not this console", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

const (
	cookieToken   = "roster_session"
	cookieAccount = "roster_account"
	cookieWho     = "roster_who"
)

// Session is the signed-in technician, from the console's cookies.
type Session struct {
	AccountID, Email string
	// Layered: the account has the layered role model (base roles,
	// personas, purposes; R-9), as the API answered (atlan.go).
	Layered bool
	token   string
}

type sessionKey struct{}

// SessionFrom returns the signed-in technician of a request behind the
// session check.
func SessionFrom(r *http.Request) Session {
	s, _ := r.Context().Value(sessionKey{}).(Session)
	return s
}

func (c *Console) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err1 := r.Cookie(cookieToken)
		acc, err2 := r.Cookie(cookieAccount)
		if err1 != nil || err2 != nil || tok.Value == "" || acc.Value == "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		s := Session{AccountID: acc.Value, token: tok.Value}
		if who, err := r.Cookie(cookieWho); err == nil {
			s.Email, _ = url.QueryUnescape(who.Value)
		}
		s.Layered = c.layered(w, r, s)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets an HttpOnly, SameSite=Strict cookie, Secure over HTTPS;
// maxAge 0 makes a browser-session cookie (the session token's: the API
// decides when the session expires, whatever the browser's clock says).
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge.Seconds()), HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode})
}

// Problem is an RFC 9457 answer of the API, as the pages show it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
	// Quote is the price of the seat a 402 seat-purchase-required asks to buy.
	Quote *Quote `json:"quote"`
	// RetryAfter is when a locked login unlocks (423).
	RetryAfter any `json:"retry_after"`
}

// Quote is a prorated seat price (api.md, "402 quote").
type Quote struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	DaysLeft  int    `json:"days_left"`
	CycleDays int    `json:"cycle_days"`
	CycleEnd  string `json:"cycle_end"`
}

// Is reports whether the problem's type ends with name.
func (p *Problem) Is(name string) bool {
	return p != nil && strings.HasSuffix(p.Type, "/"+name)
}

// FieldError returns the detail of the named field's error, or "".
func (p *Problem) FieldError(field string) string {
	if p == nil {
		return ""
	}
	for _, e := range p.Errors {
		if e.Field == field {
			return e.Detail
		}
	}
	return ""
}

// Answer is one API answer.
type Answer struct {
	Status  int
	Header  http.Header
	Body    []byte
	Problem *Problem
}

// OK reports a 2xx answer.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Decode reads a JSON answer into v.
func (a Answer) Decode(v any) error { return json.Unmarshal(a.Body, v) }

// API calls the public API as the session's technician (no token when s
// is the zero Session); body, when not nil, is sent as JSON. hdr are
// header name/value pairs. A problem answer is parsed into Answer.Problem;
// an unreachable API becomes a 503 problem, so that a page always has
// something to show.
func (c *Console) API(ctx context.Context, s Session, method, path string, body any, hdr ...string) Answer {
	if body == nil {
		return c.APIRaw(ctx, s, method, path, "", nil, hdr...)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return failed(err)
	}
	return c.APIRaw(ctx, s, method, path, "application/json", b, hdr...)
}

// APIRaw is API with a body of the given content type (a CSV upload).
func (c *Console) APIRaw(ctx context.Context, s Session, method, path, contentType string, body []byte, hdr ...string) Answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.cfg.API, "/")+path, rd)
	if err != nil {
		return failed(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := c.client.Do(req)
	if err != nil {
		c.log.Warn("console: API call failed", "method", method, "path", redact(path), "err", err)
		return failed(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return failed(err)
	}
	a := Answer{Status: res.StatusCode, Header: res.Header, Body: b}
	if !a.OK() {
		a.Problem = &Problem{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		_ = json.Unmarshal(b, a.Problem)
	}
	return a
}

func failed(err error) Answer {
	return Answer{Status: http.StatusServiceUnavailable, Problem: &Problem{Status: http.StatusServiceUnavailable,
		Title: "The API did not answer", Detail: err.Error()}}
}

// redact drops the query, which may hold filters but must never carry a
// token into a log line.
func redact(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}

// View is what every page template gets.
type View struct {
	Title   string
	Active  string
	Nav     []navItem
	Session Session
	Flash   string
	// Problem is the API's refusal of the last action, shown at the top.
	Problem *Problem
	Data    any
}

// Render writes the page name with data; status is the HTTP status (the
// API's when the page shows its problem).
func (c *Console) Render(w http.ResponseWriter, r *http.Request, status int, name string, v View) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	if v.Session.AccountID == "" {
		v.Session = SessionFrom(r)
	}
	v.Nav = c.nav
	if v.Session.Layered {
		// The layered model's pages follow Technicians.
		v.Nav = append(append(append([]navItem{}, c.nav[0]),
			navItem{"/users", "Users"}, navItem{"/personas", "Personas"}, navItem{"/purposes", "Purposes"}), c.nav[1:]...)
	}
	if v.Flash == "" {
		v.Flash = r.URL.Query().Get("flash")
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// status is the HTTP status of a page showing a: the API's when refused.
func status(a Answer) int {
	if a.OK() {
		return http.StatusOK
	}
	return a.Status
}

// redirect answers a form POST: 303 to path with a flash message.
func redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "flash=" + url.QueryEscape(flash)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// newKey is an Idempotency-Key for one rendered form: submitting the form
// twice (a double click, a retry) replays the first answer.
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "console-" + base64.RawURLEncoding.EncodeToString(b)
}

var funcs = template.FuncMap{
	"key": newKey,
	"money": func(amount int64, currency string) string {
		sym := map[string]string{"usd": "$", "eur": "€", "gbp": "£"}[strings.ToLower(currency)]
		if sym == "" {
			return fmt.Sprintf("%d.%02d %s", amount/100, amount%100, strings.ToUpper(currency))
		}
		return fmt.Sprintf("%s%d.%02d", sym, amount/100, amount%100)
	},
	"when": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04")
		case *time.Time:
			if t == nil || t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04")
		case string:
			if tt, err := time.Parse(time.RFC3339Nano, t); err == nil {
				return tt.UTC().Format("2006-01-02 15:04:05")
			}
			return t
		}
		return "—"
	},
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"join":     strings.Join,
	"outcomes": func() []string { return []string{"", "created", "updated", "skipped", "refused"} },
	"deliveryStatuses": func() []string {
		return []string{"", "pending", "applied", "skipped", "held", "scheduled", "failed"}
	},
	// bar is the width of used/total in a bar width wide.
	"bar": func(used, total, width int) int {
		if total <= 0 {
			return 0
		}
		return min(used, total) * width / total
	},
	"jsonl": func(v any) string { b, _ := json.Marshal(v); return string(b) },
}
