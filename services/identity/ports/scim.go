package ports

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/auth"
	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

// scimRoutes mounts SCIM 2.0 at /scim/v2/{acc} (H-2): a bearer token with
// the scim scope, and the account's plan offering SCIM (S-8).
func (h *DirectoryHTTP) scimRoutes(r chi.Router) {
	r.Route("/scim/v2/{acc}", func(r chi.Router) {
		r.Use(h.Auth.Require("scim"), h.scimGate)
		r.Get("/ServiceProviderConfig", h.scimStatic(serviceProviderConfig))
		r.Get("/Schemas", h.scimStatic(listOf(schemas)))
		r.Get("/Schemas/{id}", h.scimStaticByID(schemas))
		r.Get("/ResourceTypes", h.scimStatic(listOf(resourceTypes)))
		r.Get("/ResourceTypes/{id}", h.scimStaticByID(resourceTypes))
		r.Post("/.search", h.scimSearchAll)

		r.Get("/Users", h.scimList(h.Dir.ListUsers))
		r.Post("/Users/.search", h.scimSearch(h.Dir.ListUsers))
		r.Post("/Users", h.scimCreate(h.Dir.CreateUser))
		r.Get("/Users/{id}", h.scimGet(h.Dir.User))
		r.Put("/Users/{id}", h.scimReplace(h.Dir.ReplaceUser))
		r.Patch("/Users/{id}", h.scimPatchUser)
		r.Delete("/Users/{id}", h.scimDelete(h.Dir.DeleteUser))

		r.Get("/Groups", h.scimList(h.Dir.ListGroups))
		r.Post("/Groups/.search", h.scimSearch(h.Dir.ListGroups))
		r.Post("/Groups", h.scimCreate(h.Dir.CreateGroup))
		r.Get("/Groups/{id}", h.scimGet(h.Dir.Group))
		r.Put("/Groups/{id}", h.scimReplace(h.Dir.ReplaceGroup))
		r.Patch("/Groups/{id}", h.scimPatchGroup)
		r.Delete("/Groups/{id}", h.scimDelete(h.Dir.DeleteGroup))
	})
}

// scimGate refuses SCIM where the plan lacks it (S-8), and makes the
// token's holder a SCIM client in the audit trail.
func (h *DirectoryHTTP) scimGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.From(r.Context())
		actor := &commonv1.Actor{Type: commonv1.ActorType_ACTOR_TYPE_SCIM, Id: p.TokenID, SourceAddress: httpx.ClientIP(r)}
		if p.Operator {
			actor.Type, actor.Id = commonv1.ActorType_ACTOR_TYPE_OPERATOR, ""
		}
		r = r.WithContext(eventbus.WithActor(r.Context(), actor))
		if err := h.Dir.ScimGate(r.Context(), chi.URLParam(r, "acc")); err != nil {
			h.scimError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

const scimContentType = "application/scim+json"

func scimJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", scimContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// scimError writes RFC 7644's Error schema; a problem's type and title
// come along, so that a client of either kind reads it.
func (h *DirectoryHTTP) scimError(w http.ResponseWriter, r *http.Request, err error) {
	body := map[string]any{"schemas": []string{domain.SchemaError}}
	status := http.StatusInternalServerError
	var se *domain.ScimError
	var p *problem.Problem
	switch {
	case errors.As(err, &se):
		status = se.Status
		body["detail"] = se.Detail
		if se.ScimType != "" {
			body["scimType"] = se.ScimType
		}
	case errors.As(err, &p):
		status = p.Status
		body["detail"], body["type"], body["title"] = p.Detail, p.Type, p.Title
		for k, v := range p.Extensions {
			body[k] = v
		}
	default:
		h.Log.ErrorContext(r.Context(), "scim request failed", "err", err, "path", r.URL.Path)
		body["detail"] = "internal error"
	}
	body["status"] = strconv.Itoa(status) // a string (RFC 7644 §3.12)
	scimJSON(w, status, body)
}

// scimBase is the account's SCIM base URL as the client reached it.
func scimBase(r *http.Request) app.ScimBase {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return app.ScimBase(scheme + "://" + r.Host + "/scim/v2/" + chi.URLParam(r, "acc"))
}

// scimBody reads a JSON object body (application/scim+json or JSON).
func (h *DirectoryHTTP) scimBody(w http.ResponseWriter, r *http.Request) ([]byte, map[string]any, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		h.scimError(w, r, domain.ErrInvalidValue("the body cannot be read"))
		return nil, nil, false
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc == nil {
		h.scimError(w, r, &domain.ScimError{Status: 400, ScimType: "invalidSyntax", Detail: "the body must be a JSON object"})
		return nil, nil, false
	}
	return b, doc, true
}

// scimQuery reads filter, startIndex, count, attributes and
// excludedAttributes from the query string, or from a SearchRequest.
func scimQuery(get func(string) string) (app.ScimQuery, error) {
	q := app.ScimQuery{Filter: get("filter"), StartIndex: 1, Count: 100,
		Attributes: get("attributes"), ExcludedAttributes: get("excludedAttributes")}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"startIndex", &q.StartIndex}, {"count", &q.Count}} {
		if v := get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return q, domain.ErrInvalidValue(f.name + " must be a whole number")
			}
			*f.dst = n
		}
	}
	if q.StartIndex < 1 {
		q.StartIndex = 1 // RFC 7644 §3.4.2.4: less than 1 is 1
	}
	q.Count = min(max(q.Count, 0), app.MaxScimCount)
	return q, nil
}

type lister func(ctx ctxT, accountID string, base app.ScimBase, q app.ScimQuery) (app.ScimList, error)

