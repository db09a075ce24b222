package ports

import (
	"io"
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

// DirectoryHTTP serves directory sync: HRIS webhooks, their secrets,
// mapping and deliveries (H-1).
type DirectoryHTTP struct {
	Dir  *app.Directory
	Auth *auth.Authenticator
	Log  *slog.Logger
}

// Routes mounts the routes. A delivery carries no bearer token: its
// Standard Webhooks signature is the authentication (api.md).
func (h *DirectoryHTTP) Routes(r chi.Router) {
	admin := h.Auth.Require("hris:admin")
	r.With(admin).Post("/v1/accounts/{acc}/hris/secrets", h.createSecret)
	r.With(admin).Get("/v1/accounts/{acc}/hris/mapping", h.getMapping)
	r.With(admin).Put("/v1/accounts/{acc}/hris/mapping", h.putMapping)
	r.With(admin).Get("/v1/accounts/{acc}/hris/deliveries", h.listDeliveries)
	r.With(admin).Get("/v1/accounts/{acc}/hris/deliveries/{id}", h.getDelivery)
	r.With(admin).Post("/v1/accounts/{acc}/hris/deliveries/{id}/redrive", h.redrive)
	r.Post("/v1/accounts/{acc}/hris/{source}", h.receive)
	h.importRoutes(r)
	h.scimRoutes(r)
}

func (h *DirectoryHTTP) createSecret(w http.ResponseWriter, r *http.Request) {
	b, ok := body(w, r, &struct{}{}, true)
	if !ok {
		return
	}
	res, err := h.Dir.CreateHRISSecret(r.Context(), chi.URLParam(r, "acc"), key(r), b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // the answer holds a secret
	idempotency.Write(w, res)
}

func (h *DirectoryHTTP) getMapping(w http.ResponseWriter, r *http.Request) {
	m, err := h.Dir.HRISMapping(r.Context(), chi.URLParam(r, "acc"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, m)
}

func (h *DirectoryHTTP) putMapping(w http.ResponseWriter, r *http.Request) {
	var m domain.Mapping
	if _, ok := body(w, r, &m, false); !ok {
		return
	}
	m, err := h.Dir.PutHRISMapping(r.Context(), chi.URLParam(r, "acc"), m)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, m)
}

// deliveryCursor versions the content of delivery cursors.
const deliveryCursor = "d1:"

func (h *DirectoryHTTP) listDeliveries(w http.ResponseWriter, r *http.Request) {
	limit, after, bad := httpx.PageParams(r, deliveryCursor)
	status := r.URL.Query().Get("status")
	switch status {
	case "", domain.DeliveryPending, domain.DeliveryApplied, domain.DeliverySkipped, domain.DeliveryHeld, domain.DeliveryScheduled, domain.DeliveryFailed:
	default:
		bad = append(bad, problem.FieldError{Field: "status", Detail: "must be pending, applied, skipped, held, scheduled or failed"})
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	ds, err := h.Dir.Deliveries(r.Context(), chi.URLParam(r, "acc"), status, after, limit+1)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	var next any
	if len(ds) > limit {
		ds = ds[:limit]
		next = httpx.EncodeCursor(deliveryCursor, ds[len(ds)-1].ID)
	}
	if ds == nil {
		ds = []app.Delivery{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": ds, "next_cursor": next})
}

func (h *DirectoryHTTP) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := h.Dir.Delivery(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, d)
}

func (h *DirectoryHTTP) redrive(w http.ResponseWriter, r *http.Request) {
	if _, ok := body(w, r, &struct{}{}, true); !ok {
		return
	}
	d, err := h.Dir.RedriveDelivery(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, d)
}

// receive is an HRIS delivery (H-1): 202 once stored, whatever happens
// after; the same webhook-id again is 202 and changes nothing.
func (h *DirectoryHTTP) receive(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return
	}
	r = anonymous(r)
	hdr := domain.WebhookHeaders{
		ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature"),
	}
	res, err := h.Dir.ReceiveWebhook(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "source"), hdr, b)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, res)
}
