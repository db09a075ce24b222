package access_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// reference is read straight from the rulebook, over
// the stored shapes (slices, no index): what the indexed check must agree
// with.
func reference(st access.State, catalog []profile.Permission, q access.Request) (bool, access.Code) {
	var tech *domain.Technician
	for i := range st.Technicians {
		if st.Technicians[i].ID == q.TechnicianID {
			tech = &st.Technicians[i]
		}
	}
	if tech == nil {
		return false, access.UnknownTechnician
	}
	i := slices.IndexFunc(catalog, func(p profile.Permission) bool { return p.ID == q.Permission })
	if i < 0 {
		return false, access.UnknownPermission
	}
	category := catalog[i].Category
	site := q.SiteID
	if q.FolderID != "" {
		j := slices.IndexFunc(st.Folders, func(f domain.Folder) bool { return f.ID == q.FolderID })
		if j < 0 {
			return false, access.UnknownFolder
		}
		if site != "" && site != st.Folders[j].SiteID {
			return false, access.FolderNotInSite
		}
		site = st.Folders[j].SiteID
	} else if site != "" && !slices.ContainsFunc(st.Sites, func(s domain.Site) bool { return s.ID == site }) {
		return false, access.UnknownSite
	}
	// a disabled technician is always denied.
	if tech.Status == domain.StatusDisabled {
		return false, access.DeniedDisabled
	}
	j := slices.IndexFunc(st.Roles, func(r domain.Role) bool { return r.ID == tech.RoleID })
	if j < 0 {
		return false, access.DeniedNoRole
	}
	role := st.Roles[j]
	// Admin has every permission, every site, no exclusion.
	if role.BuiltIn && role.FirstAdmin {
		return true, access.AllowedAdmin
	}
	// client isolation — the sites of the role's scope only.
	if site != "" && len(role.SiteIDs) > 0 && !slices.Contains(role.SiteIDs, site) {
		return false, access.DeniedSiteScope
	}
	// the role's permissions; admin.full is every permission but
	// ticket auto-assignment, which the role must list.
	held := slices.Contains(role.Permissions, q.Permission) ||
		(slices.Contains(role.Permissions, "admin.full") && q.Permission != "ticketing.auto_assignment")
	if !held {
		return false, access.DeniedPermission
	}
	// an excluded folder loses the remote-management and RMM
	// permissions; everything else still reaches its devices.
	if q.FolderID != "" && slices.Contains(role.ExcludedFolderIDs, q.FolderID) && (category == "remote" || category == "rmm") {
		return false, access.DeniedFolderExcluded
	}
	return true, access.AllowedByRole
}

