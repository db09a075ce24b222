package ports

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// OffboardingHTTP serves the ownership registry and the offboardings
// (api.md "Offboarding and ownership"; O-1…O-4).
type OffboardingHTTP struct {
	Off  *app.Offboardings
	Auth *auth.Authenticator
	Log  *slog.Logger
}

// Cursor versions: ownership lists page by (kind, id), actions by seq.
const (
	ownershipCursor = "o1:"
	actionCursor    = app.ActionCursor
)

// Routes mounts the routes. Owning systems hold ownership:write (register,
// remove, acknowledge); reassigning people's work is technicians:write.
func (h *OffboardingHTTP) Routes(r chi.Router) {
	read := h.Auth.Require("technicians:read")
	own := h.Auth.Require("ownership:write")
	write := h.Auth.Require("technicians:write")
	r.With(own).Post("/v1/accounts/{acc}/ownership", h.register)
	r.With(read).Get("/v1/accounts/{acc}/ownership", h.list(false))
	r.With(read).Get("/v1/accounts/{acc}/ownership/orphans", h.list(true))
	r.With(write).Post("/v1/accounts/{acc}/ownership/reassign", h.reassign)
	r.With(own).Delete("/v1/accounts/{acc}/ownership/{kind}/{id}", h.remove)
	r.With(read).Get("/v1/accounts/{acc}/offboardings/{id}", h.show)
	r.With(own).Post("/v1/accounts/{acc}/offboardings/{id}/acks", h.ack)
}

func (h *OffboardingHTTP) answer(w http.ResponseWriter, r *http.Request, res any, err error) {
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (h *OffboardingHTTP) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Items []domain.OwnedItem `json:"items"`
	}
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	for i := range req.Items { // the registry owns these
		req.Items[i].ArchivedUntil = nil
	}
	res, err := h.Off.RegisterOwnership(r.Context(), chi.URLParam(r, "acc"), req.Items, key(r), b)
	(&HTTP{Log: h.Log}).answer(w, r, res, err)
}

func (h *OffboardingHTTP) list(orphans bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, after, bad := httpx.PageParams(r, ownershipCursor)
		if len(bad) > 0 {
			problem.Write(w, problem.Invalid(bad...))
			return
		}
		q := r.URL.Query()
		f := app.OwnershipFilter{AccountID: chi.URLParam(r, "acc"), OwnerID: q.Get("owner_id"), Kind: q.Get("kind"), Limit: limit + 1}
		if after != "" {
			f.AfterKind, f.AfterID, _ = strings.Cut(after, "\x00")
		}
		var items []domain.OwnedItem
		var err error
		if orphans {
			items, err = h.Off.Orphans(r.Context(), f)
		} else {
			items, err = h.Off.ListOwnership(r.Context(), f)
		}
		if err != nil {
			httpx.Error(w, r, h.Log, err)
			return
		}
		var next any
		if len(items) > limit {
			items = items[:limit]
			last := items[len(items)-1]
			next = httpx.EncodeCursor(ownershipCursor, last.Kind+"\x00"+last.ID)
		}
		if items == nil {
			items = []domain.OwnedItem{}
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"data": items, "next_cursor": next})
	}
}

func (h *OffboardingHTTP) remove(w http.ResponseWriter, r *http.Request) {
	if err := h.Off.DeleteOwnership(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "kind"), chi.URLParam(r, "id")); err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *OffboardingHTTP) reassign(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FromOwnerID string        `json:"from_owner_id"`
		Items       []app.AckItem `json:"items"`
		ToOwnerID   string        `json:"to_owner_id"`
	}
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.Off.Reassign(r.Context(), chi.URLParam(r, "acc"), req.FromOwnerID, req.Items, req.ToOwnerID, key(r), b)
	(&HTTP{Log: h.Log}).answer(w, r, res, err)
}

// show: GET …/offboardings/{id}[?outstanding=true][&limit=&cursor=].
func (h *OffboardingHTTP) show(w http.ResponseWriter, r *http.Request) {
	limit, after, bad := httpx.PageParams(r, actionCursor)
	outstanding, err := strconv.ParseBool(r.URL.Query().Get("outstanding"))
	if r.URL.Query().Get("outstanding") == "" {
		outstanding, err = false, nil
	}
	if err != nil {
		bad = append(bad, problem.FieldError{Field: "outstanding", Detail: "must be true or false"})
	}
	var seq int64
	if after != "" {
		if seq, err = strconv.ParseInt(after, 10, 64); err != nil {
			bad = append(bad, problem.FieldError{Field: "cursor", Detail: "is not a cursor of this list"})
		}
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	v, err := h.Off.OffboardingView(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), outstanding, seq, limit)
	h.answer(w, r, v, err)
}

func (h *OffboardingHTTP) ack(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Items []app.AckItem `json:"items"`
	}
	b, ok := body(w, r, &req, false)
	if !ok {
		return
	}
	res, err := h.Off.Acknowledge(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), req.Items, key(r), b)
	(&HTTP{Log: h.Log}).answer(w, r, res, err)
}

// previewDisable is POST …/disable?dry_run=true (O-3): the plan, the
// seat, the sessions and tokens, the cost; nothing changes.
func (h *HTTP) previewDisable(w http.ResponseWriter, r *http.Request, successorID string) {
	if h.Offboardings == nil {
		problem.Write(w, problem.New(http.StatusNotImplemented, "dry-run-unavailable", "Dry run not available",
			"the offboarding preview is not wired in this build; nothing was changed"))
		return
	}
	p, err := h.Offboardings.PreviewDisable(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), successorID)
	if err != nil {
		httpx.Error(w, r, h.Log, err)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}
