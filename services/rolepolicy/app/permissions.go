package app

import (
	"fmt"

	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/domain"
)

// Permissions returns a profile's permission catalog in the profile's
// order; an unknown profile is domain.ErrUnknownProfile.
func (a *App) Permissions(profileID string) ([]profile.Permission, error) {
	p, err := profile.Get(profileID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", domain.ErrUnknownProfile, err)
	}
	return p.RolePolicy.Catalog, nil
}
