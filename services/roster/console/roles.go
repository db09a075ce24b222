package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

func (c *Console) roleRoutes(r chi.Router) {
	r.Get("/roles", c.roleList)
	r.Post("/roles", c.createRole)
	r.Get("/roles/{id}", c.roleEditor)
	r.Post("/roles/{id}", c.saveRole)
}

// Role is the API's role.
type Role struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	BuiltIn           bool     `json:"built_in"`
	Permissions       []string `json:"permissions"`
	SiteIDs           []string `json:"site_ids"`
	ExcludedFolderIDs []string `json:"excluded_folder_ids"`
	Version           int64    `json:"version"`
}

// Permission is an entry of the catalog.
type Permission struct {
	ID          string `json:"id"`
	Category    string `json:"category"`
	Description string `json:"description"`
}

// Category is the catalog's permissions of one category, in catalog order.
type Category struct {
	Name        string
	Permissions []Permission
}

func (c *Console) roles(r *http.Request) ([]Role, Answer) {
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/roles?limit=500", nil)
	var l list[Role]
	if a.OK() {
		if err := a.Decode(&l); err != nil {
			return nil, failed(err)
		}
	}
	return l.Data, a
}

func (c *Console) roleList(w http.ResponseWriter, r *http.Request) {
	rs, a := c.roles(r)
	if SessionFrom(r).Layered {
		c.baseRoles(w, r, rs, a)
		return
	}
	c.Render(w, r, status(a), "roles", View{Title: "Roles", Active: "/roles", Problem: a.Problem, Data: rs})
}

// baseRoles: on an account with the layered model the roles are the
// profile's base roles, read-only; access is shaped by personas and
// purposes instead of a permission editor.
func (c *Console) baseRoles(w http.ResponseWriter, r *http.Request, rs []Role, a Answer) {
	c.Render(w, r, status(a), "base-roles", View{Title: "Base roles", Active: "/roles", Problem: a.Problem, Data: rs})
}

// createRole: a new custom role with a name and no permission, then its
// editor.
func (c *Console) createRole(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	s := SessionFrom(r)
	a := c.API(r.Context(), s, "POST", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/roles",
		map[string]any{"name": r.PostFormValue("name"), "permissions": []string{}}, "Idempotency-Key", r.PostFormValue("idempotency_key"))
	if !a.OK() {
		rs, _ := c.roles(r)
		c.Render(w, r, status(a), "roles", View{Title: "Roles", Active: "/roles", Problem: a.Problem, Data: rs})
		return
	}
	var role Role
	_ = a.Decode(&role)
	redirect(w, r, "/roles/"+url.PathEscape(role.ID), "Role created; choose its permissions")
}

type roleView struct {
	Role       Role
	Categories []Category
	Sites      []Site
	// Conflict: someone saved the role since this editor read it.
	Conflict bool
}

func (c *Console) loadRole(r *http.Request) (roleView, Answer) {
	s := SessionFrom(r)
	var v roleView
	a := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/roles/"+url.PathEscape(chi.URLParam(r, "id")), nil)
	if !a.OK() {
		return v, a
	}
	if err := a.Decode(&v.Role); err != nil {
		return v, failed(err)
	}
	var acc struct {
		Profile string `json:"profile"`
	}
	if aa := c.API(r.Context(), s, "GET", "/v1/accounts/"+url.PathEscape(s.AccountID), nil); aa.OK() {
		_ = aa.Decode(&acc)
	}
	path := "/v1/permissions"
	if acc.Profile != "" {
		path += "?profile=" + url.QueryEscape(acc.Profile)
	}
	if pa := c.API(r.Context(), s, "GET", path, nil); pa.OK() {
		var l list[Permission]
		_ = pa.Decode(&l)
		for _, p := range l.Data {
			if n := len(v.Categories); n == 0 || v.Categories[n-1].Name != p.Category {
				v.Categories = append(v.Categories, Category{Name: p.Category})
			}
			v.Categories[len(v.Categories)-1].Permissions = append(v.Categories[len(v.Categories)-1].Permissions, p)
		}
	}
	v.Sites = c.sites(r)
	return v, a
}

// roleEditor: permission toggles grouped by category, site scope, folder
// exclusions; built-in roles are shown read-only.
func (c *Console) roleEditor(w http.ResponseWriter, r *http.Request) {
	if SessionFrom(r).Layered {
		rs, a := c.roles(r)
		c.baseRoles(w, r, rs, a)
		return
	}
	v, a := c.loadRole(r)
	c.Render(w, r, status(a), "role", View{Title: "Role " + v.Role.Name, Active: "/roles", Problem: a.Problem, Data: v})
}

// saveRole replaces the role whole with If-Match: the version the editor
// read. When someone saved first (412), the page shows the conflict
// and the role as it is now, to reapply the change.
func (c *Console) saveRole(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	s := SessionFrom(r)
	id := chi.URLParam(r, "id")
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		http.Error(w, "malformed version", http.StatusBadRequest)
		return
	}
	var folders []string
	for _, f := range strings.FieldsFunc(r.PostFormValue("excluded_folder_ids"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' }) {
		folders = append(folders, f)
	}
	perms := r.PostForm["permissions"]
	if perms == nil {
		perms = []string{}
	}
	body := map[string]any{"name": r.PostFormValue("name"), "permissions": perms, "site_ids": r.PostForm["site_ids"], "excluded_folder_ids": folders}
	a := c.API(r.Context(), s, "PUT", "/v1/accounts/"+url.PathEscape(s.AccountID)+"/roles/"+url.PathEscape(id), body,
		"If-Match", strconv.Quote(strconv.FormatInt(version, 10)), "Idempotency-Key", r.PostFormValue("idempotency_key"))
	if a.OK() {
		redirect(w, r, "/roles/"+url.PathEscape(id), "Role saved")
		return
	}
	v, _ := c.loadRole(r)
	v.Conflict = a.Status == http.StatusPreconditionFailed
	c.Render(w, r, status(a), "role", View{Title: "Role " + v.Role.Name, Active: "/roles", Problem: a.Problem, Data: v})
}
