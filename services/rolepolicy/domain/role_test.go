package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/domain"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func mustProfile(t *testing.T, id string) *profile.Profile {
	t.Helper()
	p, err := profile.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func catalogIDs(p *profile.Profile) []string {
	ids := []string{}
	for _, c := range p.RolePolicy.Catalog {
		ids = append(ids, c.ID)
	}
	return ids
}

// the built-in roles of each shipped profile, with "*" expanded to
// the profile's whole catalog.
func TestBuiltInRolesOfShippedProfiles(t *testing.T) {
	type want struct {
		name         string
		permissions  []string // nil: the whole catalog
		siteScopable bool
		defaultNew   bool
		firstAdmin   bool
	}
	admin := want{name: "Admin", firstAdmin: true}
	beginner := want{name: "Beginner", permissions: []string{}, siteScopable: true, defaultNew: true}
	cases := []struct {
		profile string
		roles   []want
	}{
		{"atera-it", []want{admin, beginner}},
		{"atera-msp", []want{admin, beginner}},
		{"roster", []want{admin, beginner,
			{name: "Billing", permissions: []string{"system.reports", "system.manage_billing"}, siteScopable: true},
			{name: "Account manager", permissions: []string{"system.reports", "system.manage_customers"}, siteScopable: true},
		}},
	}
	for _, c := range cases {
		t.Run(c.profile, func(t *testing.T) {
			p := mustProfile(t, c.profile)
			roles, err := domain.BuiltInRoles("acc_1", p.RolePolicy, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(roles) != len(c.roles) {
				t.Fatalf("got %d roles, want %d", len(roles), len(c.roles))
			}
			ids := map[string]bool{}
			for i, w := range c.roles {
				r := roles[i]
				perms := w.permissions
				if perms == nil {
					perms = catalogIDs(p)
				}
				if r.Name != w.name || !slices.Equal(r.Permissions, perms) || r.SiteScopable != w.siteScopable ||
					r.DefaultForNew != w.defaultNew || r.FirstAdmin != w.firstAdmin {
					t.Errorf("role %d = %+v, want %+v with permissions %v", i, r, w, perms)
				}
				if !r.BuiltIn || r.AccountID != "acc_1" || r.Version != 1 || !r.CreatedAt.Equal(now) {
					t.Errorf("role %s: built_in %v, account %q, version %d, created %v", r.Name, r.BuiltIn, r.AccountID, r.Version, r.CreatedAt)
				}
				// built-in roles reach every site and exclude no folder.
				if r.SiteIDs == nil || len(r.SiteIDs) != 0 || r.ExcludedFolderIDs == nil || len(r.ExcludedFolderIDs) != 0 {
					t.Errorf("role %s: site_ids %v, excluded folders %v, want empty lists", r.Name, r.SiteIDs, r.ExcludedFolderIDs)
				}
				if !strings.HasPrefix(r.ID, "role_") || ids[r.ID] {
					t.Errorf("role %s: id %q is not a new role_ id", r.Name, r.ID)
				}
				ids[r.ID] = true
			}
		})
	}
}

// Admin holds every permission, admin.full included; R-1: roster adds
// system.manage_customers to the atera catalog.
func TestAdminHoldsTheWholeCatalog(t *testing.T) {
	cases := []struct {
		profile         string
		manageCustomers bool
	}{
		{"atera-it", false},
		{"atera-msp", false},
		{"roster", true},
	}
	for _, c := range cases {
		t.Run(c.profile, func(t *testing.T) {
			roles, err := domain.BuiltInRoles("acc_1", mustProfile(t, c.profile).RolePolicy, now)
			if err != nil {
				t.Fatal(err)
			}
			admin := roles[slices.IndexFunc(roles, func(r domain.Role) bool { return r.Name == "Admin" })]
			if !slices.Contains(admin.Permissions, "admin.full") {
				t.Errorf("Admin lacks admin.full: %v", admin.Permissions)
			}
			if got := slices.Contains(admin.Permissions, "system.manage_customers"); got != c.manageCustomers {
				t.Errorf("Admin holds system.manage_customers = %v, want %v", got, c.manageCustomers)
			}
		})
	}
}

func TestExpandPermissions(t *testing.T) {
	catalog := []profile.Permission{{ID: "remote.file_transfer"}, {ID: "system.reports"}, {ID: "admin.full"}}
	cases := []struct {
		name    string
		granted []string
		want    []string
		err     error
	}{
		{"nothing", nil, []string{}, nil},
		{"star is the whole catalog", []string{"*"}, []string{"remote.file_transfer", "system.reports", "admin.full"}, nil},
		{"star with others is still the whole catalog", []string{"system.reports", "*"}, []string{"remote.file_transfer", "system.reports", "admin.full"}, nil},
		{"catalog order", []string{"admin.full", "remote.file_transfer"}, []string{"remote.file_transfer", "admin.full"}, nil},
		{"duplicates dropped", []string{"system.reports", "system.reports"}, []string{"system.reports"}, nil},
		{"unknown refused", []string{"system.reports", "system.teleport"}, nil, domain.ErrUnknownPermission},
		{"ids are case-sensitive", []string{"System.Reports"}, nil, domain.ErrUnknownPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := domain.ExpandPermissions(catalog, c.granted)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err == nil && !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestNameKeyAndCheckName(t *testing.T) {
	cases := []struct {
		name, key, trimmed string
		err                error
	}{
		{"Admin", "admin", "Admin", nil},
		{"  Account manager ", "account manager", "Account manager", nil},
		{"ADMIN", "admin", "ADMIN", nil},
		{"Ärzte", "ärzte", "Ärzte", nil},
		{"   ", "", "", domain.ErrInvalidRoleName},
		{strings.Repeat("é", domain.MaxRoleNameLength), strings.Repeat("é", domain.MaxRoleNameLength), strings.Repeat("é", domain.MaxRoleNameLength), nil},
		{strings.Repeat("x", domain.MaxRoleNameLength+1), strings.Repeat("x", domain.MaxRoleNameLength+1), "", domain.ErrInvalidRoleName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := domain.NameKey(c.name); got != c.key {
				t.Errorf("NameKey = %q, want %q", got, c.key)
			}
			got, err := domain.CheckName(c.name)
			if !errors.Is(err, c.err) || got != c.trimmed {
				t.Errorf("CheckName = %q, %v; want %q, %v", got, err, c.trimmed, c.err)
			}
		})
	}
}

// Profile data is checked when roles are built from it: a bad data file
// fails loudly instead of creating a broken role.
func TestBuiltInRolesRefuseBadProfileData(t *testing.T) {
	catalog := []profile.Permission{{ID: "system.reports"}}
	cases := []struct {
		name  string
		roles []profile.BuiltIn
		err   error
	}{
		{"unknown permission", []profile.BuiltIn{{Name: "Admin", Permissions: []string{"system.nope"}}}, domain.ErrUnknownPermission},
		{"names equal but for case", []profile.BuiltIn{{Name: "Admin"}, {Name: " admin"}}, domain.ErrDuplicateRoleName},
		{"empty name", []profile.BuiltIn{{Name: ""}}, domain.ErrInvalidRoleName},
		{"two first-admin roles", []profile.BuiltIn{{Name: "A", AssignToFirstAdmin: true}, {Name: "B", AssignToFirstAdmin: true}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := domain.BuiltInRoles("acc_1", profile.RolePolicy{Catalog: catalog, BuiltInRoles: c.roles}, now)
			if err == nil || (c.err != nil && !errors.Is(err, c.err)) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}
}

// I-9: the first admin holds the role the profile flags for it (Admin).
func TestSetUpAccount(t *testing.T) {
	noFirstAdmin := &profile.Profile{ID: "test", RolePolicy: profile.RolePolicy{
		BuiltInRoles: []profile.BuiltIn{{Name: "Beginner"}},
	}}
	cases := []struct {
		name      string
		profile   *profile.Profile
		admin     string
		wantRole  string // "" = no assignment
		wantRoles int
		err       error
	}{
		{"roster with admin", mustProfile(t, "roster"), "tech_1", "Admin", 4, nil},
		{"atera-it with admin", mustProfile(t, "atera-it"), "tech_1", "Admin", 2, nil},
		{"no admin in the event", mustProfile(t, "atera-msp"), "", "", 2, nil},
		{"no role for the admin", noFirstAdmin, "tech_1", "", 0, domain.ErrNoFirstAdminRole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := domain.SetUpAccount("acc_1", c.profile, c.admin, now)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err != nil {
				return
			}
			if s.Account.ID != "acc_1" || s.Account.Profile != c.profile.ID || len(s.Roles) != c.wantRoles {
				t.Fatalf("account %+v with %d roles", s.Account, len(s.Roles))
			}
			role, ok := s.FirstAdminRole()
			if c.wantRole == "" {
				if ok || s.FirstAdmin != nil {
					t.Fatalf("unexpected assignment %+v", s.FirstAdmin)
				}
				return
			}
			if !ok || role.Name != c.wantRole || s.FirstAdmin.TechnicianID != c.admin || s.FirstAdmin.AccountID != "acc_1" {
				t.Fatalf("first admin %+v holds %q, want %s holding %q", s.FirstAdmin, role.Name, c.admin, c.wantRole)
			}
		})
	}
	if _, err := domain.SetUpAccount("", mustProfile(t, "roster"), "tech_1", now); err == nil {
		t.Error("an account without id was set up")
	}
}
