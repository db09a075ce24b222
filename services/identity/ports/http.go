// Package ports translates HTTP to the identity use cases; no rule lives
// here.
package ports

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// HTTP serves the identity routes.
type HTTP struct {
	App      *app.App
	Operator *httpx.Operator
	Log      *slog.Logger
}

// Routes mounts the routes.
func (h *HTTP) Routes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(httpx.RequireOperator(h.Operator))
		r.Post("/v1/accounts", h.createAccount)
		r.Get("/v1/accounts/{acc}", h.getAccount)
	})
}

func (h *HTTP) createAccount(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req domain.NewAccount
	if p := httpx.Decode(r, &req); p != nil {
		problem.Write(w, p)
		return
	}
	res, err := h.App.CreateAccount(r.Context(), req, r.Header.Get("Idempotency-Key"), body)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	idempotency.Write(w, res)
}

func (h *HTTP) getAccount(w http.ResponseWriter, r *http.Request) {
	acc, err := h.App.Account(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, acc)
}
