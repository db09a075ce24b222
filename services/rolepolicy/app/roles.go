package app

import (
	"context"
	"errors"
	"fmt"

	"roster.dev/services/rolepolicy/domain"
)

// Page sizes of lists (api.md: default 50, max 500).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// ListRoles asks for one page of an account's roles, ordered by name
// (case-insensitively).
type ListRoles struct {
	AccountID string
	// After is the name key of the last role of the previous page ("" for
	// the first page).
	After string
	Limit int
}

// RolePage is one page of roles.
type RolePage struct {
	Roles []domain.Role
	// Next is the After of the next page; "" on the last page.
	Next string
}

// ListRoles returns a page of roles; an unknown account is
// domain.ErrAccountNotFound.
func (a *App) ListRoles(ctx context.Context, q ListRoles) (RolePage, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	if _, err := a.store.Account(ctx, q.AccountID); err != nil {
		return RolePage{}, err
	}
	// One more than asked tells whether another page follows.
	roles, err := a.store.Roles(ctx, q.AccountID, q.After, q.Limit+1)
	if err != nil {
		return RolePage{}, fmt.Errorf("list roles of %s: %w", q.AccountID, err)
	}
	page := RolePage{Roles: roles}
	if len(roles) > q.Limit {
		page.Roles = roles[:q.Limit]
		page.Next = domain.NameKey(page.Roles[q.Limit-1].Name)
	}
	return page, nil
}

// Role returns one role; an unknown account is domain.ErrAccountNotFound,
// an unknown role (or another account's) domain.ErrRoleNotFound.
func (a *App) Role(ctx context.Context, accountID, roleID string) (domain.Role, error) {
	r, err := a.store.Role(ctx, accountID, roleID)
	if errors.Is(err, domain.ErrRoleNotFound) {
		if _, aerr := a.store.Account(ctx, accountID); aerr != nil {
			return domain.Role{}, aerr
		}
	}
	return r, err
}
