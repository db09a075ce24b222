package access_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// world is one roster account: its built-in roles, three custom roles,
// two sites with a folder each, and technicians holding each role.
type world struct {
	state access.State
	roles map[string]domain.Role // by name
}

func newWorld(t testing.TB, profileID string) *world {
	t.Helper()
	p, err := profile.Get(profileID)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := domain.SetUpAccount("acc_1", p, "tech_admin", now)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{state: access.State{Account: setup.Account, Roles: setup.Roles}, roles: map[string]domain.Role{}}
	w.state.Sites = []domain.Site{{AccountID: "acc_1", ID: "site_a", Name: "Acme"}, {AccountID: "acc_1", ID: "site_b", Name: "Globex"}}
	w.state.Folders = []domain.Folder{{AccountID: "acc_1", ID: "fld_servers", SiteID: "site_a", Name: "Servers"},
		{AccountID: "acc_1", ID: "fld_desks", SiteID: "site_b", Name: "Desks"}}
	custom := []domain.Role{
		// a site-scoped technician role whose remote tools do not
		// reach the servers folder.
		domain.NewCustomRole("acc_1", "role_tier1", domain.RoleSpec{Name: "Tier 1",
			Permissions: []string{"remote.file_transfer", "rmm.edit_devices", "ticketing.all_tickets", "ticketing.auto_assignment"},
			SiteIDs:     []string{"site_a"}, ExcludedFolderIDs: []string{"fld_servers"}}, now),
		// a scoped admin, left out of auto-assignment.
		domain.NewCustomRole("acc_1", "role_siteadmin", domain.RoleSpec{Name: "Site admin",
			Permissions: []string{"admin.full"}, SiteIDs: []string{"site_b"}}, now),
		// Every site.
		domain.NewCustomRole("acc_1", "role_reports", domain.RoleSpec{Name: "Reporter",
			Permissions: []string{"system.reports"}}, now),
	}
	w.state.Roles = append(w.state.Roles, custom...)
	for _, r := range w.state.Roles {
		w.roles[r.Name] = r
	}
	tech := func(id, role string, status domain.Status) {
		w.state.Technicians = append(w.state.Technicians, domain.Technician{AccountID: "acc_1", ID: id, RoleID: w.roles[role].ID, Status: status})
	}
	tech("tech_admin", "Admin", domain.StatusActive)
	tech("tech_tier1", "Tier 1", domain.StatusActive)
	tech("tech_siteadmin", "Site admin", domain.StatusActive)
	tech("tech_reports", "Reporter", domain.StatusInvited)
	tech("tech_gone", "Admin", domain.StatusDisabled)
	tech("tech_new", "Beginner", domain.StatusInvited)
	return w
}

func (w *world) index(t testing.TB) *access.Index {
	t.Helper()
	x := access.New()
	if err := x.Install(w.state); err != nil {
		t.Fatal(err)
	}
	return x
}

