package domain_test

import (
	"errors"
	"testing"
	"time"

	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/domain"
)

// rosterRoles are the built-in roles of a roster account, by name.
func rosterRoles(t *testing.T) ([]domain.Role, map[string]domain.Role) {
	t.Helper()
	roles, err := domain.BuiltInRoles("acc_1", mustProfile(t, "roster").RolePolicy, now)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]domain.Role{}
	for _, r := range roles {
		byName[r.Name] = r
	}
	return roles, byName
}

var (
	apply  = domain.AssignmentPolicy{OnFirstLogin: domain.ApplyRequested, BeforeFirstLogin: domain.PreassignAllowed}
	record = domain.AssignmentPolicy{OnFirstLogin: domain.RecordRequested, BeforeFirstLogin: domain.AssignmentRefused}
)

// the shipped profiles' settings, read as data.
func TestAssignmentPolicyOf(t *testing.T) {
	cases := []struct {
		profile string
		want    domain.AssignmentPolicy
	}{
		{"roster", apply},
		{"atera-it", record},
		{"atera-msp", record},
	}
	for _, c := range cases {
		t.Run(c.profile, func(t *testing.T) {
			got, err := domain.AssignmentPolicyOf(mustProfile(t, c.profile).RolePolicy)
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	bad := []profile.RolePolicy{
		{RequestedRoleOnFirstLogin: "Apply", AssignmentBeforeFirstLogin: "allowed"},
		{RequestedRoleOnFirstLogin: "apply", AssignmentBeforeFirstLogin: ""},
		{},
	}
	for _, p := range bad {
		if _, err := domain.AssignmentPolicyOf(p); !errors.Is(err, domain.ErrBadPolicy) {
			t.Errorf("%+v: err = %v, want ErrBadPolicy", p, err)
		}
	}
}

// api.md: requests name a role by id or by name, case-insensitively.
func TestResolveRole(t *testing.T) {
	roles, by := rosterRoles(t)
	tricky := domain.Role{ID: "role_tricky", Name: by["Admin"].ID} // named like another role's id
	cases := []struct {
		name, ref string
		want      string // role id; "" = not found
		roles     []domain.Role
	}{
		{"by name", "Billing", by["Billing"].ID, roles},
		{"by name in another case, trimmed", "  billing ", by["Billing"].ID, roles},
		{"name with a space", "ACCOUNT MANAGER", by["Account manager"].ID, roles},
		{"by id", by["Admin"].ID, by["Admin"].ID, roles},
		{"ids are exact", " " + by["Admin"].ID + " ", by["Admin"].ID, roles},
		{"unknown", "Janitor", "", roles},
		{"empty", "", "", roles},
		{"blank", "   ", "", roles},
		{"an id wins over a name equal to it", by["Admin"].ID, by["Admin"].ID, append([]domain.Role{tricky}, roles...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := domain.ResolveRole(c.roles, c.ref)
			if ok != (c.want != "") || got.ID != c.want {
				t.Fatalf("ResolveRole(%q) = %s, %v; want %q", c.ref, got.ID, ok, c.want)
			}
		})
	}
}

// R-2, I-9: only the built-in role given to the first admin is the Admin
// role; a custom role holding admin.full is a scoped admin.
func TestIsAdmin(t *testing.T) {
	_, by := rosterRoles(t)
	custom := domain.Role{Name: "Scoped admin", Permissions: []string{"admin.full"}, FirstAdmin: true}
	for r, want := range map[string]bool{"Admin": true, "Beginner": false, "Billing": false, "Account manager": false} {
		if got := by[r].IsAdmin(); got != want {
			t.Errorf("%s.IsAdmin() = %v, want %v", r, got, want)
		}
	}
	if custom.IsAdmin() {
		t.Error("a custom role is the Admin role")
	}
}

// Beginner on creation whatever was requested; the requested role is
// recorded by name, or as given when the account has no such role.
func TestNewTechnician(t *testing.T) {
	roles, by := rosterRoles(t)
	cases := []struct {
		name, requested      string
		wantName, wantRoleID string
	}{
		{"requested by name", "billing", "Billing", by["Billing"].ID},
		{"requested by id", by["Admin"].ID, "Admin", by["Admin"].ID},
		{"requested the default", "Beginner", "Beginner", by["Beginner"].ID},
		{"unknown requested role is recorded as given", "  Janitor ", "Janitor", ""},
		{"nothing requested", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tech, change, err := domain.NewTechnician("acc_1", "tech_1", roles, c.requested, now)
			if err != nil {
				t.Fatal(err)
			}
			if tech.RoleID != by["Beginner"].ID || change.Role.ID != by["Beginner"].ID || change.PreviousRoleID != "" {
				t.Errorf("role %s (change %+v), want Beginner", tech.RoleID, change)
			}
			if tech.RequestedRole != c.wantName || tech.RequestedRoleID != c.wantRoleID || change.Requested != c.wantName {
				t.Errorf("requested %q %q (reported %q), want %q %q", tech.RequestedRole, tech.RequestedRoleID,
					change.Requested, c.wantName, c.wantRoleID)
			}
			if tech.Status != domain.StatusInvited || tech.LoggedIn() || tech.Denied() || !tech.StatusAt.Equal(now) {
				t.Errorf("states %+v, want invited, not logged in", tech)
			}
		})
	}
	t.Run("no default role", func(t *testing.T) {
		_, _, err := domain.NewTechnician("acc_1", "tech_1", []domain.Role{by["Admin"]}, "", now)
		if !errors.Is(err, domain.ErrNoDefaultRole) {
			t.Fatalf("err = %v", err)
		}
	})
}

// tech is a technician of acc_1 holding role.
func tech(id string, role domain.Role, status domain.Status, loggedIn bool) domain.Technician {
	t := domain.Technician{AccountID: "acc_1", ID: id, Status: status, StatusAt: now, RoleID: role.ID, CreatedAt: now}
	if loggedIn {
		t.FirstLoginAt = now
	}
	return t
}

func requesting(t domain.Technician, r domain.Role) domain.Technician {
	t.RequestedRole, t.RequestedRoleID = r.Name, r.ID
	return t
}

// R-6, I-6, I-9: what the first login does with the requested role.
func TestFirstLogin(t *testing.T) {
	roles, by := rosterRoles(t)
	later := now.Add(time.Hour)
	beginner := tech("tech_1", by["Beginner"], domain.StatusInvited, false)
	unknown := beginner
	unknown.RequestedRole = "Janitor"
	renamed := beginner
	renamed.RequestedRole, renamed.RequestedRoleID = "Old name", by["Billing"].ID
	deleted := beginner
	deleted.RequestedRole, deleted.RequestedRoleID = "billing", "role_deleted"
	firstAdmin := tech("tech_admin", by["Admin"], domain.StatusInvited, false)
	otherAdmin := tech("tech_other", by["Admin"], domain.StatusActive, true)
	disabledAdmin := tech("tech_other", by["Admin"], domain.StatusDisabled, true)

	cases := []struct {
		name   string
		policy domain.AssignmentPolicy
		tech   domain.Technician
		admins []domain.Technician
		// want
		role       string // role held after
		assigned   bool
		outcome    domain.FirstLoginOutcome // Assigned compared through assigned
		status     domain.Status
		requested  string
		firstLogin time.Time
	}{
		{name: "apply: requested role applied", policy: apply, tech: requesting(beginner, by["Billing"]),
			role: "Billing", assigned: true, status: domain.StatusActive, requested: "Billing", firstLogin: later},
		{name: "apply: promoted to Admin", policy: apply, tech: requesting(beginner, by["Admin"]),
			role: "Admin", assigned: true, status: domain.StatusActive, requested: "Admin", firstLogin: later},
		{name: "apply: renamed role found by id", policy: apply, tech: renamed,
			role: "Billing", assigned: true, status: domain.StatusActive, requested: "Old name", firstLogin: later},
		{name: "apply: deleted id, found by name", policy: apply, tech: deleted,
			role: "Billing", assigned: true, status: domain.StatusActive, requested: "billing", firstLogin: later},
		{name: "apply: nothing requested", policy: apply, tech: beginner,
			role: "Beginner", status: domain.StatusActive, firstLogin: later},
		{name: "apply: requested the role held", policy: apply, tech: requesting(beginner, by["Beginner"]),
			role: "Beginner", status: domain.StatusActive, requested: "Beginner", firstLogin: later},
		{name: "apply: unknown requested role stays recorded", policy: apply, tech: unknown,
			role: "Beginner", outcome: domain.FirstLoginOutcome{Unresolved: true}, status: domain.StatusActive,
			requested: "Janitor", firstLogin: later},
		{name: "record: requested role only recorded", policy: record, tech: requesting(beginner, by["Billing"]),
			role: "Beginner", status: domain.StatusActive, requested: "Billing", firstLogin: later},
		{name: "twice: applied once", policy: apply, tech: requesting(tech("tech_1", by["Billing"], domain.StatusActive, true), by["Billing"]),
			role: "Billing", outcome: domain.FirstLoginOutcome{Already: true}, status: domain.StatusActive,
			requested: "Billing", firstLogin: now},
		{name: "I-9: the last admin keeps Admin", policy: apply, tech: requesting(firstAdmin, by["Billing"]),
			admins: []domain.Technician{firstAdmin, disabledAdmin},
			role:   "Admin", outcome: domain.FirstLoginOutcome{KeptLastAdmin: true}, status: domain.StatusActive,
			requested: "Billing", firstLogin: later},
		{name: "I-9: with another admin the pre-assigned role applies", policy: apply, tech: requesting(firstAdmin, by["Billing"]),
			admins: []domain.Technician{firstAdmin, otherAdmin},
			role:   "Billing", assigned: true, status: domain.StatusActive, requested: "Billing", firstLogin: later},
		{name: "a disabled technician stays disabled", policy: record, tech: tech("tech_1", by["Beginner"], domain.StatusDisabled, false),
			role: "Beginner", status: domain.StatusDisabled, firstLogin: later},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			current, _ := domain.ResolveRole(roles, c.tech.RoleID)
			got, out := c.tech.FirstLogin(c.policy, current, roles, c.admins, later)
			if got.RoleID != by[c.role].ID {
				t.Errorf("holds %s, want %s", got.RoleID, c.role)
			}
			if (out.Assigned != nil) != c.assigned {
				t.Fatalf("assigned %+v, want %v", out.Assigned, c.assigned)
			}
			if out.Assigned != nil && (out.Assigned.Role.Name != c.role || out.Assigned.PreviousRoleID != c.tech.RoleID ||
				out.Assigned.Requested != c.requested) {
				t.Errorf("change %+v, want %s from %s", out.Assigned, c.role, c.tech.RoleID)
			}
			out.Assigned = nil
			if out != c.outcome {
				t.Errorf("outcome %+v, want %+v", out, c.outcome)
			}
			if got.Status != c.status || got.RequestedRole != c.requested || !got.FirstLoginAt.Equal(c.firstLogin) || !got.LoggedIn() {
				t.Errorf("after: status %s, requested %q, first login %v; want %s, %q, %v",
					got.Status, got.RequestedRole, got.FirstLoginAt, c.status, c.requested, c.firstLogin)
			}
		})
	}
}

