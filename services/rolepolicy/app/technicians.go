package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/profile"
	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// Technicians and their roles (R-6, R-7, I-9). identity owns technicians;
// this service follows them through identity's events — TechnicianCreated,
// FirstLogin, TechnicianDisabled, TechnicianEnabled — and keeps their ids,
// states and roles. Every command locks the account first, so the commands
// that change one account's technicians run one at a time (I-9 counts
// admins across technicians).
//
// An event about a technician or account this service does not know yet
// fails and is redelivered by the bus: identity's events can overtake one
// another on redelivery, and the missing one (AccountCreated,
// TechnicianCreated) is then on its way.

// AddTechnician is identity's TechnicianCreated as this service needs it.
type AddTechnician struct {
	AccountID    string
	TechnicianID string
	// RequestedRole is a role name or id; "" for none.
	RequestedRole string
	// At is when identity created the technician (zero: now).
	At time.Time
}

// AddTechnician is R-6: the new technician gets the account's default role
// (Beginner) whatever was requested, and the requested role is recorded —
// by name when it names a role of the account (by id, or by name
// case-insensitively), else as given. RoleAssigned carries it in
// requested_role either way, so an unknown requested role is visible to
// identity and the audit log instead of silently dropped; it is never
// applied. A technician announced again (a new event id) changes nothing.
func (a *App) AddTechnician(ctx context.Context, tx *sql.Tx, cmd AddTechnician) error {
	acc, err := a.store.LockAccount(ctx, tx, cmd.AccountID)
	if err != nil {
		return fmt.Errorf("add technician %s: %w", cmd.TechnicianID, err)
	}
	roles, err := a.store.AccountRoles(ctx, tx, acc.ID)
	if err != nil {
		return fmt.Errorf("add technician %s: %w", cmd.TechnicianID, err)
	}
	t, change, err := domain.NewTechnician(acc.ID, cmd.TechnicianID, roles, cmd.RequestedRole, a.eventTime(cmd.At))
	if err != nil {
		return fmt.Errorf("add technician %s: %w", cmd.TechnicianID, err)
	}
	first, err := a.store.AddTechnician(ctx, tx, t)
	if err != nil {
		return fmt.Errorf("add technician %s: %w", cmd.TechnicianID, err)
	}
	if !first {
		a.log.InfoContext(ctx, "technician already known; nothing to do", "account_id", acc.ID, "technician_id", t.ID)
		return nil
	}
	if err := a.store.Assign(ctx, tx, domain.Assignment{AccountID: acc.ID, TechnicianID: t.ID, RoleID: t.RoleID, AssignedAt: t.CreatedAt}); err != nil {
		return fmt.Errorf("add technician %s: %w", t.ID, err)
	}
	if err := a.events.Emit(ctx, tx, acc.ID, roleAssigned(t.ID, change)); err != nil {
		return fmt.Errorf("add technician %s: emit: %w", t.ID, err)
	}
	if err := a.changed(ctx, tx, acc.ID); err != nil {
		return fmt.Errorf("add technician %s: %w", t.ID, err)
	}
	a.indexed(ctx, a.index.PutTechnician(t), acc.ID, "technician "+t.ID)
	if t.RequestedRole != "" && t.RequestedRoleID == "" {
		a.log.WarnContext(ctx, "requested role names no role of the account; recorded as given",
			"account_id", acc.ID, "technician_id", t.ID, "requested_role", t.RequestedRole)
	}
	a.log.InfoContext(ctx, "technician added", "account_id", acc.ID, "technician_id", t.ID,
		"role_id", t.RoleID, "requested_role", t.RequestedRole)
	return nil
}

// RecordFirstLogin is identity's FirstLogin as this service needs it.
type RecordFirstLogin struct {
	AccountID    string
	TechnicianID string
	// At is when the technician logged in (zero: now).
	At time.Time
}

