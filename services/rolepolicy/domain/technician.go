package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"roster.dev/pkg/profile"
)

// Errors of role assignment; ports map them to problems.
var (
	ErrTechnicianNotFound = errors.New("technician not found")
	// ErrUnknownRole: a request names a role (by id or name) that the
	// account does not have.
	ErrUnknownRole = errors.New("unknown role")
	// ErrFirstLoginRequired: the profile refuses assignments before the
	// technician's first login (R-6, atera).
	ErrFirstLoginRequired = errors.New("first login required")
	// ErrLastAdmin: the change would leave the account without a technician
	// that is not disabled holding the Admin role (I-9).
	ErrLastAdmin = errors.New("last admin")
	// ErrNoDefaultRole: the account has no role flagged for new technicians.
	ErrNoDefaultRole = errors.New("no role for new technicians")
	// ErrBadPolicy: the profile's assignment settings hold a value this
	// code does not know; a bad data file fails loudly.
	ErrBadPolicy = errors.New("unknown assignment policy")
)

// IsAdmin reports whether r is the account's built-in Admin role: the
// built-in role the profile gives the first admin (R-2, I-9). A custom role
// with admin.full is a scoped admin, not the Admin role.
func (r Role) IsAdmin() bool { return r.BuiltIn && r.FirstAdmin }

// OnFirstLogin says what FirstLogin does with a recorded requested role
// (profile setting requested_role_on_first_login).
type OnFirstLogin string

const (
	// ApplyRequested assigns the requested or pre-assigned role (roster).
	ApplyRequested OnFirstLogin = "apply"
	// RecordRequested keeps it as a record only (atera).
	RecordRequested OnFirstLogin = "record"
)

// BeforeFirstLogin says what an assignment before the technician's first
// login does (profile setting assignment_before_first_login).
type BeforeFirstLogin string

const (
	// PreassignAllowed records the role, to be applied at FirstLogin
	// (roster).
	PreassignAllowed BeforeFirstLogin = "allowed"
	// AssignmentRefused refuses it: first login required (atera).
	AssignmentRefused BeforeFirstLogin = "refused"
)

// AssignmentPolicy is the part of a profile's role model that governs
// assignments around the first login.
type AssignmentPolicy struct {
	OnFirstLogin     OnFirstLogin
	BeforeFirstLogin BeforeFirstLogin
}

// AssignmentPolicyOf reads a profile's settings; an unknown value is
// ErrBadPolicy rather than a silent default.
func AssignmentPolicyOf(p profile.RolePolicy) (AssignmentPolicy, error) {
	pol := AssignmentPolicy{
		OnFirstLogin:     OnFirstLogin(p.RequestedRoleOnFirstLogin),
		BeforeFirstLogin: BeforeFirstLogin(p.AssignmentBeforeFirstLogin),
	}
	switch pol.OnFirstLogin {
	case ApplyRequested, RecordRequested:
	default:
		return AssignmentPolicy{}, fmt.Errorf("%w: requested_role_on_first_login %q, want apply or record",
			ErrBadPolicy, p.RequestedRoleOnFirstLogin)
	}
	switch pol.BeforeFirstLogin {
	case PreassignAllowed, AssignmentRefused:
	default:
		return AssignmentPolicy{}, fmt.Errorf("%w: assignment_before_first_login %q, want allowed or refused",
			ErrBadPolicy, p.AssignmentBeforeFirstLogin)
	}
	return pol, nil
}

// Status is a technician's lifecycle state as identity reports it.
type Status string

