package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/profile"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// RoleView is a role as the API shows it (api.md: roles).
type RoleView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	BuiltIn     bool     `json:"built_in"`
	Permissions []string `json:"permissions"`
	// SiteIDs empty: every site.
	SiteIDs           []string `json:"site_ids"`
	ExcludedFolderIDs []string `json:"excluded_folder_ids"`
	// Version is the role's ETag, quoted.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ViewRole is r as the API shows it: lists are never null.
func ViewRole(r domain.Role) RoleView {
	return RoleView{
		ID: r.ID, Name: r.Name, BuiltIn: r.BuiltIn,
		Permissions: nonNil(r.Permissions), SiteIDs: nonNil(r.SiteIDs), ExcludedFolderIDs: nonNil(r.ExcludedFolderIDs),
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateRole is POST /v1/accounts/{acc}/roles.
type CreateRole struct {
	AccountID string
	Spec      domain.RoleSpec
}

// CreateRole adds a custom role (R-3: unlimited on every plan), under the
// Idempotency-Key idemKey; it answers 201 with the role. The name must be
// free in the account (case-insensitively: domain.ErrDuplicateRoleName),
// the permissions in the account's catalog, the sites and folders the
// account's (domain.InvalidError names each bad field).
func (a *App) CreateRole(ctx context.Context, cmd CreateRole, idemKey string, body []byte) (idempotency.Result, error) {
	req := idempotency.Request{Scope: cmd.AccountID + ":POST /v1/accounts/" + cmd.AccountID + "/roles", Key: idemKey, Body: body}
	return a.write(ctx, cmd.AccountID, req, func(tx *sql.Tx) (int, any, func(*access.Index), error) {
		p, err := a.lockForRoles(ctx, tx, cmd.AccountID)
		if err != nil {
			return 0, nil, nil, err
		}
		spec, err := a.checkSpec(ctx, tx, cmd.AccountID, p, cmd.Spec)
		if err != nil {
			return 0, nil, nil, err
		}
		// The id is derived from the account's count of custom roles, not
		// random: a replay of the account's events gives the role the same
		// id (docs/events.md). A retried transaction counts it again.
		n, err := a.store.NextCustomRole(ctx, tx, cmd.AccountID)
		if err != nil {
			return 0, nil, nil, err
		}
		r := domain.NewCustomRole(cmd.AccountID, domain.RoleID(cmd.AccountID, domain.CustomRoleKey(n)), spec, a.clock())
		if err := a.store.AddRole(ctx, tx, r); err != nil {
			return 0, nil, nil, err
		}
		if err := a.events.Emit(ctx, tx, r.AccountID, roleCreated(r)); err != nil {
			return 0, nil, nil, fmt.Errorf("emit: %w", err)
		}
		a.log.InfoContext(ctx, "role created", "account_id", r.AccountID, "role_id", r.ID, "role", r.Name)
		return http.StatusCreated, ViewRole(r), func(x *access.Index) { x.PutRole(r) }, nil
	})
}

// ReplaceRole is PUT /v1/accounts/{acc}/roles/{id}.
type ReplaceRole struct {
	AccountID string
	RoleID    string
	// IfMatch are the versions the If-Match header names.
	IfMatch []int64
	Spec    domain.RoleSpec
}

// ReplaceRole replaces a custom role whole and answers 200 with it at
// its next version. In order: an unknown role is domain.ErrRoleNotFound, a
// built-in one domain.ErrBuiltInRole, no If-Match
// domain.ErrIfMatchRequired, another version domain.ErrStaleVersion, then
// the spec is checked as for CreateRole. Replacing a role with what it
// holds still makes a new version: the editor said "this is the role".
func (a *App) ReplaceRole(ctx context.Context, cmd ReplaceRole, idemKey string, body []byte) (idempotency.Result, error) {
	req := idempotency.Request{Scope: cmd.AccountID + ":PUT /v1/accounts/" + cmd.AccountID + "/roles/" + cmd.RoleID, Key: idemKey, Body: body}
	return a.write(ctx, cmd.AccountID, req, func(tx *sql.Tx) (int, any, func(*access.Index), error) {
		p, err := a.lockForRoles(ctx, tx, cmd.AccountID)
		if err != nil {
			return 0, nil, nil, err
		}
		old, err := a.roleIn(ctx, tx, cmd.AccountID, cmd.RoleID)
		if err != nil {
			return 0, nil, nil, err
		}
		if err := old.CheckReplace(cmd.IfMatch); err != nil {
			return 0, nil, nil, err
		}
		spec, err := a.checkSpec(ctx, tx, cmd.AccountID, p, cmd.Spec)
		if err != nil {
			return 0, nil, nil, err
		}
		r := old.Replace(spec, a.clock())
		if err := a.store.SaveRole(ctx, tx, r, old.Version); err != nil {
			return 0, nil, nil, err
		}
		ev := &rolepolicyv1.RoleUpdated{RoleId: r.ID, Version: r.Version, Before: definition(old), After: definition(r)}
		if err := a.events.Emit(ctx, tx, r.AccountID, ev); err != nil {
			return 0, nil, nil, fmt.Errorf("emit: %w", err)
		}
		a.log.InfoContext(ctx, "role replaced", "account_id", r.AccountID, "role_id", r.ID, "version", r.Version)
		return http.StatusOK, ViewRole(r), func(x *access.Index) { x.PutRole(r) }, nil
	})
}

// DeleteRole deletes a custom role. A built-in role is
// domain.ErrBuiltInRole; a role some technician holds — or will hold
// at their first login, where the profile applies requested roles —
// is a *domain.RoleInUseError with the counts.
func (a *App) DeleteRole(ctx context.Context, accountID, roleID string) error {
	_, err := a.write(ctx, accountID, idempotency.Request{}, func(tx *sql.Tx) (int, any, func(*access.Index), error) {
		p, err := a.lockForRoles(ctx, tx, accountID)
		if err != nil {
			return 0, nil, nil, err
		}
		r, err := a.roleIn(ctx, tx, accountID, roleID)
		if err != nil {
			return 0, nil, nil, err
		}
		if err := r.CanChange(); err != nil {
			return 0, nil, nil, err
		}
		assigned, pending, err := a.store.RoleUse(ctx, tx, accountID, roleID)
		if err != nil {
			return 0, nil, nil, err
		}
		if pol, err := domain.AssignmentPolicyOf(p.RolePolicy); err != nil || pol.OnFirstLogin != domain.ApplyRequested {
			pending = 0 // recorded only (atera): never applied, so it holds nothing up
		}
		if assigned > 0 || pending > 0 {
			return 0, nil, nil, &domain.RoleInUseError{Assigned: assigned, Pending: pending}
		}
		if err := a.store.DeleteRole(ctx, tx, accountID, roleID); err != nil {
			return 0, nil, nil, err
		}
		ev := &rolepolicyv1.RoleDeleted{RoleId: r.ID, Name: r.Name, Version: r.Version}
		if err := a.events.Emit(ctx, tx, accountID, ev); err != nil {
			return 0, nil, nil, fmt.Errorf("emit: %w", err)
		}
		a.log.InfoContext(ctx, "role deleted", "account_id", accountID, "role_id", r.ID, "role", r.Name)
		return http.StatusNoContent, nil, func(x *access.Index) { x.DeleteRole(accountID, roleID) }, nil
	})
	return err
}

// lockForRoles locks the account (role changes and assignments run one at
// a time per account) and returns its profile, which must have custom
// roles (R-3; not atlan, R-9).
func (a *App) lockForRoles(ctx context.Context, tx *sql.Tx, accountID string) (*profile.Profile, error) {
	acc, err := a.store.LockAccount(ctx, tx, accountID)
	if err != nil {
		return nil, err
	}
	p, err := profile.Get(acc.Profile)
	if err != nil {
		return nil, fmt.Errorf("account %s: %v", acc.ID, err) // broken data: a 500
	}
	if p.RolePolicy.RoleModel != domain.PermissionRoleModel {
		return nil, fmt.Errorf("profile %s: %w", p.ID, domain.ErrCustomRolesUnavailable)
	}
	return p, nil
}

// roleIn finds one role of the account within tx.
func (a *App) roleIn(ctx context.Context, tx *sql.Tx, accountID, roleID string) (domain.Role, error) {
	roles, err := a.store.AccountRoles(ctx, tx, accountID)
	if err != nil {
		return domain.Role{}, err
	}
	for _, r := range roles {
		if r.ID == roleID {
			return r, nil
		}
	}
	return domain.Role{}, fmt.Errorf("role %s: %w", roleID, domain.ErrRoleNotFound)
}

// checkSpec is CheckRoleSpec plus the sites and folders the account has
// (identity's SiteCreated and FolderCreated); every bad field is reported
// at once.
func (a *App) checkSpec(ctx context.Context, tx *sql.Tx, accountID string, p *profile.Profile, spec domain.RoleSpec) (domain.RoleSpec, error) {
	checked, err := domain.CheckRoleSpec(p.RolePolicy.Catalog, spec)
	var invalid *domain.InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return domain.RoleSpec{}, err
	}
	if invalid == nil {
		invalid = &domain.InvalidError{}
	}
	for _, f := range []struct {
		field   string
		ids     []string
		missing func(context.Context, *sql.Tx, string, []string) ([]string, error)
		what    string
	}{
		{"site_ids", checked.SiteIDs, a.store.MissingSites, "site"},
		{"excluded_folder_ids", checked.ExcludedFolderIDs, a.store.MissingFolders, "folder"},
	} {
		missing, err := f.missing(ctx, tx, accountID, f.ids)
		if err != nil {
			return domain.RoleSpec{}, err
		}
		if len(missing) > 0 {
			invalid.Fields = append(invalid.Fields, domain.FieldProblem{Field: f.field,
				Detail: fmt.Sprintf("no %s of this account: %s (a %s created a moment ago may take a few milliseconds to be known here: retry)",
					f.what, strings.Join(missing, ", "), f.what)})
		}
	}
	if len(invalid.Fields) > 0 {
		return domain.RoleSpec{}, invalid
	}
	return checked, nil
}

func roleCreated(r domain.Role) *rolepolicyv1.RoleCreated {
	return &rolepolicyv1.RoleCreated{
		RoleId: r.ID, Name: r.Name, BuiltIn: r.BuiltIn, Permissions: r.Permissions,
		SiteIds: r.SiteIDs, ExcludedFolderIds: r.ExcludedFolderIDs, Version: r.Version,
	}
}

func definition(r domain.Role) *rolepolicyv1.RoleDefinition {
	return &rolepolicyv1.RoleDefinition{Name: r.Name, Permissions: r.Permissions, SiteIds: r.SiteIDs, ExcludedFolderIds: r.ExcludedFolderIDs}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
