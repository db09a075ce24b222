package ports

import (
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
)

// securityRoutes mounts the login-security routes of issue 7: the
// account's security policy and the admin's unlock (L-2 … L-4).
func (h *AuthHTTP) securityRoutes(r chi.Router) {
	read := h.Auth.Require("technicians:read")
	write := h.Auth.Require("technicians:write")
	r.With(read).Get("/v1/accounts/{acc}/security-policy", h.getSecurityPolicy)
	r.With(write).Put("/v1/accounts/{acc}/security-policy", h.putSecurityPolicy)
	r.With(write).Post("/v1/accounts/{acc}/technicians/{id}/unlock", h.unlock)
}

func (h *AuthHTTP) getSecurityPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := h.Creds.SecurityPolicy(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (h *AuthHTTP) putSecurityPolicy(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return
	}
	p, err := h.Creds.PutSecurityPolicy(r.Context(), chi.URLParam(r, "acc"), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (h *AuthHTTP) unlock(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r, &struct{}{}, true)
	if !ok {
		return
	}
	res, err := h.Creds.UnlockTechnician(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), key(r), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}