const (
	StatusInvited  Status = "invited"
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Technician is what this service keeps of a technician: ids and states,
// never personal data (flows.md).
type Technician struct {
	AccountID string
	ID        string
	Status    Status
	// StatusAt is the time of the identity event that set Status; an older
	// status event arriving late (a redelivery) does not undo a newer one.
	StatusAt time.Time
	// FirstLoginAt is zero until FirstLogin (I-6).
	FirstLoginAt time.Time
	// RoleID is the role the technician holds.
	RoleID string
	// RequestedRole is the role asked for at creation or pre-assigned
	// before the first login: the role's name when it names a role of
	// the account, else the text as given; "" for none. It stays as a
	// record after the first login, applied (roster) or not (atera), as
	// identity shows it on the technician.
	RequestedRole string
	// RequestedRoleID is the id of the requested role, "" when the request
	// named no role of the account.
	RequestedRoleID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// LoggedIn reports whether the first login happened.
func (t Technician) LoggedIn() bool { return !t.FirstLoginAt.IsZero() }

// Denied reports whether every access check of t is denied (R-7: a
// disabled technician always is).
func (t Technician) Denied() bool { return t.Status == StatusDisabled }

// ResolveRole finds the role a request names: by id, else by name compared
// case-insensitively (api.md). Ids are matched first, so a role can never
// hide another by taking its id as a name.
func ResolveRole(roles []Role, ref string) (Role, bool) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Role{}, false
	}
	for _, r := range roles {
		if r.ID == ref {
			return r, true
		}
	}
	key := NameKey(ref)
	for _, r := range roles {
		if NameKey(r.Name) == key {
			return r, true
		}
	}
	return Role{}, false
}

// RoleChange is what a command did to a technician's role.
type RoleChange struct {
	Role           Role
	PreviousRoleID string
	// Requested is the requested role the assignment reports
	// (RoleAssigned.requested_role).
	Requested string
}

// NewTechnician is R-6: every new technician gets the account's default
// role (Beginner) whatever was requested, and the requested role is
// recorded. A request that names no role of the account is recorded as
// given (trimmed), with no role id: it is reported, never refused, because
// identity has already created the technician.
func NewTechnician(accountID, technicianID string, roles []Role, requested string, at time.Time) (Technician, RoleChange, error) {
	var def Role
	found := false
	for _, r := range roles {
		if r.DefaultForNew {
			def, found = r, true
			break
		}
	}
	if !found {
		return Technician{}, RoleChange{}, fmt.Errorf("account %s: %w", accountID, ErrNoDefaultRole)
	}
	t := Technician{
		AccountID: accountID,
		ID:        technicianID,
		Status:    StatusInvited,
		StatusAt:  at,
		RoleID:    def.ID,
		CreatedAt: at,
		UpdatedAt: at,
	}
	t.RequestedRole = strings.TrimSpace(requested)
	if r, ok := ResolveRole(roles, requested); ok {
		t.RequestedRole, t.RequestedRoleID = r.Name, r.ID
	}
	return t, RoleChange{Role: def, Requested: t.RequestedRole}, nil
}

// FirstAdminTechnician is the account's first admin (I-9), invited and
// holding the Admin role from the account's creation.
func FirstAdminTechnician(a Assignment) Technician {
	return Technician{
		AccountID: a.AccountID,
		ID:        a.TechnicianID,
		Status:    StatusInvited,
		StatusAt:  a.AssignedAt,
		RoleID:    a.RoleID,
		CreatedAt: a.AssignedAt,
		UpdatedAt: a.AssignedAt,
	}
}

// activeAdminsBesides counts the technicians in admins (the holders of the
// Admin role) that are not disabled, leaving out technicianID.
func activeAdminsBesides(admins []Technician, technicianID string) int {
	n := 0
	for _, a := range admins {
		if a.ID != technicianID && !a.Denied() {
			n++
		}
	}
	return n
}

// leavesNoAdmin is I-9: moving t from current to target removes the last
// technician that is not disabled holding the Admin role. A disabled
// technician is not counted, so demoting one never empties the account.
func leavesNoAdmin(t Technician, current, target Role, admins []Technician) bool {
	return current.IsAdmin() && !target.IsAdmin() && !t.Denied() && activeAdminsBesides(admins, t.ID) == 0
}

// FirstLoginOutcome is what FirstLogin did.
type FirstLoginOutcome struct {
	// Already: the first login was recorded before; nothing changed (I-6:
	// a second FirstLogin, whatever its event id, is applied once).
	Already bool
	// Assigned is the applied requested role, nil when the role did not
	// change.
	Assigned *RoleChange
	// Unresolved: the profile applies requested roles, but the recorded
	// one names no role of the account; it stays recorded.
	Unresolved bool
	// KeptLastAdmin: applying the requested role would have left the
	// account without an admin (I-9); it stays recorded, unapplied.
	KeptLastAdmin bool
}

