// Package access decides who may do what (rules.md ): an in-memory
// index per account of roles, technicians, sites and folders, answering an
// access check without touching the database. The rolepolicy use cases
// keep it current from their own writes and from identity's events, and
// rebuild it from the database at start (Index.InstallAll).
//
// Pure Go: no storage, no transport. The decision rule is one function
// (role.decide) used by both the check and the effective-access
// explanation, so the two always agree.
package access

import (
	"fmt"
	"strings"
)

// Code says what decided an access check.
type Code string

// Decision codes. The allowed ones first.
const (
	// AllowedAdmin: the built-in Admin role holds every permission on every
	// site, is never site-restricted and never loses a folder.
	AllowedAdmin Code = "allowed_admin"
	// AllowedByRole: the technician's role holds the permission there.
	AllowedByRole Code = "allowed_by_role"

	// DeniedDisabled: a disabled technician is always denied.
	DeniedDisabled Code = "denied_disabled"
	// DeniedPermission: the role lacks the permission.
	DeniedPermission Code = "denied_permission"
	// DeniedSiteScope: the site is outside the role's sites (client
	// isolation, R-7, L-7).
	DeniedSiteScope Code = "denied_site_scope"
	// DeniedFolderExcluded: the role excludes the folder and the permission
	// is a remote-management or RMM one.
	DeniedFolderExcluded Code = "denied_folder_excluded"
	// DeniedNoRole: the technician holds no role the index knows (broken
	// data; never expected).
	DeniedNoRole Code = "denied_no_role"

	// The request names something the account does not have; denied.
	UnknownAccount    Code = "unknown_account"
	UnknownTechnician Code = "unknown_technician"
	UnknownPermission Code = "unknown_permission"
	UnknownSite       Code = "unknown_site"
	UnknownFolder     Code = "unknown_folder"
	// FolderNotInSite: the request names a site and a folder of another
	// site.
	FolderNotInSite Code = "folder_not_in_site"
)

// Unknown reports whether c says the request named something the account
// does not have (a caller's mistake, not a decision about the technician).
func (c Code) Unknown() bool {
	switch c {
	case UnknownAccount, UnknownTechnician, UnknownPermission, UnknownSite, UnknownFolder, FolderNotInSite:
		return true
	}
	return false
}

// Request is one access check: may the technician use the
// permission, on the site (optional) and on the devices of the folder
// (optional; a folder implies its site)?
type Request struct {
	TechnicianID string
	Permission   string
	SiteID       string
	FolderID     string
}

// Decision is the answer of an access check. It carries what decided, not
// a text: Reason builds the text when someone reads it, so a check
// allocates nothing.
type Decision struct {
	Allowed bool
	Code    Code
	// Request is the request as decided: SiteID is the folder's site when
	// the request named only a folder.
	Request Request
	// RoleID and RoleName are the technician's role; empty when no role
	// was looked at (unknown technician, disabled).
	RoleID   string
	RoleName string
	// ViaAdminFull: a custom role grants the permission through admin.full
	// (R-3, scoped admin).
	ViaAdminFull bool
	// FolderVisible: the role excludes the folder, but the permission is
	// not a remote-management or RMM one, so the folder's devices stay
	// visible to it.
	FolderVisible bool
	// AdminFullNoAutoAssignment: denied ticketing.auto_assignment to a role
	// holding admin.full without it (R-3: the admin left out of
	// auto-assignment).
	AdminFullNoAutoAssignment bool
}

// Reason says, for people, what decided: the role, the scope, the
// exclusion or the technician's state, with the rule id.
func (d Decision) Reason() string {
	q := d.Request
	role := fmt.Sprintf("role %q (%s)", d.RoleName, d.RoleID)
	switch d.Code {
	case AllowedAdmin:
		return "allowed: the Admin role holds every permission on every site, is never site-restricted and no folder is excluded from it (R-2)"
	case AllowedByRole:
		var b strings.Builder
		fmt.Fprintf(&b, "allowed by %s", role)
		if d.ViaAdminFull {
			b.WriteString(" through admin.full (scoped admin, R-3)")
		} else {
			b.WriteString(", which holds " + q.Permission)
		}
		if q.SiteID != "" {
			b.WriteString(" on site " + q.SiteID)
		} else {
			b.WriteString(" on the sites of its scope")
		}
		if d.FolderVisible {
			fmt.Fprintf(&b, "; folder %s is excluded by the role, which removes only remote-management and RMM permissions there: its devices stay visible (R-5)", q.FolderID)
		}
		return b.String()
	case DeniedDisabled:
		return fmt.Sprintf("denied: technician %s is disabled, and a disabled technician is always denied (R-7)", q.TechnicianID)
	case DeniedPermission:
		if d.AdminFullNoAutoAssignment {
			return fmt.Sprintf("denied: %s holds admin.full but not %s: a custom admin joins ticket auto-assignment only when its role lists it (R-3)", role, q.Permission)
		}
		return fmt.Sprintf("denied: %s lacks %s", role, q.Permission)
	case DeniedSiteScope:
		return fmt.Sprintf("denied: site %s is outside the sites of %s (client isolation, R-7)", q.SiteID, role)
	case DeniedFolderExcluded:
		return fmt.Sprintf("denied: %s excludes folder %s, and %s is a remote-management or RMM permission, which folder exclusion removes (R-5)", role, q.FolderID, q.Permission)
	case DeniedNoRole:
		return fmt.Sprintf("denied: technician %s holds no role known to rolepolicy", q.TechnicianID)
	case UnknownAccount:
		return "denied: unknown account"
	case UnknownTechnician:
		return fmt.Sprintf("denied: %s is not a technician of this account", q.TechnicianID)
	case UnknownPermission:
		return fmt.Sprintf("denied: %s is not a permission of this account's catalog (R-1)", q.Permission)
	case UnknownSite:
		return fmt.Sprintf("denied: %s is not a site of this account", q.SiteID)
	case UnknownFolder:
		return fmt.Sprintf("denied: %s is not a folder of this account", q.FolderID)
	case FolderNotInSite:
		return fmt.Sprintf("denied: folder %s is not in site %s", q.FolderID, q.SiteID)
	}
	return "denied"
}
