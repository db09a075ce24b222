package app

import (
	"context"
	"database/sql"
	"fmt"

	"roster.dev/pkg/eventbus"
	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/access"
	"roster.dev/services/rolepolicy/domain"
)

// SetUpAccount is identity's AccountCreated as this service needs it.
type SetUpAccount struct {
	AccountID         string
	Profile           string
	AdminTechnicianID string
}

// SetUpAccount creates the profile's built-in roles for a new account (R-2,
// R-8) and gives the first admin the Admin role (I-9), emitting RoleCreated
// and RoleAssigned within tx. It is idempotent: the account row is claimed
// first, and an account set up before (a republished event with a new id)
// changes nothing.
func (a *App) SetUpAccount(ctx context.Context, tx *sql.Tx, cmd SetUpAccount) error {
	p, err := profile.Get(cmd.Profile)
	if err != nil {
		return fmt.Errorf("set up account %s: %w: %w", cmd.AccountID, domain.ErrUnknownProfile, err)
	}
	setup, err := domain.SetUpAccount(cmd.AccountID, p, cmd.AdminTechnicianID, a.clock())
	if err != nil {
		return err
	}
	first, err := a.store.AddAccount(ctx, tx, setup.Account)
	if err != nil {
		return fmt.Errorf("set up account %s: %w", cmd.AccountID, err)
	}
	if !first {
		a.log.InfoContext(ctx, "account already set up; nothing to do", "account_id", cmd.AccountID)
		return nil
	}

	events := make([]eventbus.Event, 0, len(setup.Roles)+1)
	for _, r := range setup.Roles {
		if err := a.store.AddRole(ctx, tx, r); err != nil {
			return fmt.Errorf("set up account %s: role %q: %w", cmd.AccountID, r.Name, err)
		}
		events = append(events, roleCreated(r))
	}
	st := access.State{Account: setup.Account, Roles: setup.Roles}
	if as := setup.FirstAdmin; as != nil {
		role, _ := setup.FirstAdminRole()
		if err := a.store.Assign(ctx, tx, *as); err != nil {
			return fmt.Errorf("set up account %s: assign %s to %s: %w", cmd.AccountID, role.Name, as.TechnicianID, err)
		}
		// The first admin's states, so that FirstLogin, disabling and
		// the last-admin rule (I-9) know them like any technician.
		admin := domain.FirstAdminTechnician(*as)
		if _, err := a.store.AddTechnician(ctx, tx, admin); err != nil {
			return fmt.Errorf("set up account %s: %w", cmd.AccountID, err)
		}
		st.Technicians = append(st.Technicians, admin)
		events = append(events, roleAssigned(as.TechnicianID, domain.RoleChange{Role: role}))
	}
	if err := a.events.Emit(ctx, tx, cmd.AccountID, events...); err != nil {
		return fmt.Errorf("set up account %s: emit: %w", cmd.AccountID, err)
	}
	// Last: the account's index, whole (a redelivery after a failed commit
	// replaces it with the roles that commit).
	if err := a.changed(ctx, tx, cmd.AccountID); err != nil {
		return fmt.Errorf("set up account %s: %w", cmd.AccountID, err)
	}
	if err := a.index.Install(st); err != nil {
		return fmt.Errorf("set up account %s: %w", cmd.AccountID, err)
	}
	a.log.InfoContext(ctx, "account set up", "account_id", cmd.AccountID, "profile", p.ID,
		"roles", len(setup.Roles), "technician_id", cmd.AdminTechnicianID)
	return nil
}
