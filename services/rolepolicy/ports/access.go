package ports

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

type checkRequest struct {
	TechnicianID string  `json:"technician_id"`
	Permission   string  `json:"permission"`
	SiteID       *string `json:"site_id"`
	FolderID     *string `json:"folder_id"`
}

// checkAnswer is the answer of POST …/access/check: api.md's allowed and
// reason, what decided as a stable code, and the request as decided (the
// folder's site filled in).
type checkAnswer struct {
	Allowed      bool    `json:"allowed"`
	Reason       string  `json:"reason"`
	Decision     string  `json:"decision"`
	TechnicianID string  `json:"technician_id"`
	Permission   string  `json:"permission"`
	SiteID       *string `json:"site_id"`
	FolderID     *string `json:"folder_id"`
	RoleID       *string `json:"role_id"`
	Role         *string `json:"role"`
}

// unknownField names the request field an unknown-id decision is about.
var unknownField = map[access.Code]string{
	access.UnknownTechnician: "technician_id",
	access.UnknownPermission: "permission",
	access.UnknownSite:       "site_id",
	access.UnknownFolder:     "folder_id",
	access.FolderNotInSite:   "folder_id",
}

// checkAccess: POST /v1/accounts/{acc}/access/check → 200
// {allowed, reason, …}. It changes nothing, so an Idempotency-Key is
// accepted and has nothing to do; the answer comes from the index, with no
// database read. Ids the account does not have are a 422 naming the field.
func (h *HTTP) checkAccess(w http.ResponseWriter, r *http.Request) {
	var req checkRequest
	if p := httpx.Decode(r, &req); p != nil {
		problem.Write(w, p)
		return
	}
	var bad []problem.FieldError
	if strings.TrimSpace(req.TechnicianID) == "" {
		bad = append(bad, problem.FieldError{Field: "technician_id", Detail: "is required"})
	}
	if strings.TrimSpace(req.Permission) == "" {
		bad = append(bad, problem.FieldError{Field: "permission", Detail: "is required: a permission id of the catalog (GET /v1/permissions)"})
	}
	if len(bad) > 0 {
		problem.Write(w, problem.Invalid(bad...))
		return
	}
	q := access.Request{TechnicianID: req.TechnicianID, Permission: req.Permission}
	if req.SiteID != nil {
		q.SiteID = *req.SiteID
	}
	if req.FolderID != nil {
		q.FolderID = *req.FolderID
	}
	d := h.app.CheckAccess(chi.URLParam(r, "acc"), q)
	if d.Code == access.UnknownAccount {
		problem.Write(w, problem.NotFound("account "+chi.URLParam(r, "acc")))
		return
	}
	if field, ok := unknownField[d.Code]; ok {
		problem.Write(w, problem.Invalid(problem.FieldError{Field: field, Detail: strings.TrimPrefix(d.Reason(), "denied: ")}))
		return
	}
	httpx.JSON(w, http.StatusOK, checkAnswer{
		Allowed: d.Allowed, Reason: d.Reason(), Decision: string(d.Code),
		TechnicianID: d.Request.TechnicianID, Permission: d.Request.Permission,
		SiteID: nonEmpty(d.Request.SiteID), FolderID: nonEmpty(d.Request.FolderID),
		RoleID: nonEmpty(d.RoleID), Role: nonEmpty(d.RoleName),
	})
}

// effectiveJSON is the answer of GET …/technicians/{id}/effective-access:
// every permission of the catalog per site of the role's scope — one
// entry for every site when the role is not limited to sites — each with
// its decision and why, and the folders whose devices lose permissions.
type effectiveJSON struct {
	TechnicianID string `json:"technician_id"`
	Status       string `json:"status"`
	// Denied: every permission is denied (R-7: disabled).
	Denied  bool    `json:"denied"`
	RoleID  *string `json:"role_id"`
	Role    *string `json:"role"`
	BuiltIn bool    `json:"built_in"`
	// AdminRole: the built-in Admin role.
	AdminRole bool `json:"admin_role"`
	// AllSites: the role reaches every site; else only the sites listed,
	// and every other site is denied (client isolation, R-7).
	AllSites bool       `json:"all_sites"`
	Sites    []siteJSON `json:"sites"`
}

type siteJSON struct {
	// SiteID is null for the entry of every site.
	SiteID          *string                `json:"site_id"`
	SiteName        *string                `json:"site_name"`
	AllSites        bool                   `json:"all_sites"`
	Permissions     []permissionAccessJSON `json:"permissions"`
	ExcludedFolders []folderJSON           `json:"excluded_folders"`
}

type permissionAccessJSON struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Allowed  bool   `json:"allowed"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

type folderJSON struct {
	FolderID string `json:"folder_id"`
	Name     string `json:"name"`
	SiteID   string `json:"site_id"`
	// RemovedPermissions are the permissions the technician holds on the
	// site but not on this folder's devices.
	RemovedPermissions []string `json:"removed_permissions"`
	Reason             string   `json:"reason"`
}

// effectiveAccess: GET /v1/accounts/{acc}/technicians/{id}/effective-access,
// from the index.
func (h *HTTP) effectiveAccess(w http.ResponseWriter, r *http.Request) {
	e, err := h.app.EffectiveAccess(chi.URLParam(r, "acc"), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := effectiveJSON{
		TechnicianID: e.TechnicianID, Status: string(e.Status), Denied: e.Status == domain.StatusDisabled,
		RoleID: nonEmpty(e.RoleID), Role: nonEmpty(e.RoleName), BuiltIn: e.BuiltIn, AdminRole: e.Admin,
		AllSites: e.AllSites, Sites: make([]siteJSON, 0, len(e.Sites)),
	}
	for _, s := range e.Sites {
		sj := siteJSON{SiteID: nonEmpty(s.SiteID), SiteName: nonEmpty(s.SiteName), AllSites: s.SiteID == "",
			Permissions: make([]permissionAccessJSON, 0, len(s.Permissions)), ExcludedFolders: []folderJSON{}}
		for _, p := range s.Permissions {
			sj.Permissions = append(sj.Permissions, permissionAccessJSON{ID: p.Permission, Category: p.Category,
				Allowed: p.Decision.Allowed, Decision: string(p.Decision.Code), Reason: p.Decision.Reason()})
		}
		for _, f := range s.ExcludedFolders {
			sj.ExcludedFolders = append(sj.ExcludedFolders, folderJSON{FolderID: f.FolderID, Name: f.FolderName, SiteID: f.SiteID,
				RemovedPermissions: f.Removed,
				Reason: fmt.Sprintf("role %q excludes this folder: its remote-management and RMM permissions do not reach the folder's devices, "+
					"which stay visible, and every other permission still does (R-5)", e.RoleName)})
		}
		out.Sites = append(out.Sites, sj)
	}
	httpx.JSON(w, http.StatusOK, out)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