// R-6, I-9: an admin assigns a role.
func TestAssignRole(t *testing.T) {
	roles, by := rosterRoles(t)
	later := now.Add(time.Hour)
	admin := tech("tech_admin", by["Admin"], domain.StatusActive, true)
	invitedAdmin := tech("tech_admin", by["Admin"], domain.StatusInvited, false)
	second := tech("tech_second", by["Admin"], domain.StatusActive, true)
	secondInvited := tech("tech_second", by["Admin"], domain.StatusInvited, false)
	secondDisabled := tech("tech_second", by["Admin"], domain.StatusDisabled, true)
	disabledAdmin := tech("tech_admin", by["Admin"], domain.StatusDisabled, true)
	newcomer := requesting(tech("tech_new", by["Beginner"], domain.StatusInvited, false), by["Billing"])
	active := tech("tech_new", by["Beginner"], domain.StatusActive, true)

	cases := []struct {
		name   string
		policy domain.AssignmentPolicy
		tech   domain.Technician
		target string
		admins []domain.Technician
		// want
		err       error
		held      string // role held after
		changed   bool
		requested string
	}{
		{name: "refused before the first login", policy: record, tech: newcomer, target: "Admin",
			err: domain.ErrFirstLoginRequired, held: "Beginner", requested: "Billing"},
		{name: "refused before the first login, even the role held", policy: record, tech: newcomer, target: "Beginner",
			err: domain.ErrFirstLoginRequired, held: "Beginner", requested: "Billing"},
		{name: "pre-assigned before the first login", policy: apply, tech: newcomer, target: "Account manager",
			held: "Beginner", requested: "Account manager"},
		{name: "pre-assigning the role held overrides the request", policy: apply, tech: newcomer, target: "Beginner",
			held: "Beginner", requested: "Beginner"},
		{name: "assigned after the first login", policy: record, tech: active, target: "Billing",
			held: "Billing", changed: true},
		{name: "assigned after the first login (apply)", policy: apply, tech: active, target: "Admin",
			held: "Admin", changed: true},
		{name: "the role held: nothing changes", policy: apply, tech: active, target: "Beginner",
			held: "Beginner"},
		{name: "I-9: demoting the only admin", policy: apply, tech: admin, target: "Beginner",
			admins: []domain.Technician{admin}, err: domain.ErrLastAdmin, held: "Admin"},
		{name: "I-9: demoting with a second active admin", policy: apply, tech: admin, target: "Billing",
			admins: []domain.Technician{admin, second}, held: "Billing", changed: true},
		{name: "I-9: an invited second admin counts (not disabled)", policy: apply, tech: admin, target: "Billing",
			admins: []domain.Technician{admin, secondInvited}, held: "Billing", changed: true},
		{name: "I-9: a disabled second admin does not count", policy: apply, tech: admin, target: "Billing",
			admins: []domain.Technician{admin, secondDisabled}, err: domain.ErrLastAdmin, held: "Admin"},
		{name: "I-9: demoting a disabled admin", policy: record, tech: disabledAdmin, target: "Beginner",
			admins: []domain.Technician{disabledAdmin, second}, held: "Beginner", changed: true},
		{name: "I-9: Admin to Admin is no demotion", policy: apply, tech: admin, target: "Admin",
			admins: []domain.Technician{admin}, held: "Admin"},
		{name: "I-9: pre-assigning a demotion of the last admin", policy: apply, tech: invitedAdmin, target: "Billing",
			admins: []domain.Technician{invitedAdmin}, err: domain.ErrLastAdmin, held: "Admin"},
		{name: "I-9: pre-assigning a demotion with another admin", policy: apply, tech: invitedAdmin, target: "Billing",
			admins: []domain.Technician{invitedAdmin, second}, held: "Admin", requested: "Billing"},
		{name: "first login required comes before last admin", policy: record, tech: invitedAdmin, target: "Billing",
			admins: []domain.Technician{invitedAdmin}, err: domain.ErrFirstLoginRequired, held: "Admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			current, _ := domain.ResolveRole(roles, c.tech.RoleID)
			got, change, err := c.tech.AssignRole(c.policy, current, by[c.target], c.admins, later)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if err != nil {
				got = c.tech // a refusal changes nothing
			}
			if got.RoleID != by[c.held].ID || (change != nil) != c.changed || got.RequestedRole != c.requested {
				t.Fatalf("holds %s, change %+v, requested %q; want %s, changed %v, %q",
					got.RoleID, change, got.RequestedRole, c.held, c.changed, c.requested)
			}
			if change != nil && (change.Role.ID != by[c.target].ID || change.PreviousRoleID != c.tech.RoleID) {
				t.Errorf("change %+v, want %s from %s", change, c.target, c.tech.RoleID)
			}
		})
	}
}