// randomState is an account of a profile with random custom roles, sites,
// folders, technicians (role and status) drawn from rng.
func randomState(t *testing.T, rng *rand.Rand, profileID string) access.State {
	t.Helper()
	p, err := profile.Get(profileID)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := domain.SetUpAccount("acc_p", p, "tech_0", now)
	if err != nil {
		t.Fatal(err)
	}
	st := access.State{Account: setup.Account, Roles: setup.Roles}
	for i := range 1 + rng.IntN(6) {
		st.Sites = append(st.Sites, domain.Site{AccountID: "acc_p", ID: fmt.Sprintf("site_%d", i)})
	}
	for i := range rng.IntN(8) {
		st.Folders = append(st.Folders, domain.Folder{AccountID: "acc_p", ID: fmt.Sprintf("fld_%d", i), SiteID: pick(rng, st.Sites).ID})
	}
	for i := range rng.IntN(8) {
		spec := domain.RoleSpec{Name: fmt.Sprintf("Custom %d", i)}
		for _, c := range p.RolePolicy.Catalog {
			if rng.IntN(3) == 0 {
				spec.Permissions = append(spec.Permissions, c.ID)
			}
		}
		for _, s := range st.Sites {
			if rng.IntN(3) == 0 {
				spec.SiteIDs = append(spec.SiteIDs, s.ID)
			}
		}
		for _, f := range st.Folders {
			if rng.IntN(2) == 0 {
				spec.ExcludedFolderIDs = append(spec.ExcludedFolderIDs, f.ID)
			}
		}
		st.Roles = append(st.Roles, domain.NewCustomRole("acc_p", fmt.Sprintf("role_c%d", i), spec, now))
	}
	statuses := []domain.Status{domain.StatusInvited, domain.StatusActive, domain.StatusDisabled}
	for i := range 1 + rng.IntN(10) {
		st.Technicians = append(st.Technicians, domain.Technician{AccountID: "acc_p", ID: fmt.Sprintf("tech_%d", i),
			RoleID: pick(rng, st.Roles).ID, Status: pick(rng, statuses)})
	}
	return st
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// randomRequest names mostly what the account has, sometimes not.
func randomRequest(rng *rand.Rand, st access.State, catalog []profile.Permission) access.Request {
	q := access.Request{TechnicianID: pick(rng, st.Technicians).ID, Permission: pick(rng, catalog).ID}
	if rng.IntN(20) == 0 {
		q.TechnicianID = "tech_unknown"
	}
	if rng.IntN(20) == 0 {
		q.Permission = "system.unknown"
	}
	switch rng.IntN(4) {
	case 1:
		q.SiteID = pick(rng, st.Sites).ID
	case 2:
		if len(st.Folders) > 0 {
			q.FolderID = pick(rng, st.Folders).ID
		}
	case 3:
		if len(st.Folders) > 0 {
			q.FolderID = pick(rng, st.Folders).ID
			q.SiteID = pick(rng, st.Sites).ID // sometimes another site than the folder's
		}
	}
	if rng.IntN(30) == 0 {
		q.SiteID = "site_unknown"
	}
	if rng.IntN(30) == 0 {
		q.FolderID = "fld_unknown"
	}
	return q
}

// Property: for random roles, sites, folders, assignments and disabled
// flags — and after random changes made through the index's writers —
// the indexed check agrees with the reference evaluation, and effective
// access agrees with the check.
func TestIndexAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 2026)) // seeded: a failure reproduces
	for round := range 300 {
		profileID := []string{"roster", "atera-msp", "atera-it"}[round%3]
		catalog := mustCatalog(t, profileID)
		st := randomState(t, rng, profileID)
		x := access.New()
		if err := x.Install(st); err != nil {
			t.Fatal(err)
		}
		for step := range 4 {
			for range 100 {
				q := randomRequest(rng, st, catalog)
				d := x.Check("acc_p", q)
				allowed, code := reference(st, catalog, q)
				if d.Allowed != allowed || d.Code != code {
					t.Fatalf("round %d step %d, %+v: index %v %s (%s), reference %v %s",
						round, step, q, d.Allowed, d.Code, d.Reason(), allowed, code)
				}
			}
			for _, tech := range st.Technicians {
				e := x.Explain("acc_p", tech.ID)
				for _, s := range e.Sites {
					for _, p := range s.Permissions {
						q := access.Request{TechnicianID: tech.ID, Permission: p.Permission, SiteID: s.SiteID}
						if allowed, code := reference(st, catalog, q); p.Decision.Allowed != allowed || p.Decision.Code != code {
							t.Fatalf("round %d: explained %+v for %+v, reference %v %s", round, p.Decision, q, allowed, code)
						}
					}
				}
			}
			mutate(t, rng, x, &st)
		}
	}
}

// mutate changes st as the use cases would, and the index with it: a role
// replaced whole, a technician reassigned or disabled or enabled, a new
// site and folder.
func mutate(t *testing.T, rng *rand.Rand, x *access.Index, st *access.State) {
	t.Helper()
	switch rng.IntN(4) {
	case 0:
		i := rng.IntN(len(st.Roles))
		if r := st.Roles[i]; !r.BuiltIn {
			spec := r.Spec()
			spec.SiteIDs = nil
			if rng.IntN(2) == 0 {
				spec.SiteIDs = []string{pick(rng, st.Sites).ID}
			}
			spec.Permissions = append(slices.Clone(spec.Permissions), pick(rng, []string{"admin.full", "remote.user_activity", "ticketing.auto_assignment"}))
			st.Roles[i] = r.Replace(spec, now)
			x.PutRole(st.Roles[i])
		}
	case 1:
		i := rng.IntN(len(st.Technicians))
		st.Technicians[i].RoleID = pick(rng, st.Roles).ID
		x.PutTechnician(st.Technicians[i])
	case 2:
		i := rng.IntN(len(st.Technicians))
		st.Technicians[i].Status = pick(rng, []domain.Status{domain.StatusActive, domain.StatusDisabled})
		x.PutTechnician(st.Technicians[i])
	case 3:
		s := domain.Site{AccountID: "acc_p", ID: fmt.Sprintf("site_n%d", len(st.Sites))}
		f := domain.Folder{AccountID: "acc_p", ID: fmt.Sprintf("fld_n%d", len(st.Folders)), SiteID: s.ID}
		st.Sites, st.Folders = append(st.Sites, s), append(st.Folders, f)
		x.PutSite(s)
		x.PutFolder(f)
	}
}