// every kind of decision, and the reason that names
// what decided.
func TestCheck(t *testing.T) {
	x := newWorld(t, "roster").index(t)
	cases := []struct {
		name                     string
		tech, perm, site, folder string
		allowed                  bool
		code                     access.Code
		reasonHas                string
		wantSite                 string // the site decided on, when not the one asked
	}{
		{"Admin: every permission on every site", "tech_admin", "remote.registry_editor", "site_b", "", true, access.AllowedAdmin, "Admin role", ""},
		{"Admin: never loses a folder", "tech_admin", "remote.file_transfer", "", "fld_servers", true, access.AllowedAdmin, "every site", "site_a"},
		{"Admin: always in auto-assignment", "tech_admin", "ticketing.auto_assignment", "", "", true, access.AllowedAdmin, "R-2", ""},
		{"disabled Admin: denied", "tech_gone", "system.reports", "", "", false, access.DeniedDisabled, "disabled", ""},
		{"Beginner: nothing", "tech_new", "system.reports", "", "", false, access.DeniedPermission, `role "Beginner"`, ""},
		{"role holds it on its site", "tech_tier1", "remote.file_transfer", "site_a", "", true, access.AllowedByRole, `role "Tier 1"`, ""},
		{"client isolation: another site", "tech_tier1", "remote.file_transfer", "site_b", "", false, access.DeniedSiteScope, "client isolation", ""},
		{"client isolation: a folder of another site", "tech_tier1", "ticketing.all_tickets", "", "fld_desks", false, access.DeniedSiteScope, "site_b", "site_b"},
		{"role lacks it", "tech_tier1", "system.reports", "site_a", "", false, access.DeniedPermission, "lacks system.reports", ""},
		{"R-5: remote tools removed in an excluded folder", "tech_tier1", "remote.file_transfer", "site_a", "fld_servers", false, access.DeniedFolderExcluded, "R-5", ""},
		{"R-5: RMM removed in an excluded folder", "tech_tier1", "rmm.edit_devices", "", "fld_servers", false, access.DeniedFolderExcluded, "fld_servers", "site_a"},
		{"R-5: devices stay visible to tickets", "tech_tier1", "ticketing.all_tickets", "", "fld_servers", true, access.AllowedByRole, "stay visible", "site_a"},
		{"scoped admin: admin.full on its site", "tech_siteadmin", "remote.registry_editor", "site_b", "", true, access.AllowedByRole, "admin.full", ""},
		{"scoped admin: not on another site", "tech_siteadmin", "system.reports", "site_a", "", false, access.DeniedSiteScope, "client isolation", ""},
		{"scoped admin: left out of auto-assignment", "tech_siteadmin", "ticketing.auto_assignment", "site_b", "", false, access.DeniedPermission, "auto-assignment", ""},
		{"every site: any site", "tech_reports", "system.reports", "site_b", "", true, access.AllowedByRole, "on site site_b", ""},
		{"no site named", "tech_reports", "system.reports", "", "", true, access.AllowedByRole, "sites of its scope", ""},
		{"unknown technician", "tech_nobody", "system.reports", "", "", false, access.UnknownTechnician, "not a technician", ""},
		{"unknown permission", "tech_admin", "system.teleport", "", "", false, access.UnknownPermission, "catalog", ""},
		{"unknown site", "tech_admin", "system.reports", "site_z", "", false, access.UnknownSite, "not a site", ""},
		{"unknown folder", "tech_admin", "system.reports", "", "fld_z", false, access.UnknownFolder, "not a folder", ""},
		{"folder of another site than named", "tech_admin", "system.reports", "site_b", "fld_servers", false, access.FolderNotInSite, "not in site", ""},
		{"unknown technician before disabled", "tech_nobody", "system.teleport", "", "", false, access.UnknownTechnician, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := x.Check("acc_1", access.Request{TechnicianID: c.tech, Permission: c.perm, SiteID: c.site, FolderID: c.folder})
			if d.Allowed != c.allowed || d.Code != c.code {
				t.Fatalf("got %v %s (%s), want %v %s", d.Allowed, d.Code, d.Reason(), c.allowed, c.code)
			}
			if !strings.Contains(d.Reason(), c.reasonHas) {
				t.Errorf("reason %q lacks %q", d.Reason(), c.reasonHas)
			}
			wantSite := c.site
			if c.wantSite != "" {
				wantSite = c.wantSite
			}
			if d.Request.SiteID != wantSite {
				t.Errorf("decided on site %q, want %q", d.Request.SiteID, wantSite)
			}
		})
	}
	if d := x.Check("acc_nobody", access.Request{TechnicianID: "tech_admin", Permission: "system.reports"}); d.Allowed || d.Code != access.UnknownAccount {
		t.Errorf("unknown account: %+v", d)
	}
}

// The index follows the changes its writers make: a whole-role
// replacement, a deletion, a disable and enable, a new site
// and folder.
func TestIndexFollowsChanges(t *testing.T) {
	w := newWorld(t, "roster")
	x := w.index(t)
	check := func(tech, perm, site, folder string) access.Decision {
		return x.Check("acc_1", access.Request{TechnicianID: tech, Permission: perm, SiteID: site, FolderID: folder})
	}
	tier1 := w.roles["Tier 1"]
	tier1 = tier1.Replace(domain.RoleSpec{Name: "Tier 1", Permissions: []string{"system.reports"}, SiteIDs: []string{"site_b"}}, now)
	if !x.PutRole(tier1) {
		t.Fatal("PutRole: account unknown")
	}
	if d := check("tech_tier1", "system.reports", "site_b", ""); !d.Allowed {
		t.Fatalf("after the replacement: %s", d.Reason())
	}
	if d := check("tech_tier1", "remote.file_transfer", "site_a", ""); d.Code != access.DeniedSiteScope {
		t.Fatalf("the old scope still reached: %s", d.Reason())
	}

	gone := domain.Technician{AccountID: "acc_1", ID: "tech_tier1", RoleID: tier1.ID, Status: domain.StatusDisabled}
	x.PutTechnician(gone)
	if d := check("tech_tier1", "system.reports", "site_b", ""); d.Code != access.DeniedDisabled {
		t.Fatalf("disabled: %s", d.Reason())
	}
	gone.Status = domain.StatusActive
	x.PutTechnician(gone)
	if d := check("tech_tier1", "system.reports", "site_b", ""); !d.Allowed {
		t.Fatalf("enabled again: %s", d.Reason())
	}

	x.PutSite(domain.Site{AccountID: "acc_1", ID: "site_c", Name: "Initech"})
	x.PutFolder(domain.Folder{AccountID: "acc_1", ID: "fld_c", SiteID: "site_c", Name: "Lab"})
	if d := check("tech_admin", "remote.file_transfer", "", "fld_c"); !d.Allowed || d.Request.SiteID != "site_c" {
		t.Fatalf("new folder: %+v", d)
	}

	x.DeleteRole("acc_1", w.roles["Reporter"].ID)
	if d := check("tech_reports", "system.reports", "", ""); d.Code != access.DeniedNoRole {
		t.Fatalf("role deleted under its holder: %s", d.Reason())
	}
	if x.PutSite(domain.Site{AccountID: "acc_other", ID: "site_x"}) {
		t.Fatal("a change to an unknown account was applied")
	}
}