func (h *DirectoryHTTP) scimList(list lister) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := scimQuery(r.URL.Query().Get)
		if err == nil {
			var out app.ScimList
			if out, err = list(r.Context(), chi.URLParam(r, "acc"), scimBase(r), q); err == nil {
				scimJSON(w, http.StatusOK, out)
				return
			}
		}
		h.scimError(w, r, err)
	}
}

// searchGetter reads a SearchRequest's members by name, case-insensitively;
// numbers may come as numbers or strings.
func searchGetter(doc map[string]any) func(string) string {
	return func(k string) string {
		v, _ := domain.Get(doc, k)
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case []any:
			var parts []string
			for _, p := range x {
				if s, ok := p.(string); ok {
					parts = append(parts, s)
				}
			}
			return strings.Join(parts, ",")
		}
		return ""
	}
}

func (h *DirectoryHTTP) scimSearch(list lister) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, doc, ok := h.scimBody(w, r)
		if !ok {
			return
		}
		q, err := scimQuery(searchGetter(doc))
		if err == nil {
			var out app.ScimList
			if out, err = list(r.Context(), chi.URLParam(r, "acc"), scimBase(r), q); err == nil {
				scimJSON(w, http.StatusOK, out)
				return
			}
		}
		h.scimError(w, r, err)
	}
}

// scimSearchAll is POST /.search: users, then groups. The filter may name
// the attributes of either type; a resource lacking one does not match.
func (h *DirectoryHTTP) scimSearchAll(w http.ResponseWriter, r *http.Request) {
	_, doc, ok := h.scimBody(w, r)
	if !ok {
		return
	}
	q, err := scimQuery(searchGetter(doc))
	if err != nil {
		h.scimError(w, r, err)
		return
	}
	all := q
	all.StartIndex, all.Count = 1, 1<<30
	all.Filterable = domain.Filterable{}
	for _, f := range []domain.Filterable{domain.UserFilterable, domain.GroupFilterable} {
		for k := range f {
			all.Filterable[k] = true
		}
	}
	var docs []map[string]any
	for _, list := range []lister{h.Dir.ListUsers, h.Dir.ListGroups} {
		out, err := list(r.Context(), chi.URLParam(r, "acc"), scimBase(r), all)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		docs = append(docs, out.Resources...)
	}
	res := app.ScimList{Schemas: []string{domain.SchemaList}, TotalResults: len(docs), StartIndex: q.StartIndex, Resources: []map[string]any{}}
	for i := q.StartIndex - 1; i < len(docs) && len(res.Resources) < q.Count; i++ {
		res.Resources = append(res.Resources, docs[i])
	}
	res.ItemsPerPage = len(res.Resources)
	scimJSON(w, http.StatusOK, res)
}

func (h *DirectoryHTTP) scimGet(get func(ctx ctxT, accountID, id string, base app.ScimBase) (map[string]any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		doc, err := get(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), scimBase(r))
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		scimJSON(w, http.StatusOK, domain.Project(doc, q.Get("attributes"), q.Get("excludedAttributes")))
	}
}

func (h *DirectoryHTTP) scimCreate(create func(ctx ctxT, accountID string, base app.ScimBase, doc map[string]any) (map[string]any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, doc, ok := h.scimBody(w, r)
		if !ok {
			return
		}
		out, err := create(r.Context(), chi.URLParam(r, "acc"), scimBase(r), doc)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		if meta, ok := out["meta"].(map[string]any); ok {
			w.Header().Set("Location", meta["location"].(string))
		}
		scimJSON(w, http.StatusCreated, out)
	}
}

func (h *DirectoryHTTP) scimReplace(replace func(ctx ctxT, accountID, id string, base app.ScimBase, doc map[string]any) (map[string]any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, doc, ok := h.scimBody(w, r)
		if !ok {
			return
		}
		out, err := replace(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), scimBase(r), doc)
		if err != nil {
			h.scimError(w, r, err)
			return
		}
		scimJSON(w, http.StatusOK, out)
	}
}

func (h *DirectoryHTTP) scimPatchUser(w http.ResponseWriter, r *http.Request) {
	b, _, ok := h.scimBody(w, r)
	if !ok {
		return
	}
	ops, err := domain.ParsePatch(b)
	if err == nil {
		var out map[string]any
		if out, err = h.Dir.PatchUser(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), scimBase(r), ops); err == nil {
			scimJSON(w, http.StatusOK, out)
			return
		}
	}
	h.scimError(w, r, err)
}

// scimPatchGroup answers 204 (Entra ID and Okta accept it; the group's
// member list may be long).
func (h *DirectoryHTTP) scimPatchGroup(w http.ResponseWriter, r *http.Request) {
	b, _, ok := h.scimBody(w, r)
	if !ok {
		return
	}
	ops, err := domain.ParsePatch(b)
	if err == nil {
		if err = h.Dir.PatchGroup(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id"), scimBase(r), ops); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	h.scimError(w, r, err)
}

func (h *DirectoryHTTP) scimDelete(del func(ctx ctxT, accountID, id string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := del(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id")); err != nil {
			h.scimError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *DirectoryHTTP) scimStatic(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { scimJSON(w, http.StatusOK, withBase(v, scimBase(r))) }
}

func (h *DirectoryHTTP) scimStaticByID(all []map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		for _, d := range all {
			if strings.EqualFold(d["id"].(string), id) {
				scimJSON(w, http.StatusOK, withBase(d, scimBase(r)))
				return
			}
		}
		h.scimError(w, r, &domain.ScimError{Status: 404, Detail: id + " not found"})
	}
}
