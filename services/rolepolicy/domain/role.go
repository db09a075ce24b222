// Package domain holds the role-policy rules (rules.md R-*): roles, the
// permission catalog they draw from, and the roles an account starts with.
// Pure Go: no storage, no transport. Profile data (pkg/profile) is read as
// plain values; no rule here depends on a profile's name.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"roster.dev/pkg/profile"
)

// Errors of the role-policy domain; ports map them to problems.
var (
	ErrUnknownProfile    = errors.New("unknown profile")
	ErrUnknownPermission = errors.New("unknown permission")
	ErrInvalidRoleName   = errors.New("invalid role name")
	ErrDuplicateRoleName = errors.New("role name already taken")
	ErrNoFirstAdminRole  = errors.New("no role for the first admin")
	ErrAccountNotFound   = errors.New("account not found")
	ErrRoleNotFound      = errors.New("role not found")
)

// AllPermissions in a profile's role permissions grants the whole catalog.
const AllPermissions = "*"

// MaxRoleNameLength caps role names, in characters.
const MaxRoleNameLength = 100

// Role is a named set of permissions with a site scope.
type Role struct {
	ID        string
	AccountID string
	Name      string
	// BuiltIn roles come from the profile and can be neither edited nor
	// deleted.
	BuiltIn bool
	// SiteScopable is false for a role that cannot be limited to sites:
	// Admin.
	SiteScopable bool
	// DefaultForNew marks the role every new technician gets.
	DefaultForNew bool
	// FirstAdmin marks the role the account's first admin holds (I-9).
	FirstAdmin bool
	// Permissions are catalog ids in catalog order.
	Permissions []string
	// SiteIDs limit the role to these sites; empty means every site.
	SiteIDs []string
	// ExcludedFolderIDs are device folders the role's remote and RMM
	// permissions do not reach.
	ExcludedFolderIDs []string
	// Version guards whole-role updates; it starts at 1.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Account is one tenant as this service knows it.
type Account struct {
	ID        string
	Profile   string
	CreatedAt time.Time
}

// Assignment: a technician holds a role.
type Assignment struct {
	AccountID    string
	TechnicianID string
	RoleID       string
	AssignedAt   time.Time
}

// RoleID returns an opaque role id, "role_" and 32 hex digits, derived from
// the account and what names the role within it: BuiltInRoleKey or
// CustomRoleKey. Ids are derived, never random, so that replaying the
// account's events into an empty database gives every role the id it had
// (docs/events.md, "Replaying rolepolicy").
func RoleID(accountID, key string) string {
	sum := sha256.Sum256([]byte(accountID + "\x00" + key))
	return "role_" + hex.EncodeToString(sum[:16])
}

// BuiltInRoleKey names a built-in role within its account: its name key
// (built-in roles are never renamed or deleted).
func BuiltInRoleKey(name string) string { return "built-in:" + NameKey(name) }

// CustomRoleKey names the n-th custom role created in its account (1 for
// the first; deleted roles keep their number).
func CustomRoleKey(n int64) string { return fmt.Sprintf("custom:%d", n) }

// NameKey is what role names are compared by: trimmed and lower-cased, so
// names are unique per account case-insensitively (api.md).
func NameKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// CheckName returns the trimmed name, or ErrInvalidRoleName when it is empty
// or too long.
func CheckName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fmt.Errorf("%w: the name is empty", ErrInvalidRoleName)
	case utf8.RuneCountInString(name) > MaxRoleNameLength:
		return "", fmt.Errorf("%w: longer than %d characters", ErrInvalidRoleName, MaxRoleNameLength)
	}
	return name, nil
}

