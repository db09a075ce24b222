// Package ports translates HTTP, events and request-reply to the identity
// use cases; no rule lives here.
package ports

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// HTTP serves the identity routes.
type HTTP struct {
	App  *app.App
	Auth *auth.Authenticator
	Log  *slog.Logger
	// Offboardings previews a disable (?dry_run=true, O-3; offboarding.go).
	Offboardings *app.Offboardings
}

// Routes mounts the routes.
func (h *HTTP) Routes(r chi.Router) {
	r.With(h.Auth.RequireOperator()).Post("/v1/accounts", h.createAccount)
	r.With(h.Auth.Require("")).Get("/v1/accounts/{acc}", h.getAccount)
	// POST /v1/accounts/{acc}/tokens: ports/security.go (rate-limited).

	read := h.Auth.Require("technicians:read")
	write := h.Auth.Require("technicians:write")
	r.With(read).Get("/v1/accounts/{acc}/sites", h.listSites)
	r.With(write).Post("/v1/accounts/{acc}/sites", h.createSite)
	r.With(write).Post("/v1/accounts/{acc}/sites/{site}/folders", h.createFolder)

	r.With(read).Get("/v1/accounts/{acc}/technicians", h.listTechnicians)
	r.With(write).Post("/v1/accounts/{acc}/technicians", h.addTechnician)
	r.With(read).Get("/v1/accounts/{acc}/technicians/{id}", h.getTechnician)
	r.With(write).Patch("/v1/accounts/{acc}/technicians/{id}", h.patchTechnician)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/disable", h.disableTechnician)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/enable", h.enableTechnician)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/erase", h.eraseTechnician)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/licence-removal", h.scheduleLicenceRemoval)

	r.With(read).Get("/v1/accounts/{acc}/end-users", h.listEndUsers)
	r.With(write).Post("/v1/accounts/{acc}/end-users", h.createEndUser)
	r.With(read).Get("/v1/accounts/{acc}/end-users/{id}", h.getEndUser)
	r.With(write).Post("/v1/accounts/{acc}/end-users/{id}/deactivate", h.setEndUserActive(false))
	r.With(write).Post("/v1/accounts/{acc}/end-users/{id}/reactivate", h.setEndUserActive(true))
	r.With(read).Get("/v1/accounts/{acc}/end-users/{id}/can-submit-tickets", h.canSubmitTickets)
}

func (h *HTTP) createEndUser(w http.ResponseWriter, r *http.Request) {
	var req domain.NewEndUser
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.App.CreateEndUser(r.Context(), chi.URLParam(r, "acc"), req, key(r), b)
	h.answer(w, r, res, err)
}

func (h *HTTP) listEndUsers(w http.ResponseWriter, r *http.Request) {
	limit, after, p := page(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	q := r.URL.Query()
	us, err := h.App.ListEndUsers(r.Context(), chi.URLParam(r, "acc"), q.Get("site_id"), q.Get("status"), after, limit+1)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	var next any
	if len(us) > limit {
		us = us[:limit]
		next = cursor(us[len(us)-1].ID)
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": us, "next_cursor": next})
}

func (h *HTTP) getEndUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.App.EndUser(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, u)
}

func (h *HTTP) setEndUserActive(active bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := h.App.SetEndUserActive(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), active)
		if err != nil {
			httpx.Error(w, r, h.Log, err)
			return
		}
		httpx.JSON(w, http.StatusOK, u)
	}
}

// canSubmitTickets answers ticketing systems (I-10): may this end user open
// a new ticket?
func (h *HTTP) canSubmitTickets(w http.ResponseWriter, r *http.Request) {
	u, err := h.App.EndUser(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	ok, reason := u.CanSubmitTickets()
	httpx.JSON(w, http.StatusOK, map[string]any{"allowed": ok, "reason": reason})
}

// body reads the raw body (kept for Idempotency-Key comparison) and decodes
// it into v; an empty body is allowed when empty is true.
func body(w http.ResponseWriter, r *http.Request, v any, empty bool) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return nil, false
	}
	if empty && len(bytes.TrimSpace(b)) == 0 {
		return b, true
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if p := httpx.Decode(r, v); p != nil {
		problem.Write(w, p)
		return nil, false
	}
	return b, true
}

