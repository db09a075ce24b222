// Package ports translates between the outside and the rolepolicy use
// cases: HTTP routes and event consumers. No rule lives here.
package ports

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
)

// HTTP serves the rolepolicy routes of api.md.
type HTTP struct {
	app *app.App
	op  *httpx.Operator
	log *slog.Logger
}

// NewHTTP returns the routes over a, authenticated by op.
func NewHTTP(a *app.App, op *httpx.Operator, log *slog.Logger) *HTTP {
	return &HTTP{app: a, op: op, log: log}
}

// Mount adds the routes to r, with full paths.
func (h *HTTP) Mount(r chi.Router) {
	r.Group(func(r chi.Router) {
		// Only the operator token exists so far. The permission catalog needs
		// a token too: api.md names the only routes that need none
		// (/healthz, /readyz, /metrics). It is product data, not account data,
		// so once account and session tokens exist any valid token will do.
		r.Use(httpx.RequireOperator(h.op))
		r.Get("/v1/permissions", h.listPermissions)
		r.Get("/v1/accounts/{acc}/roles", h.listRoles)
		r.Get("/v1/accounts/{acc}/roles/{id}", h.getRole)
	})
}

type permissionJSON struct {
	ID          string `json:"id"`
	Category    string `json:"category"`
	Description string `json:"description"`
}

// listPermissions: GET /v1/permissions?profile= (R-1). The catalog is
// small and fixed, so it is one page.
func (h *HTTP) listPermissions(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("profile")
	if id == "" {
		problem.Write(w, problem.Invalid(problem.FieldError{Field: "profile",
			Detail: "is required; one of " + strings.Join(profile.IDs(), ", ")}))
		return
	}
	catalog, err := h.app.Permissions(id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := make([]permissionJSON, 0, len(catalog))
	for _, p := range catalog {
		data = append(data, permissionJSON{ID: p.ID, Category: p.Category, Description: p.Description})
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"data": data})
}

type roleJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	BuiltIn           bool     `json:"built_in"`
	Permissions       []string `json:"permissions"`
	SiteIDs           []string `json:"site_ids"`
	ExcludedFolderIDs []string `json:"excluded_folder_ids"`
}

func toRoleJSON(r domain.Role) roleJSON {
	return roleJSON{
		ID:                r.ID,
		Name:              r.Name,
		BuiltIn:           r.BuiltIn,
		Permissions:       nonNil(r.Permissions),
		SiteIDs:           nonNil(r.SiteIDs),
		ExcludedFolderIDs: nonNil(r.ExcludedFolderIDs),
	}
}

type roleListJSON struct {
	Data       []roleJSON `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

// listRoles: GET /v1/accounts/{acc}/roles, ordered by name
// case-insensitively, with ?limit= and ?cursor= (api.md lists).
func (h *HTTP) listRoles(w http.ResponseWriter, r *http.Request) {
	q := app.ListRoles{AccountID: chi.URLParam(r, "acc"), Limit: app.DefaultLimit}
	var bad []problem.FieldError
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > app.MaxLimit {
			bad = append(bad, problem.FieldError{Field: "limit", Detail: fmt.Sprintf("must be an integer from 1 to %d", app.MaxLimit)})
		}
		q.Limit = n
	}
	if s := r.URL.Query().Get("cursor"); s != "" {
		after, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(after) == 0 {
			bad = append(bad, problem.FieldError{Field: "cursor", Detail: "is not a cursor this API returned"})
		}
		q.After = string(after)
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	page, err := h.app.ListRoles(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := roleListJSON{Data: make([]roleJSON, 0, len(page.Roles))}
	for _, role := range page.Roles {
		out.Data = append(out.Data, toRoleJSON(role))
	}
	if page.Next != "" {
		next := base64.RawURLEncoding.EncodeToString([]byte(page.Next))
		out.NextCursor = &next
	}
	httpx.JSON(w, http.StatusOK, out)
}

// getRole: GET /v1/accounts/{acc}/roles/{id}, bare, with the role's
// version as its ETag (R-4: the If-Match of a later PUT).
func (h *HTTP) getRole(w http.ResponseWriter, r *http.Request) {
	role, err := h.app.Role(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", ETag(role.Version))
	httpx.JSON(w, http.StatusOK, toRoleJSON(role))
}

// ETag is the entity tag of a role version: a strong tag, the version in
// quotes ("3").
func ETag(version int64) string { return strconv.Quote(strconv.FormatInt(version, 10)) }

// fail writes err as a problem. It is the one place that maps the
// service's errors to RFC 9457 problems; anything unknown is a logged 500.
func (h *HTTP) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, domain.ErrAccountNotFound):
		err = problem.NotFound("account " + chi.URLParam(r, "acc"))
	case errors.Is(err, domain.ErrRoleNotFound):
		err = problem.NotFound("role " + chi.URLParam(r, "id"))
	case errors.Is(err, domain.ErrUnknownProfile):
		err = problem.Invalid(problem.FieldError{Field: "profile",
			Detail: fmt.Sprintf("unknown profile %q; one of %s", r.URL.Query().Get("profile"), strings.Join(profile.IDs(), ", "))})
	}
	httpx.Error(w, r, h.log, err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