// ExpandPermissions turns granted permissions into catalog ids in catalog
// order, without duplicates. AllPermissions grants every catalog entry
// Admin has every permission); any other id must be in the catalog
// a role holds a subset of the catalog).
func ExpandPermissions(catalog []profile.Permission, granted []string) ([]string, error) {
	all := slices.Contains(granted, AllPermissions)
	want := map[string]bool{}
	for _, id := range granted {
		want[id] = true
	}
	out := []string{}
	for _, p := range catalog {
		if all || want[p.ID] {
			out = append(out, p.ID)
			delete(want, p.ID)
		}
	}
	delete(want, AllPermissions)
	if len(want) > 0 {
		unknown := make([]string, 0, len(want))
		for id := range want {
			unknown = append(unknown, id)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("%w: %s", ErrUnknownPermission, strings.Join(unknown, ", "))
	}
	return out, nil
}

// BuiltInRoles builds the roles every account of a profile starts with, in
// the profile's order: R-2 (Admin, Beginner) and, where the profile has
// them, R-8 (Billing, Account manager). Built-in roles reach every site;
// SiteScopable only says whether an assignment may later narrow them.
func BuiltInRoles(accountID string, policy profile.RolePolicy, now time.Time) ([]Role, error) {
	roles := make([]Role, 0, len(policy.BuiltInRoles))
	seen := map[string]bool{}
	firstAdmins := 0
	for _, b := range policy.BuiltInRoles {
		name, err := CheckName(b.Name)
		if err != nil {
			return nil, fmt.Errorf("built-in role %q: %w", b.Name, err)
		}
		key := NameKey(name)
		if seen[key] {
			return nil, fmt.Errorf("built-in role %q: %w", name, ErrDuplicateRoleName)
		}
		seen[key] = true
		perms, err := ExpandPermissions(policy.Catalog, b.Permissions)
		if err != nil {
			return nil, fmt.Errorf("built-in role %q: %w", name, err)
		}
		if b.AssignToFirstAdmin {
			firstAdmins++
		}
		roles = append(roles, Role{
			ID:                RoleID(accountID, BuiltInRoleKey(name)),
			AccountID:         accountID,
			Name:              name,
			BuiltIn:           true,
			SiteScopable:      b.SiteScoped,
			DefaultForNew:     b.DefaultForNew,
			FirstAdmin:        b.AssignToFirstAdmin,
			Permissions:       perms,
			SiteIDs:           []string{},
			ExcludedFolderIDs: []string{},
			Version:           1,
			CreatedAt:         now,
			UpdatedAt:         now,
		})
	}
	if firstAdmins > 1 {
		return nil, fmt.Errorf("%d built-in roles are flagged for the first admin, want at most one", firstAdmins)
	}
	return roles, nil
}

// AccountSetup is what a new account starts with.
type AccountSetup struct {
	Account Account
	Roles   []Role
	// FirstAdmin is nil when the account was created without an admin.
	FirstAdmin *Assignment
}

// FirstAdminRole returns the role of setup's first admin.
func (s AccountSetup) FirstAdminRole() (Role, bool) {
	for _, r := range s.Roles {
		if s.FirstAdmin != nil && r.ID == s.FirstAdmin.RoleID {
			return r, true
		}
	}
	return Role{}, false
}

// SetUpAccount builds a new account's built-in roles and gives its first
// admin the role the profile flags for it, so the account has an Admin from
// the start (I-9).
func SetUpAccount(accountID string, p *profile.Profile, adminTechnicianID string, now time.Time) (AccountSetup, error) {
	if accountID == "" {
		return AccountSetup{}, errors.New("set up account: no account id")
	}
	roles, err := BuiltInRoles(accountID, p.RolePolicy, now)
	if err != nil {
		return AccountSetup{}, fmt.Errorf("set up account %s (profile %s): %w", accountID, p.ID, err)
	}
	setup := AccountSetup{
		Account: Account{ID: accountID, Profile: p.ID, CreatedAt: now},
		Roles:   roles,
	}
	if adminTechnicianID == "" {
		return setup, nil
	}
	i := slices.IndexFunc(roles, func(r Role) bool { return r.FirstAdmin })
	if i < 0 {
		return AccountSetup{}, fmt.Errorf("set up account %s (profile %s): %w", accountID, p.ID, ErrNoFirstAdminRole)
	}
	setup.FirstAdmin = &Assignment{
		AccountID:    accountID,
		TechnicianID: adminTechnicianID,
		RoleID:       roles[i].ID,
		AssignedAt:   now,
	}
	return setup, nil
}
