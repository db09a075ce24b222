package app

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"roster.dev/pkg/idempotency"
	"roster.dev/pkg/problem"
	"roster.dev/pkg/store"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// InvitationFinder finds an invitation by its id, whatever its state.
type InvitationFinder interface {
	InvitationByID(ctx context.Context, q Querier, accountID, id string) (domain.Invitation, error)
	PendingInvitations(ctx context.Context, accountID, after string, limit int) ([]PendingInvitation, error)
}

// PendingInvitation is a live invitation as GET …/invitations lists it:
// its invitee has not accepted, and it was neither revoked nor replaced by
// a resend. Status is "pending", or "expired" once ExpiresAt passed (a
// resend mails a new link).
type PendingInvitation struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	Status       string    `json:"status"`
	TechnicianID string    `json:"technician_id"`
	BaseRole     string    `json:"base_role"`
	SentAt       time.Time `json:"sent_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// AcceptanceStore marks the invitees whose seat waits for their acceptance
// (S-2): identity's own record, so the account's first admin, seated from
// creation, never asks for a second seat.
type AcceptanceStore interface {
	AwaitsSeat(ctx context.Context, q Querier, technicianID string) (bool, error)
	SeatTaken(ctx context.Context, tx *sql.Tx, technicianID, reservationID string) error
}

// Invitations is the invitation flow of profiles that seat users on
// acceptance (I-5, S-2; atlan): invite several emails at once, resend,
// revoke.
type Invitations struct {
	*Credentials
	Find InvitationFinder
}

// InvitationJSON is one invitation as api.md shows it.
type InvitationJSON struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	Status       string    `json:"status"`
	TechnicianID string    `json:"technician_id"`
	BaseRole     string    `json:"base_role"`
	Personas     []string  `json:"personas"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Invite invites every email of the request in one transaction (I-5): each
// becomes a technician pending acceptance with the base role requested
// (applied on acceptance, R-6), holding no seat (S-2), and is mailed a
// single-use link; personas travel to rolepolicy as PersonasRequested. An
// email already in the account refuses the whole request, naming it.
func (x *Invitations) Invite(ctx context.Context, accountID string, in domain.Invite, idemKey string, body []byte) (idempotency.Result, error) {
	acc, prof, err := x.account(ctx, accountID)
	if err != nil {
		return idempotency.Result{}, err
	}
	if !prof.Identity.SeatOnAcceptance() {
		return idempotency.Result{}, domain.ErrInvitationsUnavailable()
	}
	roles := make([]string, 0, len(prof.RolePolicy.BuiltInRoles))
	for _, r := range prof.RolePolicy.BuiltInRoles {
		roles = append(roles, r.Name)
	}
	if p := in.Validate(roles); p != nil {
		return idempotency.Result{}, p
	}
	scope := idemScope(acc.ID, "POST /invitations")
	return idempotency.Do(ctx, x.DB, idempotency.Request{Scope: scope, Key: idemKey, Body: body}, func(tx *sql.Tx) (int, any, error) {
		now := x.Now().UTC().Truncate(time.Microsecond)
		out := make([]InvitationJSON, 0, len(in.Emails))
		for _, email := range in.Emails {
			if holder, err := x.Technicians.TechnicianByEmail(ctx, tx, acc.ID, email); err == nil {
				return 0, nil, domain.EmailConflict(email, holder.Status)
			} else if !errors.Is(err, ErrNotFound) {
				return 0, nil, err
			}
			role := in.BaseRole
			t := domain.Technician{
				ID: NewID("tech"), AccountID: acc.ID, Email: email, Status: prof.Identity.InitialStatus,
				SiteIDs: []string{}, CreatedAt: now, RequestedRole: &role,
			}
			if err := x.Technicians.AddTechnician(ctx, tx, t, domain.SeatAwaitsAcceptance); err != nil {
				if store.IsUniqueViolation(err) {
					return 0, nil, domain.ErrEmailInUse(email)
				}
				return 0, nil, err
			}
			if err := x.Bus.Emit(ctx, tx, acc.ID, &identityv1.TechnicianCreated{
				TechnicianId: t.ID, Email: t.Email, Status: t.Status, RequestedRole: role, SiteIds: t.SiteIDs,
			}); err != nil {
				return 0, nil, err
			}
			if len(in.Personas) > 0 {
				if err := x.Bus.Emit(ctx, tx, acc.ID, &identityv1.PersonasRequested{TechnicianId: t.ID, PersonaIds: in.Personas}); err != nil {
					return 0, nil, err
				}
			}
			inv, err := x.issue(ctx, tx, acc, t, now)
			if err != nil {
				return 0, nil, err
			}
			out = append(out, InvitationJSON{ID: inv.ID, Email: email, Status: "pending", TechnicianID: t.ID,
				BaseRole: role, Personas: append([]string{}, in.Personas...), ExpiresAt: inv.ExpiresAt})
		}
		return http.StatusCreated, map[string]any{"data": out}, nil
	})
}