// a disabled technician is denied; status events apply in the order
// identity made them, whatever order they arrive in.
func TestDisableAndEnable(t *testing.T) {
	_, by := rosterRoles(t)
	t1, t2, t3 := now.Add(time.Minute), now.Add(2*time.Minute), now.Add(3*time.Minute)
	type step struct {
		disable bool
		at      time.Time
	}
	cases := []struct {
		name     string
		loggedIn bool
		steps    []step
		want     domain.Status
	}{
		{"disable", true, []step{{true, t1}}, domain.StatusDisabled},
		{"disable then enable", true, []step{{true, t1}, {false, t2}}, domain.StatusActive},
		{"enabled before the first login is invited again", false, []step{{true, t1}, {false, t2}}, domain.StatusInvited},
		{"an older disable arriving late is ignored", true, []step{{false, t2}, {true, t1}}, domain.StatusActive},
		{"an older enable arriving late is ignored", true, []step{{true, t1}, {true, t3}, {false, t2}}, domain.StatusDisabled},
		{"an event older than creation is ignored", true, []step{{true, now.Add(-time.Minute)}}, domain.StatusActive},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status := domain.StatusInvited
			if c.loggedIn {
				status = domain.StatusActive
			}
			tc := tech("tech_1", by["Beginner"], status, c.loggedIn)
			for _, s := range c.steps {
				if s.disable {
					tc, _ = tc.Disable(s.at)
				} else {
					tc, _ = tc.Enable(s.at)
				}
			}
			if tc.Status != c.want || tc.Denied() != (c.want == domain.StatusDisabled) {
				t.Fatalf("status %s (denied %v), want %s", tc.Status, tc.Denied(), c.want)
			}
		})
	}
	t.Run("the same event again changes nothing", func(t *testing.T) {
		tc, changed := tech("tech_1", by["Beginner"], domain.StatusActive, true).Disable(t1)
		if !changed {
			t.Fatal("first disable changed nothing")
		}
		if _, changed := tc.Disable(t1); changed {
			t.Fatal("second disable changed something")
		}
	})
}