// ApplyRequestedRoleOnFirstLogin records a technician's first login (I-6)
// and does what the profile says with the requested role: "apply"
// assigns the requested or pre-assigned role and emits RoleAssigned with
// the previous role; "record" only lifts the first-login lock on
// assignments. It happens once per technician whatever the number of
// FirstLogin events or their ids: the first login is a state, not a
// message. A requested role that names no role of the account, or whose
// application would take the Admin role from the account's last admin
// (I-9), stays recorded and is logged: identity has logged the technician
// in already, so there is nothing to refuse.
func (a *App) ApplyRequestedRoleOnFirstLogin(ctx context.Context, tx *sql.Tx, cmd RecordFirstLogin) error {
	s, err := a.loadForChange(ctx, tx, cmd.AccountID, cmd.TechnicianID)
	if err != nil {
		return fmt.Errorf("first login of %s: %w", cmd.TechnicianID, err)
	}
	t, out := s.tech.FirstLogin(s.policy, s.current, s.roles, s.admins, a.eventTime(cmd.At))
	log := a.log.With("account_id", t.AccountID, "technician_id", t.ID)
	if out.Already {
		log.InfoContext(ctx, "first login already recorded; nothing to do")
		return nil
	}
	if err := a.store.SaveTechnician(ctx, tx, t); err != nil {
		return fmt.Errorf("first login of %s: %w", t.ID, err)
	}
	switch {
	case out.Unresolved:
		log.WarnContext(ctx, "requested role names no role of the account; not applied", "requested_role", t.RequestedRole)
	case out.KeptLastAdmin:
		log.WarnContext(ctx, "requested role not applied: it would leave the account without an admin (I-9)",
			"requested_role", t.RequestedRole)
	}
	if out.Assigned != nil {
		if err := a.assign(ctx, tx, t, *out.Assigned); err != nil {
			return fmt.Errorf("first login of %s: %w", t.ID, err)
		}
		log.InfoContext(ctx, "requested role applied at first login", "role_id", out.Assigned.Role.ID,
			"previous_role_id", out.Assigned.PreviousRoleID)
	}
	if err := a.changed(ctx, tx, t.AccountID); err != nil {
		return fmt.Errorf("first login of %s: %w", t.ID, err)
	}
	a.indexed(ctx, a.index.PutTechnician(t), t.AccountID, "technician "+t.ID)
	return nil
}

// ChangeStatus is identity's TechnicianDisabled or TechnicianEnabled as
// this service needs it.
type ChangeStatus struct {
	AccountID    string
	TechnicianID string
	// At is when identity changed the status (zero: now).
	At time.Time
}

// DisableTechnician records that identity disabled a technician: every
// access check of theirs is denied from now on, and they no longer
// count as an admin (I-9). identity checked I-9 before disabling.
func (a *App) DisableTechnician(ctx context.Context, tx *sql.Tx, cmd ChangeStatus) error {
	return a.changeStatus(ctx, tx, cmd, "disable", domain.Technician.Disable)
}

// EnableTechnician records that identity enabled a technician again.
func (a *App) EnableTechnician(ctx context.Context, tx *sql.Tx, cmd ChangeStatus) error {
	return a.changeStatus(ctx, tx, cmd, "enable", domain.Technician.Enable)
}

func (a *App) changeStatus(ctx context.Context, tx *sql.Tx, cmd ChangeStatus, what string,
	change func(domain.Technician, time.Time) (domain.Technician, bool)) error {
	if _, err := a.store.LockAccount(ctx, tx, cmd.AccountID); err != nil {
		return fmt.Errorf("%s %s: %w", what, cmd.TechnicianID, err)
	}
	t, err := a.store.Technician(ctx, tx, cmd.AccountID, cmd.TechnicianID)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, cmd.TechnicianID, err)
	}
	t, changed := change(t, a.eventTime(cmd.At))
	if !changed {
		a.log.InfoContext(ctx, "technician status unchanged (same or older event)", "account_id", t.AccountID,
			"technician_id", t.ID, "status", t.Status, "event", what)
		return nil
	}
	if err := a.store.SaveTechnician(ctx, tx, t); err != nil {
		return fmt.Errorf("%s %s: %w", what, t.ID, err)
	}
	if err := a.changed(ctx, tx, t.AccountID); err != nil {
		return fmt.Errorf("%s %s: %w", what, t.ID, err)
	}
	a.indexed(ctx, a.index.PutTechnician(t), t.AccountID, "technician "+t.ID) // denied from now on, or no longer
	a.log.InfoContext(ctx, "technician status changed", "account_id", t.AccountID, "technician_id", t.ID,
		"status", t.Status, "denied", t.Denied())
	return nil
}

// AssignRole is PUT /v1/accounts/{acc}/technicians/{id}/role.
type AssignRole struct {
	AccountID    string
	TechnicianID string
	// Role is a role id or name (compared case-insensitively).
	Role string
}