func (h *HTTP) answer(w http.ResponseWriter, r *http.Request, res idempotency.Result, err error) {
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func key(r *http.Request) string { return r.Header.Get("Idempotency-Key") }

func (h *HTTP) createAccount(w http.ResponseWriter, r *http.Request) {
	var req domain.NewAccount
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.App.CreateAccount(r.Context(), req, key(r), b)
	h.answer(w, r, res, err)
}

func (h *HTTP) getAccount(w http.ResponseWriter, r *http.Request) {
	acc, err := h.App.Account(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, acc)
}

type named struct {
	Name string `json:"name"`
}

func (h *HTTP) createSite(w http.ResponseWriter, r *http.Request) {
	var req named
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.App.CreateSite(r.Context(), chi.URLParam(r, "acc"), req.Name, key(r), b)
	h.answer(w, r, res, err)
}

func (h *HTTP) listSites(w http.ResponseWriter, r *http.Request) {
	sites, err := h.App.ListSites(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": sites, "next_cursor": nil})
}

func (h *HTTP) createFolder(w http.ResponseWriter, r *http.Request) {
	var req named
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.App.CreateFolder(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "site"), req.Name, key(r), b)
	h.answer(w, r, res, err)
}

func (h *HTTP) addTechnician(w http.ResponseWriter, r *http.Request) {
	var req domain.NewTechnician
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.App.AddTechnician(r.Context(), chi.URLParam(r, "acc"), req, key(r), b)
	if err == nil && res.Status == http.StatusCreated && !res.Replayed {
		res.Body = h.settled(r, res.Body)
	}
	h.answer(w, r, res, err)
}

// settled waits until what other services derive from the technician
// just written in body is applied — the role rolepolicy assigns —
// and returns the technician as it reads now (docs/architecture.md
// "Read-your-writes"). If the wait times out, body stays as it was.
func (h *HTTP) settled(r *http.Request, body json.RawMessage) json.RawMessage {
	var created struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &created) != nil || created.ID == "" || !eventbus.Settle(r.Context()) {
		return body
	}
	t, err := h.App.Technician(r.Context(), chi.URLParam(r, "acc"), created.ID)
	if err != nil {
		return body
	}
	fresh, err := json.Marshal(t)
	if err != nil {
		return body
	}
	return fresh
}

// techCursor versions the content of technician and end-user cursors.
const techCursor = "t1:"

// page reads ?limit= and ?cursor= (api.md lists).
func page(r *http.Request) (limit int, after string, p *problem.Problem) {
	limit, after, bad := httpx.PageParams(r, techCursor)
	if len(bad) > 0 {
		return 0, "", problem.Invalid(bad...)
	}
	return limit, after, nil
}

func cursor(lastID string) string { return httpx.EncodeCursor(techCursor, lastID) }

func (h *HTTP) listTechnicians(w http.ResponseWriter, r *http.Request) {
	limit, after, p := page(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	q := r.URL.Query()
	hide, _ := strconv.ParseBool(q.Get("hide_disabled"))
	status := q.Get("status")
	switch status {
	case "", domain.StatusInvited, domain.StatusActive, domain.StatusDisabled:
	default:
		problem.Write(w, problem.Invalid(problem.FieldError{Field: "status", Detail: "must be invited, active or disabled"}))
		return
	}
	var bad []problem.FieldError
	inactive, fe := timeParam(q, "inactive_since")
	bad = append(bad, fe...)
	active, fe := timeParam(q, "active_since")
	if bad = append(bad, fe...); len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	ts, err := h.App.ListTechnicians(r.Context(), app.TechnicianFilter{
		AccountID: chi.URLParam(r, "acc"), Status: status, Role: q.Get("role"), SiteID: q.Get("site_id"),
		Email: q.Get("email"), Query: q.Get("q"), HideDisabled: hide, After: after, Limit: limit + 1,
		InactiveSince: inactive, ActiveSince: active,
	})
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	var next any
	if len(ts) > limit {
		ts = ts[:limit]
		next = cursor(ts[len(ts)-1].ID)
	}
	if ts == nil {
		ts = []domain.Technician{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ts, "next_cursor": next})
}

func (h *HTTP) getTechnician(w http.ResponseWriter, r *http.Request) {
	t, err := h.App.Technician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, t)
}

func (h *HTTP) patchTechnician(w http.ResponseWriter, r *http.Request) {
	var req domain.Patch
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	t, err := h.App.PatchTechnician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), req)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, t)
}

func (h *HTTP) disableTechnician(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SuccessorID string `json:"successor_id"`
	}
	b, ok := body(w, r, &req, true)
	if !ok {
		return
	}
	if v := r.URL.Query().Get("dry_run"); v != "" {
		dry, err := strconv.ParseBool(v)
		if err != nil {
			problem.Write(w, problem.Invalid(problem.FieldError{Field: "dry_run", Detail: "must be true or false"}))
			return
		}
		if dry {
			h.previewDisable(w, r, req.SuccessorID)
			return
		}
	}
	res, err := h.App.DisableTechnician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), req.SuccessorID, key(r), b)
	h.answer(w, r, res, err)
}

func (h *HTTP) enableTechnician(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ConfirmSeatPurchase bool `json:"confirm_seat_purchase"`
	}
	b, ok := body(w, r, &req, true)
	if !ok {
		return
	}
	res, err := h.App.EnableTechnician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), req.ConfirmSeatPurchase, key(r), b)
	h.answer(w, r, res, err)
}

func (h *HTTP) eraseTechnician(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r, &struct{}{}, true)
	if !ok {
		return
	}
	res, err := h.App.EraseTechnician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), key(r), b)
	h.answer(w, r, res, err)
}

// timeParam reads an optional time filter (last active): an RFC 3339 time
// or a date (YYYY-MM-DD, its midnight UTC).
func timeParam(q url.Values, name string) (*time.Time, []problem.FieldError) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, []problem.FieldError{{Field: name, Detail: "must be an RFC 3339 time or a date (YYYY-MM-DD)"}}
}
