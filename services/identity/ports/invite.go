package ports

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// InvitationsHTTP serves the invitation routes of api.md's "atlan
// accounts" (I-5).
type InvitationsHTTP struct {
	Invitations *app.Invitations
	Auth        *auth.Authenticator
	Log         *slog.Logger
}

// Routes mounts the routes.
func (h *InvitationsHTTP) Routes(r chi.Router) {
	write := h.Auth.Require("technicians:write")
	r.With(h.Auth.Require("technicians:read")).Get("/v1/accounts/{acc}/invitations", h.list)
	r.With(write).Post("/v1/accounts/{acc}/invitations", h.invite)
	r.With(write).Post("/v1/accounts/{acc}/invitations/{id}/resend", h.resend)
	r.With(write).Delete("/v1/accounts/{acc}/invitations/{id}", h.revoke)
}

func (h *InvitationsHTTP) invite(w http.ResponseWriter, r *http.Request) {
	var in domain.Invite
	b, ok := body(w, r, &in, false)
	if !ok {
		return
	}
	res, err := h.Invitations.Invite(r.Context(), chi.URLParam(r, "acc"), in, key(r), b)
	h.answer(w, r, res, err)
}

// list: GET …/invitations → the live invitations, paged like the
// technicians ({"data", "next_cursor"}).
func (h *InvitationsHTTP) list(w http.ResponseWriter, r *http.Request) {
	limit, after, p := page(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	ps, err := h.Invitations.Pending(r.Context(), chi.URLParam(r, "acc"), after, limit+1)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	var next any
	if len(ps) > limit {
		ps = ps[:limit]
		next = cursor(ps[len(ps)-1].ID)
	}
	if ps == nil {
		ps = []app.PendingInvitation{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ps, "next_cursor": next})
}

func (h *InvitationsHTTP) resend(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r, &struct{}{}, true)
	if !ok {
		return
	}
	res, err := h.Invitations.Resend(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), key(r), b)
	h.answer(w, r, res, err)
}

// revoke: DELETE …/invitations/{id} → 204 (I-5).
func (h *InvitationsHTTP) revoke(w http.ResponseWriter, r *http.Request) {
	if err := h.Invitations.Revoke(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id")); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *InvitationsHTTP) answer(w http.ResponseWriter, r *http.Request, res idempotency.Result, err error) {
	(&HTTP{Log: h.Log}).answer(w, r, res, err)
}
