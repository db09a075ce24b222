package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"roster.dev/pkg/problem"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// ChangePassword is a technician replacing their own password from a
// session (L-1, L-4): the current password must be right — a wrong one
// counts towards the lockout like a failed login (L-2) — and the new one
// pass the policy; every other session of the technician ends, the
// caller's stays.
func (c *Credentials) ChangePassword(ctx context.Context, accountID, technicianID, sessionID, current, next string) error {
	t, err := c.Technicians.Technician(ctx, c.DB, accountID, technicianID)
	if err != nil {
		return err
	}
	if current == "" {
		return problem.Invalid(problem.FieldError{Field: "current_password", Detail: "is required"})
	}
	if p := domain.CheckPassword(next, t.Email); p != nil {
		return problem.Invalid(problem.FieldError{Field: "new_password", Detail: p.Errors[0].Detail})
	}
	rec, err := c.Creds.LoginRecord(ctx, accountID, t.Email)
	if err != nil {
		return err
	}
	if err := c.lockedOut(ctx, accountID, t.ID, t.Email, domain.FactorPassword); err != nil {
		return err
	}
	hash := rec.PasswordHash
	if hash == "" {
		hash = dummyHash()
	}
	ok, err := withKDF(ctx, func() (bool, error) { return domain.VerifyPassword(hash, current) })
	if err != nil {
		return fmt.Errorf("verify password of %s: %w", t.ID, err)
	}
	if !ok || rec.PasswordHash == "" {
		return c.fail(ctx, failure{accountID: accountID, technicianID: t.ID, email: t.Email, reason: "password", factor: domain.FactorPassword},
			domain.ErrInvalidCredentials())
	}
	newHash, err := hashPassword(ctx, next, domain.NewSalt())
	if err != nil {
		return err
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	ctx = asTechnician(ctx, t.ID)
	return c.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := c.Creds.SetPassword(ctx, tx, t.ID, newHash, "changed", now); err != nil {
			return err
		}
		if err := c.revokeSessions(ctx, tx, accountID, t.ID, nil, sessionID, now, "password_changed"); err != nil {
			return err
		}
		if err := c.Resets.RetireResets(ctx, tx, t.ID, now); err != nil {
			return err
		}
		return c.Bus.Emit(ctx, tx, accountID, &identityv1.PasswordSet{TechnicianId: t.ID, Method: "changed"})
	})
}
