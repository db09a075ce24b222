package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"roster.dev/services/rolepolicy/domain"
)

// a custom role is any subset of the catalog, with a site scope and
// excluded folders; every bad field is named at once.
func TestCheckRoleSpec(t *testing.T) {
	catalog := mustProfile(t, "roster").RolePolicy.Catalog
	cases := []struct {
		name string
		spec domain.RoleSpec
		want domain.RoleSpec
		// bad are the fields named, in order; nil when valid.
		bad []string
	}{
		{"minimal", domain.RoleSpec{Name: " Tier 1 ", Permissions: []string{}},
			domain.RoleSpec{Name: "Tier 1", Permissions: []string{}, SiteIDs: []string{}, ExcludedFolderIDs: []string{}}, nil},
		{"catalog order, duplicates dropped, ids trimmed and deduplicated",
			domain.RoleSpec{Name: "Tier 2", Permissions: []string{"system.reports", "remote.file_transfer", "system.reports"},
				SiteIDs: []string{" site_a", "site_b", "site_a"}, ExcludedFolderIDs: []string{"fld_1", "fld_1 "}},
			domain.RoleSpec{Name: "Tier 2", Permissions: []string{"remote.file_transfer", "system.reports"},
				SiteIDs: []string{"site_a", "site_b"}, ExcludedFolderIDs: []string{"fld_1"}}, nil},
		{"scoped admin", domain.RoleSpec{Name: "Site admin", Permissions: []string{"admin.full"}, SiteIDs: []string{"site_a"}},
			domain.RoleSpec{Name: "Site admin", Permissions: []string{"admin.full"}, SiteIDs: []string{"site_a"}, ExcludedFolderIDs: []string{}}, nil},
		{"everything wrong", domain.RoleSpec{Name: "  ", Permissions: []string{"system.teleport"}, SiteIDs: []string{""}, ExcludedFolderIDs: []string{" "}},
			domain.RoleSpec{}, []string{"name", "permissions", "site_ids", "excluded_folder_ids"}},
		{"star is not an id", domain.RoleSpec{Name: "All", Permissions: []string{"*"}}, domain.RoleSpec{}, []string{"permissions"}},
		{"name too long", domain.RoleSpec{Name: strings.Repeat("x", domain.MaxRoleNameLength+1)}, domain.RoleSpec{}, []string{"name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := domain.CheckRoleSpec(catalog, c.spec)
			if c.bad == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got.Name != c.want.Name || !slices.Equal(got.Permissions, c.want.Permissions) ||
					!slices.Equal(got.SiteIDs, c.want.SiteIDs) || !slices.Equal(got.ExcludedFolderIDs, c.want.ExcludedFolderIDs) {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
				return
			}
			var invalid *domain.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want InvalidError", err)
			}
			var fields []string
			for _, f := range invalid.Fields {
				fields = append(fields, f.Field)
			}
			if !slices.Equal(fields, c.bad) {
				t.Fatalf("fields %v, want %v (%v)", fields, c.bad, err)
			}
		})
	}
}

// built-in roles are never edited; a custom role is replaced
// whole under the version the editor read.
func TestCheckReplaceAndReplace(t *testing.T) {
	_, builtIn := rosterRoles(t)
	custom := domain.NewCustomRole("acc_1", "role_custom", domain.RoleSpec{Name: "Tier 1", Permissions: []string{"system.reports"},
		SiteIDs: []string{"site_a"}}, now)
	if custom.Version != 1 || custom.BuiltIn || !custom.SiteScopable || custom.IsAdmin() {
		t.Fatalf("new custom role %+v", custom)
	}
	custom.Version = 3
	cases := []struct {
		name    string
		role    domain.Role
		ifMatch []int64
		err     error
	}{
		{"built-in Admin", builtIn["Admin"], []int64{1}, domain.ErrBuiltInRole},
		{"built-in Beginner without If-Match", builtIn["Beginner"], nil, domain.ErrBuiltInRole},
		{"no If-Match", custom, nil, domain.ErrIfMatchRequired},
		{"stale", custom, []int64{2}, domain.ErrStaleVersion},
		{"one of several matches", custom, []int64{-1, 3}, nil},
		{"current", custom, []int64{3}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.role.CheckReplace(c.ifMatch); !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}
	later := now.Add(1)
	got := custom.Replace(domain.RoleSpec{Name: "Tier 1b", Permissions: []string{}, SiteIDs: []string{}, ExcludedFolderIDs: []string{"fld_1"}}, later)
	if got.ID != custom.ID || got.Name != "Tier 1b" || len(got.Permissions) != 0 || len(got.SiteIDs) != 0 ||
		!slices.Equal(got.ExcludedFolderIDs, []string{"fld_1"}) || got.Version != 4 || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(now) {
		t.Fatalf("replaced %+v", got)
	}
	if err := builtIn["Billing"].CanChange(); !errors.Is(err, domain.ErrBuiltInRole) {
		t.Fatalf("R-8 Billing can change: %v", err)
	}
}
