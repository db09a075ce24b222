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

	"roster.dev/pkg/auth"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
)

// HTTP serves the rolepolicy routes of api.md.
type HTTP struct {
	app  *app.App
	auth *auth.Authenticator
	op   *httpx.Operator
	log  *slog.Logger
	// layers: the layered role model (R-9; layers.go); nil: none.
	layers *app.Layers
}

// NewHTTP returns the routes over a, authenticated by authn: the operator
// token, account API tokens and sessions, with scopes. Without authn (a
// host that gives none) only the operator token is let through, by op.
func NewHTTP(a *app.App, authn *auth.Authenticator, op *httpx.Operator, log *slog.Logger) *HTTP {
	return &HTTP{app: a, auth: authn, op: op, log: log}
}

// require lets through tokens holding scope ("" for any valid token) on
// the route's account (api.md, Auth).
func (h *HTTP) require(scope string) func(http.Handler) http.Handler {
	if h.auth == nil {
		return httpx.RequireOperator(h.op)
	}
	return h.auth.Require(scope)
}

// Mount adds the routes to r, with full paths.
func (h *HTTP) Mount(r chi.Router) {
	// The permission catalog needs a token too: api.md names the only
	// routes that need none (/healthz, /readyz, /metrics). It is product
	// data, not account data, so any valid token will do.
	r.With(h.require("")).Get("/v1/permissions", h.listPermissions)

	read, write := h.require("roles:read"), h.require("roles:write")
	r.With(read).Get("/v1/accounts/{acc}/roles", h.listRoles)
	r.With(write).Post("/v1/accounts/{acc}/roles", h.createRole)
	r.With(read).Get("/v1/accounts/{acc}/roles/{id}", h.getRole)
	r.With(write).Put("/v1/accounts/{acc}/roles/{id}", h.replaceRole)
	r.With(write).Delete("/v1/accounts/{acc}/roles/{id}", h.deleteRole)
	r.With(read).Get("/v1/accounts/{acc}/technicians/{id}/role", h.getTechnicianRole)
	r.With(write).Put("/v1/accounts/{acc}/technicians/{id}/role", h.assignRole)

	// answered from the in-memory index, never the database.
	r.With(read).Post("/v1/accounts/{acc}/access/check", h.checkAccessAny)
	r.With(read).Get("/v1/accounts/{acc}/technicians/{id}/effective-access", h.effectiveAccessAny)
	if h.layers != nil {
		h.mountLayers(r)
	}
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

type roleListJSON struct {
	Data       []app.RoleView `json:"data"`
	NextCursor *string        `json:"next_cursor"`
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
	out := roleListJSON{Data: make([]app.RoleView, 0, len(page.Roles))}
	for _, role := range page.Roles {
		out.Data = append(out.Data, app.ViewRole(role))
	}
	if page.Next != "" {
		next := base64.RawURLEncoding.EncodeToString([]byte(page.Next))
		out.NextCursor = &next
	}
	httpx.JSON(w, http.StatusOK, out)
}

// getRole: GET /v1/accounts/{acc}/roles/{id}, bare, with the role's
// version as its ETag (R-4: the If-Match of a later PUT). If-None-Match
// naming the current version answers 304.
func (h *HTTP) getRole(w http.ResponseWriter, r *http.Request) {
	role, err := h.app.Role(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", ETag(role.Version))
	if inm := r.Header.Get("If-None-Match"); inm != "" && matchesVersion(inm, role.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	httpx.JSON(w, http.StatusOK, app.ViewRole(role))
}

// getTechnicianRole: GET /v1/accounts/{acc}/technicians/{id}/role — the
// role held, the requested role, the first-login and status states.
func (h *HTTP) getTechnicianRole(w http.ResponseWriter, r *http.Request) {
	v, err := h.app.TechnicianRole(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

type assignRoleJSON struct {
	Role *string `json:"role"`
}

// assignRole: PUT /v1/accounts/{acc}/technicians/{id}/role {"role": name
// or id} (R-6, I-9), with Idempotency-Key.
func (h *HTTP) assignRole(w http.ResponseWriter, r *http.Request) {
	var req assignRoleJSON
	raw, ok := readJSON(w, r, &req)
	if !ok {
		return
	}
	if req.Role == nil || strings.TrimSpace(*req.Role) == "" {
		problem.Write(w, problem.Invalid(problem.FieldError{Field: "role", Detail: "is required: a role id or name"}))
		return
	}
	cmd := app.AssignRole{AccountID: chi.URLParam(r, "acc"), TechnicianID: chi.URLParam(r, "id"), Role: *req.Role}
	res, err := h.app.AssignRole(r.Context(), cmd, r.Header.Get("Idempotency-Key"), raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	idempotency.Write(w, res)
}

// ETag is the entity tag of a role version: a strong tag, the version in
// quotes ("3").
func ETag(version int64) string { return strconv.Quote(strconv.FormatInt(version, 10)) }

// fail writes err as a problem. It is the one place that maps the
// service's errors to RFC 9457 problems; anything unknown is a logged 500.
func (h *HTTP) fail(w http.ResponseWriter, r *http.Request, err error) {
	var inUse *domain.RoleInUseError
	var invalid *domain.InvalidError
	switch {
	case errors.Is(err, domain.ErrAccountNotFound):
		err = problem.NotFound("account " + chi.URLParam(r, "acc"))
	case errors.Is(err, domain.ErrTechnicianNotFound):
		err = problem.NotFound("technician " + chi.URLParam(r, "id"))
	case errors.Is(err, domain.ErrUnknownRole):
		err = problem.Invalid(problem.FieldError{Field: "role", Detail: "names no role of this account (by id, or by name case-insensitively)"})
	case errors.Is(err, domain.ErrFirstLoginRequired):
		err = problem.New(http.StatusConflict, "first-login-required", "First login required",
			"technician "+chi.URLParam(r, "id")+" has not logged in yet; this account's profile assigns roles only after the first login (R-6)")
	case errors.Is(err, domain.ErrLastAdmin):
		err = problem.New(http.StatusConflict, "last-admin", "Last admin",
			"technician "+chi.URLParam(r, "id")+" is the last technician that is not disabled holding the Admin role; give Admin to another technician first (I-9)")
	case errors.Is(err, domain.ErrRoleNotFound):
		err = problem.NotFound("role " + chi.URLParam(r, "id"))
	case errors.Is(err, domain.ErrBuiltInRole):
		err = problem.New(http.StatusConflict, "built-in-role", "Built-in role",
			"role "+chi.URLParam(r, "id")+" is built in: built-in roles can be neither edited nor deleted (R-2); create a custom role instead")
	case errors.Is(err, domain.ErrIfMatchRequired):
		err = problem.New(http.StatusPreconditionRequired, "if-match-required", "If-Match required",
			"a role is replaced whole, guarded by its version: send If-Match with the ETag of the role you read (R-4); If-Match: * is not accepted")
	case errors.Is(err, domain.ErrStaleVersion):
		err = problem.New(http.StatusPreconditionFailed, "stale-version", "Stale version",
			"role "+chi.URLParam(r, "id")+" changed since the version in If-Match; read it again and reapply your change (R-4)")
	case errors.Is(err, domain.ErrDuplicateRoleName):
		err = problem.New(http.StatusConflict, "role-name-taken", "Role name taken",
			"the account already has a role of that name (names are compared case-insensitively)")
	case errors.Is(err, domain.ErrCustomRolesUnavailable):
		err = problem.New(http.StatusConflict, "custom-roles-unavailable", "Custom roles unavailable",
			"this account's profile has no custom roles")
	case errors.As(err, &inUse):
		err = problem.New(http.StatusConflict, "role-in-use", "Role in use",
			fmt.Sprintf("role %s is held by %d technicians and pre-assigned to %d who have not logged in yet; give them another role first",
				chi.URLParam(r, "id"), inUse.Assigned, inUse.Pending)).
			With("assigned_count", inUse.Assigned).With("pending_count", inUse.Pending)
	case errors.As(err, &invalid):
		fields := make([]problem.FieldError, 0, len(invalid.Fields))
		for _, f := range invalid.Fields {
			fields = append(fields, problem.FieldError{Field: f.Field, Detail: f.Detail})
		}
		err = problem.Invalid(fields...)
	case errors.Is(err, domain.ErrUnknownProfile):
		err = problem.Invalid(problem.FieldError{Field: "profile",
			Detail: fmt.Sprintf("unknown profile %q; one of %s", r.URL.Query().Get("profile"), strings.Join(profile.IDs(), ", "))})
	}
	httpx.Error(w, r, h.log, err)
}