// FirstLogin records t's first login at `at` and, where the profile says
// so, applies the requested role: roster applies it — no manual
// step — and atera only lifts the first-login lock on assignments. roles
// are the account's roles and admins the holders of its Admin role.
func (t Technician) FirstLogin(pol AssignmentPolicy, current Role, roles []Role, admins []Technician, at time.Time) (Technician, FirstLoginOutcome) {
	if t.LoggedIn() {
		return t, FirstLoginOutcome{Already: true}
	}
	t.FirstLoginAt, t.UpdatedAt = at, at
	if t.Status == StatusInvited {
		t.Status = StatusActive
		if at.After(t.StatusAt) {
			t.StatusAt = at
		}
	}
	if pol.OnFirstLogin != ApplyRequested || t.RequestedRole == "" {
		return t, FirstLoginOutcome{}
	}
	target, ok := Role{}, false
	if t.RequestedRoleID != "" {
		target, ok = ResolveRole(roles, t.RequestedRoleID)
	}
	if !ok { // renamed, deleted, or never known: try the name again
		target, ok = ResolveRole(roles, t.RequestedRole)
	}
	if !ok {
		return t, FirstLoginOutcome{Unresolved: true}
	}
	if leavesNoAdmin(t, current, target, admins) {
		return t, FirstLoginOutcome{KeptLastAdmin: true}
	}
	if target.ID == t.RoleID {
		return t, FirstLoginOutcome{}
	}
	change := &RoleChange{Role: target, PreviousRoleID: t.RoleID, Requested: t.RequestedRole}
	t.RoleID = target.ID
	return t, FirstLoginOutcome{Assigned: change}
}

// AssignRole gives t the target role on an admin's request (R-6, I-9).
// Before the first login the profile either refuses
// (ErrFirstLoginRequired) or pre-assigns: target becomes the requested
// role, applied at FirstLogin, and the current role stays. After it the
// role changes at once. Either way, taking the Admin role from the last
// technician that is not disabled holding it is ErrLastAdmin — a
// pre-assignment too, since FirstLogin would apply it. The returned change
// is nil when the role held did not change.
func (t Technician) AssignRole(pol AssignmentPolicy, current, target Role, admins []Technician, at time.Time) (Technician, *RoleChange, error) {
	if !t.LoggedIn() && pol.BeforeFirstLogin != PreassignAllowed {
		return t, nil, fmt.Errorf("technician %s has not logged in yet: %w", t.ID, ErrFirstLoginRequired)
	}
	if leavesNoAdmin(t, current, target, admins) {
		return t, nil, fmt.Errorf("technician %s holds %s: %w", t.ID, current.Name, ErrLastAdmin)
	}
	if !t.LoggedIn() {
		if t.RequestedRoleID != target.ID || t.RequestedRole != target.Name {
			t.RequestedRole, t.RequestedRoleID, t.UpdatedAt = target.Name, target.ID, at
		}
		return t, nil, nil
	}
	if target.ID == current.ID {
		return t, nil, nil
	}
	change := &RoleChange{Role: target, PreviousRoleID: current.ID, Requested: t.RequestedRole}
	t.RoleID, t.UpdatedAt = target.ID, at
	return t, change, nil
}

// Disable records identity's TechnicianDisabled at `at`: t is denied from
// now on. It reports false when there is nothing to store: the same
// event again, or a status event older than the one t holds.
func (t Technician) Disable(at time.Time) (Technician, bool) {
	return t.setStatus(StatusDisabled, at)
}

// Enable records identity's TechnicianEnabled at `at`: t is active again,
// or invited when it never logged in (rules.md, technician lifecycle).
func (t Technician) Enable(at time.Time) (Technician, bool) {
	s := StatusInvited
	if t.LoggedIn() {
		s = StatusActive
	}
	return t.setStatus(s, at)
}

// setStatus applies a status event unless a newer one was applied. A
// status event that changes nothing still moves StatusAt, so that an older
// event arriving after it cannot undo it: Enable(T2) seen before
// Disable(T1) leaves t enabled, as identity left it.
func (t Technician) setStatus(s Status, at time.Time) (Technician, bool) {
	if at.Before(t.StatusAt) || (t.Status == s && at.Equal(t.StatusAt)) {
		return t, false
	}
	t.Status, t.StatusAt, t.UpdatedAt = s, at, at
	return t, true
}