// TechnicianRole is a technician's role as the API shows it: the answer of
// GET and PUT …/technicians/{id}/role.
type TechnicianRole struct {
	TechnicianID string `json:"technician_id"`
	RoleID       string `json:"role_id"`
	// Role is the role's name.
	Role string `json:"role"`
	// RequestedRole is the role asked at creation or pre-assigned before
	// the first login (domain.Technician.RequestedRole); null for none.
	RequestedRole *string `json:"requested_role"`
	// RequestedRoleID is null when there is no requested role or it names
	// no role of the account.
	RequestedRoleID *string `json:"requested_role_id"`
	// Status is invited, active or disabled.
	Status         string     `json:"status"`
	FirstLoginDone bool       `json:"first_login_done"`
	FirstLoginAt   *time.Time `json:"first_login_at"`
	// Denied: every access check of the technician is denied.
	Denied bool `json:"denied"`
}

func technicianRole(t domain.Technician, role domain.Role) TechnicianRole {
	v := TechnicianRole{
		TechnicianID:    t.ID,
		RoleID:          role.ID,
		Role:            role.Name,
		RequestedRole:   nonEmpty(t.RequestedRole),
		RequestedRoleID: nonEmpty(t.RequestedRoleID),
		Status:          string(t.Status),
		FirstLoginDone:  t.LoggedIn(),
		Denied:          t.Denied(),
	}
	if t.LoggedIn() {
		at := t.FirstLoginAt.UTC()
		v.FirstLoginAt = &at
	}
	return v
}

// AssignRole gives a technician a role on an admin's request (R-6, I-9),
// under the Idempotency-Key idemKey (scoped to the account and the
// technician's role route; "" for none): a retry with the same key and
// body answers the first answer and changes nothing.
//
//   - Before the technician's first login, a profile that refuses it
//     answers domain.ErrFirstLoginRequired (atera). A profile that allows
//     it records the role as the requested (pre-assigned) role, applied at
//     FirstLogin; the answer shows the role still held and the requested
//     one, and no RoleAssigned is emitted since no role changed hands.
//   - After the first login the role changes at once, with RoleAssigned.
//   - Taking the Admin role from the last technician that is not disabled
//     holding it is domain.ErrLastAdmin (I-9), for a pre-assignment too.
//
// An unknown technician is domain.ErrTechnicianNotFound, a role that the
// account does not have domain.ErrUnknownRole. Assigning the role already
// held answers 200 and emits nothing. A disabled technician may be given a
// role: it is denied whatever it holds.
func (a *App) AssignRole(ctx context.Context, cmd AssignRole, idemKey string, body []byte) (idempotency.Result, error) {
	req := idempotency.Request{
		Scope: cmd.AccountID + ":PUT /v1/accounts/" + cmd.AccountID + "/technicians/" + cmd.TechnicianID + "/role",
		Key:   idemKey,
		Body:  body,
	}
	return a.write(ctx, cmd.AccountID, req, func(tx *sql.Tx) (int, any, func(*access.Index), error) {
		s, err := a.loadForChange(ctx, tx, cmd.AccountID, cmd.TechnicianID)
		if err != nil {
			return 0, nil, nil, err
		}
		target, ok := domain.ResolveRole(s.roles, cmd.Role)
		if !ok {
			return 0, nil, nil, fmt.Errorf("role %q: %w", cmd.Role, domain.ErrUnknownRole)
		}
		t, change, err := s.tech.AssignRole(s.policy, s.current, target, s.admins, a.clock())
		if err != nil {
			return 0, nil, nil, err
		}
		if err := a.store.SaveTechnician(ctx, tx, t); err != nil {
			return 0, nil, nil, err
		}
		held := s.current
		if change != nil {
			if err := a.assign(ctx, tx, t, *change); err != nil {
				return 0, nil, nil, err
			}
			held = change.Role
			a.log.InfoContext(ctx, "role assigned", "account_id", t.AccountID, "technician_id", t.ID,
				"role_id", held.ID, "previous_role_id", change.PreviousRoleID)
		} else if t.RequestedRoleID != s.tech.RequestedRoleID {
			ev := &rolepolicyv1.RolePreassigned{TechnicianId: t.ID, RoleId: target.ID, RoleName: target.Name}
			if err := a.events.Emit(ctx, tx, t.AccountID, ev); err != nil {
				return 0, nil, nil, err
			}
			a.log.InfoContext(ctx, "role pre-assigned until the first login", "account_id", t.AccountID,
				"technician_id", t.ID, "requested_role_id", t.RequestedRoleID)
		}
		return http.StatusOK, technicianRole(t, held), func(x *access.Index) { x.PutTechnician(t) }, nil
	})
}

