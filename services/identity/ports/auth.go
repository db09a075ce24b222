package ports

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	commonv1 "roster.dev/proto/roster/common/v1"
	"roster.dev/services/identity/app"
)

// AuthHTTP serves the login routes (api.md, "Login") and the admin's
// invitation and temporary-password routes (I-4).
type AuthHTTP struct {
	Creds *app.Credentials
	// Tokens lists and revokes API tokens (ports/security.go).
	Tokens *app.Tokens
	// SSO is the single sign-on (ports/security.go).
	SSO  *app.SSO
	Auth *auth.Authenticator
	Log  *slog.Logger
}

// Routes mounts the routes. /v1/auth/* take no bearer token: the mailed
// token or the password is the authentication.
func (h *AuthHTTP) Routes(r chi.Router) {
	r.Post("/v1/auth/password", h.setPassword)
	r.Post("/v1/auth/login", h.login)

	write := h.Auth.Require("technicians:write")
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/invitation", h.resendInvitation)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/password", h.setTemporaryPassword)
	h.securityRoutes(r) // issue 7: ports/security.go
}

// anonymous records the caller's address for the events a route without a
// bearer token causes; the use case names the technician once known.
func anonymous(r *http.Request) *http.Request {
	return r.WithContext(eventbus.WithActor(r.Context(), &commonv1.Actor{SourceAddress: httpx.ClientIP(r)}))
}

func (h *AuthHTTP) setPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	if !h.throttle(w, r, "") {
		return
	}
	r = anonymous(r)
	if err := h.Creds.AcceptInvitation(r.Context(), req.Token, req.Password); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AuthHTTP) login(w http.ResponseWriter, r *http.Request) {
	var req app.Login
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	if !h.throttle(w, r, req.AccountID) {
		return
	}
	r = anonymous(r)
	req.SourceAddress = httpx.ClientIP(r)
	if req.DeviceLabel == "" {
		req.DeviceLabel = r.UserAgent()
	}
	res, err := h.Creds.Login(r.Context(), req)
	if err != nil {
		h.fail(w, r, err) // 423 with Retry-After
		return
	}
	w.Header().Set("Cache-Control", "no-store") // the answer holds a secret
	httpx.JSON(w, http.StatusOK, res)
}

func (h *AuthHTTP) resendInvitation(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r, &struct{}{}, true)
	if !ok {
		return
	}
	res, err := h.Creds.ResendInvitation(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), key(r), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *AuthHTTP) setTemporaryPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if _, ok := body(w, r, &req, false); !ok {
		return
	}
	res, err := h.Creds.SetTemporaryPassword(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), req.Password, key(r))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(res.Status) // 204: no body
}
