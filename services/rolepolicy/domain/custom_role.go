package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"roster.dev/pkg/profile"
)

// Errors of custom roles; ports map them to problems.
var (
	// ErrBuiltInRole: built-in roles are never edited or deleted.
	ErrBuiltInRole = errors.New("built-in role")
	// ErrIfMatchRequired: a whole-role update must name the version it
	// replaces.
	ErrIfMatchRequired = errors.New("If-Match required")
	// ErrStaleVersion: the role changed since the version the update names
	// two editors cannot silently overwrite each other).
	ErrStaleVersion = errors.New("stale version")
	// ErrCustomRolesUnavailable: the profile's role model has no custom
	// roles (R-9: atlan).
	ErrCustomRolesUnavailable = errors.New("custom roles unavailable")
	// ErrSiteNotFound: an event names a site this service does not know
	// (yet: identity's events can overtake one another on redelivery).
	ErrSiteNotFound = errors.New("site not found")
)

// PermissionRoleModel is the profile role model with a permission catalog
// and custom roles (atera, roster; ).
const PermissionRoleModel = "permissions"

// FieldProblem names one invalid field of a request.
type FieldProblem struct {
	Field  string
	Detail string
}

// InvalidError lists every invalid field of a request.
type InvalidError struct{ Fields []FieldProblem }

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Detail)
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// RoleInUseError: a role still held (or pre-assigned, to be applied at the
// first login) cannot be deleted.
type RoleInUseError struct {
	// Assigned counts the technicians holding the role, whatever their
	// status: a disabled technician enabled again holds it again.
	Assigned int
	// Pending counts the technicians who have not logged in yet and whose
	// requested or pre-assigned role it is, where the profile applies that
	// role at the first login.
	Pending int
}

func (e *RoleInUseError) Error() string {
	return fmt.Sprintf("role in use: %d technicians hold it, %d will at their first login", e.Assigned, e.Pending)
}

// RoleSpec is what a client sets on a custom role: the whole role, for a
// creation or a replacement.
type RoleSpec struct {
	Name        string
	Permissions []string
	// SiteIDs empty: every site.
	SiteIDs           []string
	ExcludedFolderIDs []string
}

// CheckRoleSpec validates a custom role against the account's catalog and
// returns it normalised: the name trimmed, permissions in catalog order
// without duplicates, site and folder ids trimmed and without duplicates
// in the order given. Every invalid field is reported (InvalidError). It
// does not know which sites and folders exist: the caller checks the ids
// against its projection of identity's sites.
//
// any subset of the catalog; "*" is the built-in roles' shorthand,
// not an id a client may send.
func CheckRoleSpec(catalog []profile.Permission, spec RoleSpec) (RoleSpec, error) {
	var bad []FieldProblem
	name, err := CheckName(spec.Name)
	if err != nil {
		bad = append(bad, FieldProblem{"name", fmt.Sprintf("is required, at most %d characters", MaxRoleNameLength)})
	}
	var perms []string
	if slices.Contains(spec.Permissions, AllPermissions) {
		bad = append(bad, FieldProblem{"permissions", `"*" is not a permission id; list the catalog ids (GET /v1/permissions)`})
	} else if perms, err = ExpandPermissions(catalog, spec.Permissions); err != nil {
		bad = append(bad, FieldProblem{"permissions", strings.TrimPrefix(err.Error(), ErrUnknownPermission.Error()+": ") +
			" not in this account's catalog (GET /v1/permissions)"})
	}
	sites, siteProblem := cleanIDs(spec.SiteIDs)
	if siteProblem != "" {
		bad = append(bad, FieldProblem{"site_ids", siteProblem})
	}
	folders, folderProblem := cleanIDs(spec.ExcludedFolderIDs)
	if folderProblem != "" {
		bad = append(bad, FieldProblem{"excluded_folder_ids", folderProblem})
	}
	if len(bad) > 0 {
		return RoleSpec{}, &InvalidError{Fields: bad}
	}
	return RoleSpec{Name: name, Permissions: perms, SiteIDs: sites, ExcludedFolderIDs: folders}, nil
}

// cleanIDs trims ids and drops duplicates, keeping the first occurrence;
// an empty id is a problem.
func cleanIDs(ids []string) ([]string, string) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, "holds an empty id"
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, ""
}

// NewCustomRole is a custom role from a checked spec (CheckRoleSpec):
// version 1, never built in, limited to its sites when it names any.
func NewCustomRole(accountID, id string, spec RoleSpec, now time.Time) Role {
	return Role{
		ID:                id,
		AccountID:         accountID,
		Name:              spec.Name,
		SiteScopable:      true,
		Permissions:       spec.Permissions,
		SiteIDs:           spec.SiteIDs,
		ExcludedFolderIDs: spec.ExcludedFolderIDs,
		Version:           1,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
}

// CanChange is R-2: built-in roles are never edited or deleted.
func (r Role) CanChange() error {
	if r.BuiltIn {
		return fmt.Errorf("role %s (%s): %w", r.Name, r.ID, ErrBuiltInRole)
	}
	return nil
}

// CheckReplace is R-4's guard of a whole-role update: ifMatch holds the
// versions the request's If-Match names; none is ErrIfMatchRequired, and
// none equal to r's version ErrStaleVersion. A built-in role is
// ErrBuiltInRole first, so that an edit of one is told why whatever
// its If-Match.
func (r Role) CheckReplace(ifMatch []int64) error {
	if err := r.CanChange(); err != nil {
		return err
	}
	if len(ifMatch) == 0 {
		return fmt.Errorf("role %s: %w", r.ID, ErrIfMatchRequired)
	}
	if !slices.Contains(ifMatch, r.Version) {
		return fmt.Errorf("role %s is at version %d: %w", r.ID, r.Version, ErrStaleVersion)
	}
	return nil
}

// Replace returns r replaced whole by a checked spec (CheckRoleSpec), at
// the next version. Call CheckReplace first.
func (r Role) Replace(spec RoleSpec, now time.Time) Role {
	r.Name, r.Permissions, r.SiteIDs, r.ExcludedFolderIDs = spec.Name, spec.Permissions, spec.SiteIDs, spec.ExcludedFolderIDs
	r.Version++
	r.UpdatedAt = now
	return r
}

// Spec is what a client sets on r.
func (r Role) Spec() RoleSpec {
	return RoleSpec{Name: r.Name, Permissions: r.Permissions, SiteIDs: r.SiteIDs, ExcludedFolderIDs: r.ExcludedFolderIDs}
}

// Site is a site (Atera "customer/site") as identity announced it.
type Site struct {
	AccountID string
	ID        string
	Name      string
	CreatedAt time.Time
}

// Folder is a device folder inside a site, as identity announced it.
type Folder struct {
	AccountID string
	ID        string
	SiteID    string
	Name      string
	CreatedAt time.Time
}