// Pending lists a page of the account's live invitations (I-5), oldest
// first, after the cursor id; limit is the page size.
func (x *Invitations) Pending(ctx context.Context, accountID, after string, limit int) ([]PendingInvitation, error) {
	if _, _, err := x.account(ctx, accountID); err != nil {
		return nil, err
	}
	ps, err := x.Find.PendingInvitations(ctx, accountID, after, limit)
	if err != nil {
		return nil, err
	}
	now := x.Now()
	for i := range ps {
		ps[i].Status = "pending"
		if !ps[i].ExpiresAt.After(now) {
			ps[i].Status = "expired"
		}
	}
	return ps, nil
}

// invitation finds a pending invitation's technician by the invitation id;
// an id the account does not have is 404.
func (x *Invitations) invitation(ctx context.Context, q Querier, accountID, id string) (domain.Invitation, domain.Technician, error) {
	inv, err := x.Find.InvitationByID(ctx, q, accountID, id)
	if errors.Is(err, ErrNotFound) {
		return inv, domain.Technician{}, problem.NotFound("invitation " + id)
	}
	if err != nil {
		return inv, domain.Technician{}, err
	}
	t, err := x.Technicians.Technician(ctx, q, accountID, inv.TechnicianID)
	return inv, t, err
}

// Resend mails the invitee a new link (I-4); the old ones stop working.
// Any of the invitee's invitation ids names them.
func (x *Invitations) Resend(ctx context.Context, accountID, id, idemKey string, body []byte) (idempotency.Result, error) {
	_, t, err := x.invitation(ctx, x.DB, accountID, id)
	if err != nil {
		return idempotency.Result{}, err
	}
	return x.ResendInvitation(ctx, accountID, t.ID, idemKey, body)
}

// Revoke withdraws a pending invitation (I-5): the links die and the
// invitee is deactivated (they held no seat, S-2); InvitationRevoked is
// audited. Revoking again changes nothing; an accepted one is 409.
func (x *Invitations) Revoke(ctx context.Context, accountID, id string) error {
	return x.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := x.Technicians.LockAccount(ctx, tx, accountID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return problem.NotFound("account " + accountID)
			}
			return err
		}
		inv, t, err := x.invitation(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if t.Status == domain.StatusDisabled {
			return nil
		}
		if t.Status != domain.StatusInvited {
			return domain.ErrNotInvited(t.Status)
		}
		now := x.Now().UTC().Truncate(time.Microsecond)
		if err := x.Creds.RevokeInvitations(ctx, tx, t.ID, now); err != nil {
			return err
		}
		if err := x.disable(ctx, tx, &t, "invitation_revoked", ""); err != nil {
			return err
		}
		return x.Bus.Emit(ctx, tx, accountID, &identityv1.InvitationRevoked{TechnicianId: t.ID, InvitationId: inv.ID})
	})
}

// seatOnAcceptance reserves the seat an invitee takes by accepting, where
// the profile seats users on acceptance (S-2); "" where it does not, or
// the technician already holds one. With no free seat the acceptance is
// held: AcceptanceHeld tells the admins (audited), and the answer is 409
// acceptance-held — never an over-allocation and never a silent purchase.
func (c *Credentials) seatOnAcceptance(ctx context.Context, inv domain.Invitation, t domain.Technician) (string, error) {
	_, prof, err := c.account(ctx, inv.AccountID)
	if err != nil {
		return "", err
	}
	if !prof.Identity.SeatOnAcceptance() || t.Status != domain.StatusInvited || c.Acceptances == nil {
		return "", nil
	}
	if awaits, err := c.Acceptances.AwaitsSeat(ctx, c.DB, t.ID); err != nil || !awaits {
		return "", err
	}
	reservation := NewID("res")
	outcome, _, err := c.Seats.ReserveSeat(ctx, inv.AccountID, reservation, false)
	if err != nil {
		return "", err
	}
	if outcome != SeatQuote {
		return reservation, nil
	}
	if err := c.DB.InTx(ctx, func(tx *sql.Tx) error {
		return c.Bus.Emit(ctx, tx, inv.AccountID, &identityv1.AcceptanceHeld{
			TechnicianId: t.ID, InvitationId: inv.ID, Reason: "no free seat",
		})
	}); err != nil {
		return "", err
	}
	return "", domain.ErrAcceptanceHeld()
}

// accepted emits InvitationAccepted with the reservation seatOnAcceptance
// made, within the accepting transaction: seatbilling confirms the seat.
func (c *Credentials) accepted(ctx context.Context, tx *sql.Tx, inv domain.Invitation, reservation, method string) error {
	if reservation == "" {
		return nil
	}
	if err := c.Acceptances.SeatTaken(ctx, tx, inv.TechnicianID, reservation); err != nil {
		return err
	}
	return c.Bus.Emit(ctx, tx, inv.AccountID, &identityv1.InvitationAccepted{
		TechnicianId: inv.TechnicianID, InvitationId: inv.ID, ReservationId: reservation, Method: method,
	})
}