// TechnicianRole returns a technician's role, requested role and states;
// an unknown account is domain.ErrAccountNotFound, an unknown technician
// domain.ErrTechnicianNotFound.
func (a *App) TechnicianRole(ctx context.Context, accountID, technicianID string) (TechnicianRole, error) {
	t, err := a.store.Technician(ctx, nil, accountID, technicianID)
	if errors.Is(err, domain.ErrTechnicianNotFound) {
		if _, aerr := a.store.Account(ctx, accountID); aerr != nil {
			return TechnicianRole{}, aerr
		}
	}
	if err != nil {
		return TechnicianRole{}, err
	}
	role, err := a.store.Role(ctx, accountID, t.RoleID)
	if err != nil {
		return TechnicianRole{}, fmt.Errorf("role of technician %s: %v", t.ID, err) // a 500, not the request's 404
	}
	return technicianRole(t, role), nil
}

// snapshot is what a command about one technician starts from, read
// within its transaction after locking the account.
type snapshot struct {
	policy  domain.AssignmentPolicy
	tech    domain.Technician
	roles   []domain.Role
	current domain.Role
	// admins hold the account's Admin role (none when it has no such role).
	admins []domain.Technician
}

func (a *App) loadForChange(ctx context.Context, tx *sql.Tx, accountID, technicianID string) (snapshot, error) {
	acc, err := a.store.LockAccount(ctx, tx, accountID)
	if err != nil {
		return snapshot{}, err
	}
	p, err := profile.Get(acc.Profile)
	if err != nil {
		// A stored account with an unknown profile is broken data (a 500),
		// not the request's ErrUnknownProfile.
		return snapshot{}, fmt.Errorf("account %s: %v", acc.ID, err)
	}
	s := snapshot{}
	if s.policy, err = domain.AssignmentPolicyOf(p.RolePolicy); err != nil {
		return snapshot{}, fmt.Errorf("profile %s: %w", p.ID, err)
	}
	if s.tech, err = a.store.Technician(ctx, tx, acc.ID, technicianID); err != nil {
		return snapshot{}, err
	}
	if s.roles, err = a.store.AccountRoles(ctx, tx, acc.ID); err != nil {
		return snapshot{}, err
	}
	i := slices.IndexFunc(s.roles, func(r domain.Role) bool { return r.ID == s.tech.RoleID })
	if i < 0 {
		// Not ErrRoleNotFound: the request named no role; the data is broken.
		return snapshot{}, fmt.Errorf("technician %s holds role %s, which account %s lacks", s.tech.ID, s.tech.RoleID, acc.ID)
	}
	s.current = s.roles[i]
	if i := slices.IndexFunc(s.roles, domain.Role.IsAdmin); i >= 0 {
		if s.admins, err = a.store.Holders(ctx, tx, acc.ID, s.roles[i].ID); err != nil {
			return snapshot{}, err
		}
	}
	return s, nil
}

// assign stores t's new role and emits RoleAssigned within tx.
func (a *App) assign(ctx context.Context, tx *sql.Tx, t domain.Technician, c domain.RoleChange) error {
	err := a.store.Assign(ctx, tx, domain.Assignment{AccountID: t.AccountID, TechnicianID: t.ID, RoleID: c.Role.ID, AssignedAt: a.clock()})
	if err != nil {
		return err
	}
	if err := a.events.Emit(ctx, tx, t.AccountID, roleAssigned(t.ID, c)); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// roleAssigned is the event of every assignment. admin_role tells identity
// whether the role is the account's built-in Admin, the role I-9 counts.
func roleAssigned(technicianID string, c domain.RoleChange) *rolepolicyv1.RoleAssigned {
	return &rolepolicyv1.RoleAssigned{
		TechnicianId:   technicianID,
		RoleId:         c.Role.ID,
		RoleName:       c.Role.Name,
		PreviousRoleId: c.PreviousRoleID,
		RequestedRole:  c.Requested,
		AdminRole:      c.Role.IsAdmin(),
	}
}

// eventTime is at as stored, or now when the event carried no time.
func (a *App) eventTime(at time.Time) time.Time {
	if at.IsZero() {
		return a.clock()
	}
	return at.UTC().Truncate(time.Microsecond)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