// Effective access uses the very rule of Check: every permission per site
// of the scope, or once for every site; folders list what they remove.
func TestExplain(t *testing.T) {
	x := newWorld(t, "roster").index(t)
	catalog := mustCatalog(t, "roster")

	e := x.Explain("acc_1", "tech_tier1")
	if e.Code != "" || e.RoleName != "Tier 1" || e.AllSites || len(e.Sites) != 1 || e.Sites[0].SiteID != "site_a" || e.Sites[0].SiteName != "Acme" {
		t.Fatalf("Tier 1: %+v", e)
	}
	for _, s := range e.Sites {
		if len(s.Permissions) != len(catalog) {
			t.Fatalf("%d permissions, want the whole catalog (%d)", len(s.Permissions), len(catalog))
		}
		for _, p := range s.Permissions {
			d := x.Check("acc_1", access.Request{TechnicianID: "tech_tier1", Permission: p.Permission, SiteID: s.SiteID})
			if d != p.Decision {
				t.Errorf("%s on %s: explained %+v, checked %+v", p.Permission, s.SiteID, p.Decision, d)
			}
		}
	}
	folders := e.Sites[0].ExcludedFolders
	if len(folders) != 1 || folders[0].FolderID != "fld_servers" || folders[0].FolderName != "Servers" ||
		!slices.Equal(folders[0].Removed, []string{"remote.file_transfer", "rmm.edit_devices"}) {
		t.Fatalf("R-5 excluded folders: %+v", folders)
	}

	e = x.Explain("acc_1", "tech_admin")
	if !e.Admin || !e.AllSites || len(e.Sites) != 1 || e.Sites[0].SiteID != "" {
		t.Fatalf("Admin: %+v", e)
	}
	for _, p := range e.Sites[0].Permissions {
		if p.Decision.Code != access.AllowedAdmin {
			t.Errorf("Admin %s: %s", p.Permission, p.Decision.Reason())
		}
	}
	e = x.Explain("acc_1", "tech_gone")
	for _, p := range e.Sites[0].Permissions {
		if p.Decision.Code != access.DeniedDisabled {
			t.Errorf("disabled %s: %s", p.Permission, p.Decision.Reason())
		}
	}
	if e := x.Explain("acc_1", "tech_nobody"); e.Code != access.UnknownTechnician {
		t.Fatalf("unknown technician: %+v", e)
	}
}

// The index is safe for checks while its writers change it (run with
// -race).
func TestConcurrentChecksAndChanges(t *testing.T) {
	w := newWorld(t, "roster")
	x := w.index(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				x.Check("acc_1", access.Request{TechnicianID: "tech_tier1", Permission: "remote.file_transfer", SiteID: "site_a", FolderID: "fld_servers"})
				x.Explain("acc_1", "tech_tier1")
			}
		})
	}
	tier1 := w.roles["Tier 1"]
	for i := range 200 {
		tier1 = tier1.Replace(tier1.Spec(), now)
		x.PutRole(tier1)
		x.PutTechnician(domain.Technician{AccountID: "acc_1", ID: "tech_tier1", RoleID: tier1.ID, Status: []domain.Status{domain.StatusActive, domain.StatusDisabled}[i%2]})
		if i%50 == 0 {
			if err := x.Install(w.state); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func mustCatalog(t testing.TB, id string) []profile.Permission {
	t.Helper()
	p, err := profile.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return p.RolePolicy.Catalog
}
