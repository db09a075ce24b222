package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	rolepolicyv1 "roster.dev/proto/roster/rolepolicy/v1"
	"roster.dev/services/rolepolicy/domain"
)

// RequestRole is identity's TechnicianRoleRequested as this service needs it.
type RequestRole struct {
	AccountID    string
	TechnicianID string
	// Role is a role id or name (compared case-insensitively).
	Role string
	// At is when identity asked (zero: now).
	At time.Time
}

// RequestRole applies a role change that directory sync asked for (H-1:
// the HRIS mapping maps the employee to another role) within the
// consumer's transaction, under the rules of AssignRole (R-6, I-9): at once
// after the first login, pre-assigned before it where the profile allows.
// What AssignRole would refuse — the first login required (atera), the
// account's last admin, a role the account lacks — is logged and changes
// nothing: there is no caller to answer, and a redelivery would be refused
// the same way.
func (a *App) RequestRole(ctx context.Context, tx *sql.Tx, cmd RequestRole) error {
	s, err := a.loadForChange(ctx, tx, cmd.AccountID, cmd.TechnicianID)
	if err != nil {
		return fmt.Errorf("role request for %s: %w", cmd.TechnicianID, err)
	}
	log := a.log.With("account_id", cmd.AccountID, "technician_id", cmd.TechnicianID, "role", cmd.Role)
	target, ok := domain.ResolveRole(s.roles, cmd.Role)
	if !ok {
		log.WarnContext(ctx, "requested role names no role of the account; not applied")
		return nil
	}
	t, change, err := s.tech.AssignRole(s.policy, s.current, target, s.admins, a.eventTime(cmd.At))
	switch {
	case errors.Is(err, domain.ErrFirstLoginRequired), errors.Is(err, domain.ErrLastAdmin):
		log.WarnContext(ctx, "requested role not applied", "reason", err.Error())
		return nil
	case err != nil:
		return fmt.Errorf("role request for %s: %w", cmd.TechnicianID, err)
	}
	if err := a.store.SaveTechnician(ctx, tx, t); err != nil {
		return fmt.Errorf("role request for %s: %w", t.ID, err)
	}
	if change != nil {
		if err := a.assign(ctx, tx, t, *change); err != nil {
			return fmt.Errorf("role request for %s: %w", t.ID, err)
		}
	} else if t.RequestedRoleID != s.tech.RequestedRoleID {
		ev := &rolepolicyv1.RolePreassigned{TechnicianId: t.ID, RoleId: target.ID, RoleName: target.Name}
		if err := a.events.Emit(ctx, tx, t.AccountID, ev); err != nil {
			return err
		}
	}
	a.indexed(ctx, a.index.PutTechnician(t), t.AccountID, "technician "+t.ID)
	log.InfoContext(ctx, "requested role handled", "assigned", change != nil)
	return nil
}
