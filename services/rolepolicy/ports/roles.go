package ports

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/services/rolepolicy/app"
	"roster.dev/services/rolepolicy/domain"
)

// roleRequest is the body of POST and PUT …/roles: the whole role (R-3,
// name and permissions are required ([] for none), so that a PUT
// that forgets a field does not silently empty it; site_ids and
// excluded_folder_ids absent are empty (every site; no folder).
type roleRequest struct {
	Name              *string   `json:"name"`
	Permissions       *[]string `json:"permissions"`
	SiteIDs           []string  `json:"site_ids"`
	ExcludedFolderIDs []string  `json:"excluded_folder_ids"`
}

func (q roleRequest) spec() (domain.RoleSpec, *problem.Problem) {
	var bad []problem.FieldError
	if q.Name == nil {
		bad = append(bad, problem.FieldError{Field: "name", Detail: "is required"})
	}
	if q.Permissions == nil {
		bad = append(bad, problem.FieldError{Field: "permissions", Detail: "is required: the catalog ids the role holds ([] for none)"})
	}
	if len(bad) > 0 {
		return domain.RoleSpec{}, problem.Invalid(bad...)
	}
	return domain.RoleSpec{Name: *q.Name, Permissions: *q.Permissions, SiteIDs: q.SiteIDs, ExcludedFolderIDs: q.ExcludedFolderIDs}, nil
}

// readJSON reads the raw body (for Idempotency-Key) and decodes it into v,
// refusing unknown fields; false when it wrote a problem.
func readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "malformed-body", "Malformed body", "the body could not be read"))
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if p := httpx.Decode(r, v); p != nil {
		problem.Write(w, p)
		return nil, false
	}
	return raw, true
}

// createRole: POST /v1/accounts/{acc}/roles, with Idempotency-Key;
// 201 with the role, its ETag and Location.
func (h *HTTP) createRole(w http.ResponseWriter, r *http.Request) {
	var req roleRequest
	raw, ok := readJSON(w, r, &req)
	if !ok {
		return
	}
	spec, p := req.spec()
	if p != nil {
		problem.Write(w, p)
		return
	}
	acc := chi.URLParam(r, "acc")
	res, err := h.app.CreateRole(r.Context(), app.CreateRole{AccountID: acc, Spec: spec}, r.Header.Get("Idempotency-Key"), raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if v, ok := roleOf(res); ok {
		w.Header().Set("Location", "/v1/accounts/"+acc+"/roles/"+v.ID)
	}
	h.writeRole(w, res)
}

// replaceRole: PUT /v1/accounts/{acc}/roles/{id} replaces the role whole,
// guarded by If-Match; with Idempotency-Key, so that a retry after a
// lost answer gets that answer rather than a 412.
func (h *HTTP) replaceRole(w http.ResponseWriter, r *http.Request) {
	var req roleRequest
	raw, ok := readJSON(w, r, &req)
	if !ok {
		return
	}
	spec, p := req.spec()
	if p != nil {
		problem.Write(w, p)
		return
	}
	cmd := app.ReplaceRole{
		AccountID: chi.URLParam(r, "acc"), RoleID: chi.URLParam(r, "id"),
		IfMatch: ifMatchVersions(r.Header.Values("If-Match")), Spec: spec,
	}
	res, err := h.app.ReplaceRole(r.Context(), cmd, r.Header.Get("Idempotency-Key"), raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeRole(w, res)
}

// deleteRole: DELETE /v1/accounts/{acc}/roles/{id} → 204; 409 built-in-role
// or role-in-use with assigned_count.
func (h *HTTP) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := h.app.DeleteRole(r.Context(), chi.URLParam(r, "acc"), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeRole writes a role answer (first or replayed) with its ETag.
func (h *HTTP) writeRole(w http.ResponseWriter, res idempotency.Result) {
	if v, ok := roleOf(res); ok {
		w.Header().Set("ETag", ETag(v.Version))
	}
	idempotency.Write(w, res)
}

func roleOf(res idempotency.Result) (app.RoleView, bool) {
	var v app.RoleView
	err := json.Unmarshal(res.Body, &v)
	return v, err == nil && v.ID != ""
}

// ifMatchVersions reads the role versions If-Match names: strong tags
// ("3"), several separated by commas. A weak tag (W/"3") never matches a
// strong comparison (RFC 9110) and "*" does not name a version, which R-4
// needs, so both count as a version no role has: they are refused, with
// 412 and 428 respectively.
func ifMatchVersions(values []string) []int64 {
	var out []int64
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			switch {
			case tag == "" || tag == "*":
				continue
			case strings.HasPrefix(tag, "W/"):
				out = append(out, -1)
				continue
			}
			n, err := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
			if err != nil {
				n = -1
			}
			out = append(out, n)
		}
	}
	return out
}

// matchesVersion is If-None-Match's weak comparison with a role version.
func matchesVersion(header string, version int64) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == ETag(version) {
			return true
		}
	}
	return false
}
